// InFlightRegistry: verdicts, logging tables, taint, bounded memory and the
// order "map write, then retire" of common/page_registrar.h. Uses the real
// Analyzer and a real RocksDB map in a temp dir; the ordering tests wrap that
// map to act at the moment of the map write.
#include "sqlmap/inflight_registry.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

namespace cacheportal::sqlmap {
namespace {

// A map directory inside a temporary directory removed after the test.
class TempDir {
 public:
  std::string path() const { return (dir_.root() / "map").string(); }

 private:
  testing::TempDir dir_{"cp-inflight-test-"};
};

// Forwards to a real map; runs `on_put` right after a successful PutPage
// (i.e. between Complete's map write and its retire), or fails PutPage.
class HookedMap : public SqlMap {
 public:
  explicit HookedMap(std::unique_ptr<SqlMap> inner) : inner_(std::move(inner)) {}
  std::function<void()> on_put;
  bool fail_put = false;

  Status PutPage(std::string_view key, std::span<const QueryInstance> instances,
                 std::span<const std::string> children, std::string_view url) override {
    if (fail_put) return Status::IOError("disk full (test)");
    Status s = inner_->PutPage(key, instances, children, url);
    if (s.ok() && on_put) on_put();
    return s;
  }
  Status RemoveKeys(std::span<const std::string> keys) override { return inner_->RemoveKeys(keys); }
  Status Clear() override { return inner_->Clear(); }
  void CandidatesByValue(std::string_view t, std::string_view c, std::string_view v,
                         std::vector<InstanceId>* out) const override {
    inner_->CandidatesByValue(t, c, v, out);
  }
  void UnindexedInstances(std::string_view t, std::vector<InstanceId>* out) const override {
    inner_->UnindexedInstances(t, out);
  }
  void InstancesReading(std::string_view t, std::vector<InstanceId>* out) const override {
    inner_->InstancesReading(t, out);
  }
  std::shared_ptr<const QueryInstance> GetInstance(InstanceId id) const override {
    return inner_->GetInstance(id);
  }
  void KeysOfInstance(InstanceId id, std::vector<std::string>* out) const override {
    inner_->KeysOfInstance(id, out);
  }
  void ParentsOf(std::string_view key, std::vector<std::string>* out) const override {
    inner_->ParentsOf(key, out);
  }
  std::vector<std::string> TablesRead() const override { return inner_->TablesRead(); }
  void IndexedColumns(std::string_view t, std::vector<std::string>* out) const override {
    inner_->IndexedColumns(t, out);
  }
  void ForEachPage(const std::function<void(const PageInfo&)>& f) const override {
    inner_->ForEachPage(f);
  }
  Status SetAppliedLsn(uint64_t lsn) override { return inner_->SetAppliedLsn(lsn); }
  uint64_t AppliedLsn() const override { return inner_->AppliedLsn(); }
  MapStats GetStats() const override { return inner_->GetStats(); }
  Status DescribePage(std::string_view key, std::string* out) const override {
    return inner_->DescribePage(key, out);
  }

 private:
  std::unique_ptr<SqlMap> inner_;
};

class InFlightRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AnalyzerOptions ao;
    ao.logging_tables = {"public.access_log"};
    analyzer_ = std::make_unique<Analyzer>(ao);
    std::unique_ptr<SqlMap> inner;
    MapOptions mo;
    mo.path = dir_.path();
    ASSERT_TRUE(SqlMap::Open(mo, &inner).ok());
    map_ = std::make_unique<HookedMap>(std::move(inner));
    registry_ = std::make_unique<InFlightRegistry>(analyzer_.get(), map_.get(), InFlightOptions{});
  }

  void Stmt(const std::string& req, const std::string& sql,
            std::vector<std::optional<std::string>> params = {}) {
    CapturedStatement st;
    st.sql = sql + " /*traceparent='00-" + req + "-00f067aa0ba902b7-01'*/";
    st.params = std::move(params);
    st.param_is_binary.assign(st.params.size(), false);
    registry_->OnStatement(req, std::move(st));
  }

