// The processor's batched index lookups (ProcessorOptions::probe_batch_changes):
// a transaction's changes are looked up together, in chunks, after each has
// tainted in-flight requests and before the commit's ejections. Over the real
// map and a real PostgreSQL stream: a transaction of many changes ejects
// exactly the affected pages. Fed directly (pure logic): batching changes
// nothing in what is ejected or tainted, only how the lookups are grouped.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "common/pg.h"
#include "invalidator/change_processor.h"
#include "invalidator/replication.h"
#include "invalidator/sqlmap_source.h"
#include "sqlmap/analyzer.h"
#include "sqlmap/inflight_registry.h"
#include "sqlmap/sqlmap.h"
#include "tests/invalidator/fakes.h"
#include "tests/invalidator/template_builders.h"
#include "tests/support/pg_test_db.h"

namespace cacheportal::invalidator {
namespace {

class BatchedLookupRealMap : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = testing::TestDatabase::Create();
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    db_.emplace(std::move(d).value());
    conn_ = db_->Connect();
    Exec("SET synchronous_commit = on");
    Exec(
        "CREATE TABLE item (itemid text PRIMARY KEY, productid text, listprice numeric(10,2), "
        "attr1 text)");
    Exec("CREATE TABLE marker (id int PRIMARY KEY, v int)");
    Exec(
        "INSERT INTO item SELECT 'EST-' || g, 'P-' || (g % 30), 10, 'a' FROM "
        "generate_series(0, 299) g");
    Exec("INSERT INTO marker SELECT g, 0 FROM generate_series(1, 10) g");

    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() / ("cp-inval-batch-" + std::to_string(rd()));
    sqlmap::MapOptions mo;
    mo.path = dir_.string();
    ASSERT_TRUE(sqlmap::SqlMap::Open(mo, &map_).ok());
    sqlmap::AnalyzerOptions ao;
    ao.table_columns = {{"public.item", {"itemid", "productid", "listprice", "attr1"}}};
    analyzer_ = std::make_unique<sqlmap::Analyzer>(ao);
    inflight_ = std::make_unique<sqlmap::InFlightRegistry>(analyzer_.get(), map_.get(),
                                                           sqlmap::InFlightOptions{});
    source_ = MakeSqlMapSource(map_.get(), inflight_.get());
    recording_ = std::make_unique<test::ProbeRecordingSource>(source_.get());

