// The invalidator across a PostgreSQL restart. The test runs its own
// throwaway cluster (scripts/pg, on a port picked by the kernel) so that
// restarting it disturbs no other test.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "common/pg.h"
#include "invalidator/replication.h"
#include "tests/invalidator/fakes.h"
#include "tests/invalidator/template_builders.h"
#include "tests/support/test_env.h"

namespace cacheportal::invalidator {
namespace {

using sqlmap::CompareOp;
using namespace test;  // NOLINT

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class ServerRestart : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePort();
    dir_ = "/tmp/cp-inval-restart-" + std::to_string(::getpid());
    ASSERT_EQ(Pg("start"), 0);
    conninfo_ = "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
  }
  void TearDown() override {
    Pg("stop");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  int Pg(const std::string& cmd) {
    std::string c = std::string(testing::kSourceDir) + "/scripts/pg " + cmd + " " + dir_ +
                    (cmd == "start" ? " " + std::to_string(port_) : "") + " >/dev/null";
    return std::system(c.c_str());
  }
  void Exec(PGconn* c, const std::string& sql) {
    auto r = pg::Exec(c, sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  }

  int port_ = 0;
  std::string dir_;
  std::string conninfo_;
};

TEST_F(ServerRestart, ReconnectsWithoutVouchingMeanwhileAndKeepsEjecting) {
  {
    auto c = pg::Connect(conninfo_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    Exec(c->get(), "CREATE TABLE t (id int PRIMARY KEY, v int)");
    Exec(c->get(), "INSERT INTO t VALUES (1, 0), (2, 0)");
  }
  FakeSource source;
  RecordingEjector ejector;
  InvalidatorDeps deps;
  deps.conninfo = conninfo_;
  deps.options.slot_name = "restart_slot";
  deps.options.publication_name = "restart_pub";
  deps.options.status_interval_seconds = 1;
  deps.source = &source;
  deps.ejector = &ejector;
  auto inv = Invalidator::Start(deps);
  ASSERT_TRUE(inv.ok()) << inv.status().ToString();
  ASSERT_TRUE(ejector.WaitVouched(true));
  auto by_id = Single("public.t", Cmp("id", CompareOp::kEq, 0), {"id", "v"});
  source.AddPage("/t/1", {Inst(by_id, {"1"})});
  source.AddPage("/t/2", {Inst(by_id, {"2"})});

  ASSERT_EQ(Pg("stop"), 0);
  ASSERT_TRUE(ejector.WaitVouched(false)) << "still vouching with the server down";
  ASSERT_EQ(Pg("start"), 0);
  {
    auto c = pg::Connect(conninfo_);
    ASSERT_TRUE(c.ok());
    Exec(c->get(), "SET synchronous_commit = on");
    Exec(c->get(), "UPDATE t SET v = 1 WHERE id = 1");
  }
  ASSERT_TRUE(ejector.WaitEjected("/t/1", 60));
  ASSERT_TRUE(ejector.WaitVouched(true, 30));
  EXPECT_FALSE(ejector.Ejected("/t/2"));
  auto m = (*inv)->GetMetrics();
  EXPECT_GE(m.reconnects, 1u);
  EXPECT_TRUE(m.connected);
  (*inv)->Stop();
  auto c = pg::Connect(conninfo_);
  ASSERT_TRUE(c.ok());
  pg::Exec(c->get(), "SELECT pg_drop_replication_slot('restart_slot')");
}

}  // namespace
}  // namespace cacheportal::invalidator