  RegisterVerdict Complete(const std::string& req, const std::string& key) {
    PageRegistration p;
    p.request_id = req;
    p.cache_key = key;
    p.url = key;
    return registry_->Complete(p);
  }

  bool InMap(const std::string& key) {
    std::string out;
    return map_->DescribePage(key, &out).ok();
  }

  // The invalidator's view of a changed product row with catid = `catid`.
  std::function<bool(const QueryInstance&)> CatidIs(const std::string& catid) {
    return [catid](const QueryInstance& qi) {
      for (const auto& t : qi.tmpl->tables) {
        if (t.table != "public.product") continue;
        const Predicate& p = t.predicate;
        if (p.kind == Predicate::Kind::kCompare && p.column == "catid" &&
            qi.values[p.slots[0]] == catid) {
          return true;
        }
      }
      return false;
    };
  }

  const std::string kR1 = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string kR2 = "5bf92f3577b34da6a3ce929d0e0e4737";
  const std::string kR3 = "6bf92f3577b34da6a3ce929d0e0e4738";
  TempDir dir_;
  std::unique_ptr<Analyzer> analyzer_;
  std::unique_ptr<HookedMap> map_;
  std::unique_ptr<InFlightRegistry> registry_;
};

TEST_F(InFlightRegistryTest, ReadOnlyRequestIsStoredInTheMap) {
  Stmt(kR1, "SELECT * FROM product WHERE catid = $1", {std::string("FISH")});
  Stmt(kR1, "SELECT * FROM category_details WHERE locale = 'en_US'");
  EXPECT_EQ(registry_->GetStats().in_flight, 1u);
  EXPECT_EQ(Complete(kR1, "/cat/FISH"), RegisterVerdict::kStore);
  EXPECT_TRUE(InMap("/cat/FISH"));
  EXPECT_EQ(map_->GetStats().instances, 2u);
  std::vector<InstanceId> c;
  map_->CandidatesByValue("public.product", "catid", "FISH", &c);
  EXPECT_EQ(c.size(), 1u);
  auto st = registry_->GetStats();
  EXPECT_EQ(st.in_flight, 0u);
  EXPECT_EQ(st.completed_stored, 1u);
  EXPECT_EQ(st.statements, 2u);
}

TEST_F(InFlightRegistryTest, TaintedRequestIsNotStored) {
  Stmt(kR1, "SELECT * FROM product WHERE catid = 'FISH'");
  Stmt(kR2, "SELECT * FROM product WHERE catid = 'DOGS'");
  EXPECT_EQ(registry_->TaintMatching("public.product", CatidIs("FISH")), 1u);
  EXPECT_EQ(registry_->TaintMatching("public.item", CatidIs("FISH")), 0u);
  EXPECT_EQ(Complete(kR1, "/cat/FISH"), RegisterVerdict::kTainted);
  EXPECT_FALSE(InMap("/cat/FISH"));  // refused before the map write
  EXPECT_EQ(Complete(kR2, "/cat/DOGS"), RegisterVerdict::kStore);
  EXPECT_TRUE(InMap("/cat/DOGS"));
  EXPECT_EQ(registry_->GetStats().tainted, 1u);
}

TEST_F(InFlightRegistryTest, WriteMakesThePageUncacheable) {
  Stmt(kR1, "SELECT * FROM product WHERE catid = 'FISH'");
  Stmt(kR1, "UPDATE inventory SET qty = qty - 1 WHERE itemid = $1", {std::string("EST-1")});
  EXPECT_EQ(Complete(kR1, "/buy"), RegisterVerdict::kWrote);
  EXPECT_FALSE(InMap("/buy"));
  Stmt(kR2, "SELECT * FROM inventory WHERE itemid = 'EST-1' FOR UPDATE");
  EXPECT_EQ(Complete(kR2, "/lock"), RegisterVerdict::kWrote);
}