    InvalidatorDeps deps;
    deps.conninfo = db_->Conninfo();
    deps.options.slot_name = "s_" + db_->name();
    deps.options.publication_name = "p_" + db_->name();
    deps.options.status_interval_seconds = 1;
    deps.source = recording_.get();
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
    recording_.reset();
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
  void Page(const std::string& key, const std::string& sql, const std::string& param) {
    auto inst = analyzer_->Instantiate(sql, {param});
    ASSERT_TRUE(inst.ok()) << sql << ": " << inst.status().ToString();
    std::vector<sqlmap::QueryInstance> instances{std::move(inst).value()};
    ASSERT_TRUE(map_->PutPage(key, instances, {}, key).ok());
  }
  // Every transaction committed before has been processed once this returns.
  void Barrier(int n) {
    std::string key = "/marker/" + std::to_string(n);
    Page(key, "SELECT v FROM marker WHERE id = $1", std::to_string(n));
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
  std::unique_ptr<test::ProbeRecordingSource> recording_;
  std::unique_ptr<sqlmap::Analyzer> analyzer_;
  std::unique_ptr<sqlmap::InFlightRegistry> inflight_;
  test::RecordingEjector ejector_;
  std::unique_ptr<Invalidator> inv_;
  std::string slot_;
};

TEST_F(BatchedLookupRealMap, TransactionOfManyChangesEjectsExactlyTheAffectedPages) {
  const std::string by_item = "SELECT itemid, listprice FROM item WHERE itemid = $1";
  const std::string attr_by_item = "SELECT itemid, attr1 FROM item WHERE itemid = $1";
  const std::string by_product = "SELECT itemid, listprice FROM item WHERE productid = $1";
  for (int i = 0; i < 300; ++i) {
    std::string id = "EST-" + std::to_string(i);
    Page("/item/" + id, by_item, id);
    if (i % 3 == 0) Page("/attr/" + id, attr_by_item, id);  // reads no changed column
  }
  for (int p = 0; p < 30; ++p)
    Page("/product/P-" + std::to_string(p), by_product, "P-" + std::to_string(p));
  Page("/product/P-40", by_product, "P-40");    // no items yet: gains 40
  Page("/item/EST-1005", by_item, "EST-1005");  // inserted below
  Page("/item/EST-2000", by_item, "EST-2000");  // never exists
  Barrier(1);
  recording_->ClearRecord();

  // 50 updates, 40 inserts and a delete in one transaction: 91 changes, each
  // looked up by its itemid and productid (REPLICA IDENTITY FULL: the old row
  // is whole; an update's unchanged columns are looked up once).
  Exec(
      "BEGIN; "
      "UPDATE item SET listprice = listprice + 1 WHERE productid IN "
      "('P-0','P-1','P-2','P-3','P-4'); "
      "INSERT INTO item SELECT 'EST-' || g, 'P-40', 5, 'b' FROM generate_series(1000, 1039) g; "
      "DELETE FROM item WHERE itemid = 'EST-299'; "
      "COMMIT");
  Barrier(2);

  std::set<std::string> want;
  for (int i = 0; i < 300; ++i)
    if (i % 30 < 5) want.insert("/item/EST-" + std::to_string(i));
  for (int p = 0; p < 5; ++p) want.insert("/product/P-" + std::to_string(p));
  want.insert("/product/P-40");
  want.insert("/item/EST-1005");
  want.insert("/item/EST-299");
  want.insert("/product/P-29");
  EXPECT_EQ(Ejected(), want);
  std::string out;
  EXPECT_TRUE(map_->DescribePage("/item/EST-0", &out).IsNotFound()) << "ejected page left mapped";
  EXPECT_TRUE(map_->DescribePage("/attr/EST-0", &out).ok());
  EXPECT_TRUE(map_->DescribePage("/item/EST-2000", &out).ok());

  // The real stream holds a transaction's changes until its commit is
  // visible (ProcessorOptions::wait_until_visible), then checks in-flight
  // requests for each and looks all of them up in one batch: 91 changes x 2
  // probes, then the barrier's.
  std::vector<size_t> batches = recording_->batches();
  ASSERT_GE(batches.size(), 2u);
  EXPECT_EQ(batches[0], 182u);
  EXPECT_EQ(recording_->single_lookups(), 0u);
  // Every change tainted in-flight requests before the lookup.
  std::string events = recording_->events();
  EXPECT_EQ(events.substr(0, 92), std::string(91, 'T') + "L") << events;
}

// --- the processor fed directly ---

using namespace test;  // NOLINT

ColumnValue T(const std::string& s) { return {ColumnValue::Kind::kText, s}; }

class BatchedLookupProcessor : public ::testing::Test {
 protected:
  BatchedLookupProcessor() {
    item_by_id_ = Single("public.item", Cmp("itemid", sqlmap::CompareOp::kEq, 0),
                         {"itemid", "productid", "price"});
    item_by_product_ =
        Single("public.item", Cmp("productid", sqlmap::CompareOp::kEq, 0), {"itemid", "price"});
    cheap_items_ = Single("public.item", Cmp("price", sqlmap::CompareOp::kLt, 0), {"itemid"});
  }
  struct Run {
    FakeSource source;
    std::unique_ptr<ProbeRecordingSource> recording;
    RecordingEjector ejector;
    std::unique_ptr<ChangeProcessor> proc;
  };
  std::unique_ptr<Run> Make(size_t batch) {
    auto r = std::make_unique<Run>();
    for (int i = 0; i < 200; ++i) {
      std::string id = "I-" + std::to_string(i);
      r->source.AddPage("/item/" + id, {Inst(item_by_id_, {id})});
    }
    for (int p = 0; p < 20; ++p) {
      std::string pid = "P-" + std::to_string(p);
      r->source.AddPage("/product/" + pid, {Inst(item_by_product_, {pid})});
    }
    r->source.AddPage("/cheap",
                      {Inst(cheap_items_, {"2"})});  // unindexed: every change evaluates it
    r->recording = std::make_unique<ProbeRecordingSource>(&r->source);
    ProcessorOptions po;
    po.probe_batch_changes = batch;
    r->proc = std::make_unique<ChangeProcessor>(r->recording.get(), &r->ejector, nullptr, po,
                                                [] { return int64_t(0); });
    Feed(*r,
         RelationMessage{
             1,
             "public",
             "item",
             'f',
             {{true, "itemid", 25, -1}, {false, "productid", 25, -1}, {false, "price", 1700, -1}}});
    return r;
  }
  static void Feed(Run& r, const PgOutputMessage& m) { ASSERT_TRUE(r.proc->Process(m).ok()); }
  // A reproducible mix of inserts, full-row updates and deletes.
  std::vector<PgOutputMessage> Changes(int n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<PgOutputMessage> v;
    auto row = [&](int i) {
      return TupleData{{T("I-" + std::to_string(i)), T("P-" + std::to_string(i % 25)),
                        T(std::to_string(1 + rng() % 9))}};
    };
    for (int k = 0; k < n; ++k) {
      int i = static_cast<int>(rng() % 260);
      switch (rng() % 3) {
        case 0:
          v.push_back(InsertMessage{1, row(i)});
          break;
        case 1:
          v.push_back(UpdateMessage{1, 'O', row(i), row(i)});
          break;
        default:
          v.push_back(DeleteMessage{1, 'O', row(i)});
          break;
      }
    }
    return v;
  }

