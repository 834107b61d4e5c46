// Batched join polls against a real PostgreSQL: the ChangeProcessor is fed
// decoded changes directly (the stream is covered by invalidator_test.cc),
// and its PgJoinPoller asks a real database. Several instances of one
// template are candidates for one changed row; exactly those whose result
// really joins the row must be ejected, with one query per (row, template).
#include <gtest/gtest.h>

#include "common/pg.h"
#include "invalidator/change_processor.h"
#include "invalidator/join_poll.h"
#include "tests/invalidator/fakes.h"
#include "tests/invalidator/template_builders.h"
#include "tests/support/pg_test_db.h"

namespace cacheportal::invalidator {
namespace {

using sqlmap::CompareOp;
using namespace test;  // NOLINT

ColumnValue T(const std::string& s) { return {ColumnValue::Kind::kText, s}; }

sqlmap::TableRef Ref(std::string table, sqlmap::Predicate p, std::vector<std::string> cols) {
  sqlmap::TableRef r;
  r.table = std::move(table);
  r.alias = r.table.substr(r.table.find('.') + 1);
  r.predicate = std::move(p);
  r.columns_read = std::move(cols);
  return r;
}

// The store's items list (the paper's Query5):
//   SELECT ... FROM item a, item_details b, product_details c, product d
//   WHERE a.itemid = b.itemid AND a.productid = c.productid AND d.productid = c.productid
//     AND b.locale = c.locale AND b.locale = $1 AND a.productid = $2
std::shared_ptr<sqlmap::QueryTemplate> ItemsList() {
  auto t = std::make_shared<sqlmap::QueryTemplate>();
  t->tables.push_back(
      Ref("public.item", Cmp("productid", CompareOp::kEq, 1), {"itemid", "productid"}));
  t->tables.push_back(Ref("public.item_details", Cmp("locale", CompareOp::kEq, 0),
                          {"itemid", "locale", "listprice", "descn"}));
  t->tables.push_back(
      Ref("public.product_details", sqlmap::Predicate{}, {"productid", "locale", "name"}));
  t->tables.push_back(Ref("public.product", sqlmap::Predicate{}, {"productid", "catid"}));
  t->joins = {{0, "itemid", 1, "itemid"},
              {0, "productid", 2, "productid"},
              {3, "productid", 2, "productid"},
              {1, "locale", 2, "locale"}};
  t->num_slots = 2;
  t->fingerprint = t->shape_id = 0x17e35;
  return t;
}

// The store's item page: the same joins, by item instead of product.
std::shared_ptr<sqlmap::QueryTemplate> ItemPage() {
  auto t = ItemsList();
  t->tables[0].predicate = Cmp("itemid", CompareOp::kEq, 1);
  t->fingerprint = t->shape_id = 0x17e36;
  return t;
}

class BatchedPoll : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = cacheportal::testing::TestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_.emplace(std::move(db).value());
    conn_ = db_->Connect();
    Exec(R"sql(
      CREATE TABLE product (productid text PRIMARY KEY, catid text NOT NULL);
      CREATE TABLE product_details (productid text, locale text, name text,
                                    PRIMARY KEY (productid, locale));
      CREATE TABLE item (itemid text PRIMARY KEY, productid text NOT NULL);
      CREATE INDEX ON item (productid);
      CREATE TABLE item_details (itemid text, locale text, listprice numeric(10,2),
                                 descn text, PRIMARY KEY (itemid, locale));
      INSERT INTO product VALUES ('P1', 'FISH'), ('P2', 'FISH'), ('P3', 'DOGS'), ('P4', 'DOGS');
      INSERT INTO product_details SELECT p, l, p || '-' || l
        FROM unnest(ARRAY['P1','P2','P3','P4']) p, unnest(ARRAY['en','de']) l;
      INSERT INTO item VALUES ('EST-1', 'P1'), ('EST-2', 'P1'), ('EST-3', 'P2'), ('EST-4', 'P3');
      INSERT INTO item_details SELECT i, l, 10.50, 'd'
        FROM unnest(ARRAY['EST-1','EST-2','EST-3','EST-4']) i, unnest(ARRAY['en','de']) l;
    )sql");
    poller_ = std::make_unique<PgJoinPoller>(db_->Conninfo(), 5000);
    MakeProcessor(poller_.get());
  }