TEST_F(InFlightRegistryTest, LoggingTableWriteIsIgnored) {
  Stmt(kR1, "SELECT * FROM product WHERE catid = 'FISH'");
  Stmt(kR1, "INSERT INTO access_log (trace_id, method, path, status) VALUES ($1, 'GET', '/', 200)",
       {kR1});
  Stmt(kR1, "BEGIN");
  Stmt(kR1, "COMMIT");
  EXPECT_EQ(Complete(kR1, "/cat/FISH"), RegisterVerdict::kStore);
  EXPECT_TRUE(InMap("/cat/FISH"));
  EXPECT_EQ(map_->TablesRead(), std::vector<std::string>{"public.product"});
}

TEST_F(InFlightRegistryTest, UnknownRequestAndUnanalysableStatement) {
  EXPECT_EQ(Complete(kR1, "/static"), RegisterVerdict::kUnknownRequest);
  EXPECT_FALSE(InMap("/static"));
  Stmt(kR2, "SELECT * FROM product WHERE added > now()");
  EXPECT_EQ(Complete(kR2, "/new"), RegisterVerdict::kUnanalysable);
  Stmt(kR1, "SELECT * FROM item WHERE itemid = $2", {std::string("only one")});
  EXPECT_EQ(Complete(kR1, "/bad"), RegisterVerdict::kUnanalysable);
}

TEST_F(InFlightRegistryTest, MapWriteHappensBeforeRetire) {
  Stmt(kR1, "SELECT * FROM product WHERE catid = 'FISH'");
  bool checked = false;
  map_->on_put = [&] {
    // At the moment of the map write the request is still in flight, so a
    // change arriving now is seen both by the map and by the registry.
    EXPECT_EQ(registry_->GetStats().in_flight, 1u);
    EXPECT_TRUE(InMap("/cat/FISH"));
    EXPECT_EQ(registry_->TaintMatching("public.product", CatidIs("FISH")), 1u);
    checked = true;
  };
  EXPECT_EQ(Complete(kR1, "/cat/FISH"), RegisterVerdict::kTainted);
  EXPECT_TRUE(checked);
  EXPECT_EQ(registry_->GetStats().in_flight, 0u);
}

// Two fills of one key overlap (the edge stored the second while the first,
// tainted, was still completing). The tainted one's refusal must not take the
// key out of the map, or the stored copy could never be ejected again.
TEST_F(InFlightRegistryTest, TaintedFillKeepsAnOverlappingFillsRegistration) {
  Stmt(kR1, "SELECT * FROM product WHERE catid = 'FISH'");
  Stmt(kR3, "SELECT * FROM product WHERE catid = 'FISH'");
  EXPECT_EQ(Complete(kR3, "/cat/FISH"), RegisterVerdict::kStore);  // stored by the edge
  // R1, a slower fill of the same key, is tainted while it completes.
  bool fired = false;
  map_->on_put = [&] {
    if (fired) return;
    fired = true;
    EXPECT_EQ(registry_->TaintMatching("public.product", CatidIs("FISH")), 1u);
  };
  EXPECT_EQ(Complete(kR1, "/cat/FISH"), RegisterVerdict::kTainted);
  EXPECT_TRUE(fired);
  // A later change still finds the stored copy through the map.
  std::vector<InstanceId> c;
  map_->CandidatesByValue("public.product", "catid", "FISH", &c);
  ASSERT_EQ(c.size(), 1u);
  std::vector<std::string> keys;
  map_->KeysOfInstance(c[0], &keys);
  EXPECT_EQ(keys, std::vector<std::string>{"/cat/FISH"});
}