  std::shared_ptr<sqlmap::QueryTemplate> item_by_id_, item_by_product_, cheap_items_;
};

TEST_F(BatchedLookupProcessor, BatchingEjectsTheSameAsLookingUpEachChange) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(seed);
    std::vector<PgOutputMessage> changes = Changes(100, seed);
    auto one = Make(1);
    auto many = Make(32);
    for (Run* r : {one.get(), many.get()}) {
      Feed(*r, BeginMessage{1000, 0, 1});
      for (const auto& c : changes) Feed(*r, c);
      Feed(*r, CommitMessage{0, 1000, 1008, 0});
    }
    EXPECT_FALSE(one->ejector.EjectedSet().empty());
    EXPECT_EQ(one->ejector.EjectedSet(), many->ejector.EjectedSet());
    EXPECT_EQ(one->proc->Metrics().candidates_evaluated,
              many->proc->Metrics().candidates_evaluated);
    // 100 changes: one batch per change against ceil(100 / 32) = 4.
    EXPECT_EQ(one->recording->batches().size(), 100u);
    EXPECT_EQ(many->recording->batches().size(), 4u);
  }
}

TEST_F(BatchedLookupProcessor, ChangeTaintsInFlightRequestsOnArrivalBeforeItsLookup) {
  auto r = Make(32);
  r->source.AddInFlight("req", {Inst(item_by_id_, {"I-7"})});
  Feed(*r, BeginMessage{1000, 0, 1});
  Feed(*r, InsertMessage{1, {{T("I-7"), T("P-7"), T("3")}}});
  // Tainted now, though its lookup waits for the chunk or the commit.
  EXPECT_TRUE(r->source.IsTainted("req"));
  EXPECT_TRUE(r->recording->batches().empty());
  EXPECT_FALSE(r->ejector.Ejected("/item/I-7"));
  Feed(*r, CommitMessage{0, 1000, 1008, 0});
  EXPECT_TRUE(r->ejector.Ejected("/item/I-7"));
  EXPECT_EQ(r->recording->events(), "TL");
}

TEST_F(BatchedLookupProcessor, TruncateAndCommitLookUpTheChangesBeforeThem) {
  auto r = Make(32);
  Feed(*r, BeginMessage{1000, 0, 1});
  Feed(*r, InsertMessage{1, {{T("I-3"), T("P-3"), T("5")}}});
  Feed(*r, InsertMessage{1, {{T("I-4"), T("P-4"), T("5")}}});
  Feed(*r, TruncateMessage{0, {1}});
  EXPECT_EQ(r->recording->batches(), std::vector<size_t>{6}) << "3 columns x 2 changes";
  Feed(*r, CommitMessage{0, 1000, 1008, 0});
  EXPECT_TRUE(r->ejector.Ejected("/item/I-3"));
  EXPECT_TRUE(r->ejector.Ejected("/item/I-199")) << "the truncate reaches every instance";
}

TEST_F(BatchedLookupProcessor, ReconnectDropsPendingLookupsWithTheTransaction) {
  auto r = Make(32);
  Feed(*r, BeginMessage{1000, 0, 1});
  Feed(*r, InsertMessage{1, {{T("I-3"), T("P-3"), T("5")}}});
  r->proc->ResetStream();
  EXPECT_TRUE(r->recording->batches().empty());
  // Replayed from the start after the reconnect: ejected once, at its commit.
  Feed(*r,
       RelationMessage{
           1,
           "public",
           "item",
           'f',
           {{true, "itemid", 25, -1}, {false, "productid", 25, -1}, {false, "price", 1700, -1}}});
  Feed(*r, BeginMessage{1000, 0, 1});
  Feed(*r, InsertMessage{1, {{T("I-3"), T("P-3"), T("5")}}});
  Feed(*r, CommitMessage{0, 1000, 1008, 0});
  EXPECT_TRUE(r->ejector.Ejected("/item/I-3"));
  EXPECT_EQ(r->recording->batches(), std::vector<size_t>{3});
}

}  // namespace
}  // namespace cacheportal::invalidator
