// The cacheportal-store binary: subcommands, exit codes, serving until SIGTERM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "http_client.h"
#include "tests/support/pg_test_db.h"
#include "tests/support/test_env.h"

namespace cacheportal::testing {
namespace {

std::string Binary() { return std::string(kBuildDir) + "/sample-app/cacheportal-store"; }

struct Child {
  pid_t pid = -1;
  int out_fd = -1;  // stdout+stderr
};

Child Spawn(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<char*> argv;
    std::string bin = Binary();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  return {pid, fds[0]};
}

// Reads what the child wrote until `until` appears, EOF, or the deadline.
std::string ReadOutput(int fd, const std::string& until, std::chrono::seconds limit) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (!until.empty() && out.find(until) != std::string::npos) break;
  }
  return out;
}

int Wait(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int RunStore(const std::vector<std::string>& args, std::string* output) {
  Child c = Spawn(args);
  if (c.pid < 0) return -1;
  *output = ReadOutput(c.out_fd, "", std::chrono::seconds(60));
  ::close(c.out_fd);
  return Wait(c.pid);
}

TEST(StoreCli, HelpUsageAndConfigExitCodes) {
  std::string out;
  EXPECT_EQ(RunStore({"--help"}, &out), 0);
  EXPECT_NE(out.find("cacheportal-store load --scale N"), std::string::npos) << out;
  EXPECT_EQ(RunStore({"bogus"}, &out), 2);
  EXPECT_EQ(RunStore({"serve", "--nope"}, &out), 2);
  EXPECT_EQ(RunStore({"load"}, &out), 2);  // no --scale
  EXPECT_EQ(RunStore({"load", "--scale", "0"}, &out), 2);
  EXPECT_EQ(RunStore({"serve", "--listen", "nowhere"}, &out), 2);
  EXPECT_EQ(RunStore({"serve", "--config", "/nonexistent/cacheportal.yaml"}, &out), 3);
  char path[] = "/tmp/store-cli-XXXXXX.yaml";
  int fd = ::mkstemps(path, 5);
  ASSERT_GE(fd, 0);
  std::string bad = "store:\n  listen_port: eighty\n";
  ASSERT_EQ(::write(fd, bad.data(), bad.size()), static_cast<ssize_t>(bad.size()));
  ::close(fd);
  EXPECT_EQ(RunStore({"serve", "--config", path}, &out), 3);
  EXPECT_NE(out.find(":2:"), std::string::npos) << out;  // names the line
  ::unlink(path);
}

TEST(StoreCli, LoadThenServeUntilSigterm) {
  auto db = TestDatabase::Create();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  std::string out;
  ASSERT_EQ(RunStore({"load", "--scale", "2", "--database", db->Conninfo()}, &out), 0) << out;
  EXPECT_NE(out.find("32 products, 56 items"), std::string::npos) << out;

  Child c =
      Spawn({"serve", "--listen", "127.0.0.1:0", "--threads", "2", "--database", db->Conninfo(),
             "--config", std::string(kSourceDir) + "/config/cacheportal.yaml"});
  ASSERT_GT(c.pid, 0);
  std::string log = ReadOutput(c.out_fd, "threads=", std::chrono::seconds(30));
  size_t at = log.find(" port=");
  ASSERT_NE(at, std::string::npos) << log;
  int port = std::atoi(log.c_str() + at + 6);
  ASSERT_GT(port, 0) << log;
  auto r = Get(static_cast<uint16_t>(port), "/product/FI-SW-01-2");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_NE(r.body.find("Angelfish 2"), std::string::npos);
  ::kill(c.pid, SIGTERM);
  EXPECT_EQ(Wait(c.pid), 0);
  ::close(c.out_fd);
}

TEST(StoreCli, LoadReportsAnUnreachableDatabase) {
  std::string out;
  EXPECT_EQ(RunStore({"load", "--scale", "1", "--database",
                      "host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=2"},
                     &out),
            1);
  EXPECT_NE(out.find("load failed"), std::string::npos) << out;
}

}  // namespace
}  // namespace cacheportal::testing
