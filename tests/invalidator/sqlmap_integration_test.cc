// The invalidator over the real map: SQL analysed by sqlmap::Analyzer,
// pages registered in a RocksDB-backed sqlmap::SqlMap, changes made with
// libpq, ejections awaited on a recording Ejector.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "common/pg.h"
#include "invalidator/replication.h"
#include "invalidator/sqlmap_source.h"
#include "sqlmap/analyzer.h"
#include "sqlmap/inflight_registry.h"
#include "sqlmap/sqlmap.h"
#include "tests/invalidator/fakes.h"
#include "tests/support/pg_test_db.h"

namespace cacheportal::invalidator {
namespace {

class WithRealMap : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = testing::TestDatabase::Create();
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    db_.emplace(std::move(d).value());
    conn_ = db_->Connect();
    Exec("SET synchronous_commit = on");
    Exec("CREATE TABLE product (productid text PRIMARY KEY, category text, name text)");
    Exec(
        "CREATE TABLE item (itemid text PRIMARY KEY, productid text, listprice numeric(10,2), "
        "unitcost numeric(10,2), attr1 text)");
    Exec("CREATE TABLE marker (id int PRIMARY KEY, v int)");
    Exec(
        "INSERT INTO product VALUES ('FI-SW-01', 'FISH', 'Angelfish'), ('K9-BD-01', 'DOGS', "
        "'Bulldog')");
    Exec(
        "INSERT INTO item VALUES ('EST-1', 'FI-SW-01', 16.50, 10, 'Large'), "
        "('EST-2', 'FI-SW-01', 16.50, 10, 'Small'), ('EST-6', 'K9-BD-01', 18.50, 12, 'Male')");
    Exec("INSERT INTO marker SELECT g, 0 FROM generate_series(1, 10) g");

    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() / ("cp-inval-map-" + std::to_string(rd()));
    sqlmap::MapOptions mo;
    mo.path = dir_.string();
    ASSERT_TRUE(sqlmap::SqlMap::Open(mo, &map_).ok());
    sqlmap::AnalyzerOptions ao;
    ao.table_columns = {{"public.product", {"productid", "category", "name"}},
                        {"public.item", {"itemid", "productid", "listprice", "unitcost", "attr1"}}};
    analyzer_ = std::make_unique<sqlmap::Analyzer>(ao);
    inflight_ = std::make_unique<sqlmap::InFlightRegistry>(analyzer_.get(), map_.get(),
                                                           sqlmap::InFlightOptions{});
    source_ = MakeSqlMapSource(map_.get(), inflight_.get());

