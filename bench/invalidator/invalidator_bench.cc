// Invalidator benchmarks (run through bench/invalidator/run.sh).
//
//   bench_invalidator eval N [CHANGES] [PER_TXN]
//     Evaluation throughput on one core: N registered instances on
//     public.item (90% item pages `itemid = $1`, 10% product lists
//     `productid = $1`, plus 16 unindexed range queries), then CHANGES
//     price updates (REPLICA IDENTITY FULL rows) encoded as pgoutput, decoded
//     and run through the ChangeProcessor (candidates, evaluation, ejection
//     bookkeeping). The ejector and map writes are no-ops, so this is the
//     invalidator's own cost.
//
//   bench_invalidator latency CONNINFO RATE SECONDS PAGES
//     Invalidation latency against a real PostgreSQL: PAGES cached item
//     pages registered, a writer commits RATE single-row price updates per
//     second for SECONDS, and the invalidator's histogram measures the
//     Commit message's commit_time → Eject() returned.
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "common/pg.h"
#include "invalidator/change_processor.h"
#include "invalidator/pgoutput.h"
#include "invalidator/replication.h"
#include "invalidator/sqlmap_source.h"
#include "sqlmap/sqlmap.h"
#include "tests/invalidator/template_builders.h"

using namespace cacheportal;               // NOLINT
using namespace cacheportal::invalidator;  // NOLINT
using sqlmap::CompareOp;

namespace {

// A lean in-memory map: instance i has key "/p/i"; pages are never removed so
// every change finds the same candidates.
class BenchSource : public DependencySource {
 public:
  void Add(std::shared_ptr<const sqlmap::QueryInstance> inst, const std::string& index_column) {
    std::lock_guard lock(mu_);
    InstanceId id = instances_.size();
    instances_.push_back(std::move(inst));
    const auto& v = instances_.back()->values;
    if (!index_column.empty() && !v.empty() && v[0])
      eq_[index_column + '\0' + *v[0]].push_back(id);
    else
      unindexed_.push_back(id);
  }
  size_t size() const { return instances_.size(); }

