// ChangeProcessor fed decoded messages directly: transaction bookkeeping,
// acknowledgement position, poll guards, fallbacks. Pure logic; the stream
// and the database are covered by invalidator_test.cc.
#include "invalidator/change_processor.h"

#include <gtest/gtest.h>

#include <atomic>

#include "tests/invalidator/fakes.h"
#include "tests/invalidator/template_builders.h"

namespace cacheportal::invalidator {
namespace {

using sqlmap::CompareOp;
using namespace test;  // NOLINT

// Answers of a partner poll for templates whose other table has one
// predicate column: (WAL position, row number, that column).
PollRows NoPartners(Lsn lsn) {
  return PollRows{{25, 23, 25}, {{FormatLsn(lsn), std::nullopt, std::nullopt}}};
}
PollRows Partners(Lsn lsn, std::vector<std::pair<int, std::string>> partners) {
  PollRows r{{25, 23, 25}, {}};
  for (auto& [row, v] : partners) r.rows.push_back({FormatLsn(lsn), std::to_string(row), v});
  return r;
}

class ScriptedPoller : public JoinPoller {
 public:
  Result<PollRows> Query(const PollQuery& q) override {
    queries.push_back(q);
    if (fail) return Status::Unavailable("db down (test)");
    return answer;
  }
  PollRows answer = NoPartners(0);
  bool fail = false;
  std::vector<PollQuery> queries;
};

ColumnValue T(const char* s) { return {ColumnValue::Kind::kText, s}; }

class Processor : public ::testing::Test {
 protected:
  Processor() {
    items_of_cat_ = Join("public.item", sqlmap::Predicate{}, {"itemid", "productid"},
                         "public.product", Cmp("category", CompareOp::kEq, 0),
                         {"productid", "category"}, "productid", "productid");
    item_by_id_ = Single("public.item", Cmp("itemid", CompareOp::kEq, 0), {"itemid", "price"});
    ProcessorOptions po;
    proc_ = std::make_unique<ChangeProcessor>(&source_, &ejector_, &poller_, po,
                                              [] { return int64_t(0); });
    Feed(RelationMessage{
        1,
        "public",
        "item",
        'f',
        {{true, "itemid", 25, -1}, {true, "productid", 25, -1}, {true, "price", 1700, -1}}});
    Feed(RelationMessage{
        2,
        "public",
        "product",
        'f',
        {{true, "productid", 25, -1}, {true, "category", 25, -1}, {true, "name", 25, -1}}});
  }
  void Feed(const PgOutputMessage& m) { ASSERT_TRUE(proc_->Process(m).ok()); }
  // One transaction [begin, end) with the given changes.
  Status Txn(Lsn commit, const std::vector<PgOutputMessage>& changes) {
    Status s = proc_->Process(BeginMessage{commit, 0, 1});
    if (!s.ok()) return s;
    for (const auto& c : changes)
      if (s = proc_->Process(c); !s.ok()) return s;
    return proc_->Process(CommitMessage{0, commit, commit + 8, 0});
  }
  InsertMessage Item(const char* id, const char* product) {
    return InsertMessage{1, {{T(id), T(product), T("1.00")}}};
  }