    InvalidatorDeps deps;
    deps.conninfo = db_->Conninfo();
    deps.options.slot_name = "s_" + db_->name();
    deps.options.publication_name = "p_" + db_->name();
    deps.options.status_interval_seconds = 1;
    deps.source = source_.get();
    deps.ejector = &ejector_;
    slot_ = deps.options.slot_name;
    auto inv = Invalidator::Start(deps);
    ASSERT_TRUE(inv.ok()) << inv.status().ToString();
    inv_ = std::move(inv).value();
    ASSERT_TRUE(ejector_.WaitVouched(true));
  }
  void TearDown() override {
    if (inv_) inv_->Stop();
    inv_.reset();
    if (conn_) pg::Exec(conn_.get(), "SELECT pg_drop_replication_slot('" + slot_ + "')");
    source_.reset();
    inflight_.reset();
    map_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Exec(const std::string& sql) {
    auto r = pg::Exec(conn_.get(), sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  }
  void Page(
      const std::string& key,
      const std::vector<std::pair<std::string, std::vector<std::optional<std::string>>>>& sqls,
      const std::vector<std::string>& children = {}) {
    std::vector<sqlmap::QueryInstance> instances;
    for (const auto& [sql, params] : sqls) {
      auto inst = analyzer_->Instantiate(sql, params);
      ASSERT_TRUE(inst.ok()) << sql << ": " << inst.status().ToString();
      instances.push_back(std::move(inst).value());
    }
    ASSERT_TRUE(map_->PutPage(key, instances, children, key).ok());
  }
  void Barrier(int n) {
    std::string key = "/marker/" + std::to_string(n);
    Page(key, {{"SELECT v FROM marker WHERE id = " + std::to_string(n), {}}});
    Exec("UPDATE marker SET v = v + 1 WHERE id = " + std::to_string(n));
    ASSERT_TRUE(ejector_.WaitEjected(key));
  }
  std::set<std::string> Ejected() {
    std::set<std::string> out;
    for (const auto& k : ejector_.EjectedSet())
      if (k.rfind("/marker/", 0) != 0) out.insert(k);
    return out;
  }

  std::optional<testing::TestDatabase> db_;
  pg::ConnPtr conn_;
  std::filesystem::path dir_;
  std::unique_ptr<sqlmap::SqlMap> map_;
  std::unique_ptr<DependencySource> source_;
  std::unique_ptr<sqlmap::Analyzer> analyzer_;
  std::unique_ptr<sqlmap::InFlightRegistry> inflight_;
  test::RecordingEjector ejector_;
  std::unique_ptr<Invalidator> inv_;
  std::string slot_;
};

TEST_F(WithRealMap, PriceUpdateEjectsTheItemPageAndNotItsNeighbour) {
  Page("/item/EST-1", {{"SELECT itemid, listprice, attr1 FROM item WHERE itemid = $1", {"EST-1"}}});
  Page("/item/EST-2", {{"SELECT itemid, listprice, attr1 FROM item WHERE itemid = $1", {"EST-2"}}});
  Exec("UPDATE item SET listprice = 17.00 WHERE itemid = 'EST-1'");
  Barrier(1);
  EXPECT_EQ(Ejected(), (std::set<std::string>{"/item/EST-1"}));
  std::string out;
  EXPECT_TRUE(map_->DescribePage("/item/EST-1", &out).IsNotFound())
      << "ejected page left in the map";
  EXPECT_TRUE(map_->DescribePage("/item/EST-2", &out).ok());
}

TEST_F(WithRealMap, UnreadColumnAndLiteralQueries) {
  Page("/item/EST-1", {{"SELECT itemid, listprice FROM item WHERE itemid = 'EST-1'", {}}});
  Exec("UPDATE item SET unitcost = 11 WHERE itemid = 'EST-1'");
  Barrier(1);
  EXPECT_EQ(Ejected(), std::set<std::string>{});
}

TEST_F(WithRealMap, NewProductEjectsItsCategoryFragmentAndTheIncludingPage) {
  Page("/frag/products/FISH",
       {{"SELECT productid, name FROM product WHERE category = $1", {"FISH"}}});
  Page("/frag/products/DOGS",
       {{"SELECT productid, name FROM product WHERE category = $1", {"DOGS"}}});
  Page("/category/FISH", {}, {"/frag/products/FISH"});
  Exec("INSERT INTO product VALUES ('FI-SW-02', 'FISH', 'Tiger Shark')");
  Barrier(1);
  EXPECT_EQ(Ejected(), (std::set<std::string>{"/frag/products/FISH", "/category/FISH"}));
}

TEST_F(WithRealMap, JoinIsDecidedByPollingThePartnerRow) {
  const char* sql =
      "SELECT i.itemid, i.listprice, p.name FROM item i JOIN product p ON p.productid = "
      "i.productid "
      "WHERE p.category = $1";
  Page("/items/FISH", {{sql, {"FISH"}}});
  Page("/items/DOGS", {{sql, {"DOGS"}}});
  Exec("INSERT INTO item VALUES ('EST-9', 'K9-BD-01', 30, 20, 'Puppy')");
  Barrier(1);
  EXPECT_EQ(Ejected(), (std::set<std::string>{"/items/DOGS"}));
}

TEST_F(WithRealMap, AppliedPositionIsStoredInTheMap) {
  Page("/item/EST-6", {{"SELECT itemid, listprice FROM item WHERE itemid = $1", {"EST-6"}}});
  Exec("UPDATE item SET listprice = 1 WHERE itemid = 'EST-6'");
  ASSERT_TRUE(ejector_.WaitEjected("/item/EST-6"));
  Barrier(2);
  EXPECT_GT(map_->AppliedLsn(), 0u);
}

TEST_F(WithRealMap, CommitDuringAnInFlightRequestKeepsItsResponseOutOfTheCache) {
  const std::string sql =
      "SELECT itemid, listprice FROM item WHERE itemid = $1 /*traceparent='x'*/";
  const std::string affected = "0af7651916cd43dd8448eb211c80319c";
  const std::string untouched = "1af7651916cd43dd8448eb211c80319c";
  CapturedStatement a;
  a.sql = sql;
  a.params = {std::string("EST-1")};
  inflight_->OnStatement(affected, a);
  CapturedStatement b;
  b.sql = sql;
  b.params = {std::string("EST-2")};
  inflight_->OnStatement(untouched, b);
  Exec("UPDATE item SET listprice = 40 WHERE itemid = 'EST-1'");
  Barrier(1);
  EXPECT_EQ(inflight_->Complete({affected, "/item/EST-1", {}, "/item/EST-1"}),
            RegisterVerdict::kTainted);
  EXPECT_EQ(inflight_->Complete({untouched, "/item/EST-2", {}, "/item/EST-2"}),
            RegisterVerdict::kStore);
  EXPECT_GE(inv_->GetMetrics().tainted_requests, 1u);
}

}  // namespace
}  // namespace cacheportal::invalidator
