// kill -9 of a stand-alone invalidator process in the middle of a stream of
// changes, then a restart on the same durable map: every page whose row
// changed is purged at the edge (a fake admin endpoint), none is left stale.
#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

#include "common/pg.h"
#include "invalidator/pgoutput.h"
#include "sqlmap/sqlmap.h"
#include "tests/invalidator/fake_admin.h"
#include "tests/invalidator/template_builders.h"
#include "tests/support/child_process.h"
#include "tests/support/pg_test_db.h"
#include "tests/support/test_env.h"

namespace cacheportal::invalidator {
namespace {

using sqlmap::CompareOp;

constexpr int kRows = 200;

// Items purged by requests [from, to) in arrival order.
std::set<int> PurgedItems(test::FakeAdmin& admin, size_t from = 0, size_t to = SIZE_MAX) {
  std::set<int> out;
  const std::string prefix = "POST /purge?key=%2Fitem%2F";
  auto reqs = admin.requests();
  for (size_t i = from; i < std::min(to, reqs.size()); ++i)
    if (reqs[i].rfind(prefix, 0) == 0) out.insert(std::atoi(reqs[i].c_str() + prefix.size()));
  return out;
}

TEST(InvalidatorKill9, RestartAfterKillEjectsEverythingOwed) {
  auto d = testing::TestDatabase::Create();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto conn = d->Connect();
  auto exec = [&](const std::string& sql) {
    auto r = pg::Exec(conn.get(), sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? std::string(PQntuples(r->get()) ? PQgetvalue(r->get(), 0, 0) : "")
                  : std::string();
  };
  exec("SET synchronous_commit = on");
  exec("CREATE TABLE item (id int PRIMARY KEY, price int)");
  exec("INSERT INTO item SELECT g, 0 FROM generate_series(1, " + std::to_string(kRows) + ") g");
  exec("ALTER TABLE item REPLICA IDENTITY FULL");
  const std::string slot = "s_" + d->name(), pub = "p_" + d->name();
  exec("CREATE PUBLICATION " + pub + " FOR TABLE item");
  auto lsn = ParseLsn(
      exec("SELECT lsn FROM pg_create_logical_replication_slot('" + slot + "', 'pgoutput')"));
  ASSERT_TRUE(lsn.ok());

  // The map the invalidator will own: every item page, positioned at the slot's start.
  std::string map_path =
      std::string(testing::kBuildDir) + "/tests/invalidator/kill9-map-" + d->name();
  {
    sqlmap::MapOptions mo;
    mo.path = map_path;
    std::unique_ptr<sqlmap::SqlMap> map;
    ASSERT_TRUE(sqlmap::SqlMap::Open(mo, &map).ok());
    auto by_id = test::Single("public.item", test::Cmp("id", CompareOp::kEq, 0), {"id", "price"});
    for (int i = 1; i <= kRows; ++i) {
      std::vector<sqlmap::QueryInstance> inst = {test::Inst(by_id, {std::to_string(i)})};
      ASSERT_TRUE(map->PutPage("/item/" + std::to_string(i), inst, {}, "/item").ok());
    }
    ASSERT_TRUE(map->SetAppliedLsn(*lsn).ok());
  }

  test::FakeAdmin admin(200);
  admin.BlockAfter(20);
  std::vector<std::string> argv = {
      std::string(testing::kBuildDir) + "/tests/invalidator/invalidator_child",
      d->Conninfo(),
      map_path,
      slot,
      pub,
      std::to_string(admin.port())};
  std::string log = map_path + ".log";
  auto child = testing::ChildProcess::Spawn(argv, log);
  ASSERT_TRUE(child.ok()) << child.status().ToString();

  // A stream of committed changes; kill -9 once part of it has been purged.
  std::thread writer([&] {
    auto w = d->Connect();
    pg::Exec(w.get(), "SET synchronous_commit = on");
    for (int i = 1; i <= kRows; ++i)
      pg::Exec(w.get(), "UPDATE item SET price = price + 1 WHERE id = " + std::to_string(i));
  });
  // The 21st purge gets no answer: the child is mid-stream, waiting for an
  // ejection to be confirmed, when it is killed.
  ASSERT_TRUE(admin.WaitBlocked()) << child->Log();
  size_t purged_at_kill = PurgedItems(admin).size();
  child->Signal(SIGKILL);
  EXPECT_EQ(child->Wait(10000), 128 + SIGKILL);
  writer.join();
  admin.Release();
  EXPECT_EQ(purged_at_kill, 21u) << child->Log();

  auto again = testing::ChildProcess::Spawn(argv, log + "2");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  // Confirmed before the kill: the first 20 answers. Everything else, including
  // the purge that never got its answer, must come from the restarted process.
  std::set<int> confirmed = PurgedItems(admin, 0, 20);
  auto owed_done = [&] {
    std::set<int> all = confirmed;
    for (int i : PurgedItems(admin, purged_at_kill)) all.insert(i);
    return all.size();
  };
  bool all = false;
  for (int i = 0; i < 6000 && !all; ++i) {
    all = owed_done() == size_t(kRows);
    if (!all) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(all) << owed_done() << " of " << kRows << " pages purged\n" << again->Log();
  again->Signal(SIGTERM);
  again->Wait(10000);
  for (int i = 0; i < 100; ++i) {
    if (pg::Exec(conn.get(), "SELECT pg_drop_replication_slot('" + slot + "')").ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::error_code ec;
  std::filesystem::remove_all(map_path, ec);
}

}  // namespace
}  // namespace cacheportal::invalidator