  FakeSource source_;
  RecordingEjector ejector_;
  ScriptedPoller poller_;
  std::unique_ptr<ChangeProcessor> proc_;
  std::shared_ptr<sqlmap::QueryTemplate> items_of_cat_, item_by_id_;
};

TEST_F(Processor, ConfirmableMovesToEndLsnOnlyAfterEjection) {
  source_.AddPage("/item/A", {Inst(item_by_id_, {"A"})});
  EXPECT_EQ(proc_->ConfirmableLsn(), 0u);
  ASSERT_TRUE(Txn(100, {Item("A", "P")}).ok());
  EXPECT_TRUE(ejector_.Ejected("/item/A"));
  EXPECT_EQ(proc_->ConfirmableLsn(), 108u);
  EXPECT_EQ(source_.AppliedLsn(), 108u);
}

TEST_F(Processor, FailedEjectionDoesNotAdvanceAndIsRetryable) {
  source_.AddPage("/item/A", {Inst(item_by_id_, {"A"})});
  ejector_.FailNext(3);
  Status s = Txn(100, {Item("A", "P")});
  EXPECT_TRUE(s.IsTryAgain()) << s.ToString();
  EXPECT_EQ(proc_->ConfirmableLsn(), 0u);
  EXPECT_EQ(source_.AppliedLsn(), 0u);
  EXPECT_TRUE(source_.HasKey("/item/A"));
  // Replayed after the reconnect: now it goes through.
  proc_->ResetStream();
  Feed(RelationMessage{
      1,
      "public",
      "item",
      'f',
      {{true, "itemid", 25, -1}, {true, "productid", 25, -1}, {true, "price", 1700, -1}}});
  ASSERT_TRUE(Txn(100, {Item("A", "P")}).ok());
  EXPECT_TRUE(ejector_.Ejected("/item/A"));
  EXPECT_EQ(proc_->ConfirmableLsn(), 108u);
}

TEST_F(Processor, ReplayedTransactionIsSkipped) {
  ASSERT_TRUE(Txn(100, {}).ok());
  source_.AddPage("/item/A", {Inst(item_by_id_, {"A"})});
  ASSERT_TRUE(Txn(100, {Item("A", "P")}).ok());
  EXPECT_FALSE(ejector_.Ejected("/item/A")) << "end_lsn <= applied: already done before";
  EXPECT_EQ(proc_->Metrics().replayed_transactions, 1u);
}

TEST_F(Processor, PollGuardEjectsWhenALaterCommitBeforeThePollTouchesTheJoin) {
  source_.AddPage("/items/FISH", {Inst(items_of_cat_, {"FISH"})});
  ASSERT_TRUE(Txn(50, {}).ok());      // confirmable = 58
  poller_.answer = NoPartners(1000);  // "no partner", as of WAL position 1000
  ASSERT_TRUE(Txn(100, {Item("X", "P")}).ok());
  ASSERT_EQ(poller_.queries.size(), 1u);
  EXPECT_NE(poller_.queries[0].sql.find("\"public\".\"product\""), std::string::npos)
      << poller_.queries[0].sql;
  EXPECT_FALSE(ejector_.Ejected("/items/FISH"));
  EXPECT_EQ(proc_->ConfirmableLsn(), 58u) << "a provisional answer holds the position back";
  // A commit that the poll already saw changes the partner table.
  ASSERT_TRUE(Txn(200, {UpdateMessage{
                           2, 'O', {{T("Q"), T("DOGS"), T("a")}}, {{T("Q"), T("DOGS"), T("b")}}}})
                  .ok());
  EXPECT_TRUE(ejector_.Ejected("/items/FISH"));
  EXPECT_EQ(proc_->Metrics().poll_guard_ejections, 1u);
  proc_->OnWalEnd(1000);
  EXPECT_EQ(proc_->ConfirmableLsn(), 208u);
}

TEST_F(Processor, PollGuardResolvesWithoutEjectingWhenNothingTouchesTheJoin) {
  source_.AddPage("/items/FISH", {Inst(items_of_cat_, {"FISH"})});
  source_.AddPage("/item/Z", {Inst(item_by_id_, {"Z"})});
  poller_.answer = NoPartners(150);
  ASSERT_TRUE(Txn(100, {Item("X", "P")}).ok());
  EXPECT_EQ(proc_->ConfirmableLsn(), 0u);
  ASSERT_TRUE(Txn(300, {}).ok());  // past the poll's position: guard resolved
  EXPECT_FALSE(ejector_.Ejected("/items/FISH"));
  EXPECT_EQ(proc_->ConfirmableLsn(), 308u);
}

TEST_F(Processor, RowsOfOneTransactionShareOnePartnerPoll) {
  source_.AddPage("/items/FISH", {Inst(items_of_cat_, {"FISH"})});
  poller_.answer = NoPartners(0);
  ASSERT_TRUE(Txn(100, {Item("X", "P1"), Item("Y", "P2"), Item("Z", "P3")}).ok());
  ASSERT_EQ(poller_.queries.size(), 1u);
  EXPECT_EQ(poller_.queries[0].params.size(), 3u);  // one productid per row, no instance value
  EXPECT_FALSE(ejector_.Ejected("/items/FISH"));
}

TEST_F(Processor, OnePartnerPollDecidesEveryInstanceOfTheTemplate) {
  source_.AddPage("/items/FISH", {Inst(items_of_cat_, {"FISH"})});
  source_.AddPage("/items/DOGS", {Inst(items_of_cat_, {"DOGS"})});
  source_.AddPage("/items/CATS", {Inst(items_of_cat_, {"CATS"})});
  // The new item's product is in DOGS.
  poller_.answer = Partners(0, {{0, "DOGS"}});
  ASSERT_TRUE(Txn(100, {Item("X", "P1")}).ok());
  ASSERT_EQ(poller_.queries.size(), 1u);
  EXPECT_TRUE(ejector_.Ejected("/items/DOGS"));
  EXPECT_FALSE(ejector_.Ejected("/items/FISH"));
  EXPECT_FALSE(ejector_.Ejected("/items/CATS"));
  EXPECT_EQ(proc_->Metrics().polling_queries, 1u);
  EXPECT_EQ(proc_->Metrics().poll_instances, 3u);
}

TEST_F(Processor, PartnerOfAnotherRowDoesNotEjectAnInstanceThatOnlyMatchedThisOne) {
  // /a's own-table predicate matches row 0 only, /b's row 1 only; the only
  // partner (in DOGS) joined row 1.
  auto by_item_and_cat =
      Join("public.item", Cmp("itemid", CompareOp::kEq, 0), {"itemid"}, "public.product",
           Cmp("category", CompareOp::kEq, 1), {"productid", "category"}, "productid", "productid");
  source_.AddPage("/a", {Inst(by_item_and_cat, {"X", "DOGS"})});
  source_.AddPage("/b", {Inst(by_item_and_cat, {"Y", "DOGS"})});
  poller_.answer = Partners(0, {{1, "DOGS"}});
  ASSERT_TRUE(Txn(100, {Item("X", "P1"), Item("Y", "P2")}).ok());
  ASSERT_EQ(poller_.queries.size(), 1u);
  EXPECT_FALSE(ejector_.Ejected("/a"));
  EXPECT_TRUE(ejector_.Ejected("/b"));
}

TEST_F(Processor, TooManyPartnersFallsBackToBatchedProbes) {
  source_.AddPage("/items/FISH", {Inst(items_of_cat_, {"FISH"})});
  source_.AddPage("/items/DOGS", {Inst(items_of_cat_, {"DOGS"})});
  PollRows many{{25, 23, 25}, {}};
  for (int i = 0; i < 1001; ++i) many.rows.push_back({"0/10", "0", "OTHER"});
  // First the partner poll (overflows), then one probe batch: FISH joins, DOGS not.
  poller_.answer = many;
  struct Then : JoinPoller {
    ScriptedPoller* inner;
    PollRows second;
    Result<PollRows> Query(const PollQuery& q) override {
      auto r = inner->Query(q);
      inner->answer = second;
      return r;
    }
  } then;
  then.inner = &poller_;
  then.second = PollRows{{25, 16, 16}, {{"0/20", "t", "f"}}};
  proc_ = std::make_unique<ChangeProcessor>(&source_, &ejector_, &then, ProcessorOptions{},
                                            [] { return int64_t(0); });
  Feed(RelationMessage{
      1,
      "public",
      "item",
      'f',
      {{true, "itemid", 25, -1}, {true, "productid", 25, -1}, {true, "price", 1700, -1}}});
  ASSERT_TRUE(Txn(100, {Item("X", "P1")}).ok());
  ASSERT_EQ(poller_.queries.size(), 2u);
  EXPECT_NE(poller_.queries[1].sql.find("EXISTS"), std::string::npos);
  EXPECT_EQ(proc_->Metrics().poll_overflows, 1u);
  EXPECT_EQ(proc_->Metrics().poll_instances, 4u);  // 2 in the partner poll, 2 in the batch
  // Which probe is which follows the order the instances were registered.
  EXPECT_NE(ejector_.Ejected("/items/FISH"), ejector_.Ejected("/items/DOGS"));
}

TEST_F(Processor, PollFailureEjectsConservatively) {
  source_.AddPage("/items/FISH", {Inst(items_of_cat_, {"FISH"})});
  poller_.fail = true;
  ASSERT_TRUE(Txn(100, {Item("X", "P")}).ok());
  EXPECT_TRUE(ejector_.Ejected("/items/FISH"));
  EXPECT_EQ(proc_->Metrics().poll_errors, 1u);
}

TEST_F(Processor, UnindexedInstancesRegisteredBetweenChangesAreEvaluated) {
  auto by_price = Single("public.item", Cmp("price", CompareOp::kBetween, 0, 1), {"price"});
  source_.AddPage("/cheap", {Inst(by_price, {"0", "5"})});
  ASSERT_TRUE(Txn(100, {Item("A", "P")}).ok());  // price 1.00
  EXPECT_TRUE(ejector_.Ejected("/cheap"));
  ejector_.Reset();
  // A second unindexed instance appears, and the first comes back after its ejection.
  source_.AddPage("/mid", {Inst(by_price, {"0.5", "2"})});
  source_.AddPage("/cheap", {Inst(by_price, {"0", "5"})});
  ASSERT_TRUE(Txn(200, {Item("B", "P")}).ok());
  EXPECT_TRUE(ejector_.Ejected("/cheap"));
  EXPECT_TRUE(ejector_.Ejected("/mid"));
}

TEST_F(Processor, SelfJoinWithAnUpdatedRowEjectsWithoutPolling) {
  // item i1 JOIN item i2 ON i1.productid = i2.itemid WHERE i2.price = $1: the
  // poll for i1's side reads item, which this transaction updated, so the
  // pre-commit partner may be gone from what a poll would see.
  auto self = Join("public.item", sqlmap::Predicate{}, {"itemid", "productid"}, "public.item",
                   Cmp("price", CompareOp::kEq, 0), {"itemid", "price"}, "productid", "itemid");
  source_.AddPage("/self", {Inst(self, {"9.99"})});
  ASSERT_TRUE(Txn(100, {UpdateMessage{
                           1, 'O', {{T("X"), T("P1"), T("1.00")}}, {{T("X"), T("P2"), T("1.00")}}}})
                  .ok());
  EXPECT_TRUE(ejector_.Ejected("/self"));
  EXPECT_EQ(poller_.queries.size(), 0u);
}

TEST_F(Processor, ChangeToAnUnknownRelationEjectsEverything) {
  source_.AddPage("/item/A", {Inst(item_by_id_, {"A"})});
  ASSERT_TRUE(Txn(100, {InsertMessage{99, {{T("x")}}}}).ok());
  EXPECT_EQ(ejector_.eject_all_count(), 1);
  EXPECT_EQ(source_.clears(), 1);
  EXPECT_EQ(proc_->ConfirmableLsn(), 108u);
}

TEST_F(Processor, TruncateEjectsEveryInstanceOnTheTable) {
  source_.AddPage("/item/A", {Inst(item_by_id_, {"A"})});
  source_.AddPage("/items/FISH", {Inst(items_of_cat_, {"FISH"})});
  ASSERT_TRUE(Txn(100, {TruncateMessage{0, {1}}}).ok());
  EXPECT_TRUE(ejector_.Ejected("/item/A"));
  EXPECT_TRUE(ejector_.Ejected("/items/FISH"));
  EXPECT_EQ(poller_.queries.size(), 0u);
}

TEST_F(Processor, KeyOnlyOldRowFallsBackToEveryInstanceOnTheTable) {
  Feed(RelationMessage{3, "public", "cat", 'd', {{true, "id", 25, -1}, {false, "name", 25, -1}}});
  auto by_name = Single("public.cat", Cmp("name", CompareOp::kEq, 0), {"id", "name"});
  source_.AddPage("/cat/Fish", {Inst(by_name, {"Fish"})});
  source_.AddPage("/cat/Dogs", {Inst(by_name, {"Dogs"})});
  // DELETE with only the key: the old name is unknown, both pages might have shown the row.
  ASSERT_TRUE(Txn(100, {DeleteMessage{3, 'K', {{T("1"), {ColumnValue::Kind::kNull, ""}}}}}).ok());
  EXPECT_TRUE(ejector_.Ejected("/cat/Fish"));
  EXPECT_TRUE(ejector_.Ejected("/cat/Dogs"));
}

TEST_F(Processor, RowChangeOutsideATransactionIsCorruption) {
  EXPECT_EQ(proc_->Process(Item("A", "P")).code(), Status::Code::kCorruption);
  EXPECT_EQ(proc_->Process(CommitMessage{0, 1, 2, 0}).code(), Status::Code::kCorruption);
}

// A poller whose every answer takes `cost_us` of the processor's clock and
// may time out, for the poll-bounding rules.
class SlowPoller : public JoinPoller {
 public:
  explicit SlowPoller(std::atomic<int64_t>* clock) : clock_(clock) {}
  Result<PollRows> Query(const PollQuery&) override {
    ++polls;
    *clock_ += cost_us;
    if (timeout) return Status::TimedOut("join poll exceeded statement_timeout (test)");
    return NoPartners(0);
  }
  int64_t cost_us = 0;
  bool timeout = false;
  int polls = 0;

