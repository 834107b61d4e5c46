// `cacheportal sniffer` as a process (the cacheportal-sniffer binary runs the
// same RunSnifferCommand): options, exit codes, relaying, logging of captured
// statements, and a clean stop on SIGTERM.
#include <csignal>
#include <random>

#include "tests/sniffer/sniffer_test_util.h"
#include "tests/support/child_process.h"

namespace cacheportal::testing {
namespace {

std::string Binary() { return std::string(kBuildDir) + "/sniffer/cacheportal-sniffer"; }

std::string LogPath(const std::string& what) {
  std::random_device rd;
  return std::string(kBuildDir) + "/sniffer_command_" + what + "_" + std::to_string(rd()) + ".log";
}

int RunToExit(const std::vector<std::string>& args, std::string* log) {
  std::vector<std::string> argv = {Binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string path = LogPath("exit");
  auto child = ChildProcess::Spawn(argv, path);
  EXPECT_TRUE(child.ok()) << child.status().ToString();
  if (!child.ok()) return -1;
  int status = child->Wait(20000);
  *log = child->Log();
  std::remove(path.c_str());
  return status;
}

TEST(SnifferCommand, HelpExitsZero) {
  std::string log;
  EXPECT_EQ(RunToExit({"--help"}, &log), 0);
  EXPECT_NE(log.find("usage: cacheportal sniffer"), std::string::npos) << log;
}

TEST(SnifferCommand, BadArgumentsAreUsageErrors) {
  std::string log;
  EXPECT_EQ(RunToExit({"--bogus"}, &log), 2);
  EXPECT_EQ(RunToExit({"--listen", "no-port"}, &log), 2);
  EXPECT_NE(log.find("HOST:PORT"), std::string::npos) << log;
  EXPECT_EQ(RunToExit({"--upstream"}, &log), 2);
  EXPECT_EQ(RunToExit({"--threads", "0"}, &log), 2);
}

TEST(SnifferCommand, MissingConfigIsAConfigurationError) {
  std::string log;
  EXPECT_EQ(RunToExit({"--config", "/nonexistent/cacheportal.yaml"}, &log), 3);
}

TEST(SnifferCommand, RelaysLogsCapturedStatementsAndStopsOnSigterm) {
  auto db = TestDatabase::Create();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  std::string path = LogPath("run");
  auto child =
      ChildProcess::Spawn({Binary(), "--listen", "127.0.0.1:0", "--upstream",
                           "127.0.0.1:" + std::to_string(TestPgPort()), "--log-level", "debug"},
                          path);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  // The listening line names the ephemeral port.
  std::string port;
  ASSERT_TRUE(WaitFor([&] {
    std::string log = child->Log();
    auto at = log.find("msg=listening address=127.0.0.1:");
    if (at == std::string::npos) return false;
    at += std::string("msg=listening address=127.0.0.1:").size();
    port = log.substr(at, log.find(' ', at) - at);
    return true;
  })) << child->Log();
  {
    auto conn = pg::Connect("host=127.0.0.1 port=" + port + " user=postgres dbname=" + db->name());
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    auto r = pg::ExecParams(
        conn->get(), "SELECT $1::int * 2 " + Comment("0123456789abcdef0123456789abcdef"), {"21"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_STREQ(PQgetvalue(r->get(), 0, 0), "42");
  }
  EXPECT_TRUE(WaitFor([&] {
    return child->Log().find("msg=statement request=0123456789abcdef0123456789abcdef") !=
           std::string::npos;
  })) << child->Log();
  EXPECT_NE(child->Log().find("params=21"), std::string::npos) << child->Log();
  child->Signal(SIGTERM);
  EXPECT_EQ(child->Wait(20000), 0);
  EXPECT_NE(child->Log().find("msg=stopped"), std::string::npos) << child->Log();
  std::remove(path.c_str());
}

}  // namespace
}  // namespace cacheportal::testing