  void CandidatesByValue(std::string_view, std::string_view column, std::string_view value,
                         std::vector<InstanceId>* out) const override {
    std::lock_guard lock(mu_);
    std::string k(column);
    k.push_back('\0');
    k.append(value);
    auto it = eq_.find(k);
    if (it != eq_.end()) out->insert(out->end(), it->second.begin(), it->second.end());
  }
  void UnindexedInstances(std::string_view, std::vector<InstanceId>* out) const override {
    std::lock_guard lock(mu_);
    out->insert(out->end(), unindexed_.begin(), unindexed_.end());
  }
  void InstancesReading(std::string_view, std::vector<InstanceId>* out) const override {
    std::lock_guard lock(mu_);
    for (InstanceId i = 0; i < instances_.size(); ++i) out->push_back(i);
  }
  std::shared_ptr<const sqlmap::QueryInstance> GetInstance(InstanceId id) const override {
    std::lock_guard lock(mu_);
    return id < instances_.size() ? instances_[id] : nullptr;
  }
  void KeysOfInstance(InstanceId id, std::vector<std::string>* out) const override {
    out->push_back("/p/" + std::to_string(id));
  }
  void ParentsOf(std::string_view, std::vector<std::string>*) const override {}
  Status RemoveKeys(std::span<const std::string>) override { return Status::OK(); }
  Status Clear() override { return Status::OK(); }
  Status SetAppliedLsn(uint64_t lsn) override {
    applied_ = lsn;
    return Status::OK();
  }
  uint64_t AppliedLsn() const override { return applied_; }
  size_t TaintMatching(std::string_view,
                       const std::function<bool(const sqlmap::QueryInstance&)>&) override {
    return 0;
  }
  size_t TaintAll() override { return 0; }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<const sqlmap::QueryInstance>> instances_;
  std::unordered_map<std::string, std::vector<InstanceId>> eq_;
  std::vector<InstanceId> unindexed_;
  std::atomic<uint64_t> applied_{0};
};

class CountingEjector : public Ejector {
 public:
  Status Eject(std::span<const std::string> keys) override {
    ejected += keys.size();
    return Status::OK();
  }
  Status EjectAll() override { return Status::OK(); }
  void SetVouched(bool) override {}
  std::atomic<uint64_t> ejected{0};
};

struct Templates {
  std::shared_ptr<sqlmap::QueryTemplate> by_id = test::Single(
      "public.item", test::Cmp("itemid", CompareOp::kEq, 0), {"itemid", "listprice", "attr1"});
  std::shared_ptr<sqlmap::QueryTemplate> by_product =
      test::Single("public.item", test::Cmp("productid", CompareOp::kEq, 0),
                   {"itemid", "productid", "listprice"});
  std::shared_ptr<sqlmap::QueryTemplate> by_price = test::Single(
      "public.item", test::Cmp("listprice", CompareOp::kBetween, 0, 1), {"itemid", "listprice"});
};

std::string ItemId(size_t i) { return "EST-" + std::to_string(i); }
std::string ProductId(size_t i) { return "PR-" + std::to_string(i); }

void Populate(BenchSource* src, const Templates& t, size_t n, size_t* items, size_t* products) {
  *products = std::max<size_t>(1, n / 10);
  *items = n - *products - 16;
  for (size_t i = 0; i < *items; ++i)
    src->Add(std::make_shared<sqlmap::QueryInstance>(test::Inst(t.by_id, {ItemId(i)})), "itemid");
  for (size_t i = 0; i < *products; ++i)
    src->Add(std::make_shared<sqlmap::QueryInstance>(test::Inst(t.by_product, {ProductId(i)})),
             "productid");
  for (int i = 0; i < 16; ++i)
    src->Add(std::make_shared<sqlmap::QueryInstance>(test::Inst(
                 t.by_price, {std::to_string(1000 + i * 10), std::to_string(1005 + i * 10)})),
             "");
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The real map with its removals made no-ops, so that every change keeps
// finding the same candidates (RocksDB writes are not what this measures).
// Everything else, including the adapter's key-generation bookkeeping around
// removal (SqlMapSource), runs as in production.
class KeepPagesMap final : public sqlmap::SqlMap {
 public:
  explicit KeepPagesMap(sqlmap::SqlMap* in) : in_(in) {}
  Status PutPage(std::string_view key, std::span<const sqlmap::QueryInstance> instances,
                 std::span<const std::string> children, std::string_view url) override {
    return in_->PutPage(key, instances, children, url);
  }
  Status RemoveKeys(std::span<const std::string>) override { return Status::OK(); }
  uint64_t KeyGeneration(std::string_view key) const override { return in_->KeyGeneration(key); }
  Status RemoveKeysIfUnchanged(std::span<const std::string>, std::span<const uint64_t>) override {
    return Status::OK();
  }
  Status Clear() override { return Status::OK(); }
  void CandidatesByValue(std::string_view t, std::string_view c, std::string_view v,
                         std::vector<sqlmap::InstanceId>* out) const override {
    in_->CandidatesByValue(t, c, v, out);
  }
  void UnindexedInstances(std::string_view t, std::vector<sqlmap::InstanceId>* out) const override {
    in_->UnindexedInstances(t, out);
  }
  void InstancesReading(std::string_view t, std::vector<sqlmap::InstanceId>* out) const override {
    in_->InstancesReading(t, out);
  }
  std::shared_ptr<const sqlmap::QueryInstance> GetInstance(sqlmap::InstanceId id) const override {
    return in_->GetInstance(id);
  }
  void KeysOfInstance(sqlmap::InstanceId id, std::vector<std::string>* out) const override {
    in_->KeysOfInstance(id, out);
  }
  void ParentsOf(std::string_view k, std::vector<std::string>* out) const override {
    in_->ParentsOf(k, out);
  }
  std::vector<std::string> TablesRead() const override { return in_->TablesRead(); }
  void IndexedColumns(std::string_view t, std::vector<std::string>* out) const override {
    in_->IndexedColumns(t, out);
  }
  void ForEachPage(const std::function<void(const sqlmap::PageInfo&)>& f) const override {
    in_->ForEachPage(f);
  }
  Status SetAppliedLsn(uint64_t lsn) override { return in_->SetAppliedLsn(lsn); }
  uint64_t AppliedLsn() const override { return in_->AppliedLsn(); }
  sqlmap::MapStats GetStats() const override { return in_->GetStats(); }
  Status DescribePage(std::string_view key, std::string* out) const override {
    return in_->DescribePage(key, out);
  }

 private:
  sqlmap::SqlMap* in_;
};

int Eval(size_t n, size_t changes, size_t per_txn, bool real_map) {
  Templates t;
  BenchSource lean;
  std::unique_ptr<sqlmap::SqlMap> map;
  std::unique_ptr<KeepPagesMap> keep;
  std::unique_ptr<DependencySource> wrapped;
  DependencySource* src = &lean;
  size_t items = 0, products = 0;
  auto t0 = std::chrono::steady_clock::now();
  std::string dir;
  if (real_map) {
    dir = "/tmp/cp-inval-bench-map-" + std::to_string(::getpid());
    sqlmap::MapOptions mo;
    mo.path = dir;
    if (Status s = sqlmap::SqlMap::Open(mo, &map); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
    Populate(&lean, t, n, &items, &products);  // same instances, then copied into the map
    for (size_t i = 0; i < lean.size(); ++i) {
      std::vector<sqlmap::QueryInstance> inst = {*lean.GetInstance(i)};
      if (Status s = map->PutPage("/p/" + std::to_string(i), inst, {}, "/p"); !s.ok()) {
        std::fprintf(stderr, "%s\n", s.ToString().c_str());
        return 1;
      }
    }
    keep = std::make_unique<KeepPagesMap>(map.get());
    wrapped = MakeSqlMapSource(keep.get());
    src = wrapped.get();
  } else {
    Populate(&lean, t, n, &items, &products);
  }
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CountingEjector ej;
  ProcessorOptions po;
  po.poll_joins = false;
  po.persist_interval_seconds = 0.05;  // as the replication client runs it
  ChangeProcessor proc(src, &ej, nullptr, po);

  // Pre-encode the stream so that the timed loop is decode + process only.
  RelationMessage rel{16400,
                      "public",
                      "item",
                      'f',
                      {{true, "itemid", 25, -1},
                       {true, "productid", 25, -1},
                       {true, "listprice", 1700, -1},
                       {true, "qty", 23, -1},
                       {true, "attr1", 25, -1}}};
  std::vector<std::string> stream;
  stream.push_back(EncodePgOutput(rel));
  std::mt19937_64 rng(42);
  Lsn lsn = 0x1000000;
  for (size_t c = 0; c < changes; c += per_txn) {
    int64_t now_pg = UnixMicrosToPgTime(NowMicros());
    stream.push_back(EncodePgOutput(BeginMessage{lsn + 100, now_pg, 1}));
    for (size_t k = 0; k < per_txn && c + k < changes; ++k) {
      size_t i = rng() % items;
      std::string pid = ProductId(i % products);
      std::string price = std::to_string(10 + rng() % 90) + ".50";
      UpdateMessage u;
      u.relid = 16400;
      u.old_kind = 'O';
      u.old_tuple.columns = {{ColumnValue::Kind::kText, ItemId(i)},
                             {ColumnValue::Kind::kText, pid},
                             {ColumnValue::Kind::kText, "5.00"},
                             {ColumnValue::Kind::kText, "3"},
                             {ColumnValue::Kind::kText, "Large"}};
      u.new_tuple = u.old_tuple;
      u.new_tuple.columns[2].data = price;
      stream.push_back(EncodePgOutput(u));
    }
    stream.push_back(EncodePgOutput(CommitMessage{0, lsn + 100, lsn + 200, now_pg}));
    lsn += 256;
  }
  // Profiling only the timed loop: `perf record -D -1 --control fifo:CTL,ACK`
  // with PERF_CTL_FIFO=CTL starts sampling here.
  if (const char* ctl = std::getenv("PERF_CTL_FIFO")) {
    if (FILE* f = std::fopen(ctl, "w")) {
      std::fputs("enable\n", f);
      std::fclose(f);
      if (const char* ack = std::getenv("PERF_ACK_FIFO")) {
        if (FILE* a = std::fopen(ack, "r")) {
          char buf[8];
          std::fgets(buf, sizeof buf, a);
          std::fclose(a);
        }
      }
    }
  }
  auto s0 = std::chrono::steady_clock::now();
  double cpu0 = ThreadCpuSeconds();
  for (const auto& bytes : stream) {
    PgOutputMessage m;
    if (!DecodePgOutput(bytes, &m).ok() || !proc.Process(m).ok()) {
      std::fprintf(stderr, "processing failed\n");
      return 1;
    }
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
  double cpu = ThreadCpuSeconds() - cpu0;
  if (const char* ctl = std::getenv("PERF_CTL_FIFO")) {
    if (FILE* f = std::fopen(ctl, "w")) {
      std::fputs("disable\n", f);
      std::fclose(f);
    }
  }
  auto m = proc.Metrics();
  // CPU time is the one-core figure; wall time also counts other load on the machine.
  std::printf(
      "%s instances=%zu changes=%zu per_txn=%zu load_s=%.2f cpu_s=%.3f wall_s=%.3f "
      "changes_per_cpu_s=%.0f changes_per_wall_s=%.0f candidates_per_change=%.2f "
      "ejected_keys=%llu\n",
      real_map ? "eval-map" : "eval", lean.size(), changes, per_txn, load_s, cpu, s, changes / cpu,
      changes / s, m.CandidatesPerChange(), static_cast<unsigned long long>(m.ejected_keys));
  if (real_map) {
    wrapped.reset();
    keep.reset();
    map.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return 0;
}

int Latency(const std::string& conninfo, double rate, double seconds, size_t pages) {
  log::SetLevel(log::Level::kWarn);
  auto admin = pg::Connect(conninfo);
  if (!admin.ok()) {
    std::fprintf(stderr, "%s\n", admin.status().ToString().c_str());
    return 1;
  }
  PGconn* c = admin->get();
  std::string slot = "bench_inval_slot";
  pg::Exec(c, "SELECT pg_drop_replication_slot('" + slot +
                  "') FROM pg_replication_slots WHERE slot_name = '" + slot + "'");
  pg::Exec(c, "DROP PUBLICATION IF EXISTS bench_inval_pub");
  pg::Exec(c, "DROP TABLE IF EXISTS bench_item");
  auto r = pg::Exec(
      c,
      "CREATE TABLE bench_item (itemid text PRIMARY KEY, productid text, listprice numeric(10,2), "
      "qty int, attr1 text)");
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return 1;
  }
  pg::Exec(c,
           "INSERT INTO bench_item SELECT 'EST-' || g, 'PR-' || (g % 1000), 10.50, 3, 'Large' "
           "FROM generate_series(0, " +
               std::to_string(pages - 1) + ") g");

  BenchSource src;
  auto by_id = test::Single("public.bench_item", test::Cmp("itemid", CompareOp::kEq, 0),
                            {"itemid", "listprice", "attr1"});
  CountingEjector ej;
  InvalidatorDeps deps;
  deps.conninfo = conninfo;
  deps.options.slot_name = slot;
  deps.options.publication_name = "bench_inval_pub";
  deps.options.tables = {"public.bench_item"};
  deps.options.status_interval_seconds = 10;
  deps.source = &src;
  deps.ejector = &ej;
  auto inv = Invalidator::Start(deps);
  if (!inv.ok()) {
    std::fprintf(stderr, "%s\n", inv.status().ToString().c_str());
    return 1;
  }
  // Wait until it streams (it ejects everything once on a new slot), then register.
  for (int i = 0; i < 200 && !(*inv)->GetMetrics().vouched; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (size_t i = 0; i < pages; ++i)
    src.Add(std::make_shared<sqlmap::QueryInstance>(test::Inst(by_id, {ItemId(i)})), "itemid");

  auto writer = pg::Connect(conninfo);
  if (!writer.ok()) return 1;
  pg::Exec(writer->get(), "SET synchronous_commit = on");
  std::mt19937_64 rng(7);
  size_t total = static_cast<size_t>(rate * seconds);
  auto start = std::chrono::steady_clock::now();
  auto interval = std::chrono::duration<double>(1.0 / rate);
  for (size_t k = 0; k < total; ++k) {
    std::this_thread::sleep_until(
        start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval * k));
    std::string id = ItemId(rng() % pages);
    pg::ExecParams(writer->get(),
                   "UPDATE bench_item SET listprice = listprice + 1 WHERE itemid = $1",
                   {id.c_str()});
  }
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Wait for the tail to drain.
  for (int i = 0; i < 400 && (*inv)->GetMetrics().transactions < total; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  auto m = (*inv)->GetMetrics();
  std::printf(
      "latency pages=%zu target_rate=%.0f achieved_rate=%.0f commits=%zu processed=%llu "
      "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f candidates_per_change=%.2f\n",
      pages, rate, total / took, total, static_cast<unsigned long long>(m.transactions),
      m.latency.Percentile(50) / 1000.0, m.latency.Percentile(99) / 1000.0,
      m.latency.max() / 1000.0, m.CandidatesPerChange());
  (*inv)->Stop();
  inv->reset();
  pg::Exec(c, "SELECT pg_drop_replication_slot('" + slot + "')");
  pg::Exec(c, "DROP PUBLICATION IF EXISTS bench_inval_pub");
  pg::Exec(c, "DROP TABLE IF EXISTS bench_item");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "eval" && argc >= 3) {
    size_t n = std::strtoull(argv[2], nullptr, 10);
    size_t changes = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 200000;
    size_t per_txn = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 1;
    return Eval(n, changes, std::max<size_t>(1, per_txn), false);
  }
  if (mode == "eval-map" && argc >= 3) {
    size_t n = std::strtoull(argv[2], nullptr, 10);
    size_t changes = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 200000;
    size_t per_txn = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 1;
    return Eval(n, changes, std::max<size_t>(1, per_txn), true);
  }
  if (mode == "latency" && argc >= 6)
    return Latency(argv[2], std::atof(argv[3]), std::atof(argv[4]),
                   std::strtoull(argv[5], nullptr, 10));
  std::fprintf(stderr,
               "usage: bench_invalidator eval|eval-map N [CHANGES] [PER_TXN]\n"
               "       bench_invalidator latency CONNINFO RATE SECONDS PAGES\n");
  return 2;
}