 private:
  std::atomic<int64_t>* clock_;
};

class BoundedPolls : public Processor {
 protected:
  void Make(ProcessorOptions po) {
    proc_ = std::make_unique<ChangeProcessor>(&source_, &ejector_, &slow_, po,
                                              [this] { return clock_.load(); });
    Feed(RelationMessage{
        1,
        "public",
        "item",
        'f',
        {{true, "itemid", 25, -1}, {true, "productid", 25, -1}, {true, "price", 1700, -1}}});
    source_.AddPage("/items/FISH", {Inst(items_of_cat_, {"FISH"})});
    // Another template joining the same row: a second partner poll.
    auto items_of_named =
        Join("public.item", sqlmap::Predicate{}, {"itemid", "productid"}, "public.product",
             Cmp("name", CompareOp::kEq, 0), {"productid", "name"}, "productid", "productid");
    source_.AddPage("/items/named/Goldfish", {Inst(items_of_named, {"Goldfish"})});
  }
  // Commit time 0 in PostgreSQL's epoch.
  std::atomic<int64_t> clock_{PgTimeToUnixMicros(0)};
  SlowPoller slow_{&clock_};
};

TEST_F(BoundedPolls, TimedOutPollEjectsConservativelyAndIsCounted) {
  Make(ProcessorOptions{});
  slow_.timeout = true;
  ASSERT_TRUE(Txn(100, {Item("X", "P")}).ok());
  EXPECT_TRUE(ejector_.Ejected("/items/FISH"));
  EXPECT_TRUE(ejector_.Ejected("/items/named/Goldfish"));
  EXPECT_EQ(proc_->Metrics().poll_timeouts, 2u);  // one per template
  EXPECT_EQ(proc_->Metrics().poll_errors, 2u);
}

TEST_F(BoundedPolls, SpentBudgetEjectsTheRemainingJoinsWithoutPolling) {
  ProcessorOptions po;
  po.poll_budget_seconds = 0.5;
  Make(po);
  slow_.cost_us = 1'000'000;  // the first poll eats the whole budget
  ASSERT_TRUE(Txn(100, {Item("X", "P")}).ok());
  EXPECT_EQ(slow_.polls, 1);
  EXPECT_EQ(proc_->Metrics().polls_skipped, 1u);
  // One instance was answered "no" by its poll, the other ejected unpolled.
  EXPECT_NE(ejector_.Ejected("/items/FISH"), ejector_.Ejected("/items/named/Goldfish"));
}

TEST_F(BoundedPolls, TransactionAlreadyBehindSkipsPolling) {
  ProcessorOptions po;
  po.skip_polls_lag_seconds = 1;
  Make(po);
  clock_ += 3'000'000;  // its commit is 3 s old when it reaches Commit
  ASSERT_TRUE(Txn(100, {Item("X", "P")}).ok());
  EXPECT_EQ(slow_.polls, 0);
  EXPECT_EQ(proc_->Metrics().polls_skipped, 2u);
  EXPECT_TRUE(ejector_.Ejected("/items/FISH"));
  EXPECT_TRUE(ejector_.Ejected("/items/named/Goldfish"));
}

// Answers the commit-visibility question "not yet" `not_visible_for` times,
// then "yes"; every other query has no partners.
class VisibilityPoller : public JoinPoller {
 public:
  Result<PollRows> Query(const PollQuery& q) override {
    if (q.sql.find("pg_visible_in_snapshot") == std::string::npos) return NoPartners(0);
    ++asked;
    if (on_ask) on_ask(asked);
    return PollRows{{16}, {{std::string(asked > not_visible_for ? "t" : "f")}}};
  }
  int not_visible_for = 0;
  int asked = 0;
  std::function<void(int)> on_ask;
};

class VisibleProcessor : public Processor {
 protected:
  void UseVisibilityWait(std::function<int64_t()> clock = [] { return int64_t(0); }) {
    ProcessorOptions po;
    po.wait_until_visible = true;
    proc_ = std::make_unique<ChangeProcessor>(&source_, &ejector_, &vis_, po, std::move(clock));
    Feed(RelationMessage{
        1,
        "public",
        "item",
        'f',
        {{true, "itemid", 25, -1}, {true, "productid", 25, -1}, {true, "price", 1700, -1}}});
  }
  VisibilityPoller vis_;
};

// PostgreSQL streams a commit before new snapshots see it. A page fetch that
// starts in that gap reads the old row; it must be tainted, so the in-flight
// check has to wait until the commit is visible.
TEST_F(VisibleProcessor, ARequestStartingBeforeTheCommitIsVisibleIsTainted) {
  UseVisibilityWait();
  source_.AddPage("/item/A", {Inst(item_by_id_, {"A"})});
  vis_.not_visible_for = 2;
  vis_.on_ask = [&](int asked) {
    if (asked == 1) source_.AddInFlight("r-gap", {Inst(item_by_id_, {"A"})});
  };
  ASSERT_TRUE(Txn(100, {Item("A", "P")}).ok());
  EXPECT_EQ(vis_.asked, 3);
  EXPECT_TRUE(source_.IsTainted("r-gap"));
  EXPECT_TRUE(ejector_.Ejected("/item/A"));
}

TEST_F(VisibleProcessor, NotVisibleInTimeTaintsEveryRequestInFlight) {
  int64_t t = 0;
  UseVisibilityWait([&t] { return t += 100000; });  // each reading 0.1 s later
  vis_.not_visible_for = 1000000;
  source_.AddInFlight("r-other", {Inst(item_by_id_, {"B"})});  // another item
  ASSERT_TRUE(Txn(100, {Item("A", "P")}).ok());
  EXPECT_TRUE(source_.IsTainted("r-other"));
  EXPECT_LE(vis_.asked, 12);  // gave up after about visible_wait_seconds
}

TEST_F(VisibleProcessor, ATransactionWithoutChangesDoesNotAsk) {
  UseVisibilityWait();
  ASSERT_TRUE(Txn(100, {}).ok());
  EXPECT_EQ(vis_.asked, 0);
}

}  // namespace
}  // namespace cacheportal::invalidator
