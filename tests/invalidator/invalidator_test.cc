// End-to-end within the invalidator: a real PostgreSQL (wal_level=logical),
// the real replication stream, pages registered in an in-memory map, and a
// recording Ejector awaited with bounded deadlines.
//
// "Ejects nothing" is proven without sleeping: the test commits a sentinel
// change after the one under test and waits for the sentinel's page; the
// stream is ordered, so by then the earlier transaction has been processed.
#include "invalidator/replication.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/pg.h"
#include "invalidator/pgoutput.h"
#include "tests/invalidator/fakes.h"
#include "tests/invalidator/template_builders.h"
#include "tests/support/pg_test_db.h"

namespace cacheportal::invalidator {
namespace {

using sqlmap::CompareOp;
using namespace test;  // NOLINT

class InvalidatorE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = testing::TestDatabase::Create();
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    db_.emplace(std::move(d).value());
    conn_ = db_->Connect();
    Exec("SET synchronous_commit = on");  // decoding reads flushed WAL only
    Exec("CREATE TABLE category (catid text PRIMARY KEY, name text)");
    Exec("CREATE TABLE product (productid text PRIMARY KEY, category text, name text, descn text)");
    Exec(
        "CREATE TABLE item (itemid text PRIMARY KEY, productid text, listprice numeric(10,2), "
        "unitcost numeric(10,2), status text, attr1 text)");
    Exec("CREATE TABLE marker (id int PRIMARY KEY, v int)");
    Exec("INSERT INTO category VALUES ('FISH', 'Fish'), ('DOGS', 'Dogs')");
    Exec(
        "INSERT INTO product VALUES ('FI-SW-01', 'FISH', 'Angelfish', ''), "
        "('K9-BD-01', 'DOGS', 'Bulldog', '')");
    Exec(
        "INSERT INTO item VALUES ('EST-1', 'FI-SW-01', 16.50, 10.00, 'P', 'Large'), "
        "('EST-2', 'FI-SW-01', 16.50, 10.00, 'P', 'Small'), "
        "('EST-6', 'K9-BD-01', 18.50, 12.00, 'P', 'Male')");
    Exec("INSERT INTO marker SELECT g, 0 FROM generate_series(1, 100) g");

    item_by_id_ =
        Single("public.item", Cmp("itemid", CompareOp::kEq, 0), {"itemid", "listprice", "attr1"});
    products_by_cat_ = Single("public.product", Cmp("category", CompareOp::kEq, 0),
                              {"productid", "name", "category"});
    categories_ = Single("public.category", sqlmap::Predicate{}, {"catid", "name"});
    marker_ = Single("public.marker", Cmp("id", CompareOp::kEq, 0), {"id", "v"});
    items_of_cat_ = Join("public.item", sqlmap::Predicate{}, {"itemid", "productid", "listprice"},
                         "public.product", Cmp("category", CompareOp::kEq, 0),
                         {"productid", "category", "name"}, "productid", "productid");

    options_.slot_name = "s_" + db_->name();
    options_.publication_name = "p_" + db_->name();
    options_.status_interval_seconds = 1;
  }

  void TearDown() override {
    if (inv_) inv_->Stop();
    inv_.reset();
    if (conn_) DropSlot();
  }