  void Exec(const std::string& sql) {
    auto r = pg::Exec(conn_.get(), sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  void MakeProcessor(JoinPoller* poller, ProcessorOptions po = {}) {
    proc_ = std::make_unique<ChangeProcessor>(&source_, &ejector_, poller, po);
    Feed(RelationMessage{1,
                         "public",
                         "item_details",
                         'f',
                         {{true, "itemid", 25, -1},
                          {true, "locale", 25, -1},
                          {false, "listprice", 1700, -1},
                          {false, "descn", 25, -1}}});
    Feed(RelationMessage{
        2,
        "public",
        "product_details",
        'f',
        {{true, "productid", 25, -1}, {true, "locale", 25, -1}, {false, "name", 25, -1}}});
    Feed(RelationMessage{
        3, "public", "product", 'f', {{true, "productid", 25, -1}, {false, "catid", 25, -1}}});
  }
  void Feed(const PgOutputMessage& m) { ASSERT_TRUE(proc_->Process(m).ok()); }
  void Txn(const std::vector<PgOutputMessage>& changes) {
    lsn_ += 0x100;
    Feed(BeginMessage{lsn_, 0, 1});
    for (const auto& c : changes) Feed(c);
    Feed(CommitMessage{0, lsn_, lsn_ + 8, 0});
  }
  // Registers /items/<locale>/<product> for each pair.
  void RegisterLists(const std::vector<std::pair<std::string, std::string>>& lists) {
    for (const auto& [locale, product] : lists)
      source_.AddPage("/items/" + locale + "/" + product, {Inst(tmpl_, {locale, product})});
  }
  UpdateMessage PriceChange(const std::string& item, const std::string& locale) {
    return UpdateMessage{1,
                         'O',
                         {{T(item), T(locale), T("10.50"), T("d")}},
                         {{T(item), T(locale), T("11.50"), T("d")}}};
  }

  std::optional<cacheportal::testing::TestDatabase> db_;
  pg::ConnPtr conn_;
  std::unique_ptr<PgJoinPoller> poller_;
  FakeSource source_;
  RecordingEjector ejector_;
  std::unique_ptr<ChangeProcessor> proc_;
  std::shared_ptr<sqlmap::QueryTemplate> tmpl_ = ItemsList();
  Lsn lsn_ = 0x1000;
};

TEST_F(BatchedPoll, PriceChangeEjectsOnlyTheListOfItsProductWithOneQuery) {
  RegisterLists({{"en", "P1"}, {"en", "P2"}, {"en", "P3"}, {"en", "P4"}, {"de", "P1"}});
  Txn({PriceChange("EST-1", "en")});  // EST-1 is in P1
  EXPECT_EQ(ejector_.EjectedSet(), (std::set<std::string>{"/items/en/P1"}));
  auto m = proc_->Metrics();
  EXPECT_EQ(m.polling_queries, 1u);
  EXPECT_EQ(m.poll_instances, 4u) << "every en list was a candidate, de is not";
  EXPECT_EQ(m.poll_errors, 0u);
}

TEST_F(BatchedPoll, ProductNameChangeEjectsEveryLocaleOfThatProductOnly) {
  RegisterLists({{"en", "P1"}, {"en", "P2"}, {"de", "P2"}, {"de", "P3"}});
  // product_details (P2, de): its own predicate is TRUE, so every list is a
  // candidate; only the de list of P2 shows that row.
  Txn({UpdateMessage{2, 'O', {{T("P2"), T("de"), T("P2-de")}}, {{T("P2"), T("de"), T("Neu")}}}});
  EXPECT_EQ(ejector_.EjectedSet(), (std::set<std::string>{"/items/de/P2"}));
  EXPECT_EQ(proc_->Metrics().polling_queries, 1u);
  EXPECT_EQ(proc_->Metrics().poll_instances, 4u);
}

TEST_F(BatchedPoll, SeveralRowsInOneTransactionEachEjectTheirOwnList) {
  RegisterLists({{"en", "P1"}, {"en", "P2"}, {"en", "P3"}, {"en", "P4"}});
  Txn({PriceChange("EST-3", "en"), PriceChange("EST-4", "en")});  // P2, P3
  EXPECT_EQ(ejector_.EjectedSet(), (std::set<std::string>{"/items/en/P2", "/items/en/P3"}));
  EXPECT_EQ(proc_->Metrics().polling_queries, 1u);
}

TEST_F(BatchedPoll, RowWithoutPartnersEjectsNothing) {
  RegisterLists({{"en", "P1"}, {"en", "P2"}});
  // An item_details row whose item does not exist joins nothing.
  Txn({PriceChange("EST-404", "en")});
  EXPECT_TRUE(ejector_.EjectedSet().empty());
  EXPECT_EQ(proc_->Metrics().polling_queries, 1u);
}

TEST_F(BatchedPoll, ManyPartnersFallBackToBatchedProbesThatStayExact) {
  // item a ⨝ product d WHERE a.itemid = $1: a product change joins every item
  // of the product; with more than the partner bound the instances are probed.
  auto by_item = std::make_shared<sqlmap::QueryTemplate>();
  by_item->tables.push_back(
      Ref("public.item", Cmp("itemid", CompareOp::kEq, 0), {"itemid", "productid"}));
  by_item->tables.push_back(Ref("public.product", sqlmap::Predicate{}, {"productid", "catid"}));
  by_item->joins = {{0, "productid", 1, "productid"}};
  by_item->num_slots = 1;
  by_item->fingerprint = by_item->shape_id = 0xb71;
  Exec("INSERT INTO item SELECT 'BULK-' || g, 'P1' FROM generate_series(1, 1200) g");
  for (const char* id : {"EST-1", "BULK-7", "EST-3", "EST-4"})
    source_.AddPage(std::string("/item/") + id, {Inst(by_item, {id})});
  Txn({UpdateMessage{3, 'O', {{T("P1"), T("FISH")}}, {{T("P1"), T("REPTILES")}}}});
  EXPECT_EQ(ejector_.EjectedSet(), (std::set<std::string>{"/item/EST-1", "/item/BULK-7"}));
  auto m = proc_->Metrics();
  EXPECT_EQ(m.poll_overflows, 1u);
  EXPECT_EQ(m.polling_queries, 2u) << "the partner poll, then one batch of 4 probes";
  EXPECT_EQ(m.poll_instances, 8u);
}

TEST_F(BatchedPoll, TwoTemplatesArePolledInOnePipelineAndStayExact) {
  RegisterLists({{"en", "P1"}, {"en", "P2"}});
  auto page = ItemPage();
  for (const char* id : {"EST-1", "EST-2", "EST-3"})
    source_.AddPage(std::string("/item/en/") + id, {Inst(page, {"en", id})});
  Txn({PriceChange("EST-1", "en")});
  EXPECT_EQ(ejector_.EjectedSet(), (std::set<std::string>{"/items/en/P1", "/item/en/EST-1"}));
  EXPECT_EQ(proc_->Metrics().polling_queries, 2u);
  EXPECT_EQ(proc_->Metrics().poll_errors, 0u);
}

TEST_F(BatchedPoll, FailureInsideAPipelineEjectsWhatItWasToDecide) {
  RegisterLists({{"en", "P1"}, {"en", "P2"}});
  auto page = ItemPage();
  source_.AddPage("/item/en/EST-3", {Inst(page, {"en", "EST-3"})});
  Exec("ALTER TABLE product RENAME TO product_gone");
  Txn({PriceChange("EST-1", "en")});
  EXPECT_EQ(ejector_.EjectedSet(),
            (std::set<std::string>{"/items/en/P1", "/items/en/P2", "/item/en/EST-3"}));
  EXPECT_EQ(proc_->Metrics().poll_errors, 2u) << "the failed query and the one it aborted";
  // The poller recovers: the next transaction polls precisely again.
  Exec("ALTER TABLE product_gone RENAME TO product");
  ejector_.Reset();
  RegisterLists({{"en", "P1"}, {"en", "P2"}});
  source_.AddPage("/item/en/EST-3", {Inst(page, {"en", "EST-3"})});
  Txn({PriceChange("EST-3", "en")});
  EXPECT_EQ(ejector_.EjectedSet(), (std::set<std::string>{"/items/en/P2", "/item/en/EST-3"}));
}

TEST_F(BatchedPoll, SpentBudgetStopsWaitingForAPipelineAndEjects) {
  ProcessorOptions po;
  po.poll_budget_seconds = 0.3;
  MakeProcessor(poller_.get(), po);
  RegisterLists({{"en", "P1"}, {"en", "P2"}});
  auto page = ItemPage();
  source_.AddPage("/item/en/EST-3", {Inst(page, {"en", "EST-3"})});
  // Another session holds a lock every poll needs: the queries wait.
  auto locker = db_->Connect();
  ASSERT_TRUE(pg::Exec(locker.get(), "BEGIN").ok());
  ASSERT_TRUE(pg::Exec(locker.get(), "LOCK TABLE product IN ACCESS EXCLUSIVE MODE").ok());
  Txn({PriceChange("EST-1", "en")});
  EXPECT_EQ(ejector_.EjectedSet(),
            (std::set<std::string>{"/items/en/P1", "/items/en/P2", "/item/en/EST-3"}));
  EXPECT_EQ(proc_->Metrics().polls_skipped, 3u);
  ASSERT_TRUE(pg::Exec(locker.get(), "ROLLBACK").ok());
  // The poller reconnects and answers precisely again.
  ejector_.Reset();
  RegisterLists({{"en", "P1"}, {"en", "P2"}});
  source_.AddPage("/item/en/EST-3", {Inst(page, {"en", "EST-3"})});
  Txn({PriceChange("EST-3", "en")});
  EXPECT_EQ(ejector_.EjectedSet(), (std::set<std::string>{"/items/en/P2", "/item/en/EST-3"}));
}

TEST_F(BatchedPoll, PartnerColumnOfAnUnreadTypeIsDecidedBySql) {
  // An enum (like citext or a custom type) is not read by the evaluator,
  // whose text equality might differ from SQL's: the instances are probed.
  Exec("CREATE TYPE pid AS ENUM ('P1', 'P2', 'P3', 'P4')");
  for (const char* t : {"item", "product_details", "product"})
    Exec(std::string("ALTER TABLE ") + t + " ALTER COLUMN productid TYPE pid USING productid::pid");
  RegisterLists({{"en", "P1"}, {"en", "P2"}});
  Txn({PriceChange("EST-1", "en")});
  EXPECT_EQ(ejector_.EjectedSet(), (std::set<std::string>{"/items/en/P1"}));
  EXPECT_EQ(proc_->Metrics().poll_overflows, 1u);
  EXPECT_EQ(proc_->Metrics().polling_queries, 2u);
}

TEST_F(BatchedPoll, FailingPollEjectsEveryCandidateConservatively) {
  RegisterLists({{"en", "P1"}, {"en", "P2"}, {"en", "P3"}});
  Exec("ALTER TABLE product RENAME TO product_gone");  // the poll's query now fails
  Txn({PriceChange("EST-1", "en")});
  EXPECT_EQ(ejector_.EjectedSet(),
            (std::set<std::string>{"/items/en/P1", "/items/en/P2", "/items/en/P3"}));
  EXPECT_EQ(proc_->Metrics().poll_errors, 1u);
  EXPECT_EQ(proc_->ConfirmableLsn(), lsn_ + 8) << "a conservative ejection is a done ejection";
}

TEST_F(BatchedPoll, UnreachableDatabaseEjectsConservatively) {
  PgJoinPoller nowhere("host=127.0.0.1 port=1 dbname=x connect_timeout=2");
  MakeProcessor(&nowhere);
  RegisterLists({{"en", "P1"}, {"en", "P2"}});
  Txn({PriceChange("EST-3", "en")});
  EXPECT_EQ(ejector_.EjectedSet(), (std::set<std::string>{"/items/en/P1", "/items/en/P2"}));
  EXPECT_EQ(proc_->Metrics().poll_errors, 1u);
}

}  // namespace
}  // namespace cacheportal::invalidator