TEST_F(InFlightRegistryTest, ChangeAfterRetireIsFoundThroughTheMap) {
  Stmt(kR1, "SELECT * FROM product WHERE catid = 'FISH'");
  EXPECT_EQ(Complete(kR1, "/cat/FISH"), RegisterVerdict::kStore);
  EXPECT_EQ(registry_->TaintMatching("public.product", CatidIs("FISH")), 0u);
  std::vector<InstanceId> c;
  map_->CandidatesByValue("public.product", "catid", "FISH", &c);
  ASSERT_EQ(c.size(), 1u);
  std::vector<std::string> keys;
  map_->KeysOfInstance(c[0], &keys);
  EXPECT_EQ(keys, std::vector<std::string>{"/cat/FISH"});
}

TEST_F(InFlightRegistryTest, MapErrorIsReported) {
  Stmt(kR1, "SELECT * FROM product WHERE catid = 'FISH'");
  map_->fail_put = true;
  EXPECT_EQ(Complete(kR1, "/cat/FISH"), RegisterVerdict::kMapError);
  EXPECT_EQ(registry_->GetStats().in_flight, 0u);
}

TEST_F(InFlightRegistryTest, TaintAllAndAbandon) {
  Stmt(kR1, "SELECT * FROM product WHERE catid = 'FISH'");
  Stmt(kR2, "SELECT * FROM item WHERE itemid = 'X'");
  registry_->Abandon(kR2);
  EXPECT_EQ(registry_->GetStats().in_flight, 1u);
  EXPECT_EQ(registry_->TaintAll(), 1u);
  EXPECT_EQ(Complete(kR1, "/cat/FISH"), RegisterVerdict::kTainted);
  EXPECT_EQ(Complete(kR2, "/item/X"), RegisterVerdict::kUnknownRequest);
}

TEST_F(InFlightRegistryTest, MemoryIsBounded) {
  InFlightOptions o;
  o.max_requests = 3;
  o.max_statements_per_request = 2;
  InFlightRegistry reg(analyzer_.get(), map_.get(), o);
  for (int i = 0; i < 10; ++i) {
    CapturedStatement st;
    st.sql = "SELECT * FROM item WHERE itemid = 'X'";
    reg.OnStatement("req" + std::to_string(i), st);
  }
  EXPECT_EQ(reg.GetStats().in_flight, 3u);
  PageRegistration p;
  p.request_id = "req0";  // the oldest: dropped
  p.cache_key = "/x";
  EXPECT_EQ(reg.Complete(p), RegisterVerdict::kUnknownRequest);
  for (int i = 0; i < 3; ++i) {
    CapturedStatement st;
    st.sql = "SELECT * FROM item WHERE itemid = 'Y" + std::to_string(i) + "'";
    reg.OnStatement("req9", st);
  }
  p.request_id = "req9";
  EXPECT_EQ(reg.Complete(p), RegisterVerdict::kUnanalysable);

  InFlightOptions aged;
  aged.max_age_seconds = 0;
  InFlightRegistry old(analyzer_.get(), map_.get(), aged);
  CapturedStatement st;
  st.sql = "SELECT * FROM item WHERE itemid = 'X'";
  old.OnStatement("r", st);
  p.request_id = "r";
  EXPECT_EQ(old.Complete(p), RegisterVerdict::kUnknownRequest);
}

TEST_F(InFlightRegistryTest, BinaryParametersFallBackToCoarse) {
  CapturedStatement st;
  st.sql = "SELECT * FROM item WHERE itemid = $1";
  st.params = {std::string("\x00\x00\x00\x07", 4)};
  st.param_is_binary = {true};
  registry_->OnStatement(kR1, st);
  EXPECT_EQ(Complete(kR1, "/item/7"), RegisterVerdict::kStore);
  std::vector<InstanceId> un;
  map_->UnindexedInstances("public.item", &un);
  ASSERT_EQ(un.size(), 1u);
  EXPECT_EQ(map_->GetInstance(un[0])->tmpl->precision, Precision::kCoarse);
}

}  // namespace
}  // namespace cacheportal::sqlmap