  void DropSlot() {
    for (int i = 0; i < 100; ++i) {
      auto r = pg::Exec(conn_.get(),
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                        "WHERE slot_name = '" +
                            options_.slot_name + "'");
      if (r.ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // walsender still exiting
    }
  }

  void Exec(const std::string& sql) {
    auto r = pg::Exec(conn_.get(), sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  }
  std::string Query(const std::string& sql) {
    auto r = pg::Exec(conn_.get(), sql);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    if (!r.ok() || PQntuples(r->get()) == 0 || PQgetisnull(r->get(), 0, 0)) return "";
    return PQgetvalue(r->get(), 0, 0);
  }
  Lsn QueryLsn(const std::string& sql) {
    auto l = ParseLsn(Query(sql));
    return l.ok() ? *l : 0;
  }
  Lsn ConfirmedFlush() {
    return QueryLsn("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" +
                    options_.slot_name + "'");
  }

  InvalidatorDeps Deps(const std::string& conninfo = "") {
    InvalidatorDeps d;
    d.conninfo = conninfo.empty() ? db_->Conninfo() : conninfo;
    d.options = options_;
    d.source = &source_;
    d.ejector = &ejector_;
    return d;
  }

  // Counters are published once per stream message, after the ejection they
  // count: wait (bounded) for them instead of reading them at once.
  template <typename Pred>
  InvalidatorMetrics MetricsWhen(Pred pred) {
    InvalidatorMetrics m = inv_->GetMetrics();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred(m) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      m = inv_->GetMetrics();
    }
    return m;
  }

  // Starts and waits until the invalidator has caught up (and, on a new slot,
  // ejected everything once), so pages registered afterwards stay registered.
  void StartInvalidator() {
    auto r = Invalidator::Start(Deps());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    inv_ = std::move(r).value();
    ASSERT_TRUE(ejector_.WaitVouched(true)) << inv_->GetMetrics().last_error;
  }

  void RegisterStorePages() {
    source_.AddPage("/item/EST-1", {Inst(item_by_id_, {"EST-1"})});
    source_.AddPage("/item/EST-2", {Inst(item_by_id_, {"EST-2"})});
    source_.AddPage("/item/EST-6", {Inst(item_by_id_, {"EST-6"})});
    source_.AddPage("/frag/products/FISH", {Inst(products_by_cat_, {"FISH"})});
    source_.AddPage("/frag/products/DOGS", {Inst(products_by_cat_, {"DOGS"})});
    source_.AddPage("/frag/categories", {Inst(categories_, {})});
    source_.AddPage("/", {}, {"/frag/categories"});
    source_.AddPage("/category/FISH", {}, {"/frag/categories", "/frag/products/FISH"});
    source_.AddPage("/category/DOGS", {}, {"/frag/categories", "/frag/products/DOGS"});
  }

  // Commits a change to marker row `n` and waits for its page: every earlier
  // transaction has then been processed.
  void Barrier(int n) {
    std::string key = "/marker/" + std::to_string(n);
    source_.AddPage(key, {Inst(marker_, {std::to_string(n)})});
    Exec("UPDATE marker SET v = v + 1 WHERE id = " + std::to_string(n));
    ASSERT_TRUE(ejector_.WaitEjected(key)) << "barrier " << n << " not ejected";
  }

  std::set<std::string> EjectedPages() {
    std::set<std::string> out;
    for (const auto& k : ejector_.EjectedSet())
      if (k.rfind("/marker/", 0) != 0) out.insert(k);
    return out;
  }

  std::optional<testing::TestDatabase> db_;
  pg::ConnPtr conn_;
  InvalidatorOptions options_;
  FakeSource source_;
  RecordingEjector ejector_;
  std::unique_ptr<Invalidator> inv_;
  std::shared_ptr<sqlmap::QueryTemplate> item_by_id_, products_by_cat_, categories_, marker_,
      items_of_cat_;
};

TEST_F(InvalidatorE2E, PriceUpdateEjectsOnlyTheItemPageThatReadsIt) {
  StartInvalidator();
  RegisterStorePages();
  Exec("UPDATE item SET listprice = 18.00 WHERE itemid = 'EST-1'");
  Barrier(1);
  EXPECT_EQ(EjectedPages(), (std::set<std::string>{"/item/EST-1"}));
  EXPECT_FALSE(source_.HasKey("/item/EST-1")) << "ejected keys are removed from the map";
  EXPECT_TRUE(source_.HasKey("/item/EST-2"));
}

TEST_F(InvalidatorE2E, UpdateOfAnUnreadColumnEjectsNothing) {
  StartInvalidator();
  RegisterStorePages();
  Exec("UPDATE item SET unitcost = 11.00 WHERE itemid = 'EST-1'");
  Barrier(1);
  EXPECT_EQ(EjectedPages(), std::set<std::string>{});
}

TEST_F(InvalidatorE2E, RolledBackTransactionEjectsNothing) {
  StartInvalidator();
  RegisterStorePages();
  Exec("BEGIN");
  Exec("UPDATE item SET listprice = 1.00 WHERE itemid = 'EST-1'");
  Exec("INSERT INTO product VALUES ('FI-XX-99', 'FISH', 'Ghost', '')");
  Exec("ROLLBACK");
  Barrier(1);
  EXPECT_EQ(EjectedPages(), std::set<std::string>{});
}

TEST_F(InvalidatorE2E, TruncateEjectsEveryReaderOfTheTable) {
  StartInvalidator();
  RegisterStorePages();
  Exec("TRUNCATE item");
  Barrier(1);
  EXPECT_EQ(EjectedPages(), (std::set<std::string>{"/item/EST-1", "/item/EST-2", "/item/EST-6"}));
}

TEST_F(InvalidatorE2E, NewProductEjectsOnlyItsCategoryListAndPagesIncludingIt) {
  StartInvalidator();
  RegisterStorePages();
  Exec("INSERT INTO product VALUES ('FI-SW-02', 'FISH', 'Tiger Shark', '')");
  Barrier(1);
  EXPECT_EQ(EjectedPages(), (std::set<std::string>{"/frag/products/FISH", "/category/FISH"}));
}

TEST_F(InvalidatorE2E, CategoryRenameEjectsTheFragmentAndEveryPageIncludingIt) {
  StartInvalidator();
  RegisterStorePages();
  Exec("UPDATE category SET name = 'Fishes' WHERE catid = 'FISH'");
  Barrier(1);
  EXPECT_EQ(EjectedPages(),
            (std::set<std::string>{"/frag/categories", "/", "/category/FISH", "/category/DOGS"}));
}

TEST_F(InvalidatorE2E, ProductMovingCategoryEjectsBothLists) {
  StartInvalidator();
  RegisterStorePages();
  Exec("UPDATE product SET category = 'DOGS' WHERE productid = 'FI-SW-01'");
  Barrier(1);
  EXPECT_EQ(EjectedPages(), (std::set<std::string>{"/frag/products/FISH", "/category/FISH",
                                                   "/frag/products/DOGS", "/category/DOGS"}));
}

TEST_F(InvalidatorE2E, EachKeyIsEjectedOncePerTransaction) {
  StartInvalidator();
  RegisterStorePages();
  Exec("BEGIN");
  Exec("UPDATE item SET listprice = listprice + 1 WHERE itemid = 'EST-1'");
  Exec("UPDATE item SET listprice = listprice + 1 WHERE itemid = 'EST-1'");
  Exec("INSERT INTO product VALUES ('FI-SW-03', 'FISH', 'A', ''), ('FI-SW-04', 'FISH', 'B', '')");
  Exec("COMMIT");
  Barrier(1);
  EXPECT_EQ(EjectedPages(),
            (std::set<std::string>{"/item/EST-1", "/frag/products/FISH", "/category/FISH"}));
  auto m = inv_->GetMetrics();
  EXPECT_GE(m.changes, 4u);
}

TEST_F(InvalidatorE2E, InFlightRequestReadingTheChangedRowIsTainted) {
  StartInvalidator();
  RegisterStorePages();
  source_.AddInFlight("req-a", {Inst(item_by_id_, {"EST-2"})});
  source_.AddInFlight("req-b", {Inst(item_by_id_, {"EST-6"})});
  Exec("UPDATE item SET listprice = 3.00 WHERE itemid = 'EST-2'");
  Barrier(1);
  EXPECT_TRUE(source_.IsTainted("req-a"));
  EXPECT_FALSE(source_.IsTainted("req-b"));
}

TEST_F(InvalidatorE2E, JoinPollingEjectsOnlyTheCategoryTheNewItemJoins) {
  options_.join_mode = "poll";
  StartInvalidator();
  source_.AddPage("/items-of/FISH", {Inst(items_of_cat_, {"FISH"})});
  source_.AddPage("/items-of/DOGS", {Inst(items_of_cat_, {"DOGS"})});
  Exec("INSERT INTO item VALUES ('EST-7', 'K9-BD-01', 20.00, 12.00, 'P', 'Female')");
  Barrier(1);
  EXPECT_EQ(EjectedPages(), (std::set<std::string>{"/items-of/DOGS"}));
  // One partner poll answers both instances.
  EXPECT_EQ(inv_->GetMetrics().polling_queries, 1u);
  EXPECT_EQ(inv_->GetMetrics().poll_instances, 2u);
}

TEST_F(InvalidatorE2E, JoinConservativeModeEjectsEveryJoinReader) {
  options_.join_mode = "conservative";
  StartInvalidator();
  source_.AddPage("/items-of/FISH", {Inst(items_of_cat_, {"FISH"})});
  source_.AddPage("/items-of/DOGS", {Inst(items_of_cat_, {"DOGS"})});
  Exec("INSERT INTO item VALUES ('EST-7', 'K9-BD-01', 20.00, 12.00, 'P', 'Female')");
  Barrier(1);
  EXPECT_EQ(EjectedPages(), (std::set<std::string>{"/items-of/FISH", "/items-of/DOGS"}));
  EXPECT_EQ(inv_->GetMetrics().polling_queries, 0u);
}

TEST_F(InvalidatorE2E, JoinBothSidesChangedInOneTransactionIsConservative) {
  options_.join_mode = "poll";
  StartInvalidator();
  source_.AddPage("/items-of/FISH", {Inst(items_of_cat_, {"FISH"})});
  // Deleting the item and its product together: a poll after the commit would
  // find neither partner, yet the page showed them.
  Exec("BEGIN");
  Exec("DELETE FROM item WHERE productid = 'FI-SW-01'");
  Exec("DELETE FROM product WHERE productid = 'FI-SW-01'");
  Exec("COMMIT");
  Barrier(1);
  EXPECT_EQ(EjectedPages(), (std::set<std::string>{"/items-of/FISH"}));
}

TEST_F(InvalidatorE2E, ConfirmedFlushAdvancesOnlyAfterTheEjection) {
  StartInvalidator();
  RegisterStorePages();
  Lsn before = QueryLsn("SELECT pg_current_wal_lsn()");
  ejector_.Close();
  Exec("UPDATE item SET listprice = 19.00 WHERE itemid = 'EST-1'");
  Lsn after_commit = QueryLsn("SELECT pg_current_wal_insert_lsn()");
  ASSERT_TRUE(ejector_.WaitEntered());
  // The ejection is blocked: the slot must not be confirmed past the commit.
  EXPECT_LE(ConfirmedFlush(), before);
  EXPECT_LE(inv_->GetMetrics().confirmed_lsn, before);
  ejector_.Open();
  ASSERT_TRUE(ejector_.WaitEjected("/item/EST-1"));
  bool advanced = false;
  for (int i = 0; i < 400 && !advanced; ++i) {
    advanced = ConfirmedFlush() > before;
    if (!advanced) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(advanced) << "confirmed_flush_lsn never advanced after the ejection";
  EXPECT_LE(ConfirmedFlush(), after_commit);
  // The map's stored position follows (written when the stream goes idle).
  bool stored = false;
  for (int i = 0; i < 400 && !stored; ++i) {
    stored = source_.AppliedLsn() > before;
    if (!stored) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(stored);
}

TEST_F(InvalidatorE2E, FailedEjectionIsRetriedAndNotAcknowledged) {
  StartInvalidator();
  RegisterStorePages();
  ejector_.FailNext(4);  // more than one commit's attempts: forces a reconnect and replay
  Exec("UPDATE item SET listprice = 21.00 WHERE itemid = 'EST-2'");
  ASSERT_TRUE(ejector_.WaitEjected("/item/EST-2", 30));
  auto m = MetricsWhen([](const InvalidatorMetrics& x) { return x.eject_failures >= 4; });
  EXPECT_GE(m.eject_failures, 4u);
  EXPECT_GE(m.reconnects, 1u);
}

TEST_F(InvalidatorE2E, KillWithoutAckThenRestartEjectsEverythingOwed) {
  StartInvalidator();
  RegisterStorePages();
  ejector_.Close();
  Exec("UPDATE item SET listprice = 30.00 WHERE itemid = 'EST-1'");
  Exec("UPDATE item SET listprice = 31.00 WHERE itemid = 'EST-2'");
  Exec("INSERT INTO product VALUES ('K9-XX-01', 'DOGS', 'Pug', '')");
  ASSERT_TRUE(ejector_.WaitEntered());
  Lsn confirmed_before = ConfirmedFlush();
  // Crash while the first ejection is in progress: no status update goes out.
  std::thread killer([&] { inv_->Kill(); });
  while (!inv_->stop_requested()) std::this_thread::yield();
  ejector_.Open();
  killer.join();
  inv_.reset();
  EXPECT_EQ(ConfirmedFlush(), confirmed_before) << "a killed invalidator acknowledged something";

  // Restart on the same (durable) map: everything owed is ejected.
  StartInvalidator();
  Barrier(1);
  auto pages = EjectedPages();
  for (const char* k : {"/item/EST-1", "/item/EST-2", "/frag/products/DOGS", "/category/DOGS"})
    EXPECT_TRUE(pages.count(k)) << k << " never ejected";
  EXPECT_FALSE(pages.count("/item/EST-6"));
}

TEST_F(InvalidatorE2E, DroppedSlotIsRecreatedAndEverythingEjected) {
  StartInvalidator();
  RegisterStorePages();
  int eject_all_before = ejector_.eject_all_count();
  // Kick the walsender and drop the slot before the invalidator reconnects.
  bool dropped = false;
  for (int i = 0; i < 200 && !dropped; ++i) {
    pg::Exec(conn_.get(),
             "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
             "WHERE slot_name = '" +
                 options_.slot_name + "' AND active");
    dropped =
        pg::Exec(conn_.get(), "SELECT pg_drop_replication_slot('" + options_.slot_name + "')").ok();
  }
  ASSERT_TRUE(dropped);
  ASSERT_TRUE(ejector_.WaitEjectAll(eject_all_before + 1, 30));
  // Vouching resumes only after the map was cleared and streaming restarted.
  ASSERT_TRUE(ejector_.WaitVouched(true, 30));
  EXPECT_GE(source_.clears(), 1);
  EXPECT_FALSE(source_.HasKey("/item/EST-1")) << "the map is cleared with the edge";
  EXPECT_EQ(Query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" +
                  options_.slot_name + "'"),
            "1");
  EXPECT_GE(inv_->GetMetrics().slot_recreated, 2u);  // first creation + recreation
  // And it still streams.
  Barrier(2);
}

TEST_F(InvalidatorE2E, UnprivilegedRoleGetsAClearError) {
  std::string role = "r_" + db_->name();
  Exec("CREATE ROLE " + role + " LOGIN");
  std::string conninfo = db_->Conninfo() + " user=" + role;
  auto r = Invalidator::Start(Deps(conninfo));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("REPLICATION"), std::string::npos) << r.status().ToString();
  Exec("DROP ROLE " + role);
}

TEST_F(InvalidatorE2E, MissingTableIsAClearError) {
  options_.tables = {"public.no_such_table"};
  auto r = Invalidator::Start(Deps());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no_such_table"), std::string::npos) << r.status().ToString();
}

TEST_F(InvalidatorE2E, SetsUpPublicationReplicaIdentityAndExportsMetrics) {
  options_.tables = {"item", "product", "category", "marker"};
  StartInvalidator();
  EXPECT_EQ(Query("SELECT count(*) FROM pg_publication_tables WHERE pubname = '" +
                  options_.publication_name + "'"),
            "4");
  EXPECT_EQ(Query("SELECT relreplident FROM pg_class WHERE oid = 'item'::regclass"), "f");
  RegisterStorePages();
  Exec("UPDATE item SET listprice = 5.00 WHERE itemid = 'EST-6'");
  Barrier(1);
  InvalidatorMetrics m;
  for (int i = 0; i < 400; ++i) {  // slot statistics refresh once a second
    m = inv_->GetMetrics();
    // Counters move right after the Eject() call the barrier waited for.
    if (m.slot_retained_wal_bytes > 0 && m.transactions >= 2 && m.latency.count() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_GT(m.slot_retained_wal_bytes, 0u);
  EXPECT_GE(m.transactions, 2u);
  EXPECT_GE(m.latency.count(), 2u);
  EXPECT_GE(m.ejected_keys, 2u);
  EXPECT_TRUE(m.connected);
  EXPECT_NE(m.ToPrometheus().find("cacheportal_invalidator_lag_seconds"), std::string::npos);
}

// The stream thread is stuck in Eject() for the first change while a second
// one commits: the watchdog, not the stream, must withdraw the vouch once the
// first change is older than max_staleness, and vouch again after catch-up.
TEST_F(InvalidatorE2E, WatchdogWithdrawsVouchWhileEjectionIsBlocked) {
  options_.max_staleness_seconds = 0.5;
  StartInvalidator();
  RegisterStorePages();
  ejector_.Close();
  Exec("UPDATE item SET listprice = 40.00 WHERE itemid = 'EST-1'");
  ASSERT_TRUE(ejector_.WaitEntered());
  Exec("UPDATE item SET listprice = 41.00 WHERE itemid = 'EST-2'");
  // Eject() is still blocked here: only the watchdog thread can do this.
  ASSERT_TRUE(ejector_.WaitVouched(false)) << "vouch kept while an ejection is blocked";
  InvalidatorMetrics blocked = inv_->GetMetrics();
  EXPECT_FALSE(ejector_.Ejected("/item/EST-1"));
  EXPECT_GE(blocked.pending_transactions, 1u);
  EXPECT_GE(blocked.vouch_withdrawals_lag + blocked.vouch_withdrawals_silence, 1u);
  EXPECT_FALSE(blocked.vouched);
  ejector_.Open();
  ASSERT_TRUE(ejector_.WaitEjected("/item/EST-1"));
  ASSERT_TRUE(ejector_.WaitEjected("/item/EST-2"));
  ASSERT_TRUE(ejector_.WaitVouched(true)) << "vouch not restored after catch-up";
  EXPECT_EQ(inv_->GetMetrics().pending_transactions, 0u);
}

// A join poll that waits on a lock is cut by its statement_timeout (a
// quarter of max_staleness), the join is ejected conservatively, and the
// timeout is counted.
TEST_F(InvalidatorE2E, BlockedJoinPollTimesOutAndEjectsConservatively) {
  options_.join_mode = "poll";
  options_.max_staleness_seconds = 4;  // poll statement_timeout = 1 s
  StartInvalidator();
  source_.AddPage("/items-of/FISH", {Inst(items_of_cat_, {"FISH"})});
  source_.AddPage("/items-of/DOGS", {Inst(items_of_cat_, {"DOGS"})});
  pg::ConnPtr locker = db_->Connect();
  ASSERT_TRUE(pg::Exec(locker.get(), "BEGIN").ok());
  ASSERT_TRUE(pg::Exec(locker.get(), "LOCK TABLE product IN ACCESS EXCLUSIVE MODE").ok());
  // Polling needs product, which is locked: without the timeout this would
  // wait for as long as the other session holds the lock.
  Exec("INSERT INTO item VALUES ('EST-8', 'K9-BD-01', 22.00, 12.00, 'P', 'Female')");
  ASSERT_TRUE(ejector_.WaitEjected("/items-of/DOGS"));
  ASSERT_TRUE(ejector_.WaitEjected("/items-of/FISH"));  // conservative: no poll answered
  InvalidatorMetrics m =
      MetricsWhen([](const InvalidatorMetrics& x) { return x.poll_timeouts >= 1; });
  EXPECT_GE(m.poll_timeouts, 1u);
  EXPECT_GE(m.poll_errors, m.poll_timeouts);
  EXPECT_NE(m.ToPrometheus().find("cacheportal_invalidator_poll_timeouts_total"),
            std::string::npos);
  ASSERT_TRUE(pg::Exec(locker.get(), "ROLLBACK").ok());
  Barrier(1);
}

}  // namespace
}  // namespace cacheportal::invalidator
