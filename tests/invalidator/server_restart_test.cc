// The invalidator across a PostgreSQL restart. The test runs its own
// throwaway cluster (scripts/pg, on a port picked by the kernel) so that
// restarting it disturbs no other test.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "common/pg.h"
#include "invalidator/replication.h"
#include "tests/invalidator/fakes.h"
#include "tests/invalidator/template_builders.h"
#include "tests/support/http_client.h"
#include "tests/support/test_env.h"

namespace cacheportal::invalidator {
namespace {

using sqlmap::CompareOp;
using namespace test;  // NOLINT

class ServerRestart : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = testing::PickFreePort();
    dir_ = "/tmp/cp-inval-restart-" + std::to_string(::getpid());
    ASSERT_EQ(Pg("start"), 0);
    conninfo_ = "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
  }
  void TearDown() override {
    Pg("stop");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  int Pg(const std::string& cmd, const std::string& extra_options = "") {
    std::string c = (extra_options.empty() ? "" : "PG_EXTRA_OPTIONS='" + extra_options + "' ") +
                    std::string(testing::kSourceDir) + "/scripts/pg " + cmd + " " + dir_ +
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

// A server without logical decoding: Start() refuses at once, naming the
// setting to change, instead of retrying a stream that can never start.
TEST_F(ServerRestart, WalLevelNotLogicalIsAClearError) {
  ASSERT_EQ(Pg("stop"), 0);
  ASSERT_EQ(Pg("start", "-c wal_level=replica"), 0);
  FakeSource source;
  RecordingEjector ejector;
  InvalidatorDeps deps;
  deps.conninfo = conninfo_;
  deps.options.slot_name = "never_slot";
  deps.options.publication_name = "never_pub";
  deps.source = &source;
  deps.ejector = &ejector;
  auto inv = Invalidator::Start(deps);
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.status().message().find("wal_level is 'replica'"), std::string::npos)
      << inv.status().ToString();
  EXPECT_NE(inv.status().message().find("wal_level=logical"), std::string::npos)
      << inv.status().ToString();
}

}  // namespace
}  // namespace cacheportal::invalidator
