// Test doubles for the invalidator: an in-memory DependencySource (pages →
// instances, an equality index like sqlmap's, fragments' parents, in-flight
// requests, the applied LSN) and a recording Ejector that tests can await and
// block. Pure logic only; the database and the stream stay real.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/ejector.h"
#include "invalidator/dependency_source.h"

namespace cacheportal::invalidator::test {

class FakeSource : public DependencySource {
 public:
  // Registers `key` as produced by `instances` and including `children`.
  void AddPage(const std::string& key, const std::vector<sqlmap::QueryInstance>& instances,
               const std::vector<std::string>& children = {}) {
    std::lock_guard lock(mu_);
    for (const auto& inst : instances) {
      InstanceId id = IdOf(inst);
      if (!instances_.count(id)) {
        instances_[id] = std::make_shared<sqlmap::QueryInstance>(inst);
        Index(id, inst);
      }
      keys_of_[id].insert(key);
      instances_of_key_[key].insert(id);
    }
    for (const auto& c : children) parents_[c].insert(key);
  }

  // An in-flight request reading `instances`.
  void AddInFlight(const std::string& request_id,
                   const std::vector<sqlmap::QueryInstance>& instances) {
    std::lock_guard lock(mu_);
    inflight_[request_id] = {instances, false};
  }
  bool IsTainted(const std::string& request_id) const {
    std::lock_guard lock(mu_);
    auto it = inflight_.find(request_id);
    return it != inflight_.end() && it->second.tainted;
  }
  bool HasKey(const std::string& key) const {
    std::lock_guard lock(mu_);
    return instances_of_key_.count(key) > 0;
  }
  size_t instance_count() const {
    std::lock_guard lock(mu_);
    return instances_.size();
  }

  void CandidatesByValue(std::string_view table, std::string_view column, std::string_view value,
                         std::vector<InstanceId>* out) const override {
    std::lock_guard lock(mu_);
    auto it = eq_.find(IndexKey(table, column, value));
    if (it != eq_.end()) out->insert(out->end(), it->second.begin(), it->second.end());
  }
  void UnindexedInstances(std::string_view table, std::vector<InstanceId>* out) const override {
    std::lock_guard lock(mu_);
    auto it = unindexed_.find(std::string(table));
    if (it != unindexed_.end()) out->insert(out->end(), it->second.begin(), it->second.end());
  }
  void InstancesReading(std::string_view table, std::vector<InstanceId>* out) const override {
    std::lock_guard lock(mu_);
    auto it = reading_.find(std::string(table));
    if (it != reading_.end()) out->insert(out->end(), it->second.begin(), it->second.end());
  }
  std::shared_ptr<const sqlmap::QueryInstance> GetInstance(InstanceId id) const override {
    std::lock_guard lock(mu_);
    auto it = instances_.find(id);
    return it == instances_.end() ? nullptr : it->second;
  }
  void KeysOfInstance(InstanceId id, std::vector<std::string>* out) const override {
    std::lock_guard lock(mu_);
    auto it = keys_of_.find(id);
    if (it != keys_of_.end()) out->insert(out->end(), it->second.begin(), it->second.end());
  }
  void ParentsOf(std::string_view key, std::vector<std::string>* out) const override {
    std::lock_guard lock(mu_);
    std::vector<std::string> todo{std::string(key)};
    std::set<std::string> seen;
    while (!todo.empty()) {
      std::string k = todo.back();
      todo.pop_back();
      auto it = parents_.find(k);
      if (it == parents_.end()) continue;
      for (const auto& p : it->second)
        if (seen.insert(p).second) {
          out->push_back(p);
          todo.push_back(p);
        }
    }
  }
  Status RemoveKeys(std::span<const std::string> keys) override {
    std::lock_guard lock(mu_);
    for (const auto& k : keys) {
      auto it = instances_of_key_.find(k);
      if (it == instances_of_key_.end()) continue;
      for (InstanceId id : it->second) {
        auto& ks = keys_of_[id];
        ks.erase(k);
        if (ks.empty()) {
          keys_of_.erase(id);
          Unindex(id);
          instances_.erase(id);
        }
      }
      instances_of_key_.erase(it);
    }
    return Status::OK();
  }
  Status Clear() override {
    std::lock_guard lock(mu_);
    instances_.clear();
    keys_of_.clear();
    instances_of_key_.clear();
    eq_.clear();
    unindexed_.clear();
    reading_.clear();
    parents_.clear();
    ++clears_;
    return Status::OK();
  }
  Status SetAppliedLsn(uint64_t lsn) override {
    std::lock_guard lock(mu_);
    applied_ = lsn;
    return Status::OK();
  }
  uint64_t AppliedLsn() const override {
    std::lock_guard lock(mu_);
    return applied_;
  }
  size_t TaintMatching(std::string_view table,
                       const std::function<bool(const sqlmap::QueryInstance&)>& affects) override {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (auto& [id, req] : inflight_) {
      if (req.tainted) continue;
      for (const auto& inst : req.instances) {
        bool reads = false;
        for (const auto& t : inst.tmpl->tables) reads |= t.table == table;
        if (reads && affects(inst)) {
          req.tainted = true;
          ++n;
          break;
        }
      }
    }
    return n;
  }
  size_t TaintAll() override {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (auto& [id, req] : inflight_)
      if (!req.tainted) req.tainted = true, ++n;
    return n;
  }
  int clears() const {
    std::lock_guard lock(mu_);
    return clears_;
  }

 private:
  struct Request {
    std::vector<sqlmap::QueryInstance> instances;
    bool tainted = false;
  };

  static std::string IndexKey(std::string_view t, std::string_view c, std::string_view v) {
    std::string k(t);
    k.push_back('\0');
    k.append(c);
    k.push_back('\0');
    k.append(v);
    return k;
  }
  InstanceId IdOf(const sqlmap::QueryInstance& inst) {
    std::string sig = std::to_string(reinterpret_cast<uintptr_t>(inst.tmpl.get()));
    for (const auto& v : inst.values) sig += v ? "|" + *v : "|\x01NULL";
    auto it = ids_.find(sig);
    if (it != ids_.end()) return it->second;
    InstanceId id = ids_.size() + 1;
    ids_[sig] = id;
    return id;
  }
  // The first top-level `col = $n` / `col IN (...)` conjunct, as sqlmap indexes.
  static const sqlmap::Predicate* Indexable(const sqlmap::Predicate& p) {
    using K = sqlmap::Predicate::Kind;
    if (p.kind == K::kCompare && (p.op == sqlmap::CompareOp::kEq || p.op == sqlmap::CompareOp::kIn))
      return &p;
    if (p.kind == K::kAnd)
      for (const auto& c : p.children)
        if (const auto* x = Indexable(c)) return x;
    return nullptr;
  }
  void Index(InstanceId id, const sqlmap::QueryInstance& inst) {
    const bool coarse = (inst.tmpl->flags & sqlmap::kCoarseFlags) ||
                        inst.tmpl->precision != sqlmap::Precision::kPrecise;
    for (const auto& ref : inst.tmpl->tables) {
      reading_[ref.table].insert(id);
      const sqlmap::Predicate* p = coarse ? nullptr : Indexable(ref.predicate);
      std::vector<std::string> vals;
      if (p)
        for (int s : p->slots)
          if (s >= 0 && size_t(s) < inst.values.size() && inst.values[s])
            vals.push_back(*inst.values[s]);
      if (!p || vals.empty() != p->slots.empty()) {
        unindexed_[ref.table].insert(id);
        continue;
      }
      for (const auto& v : vals) {
        auto k = IndexKey(ref.table, p->column, v);
        eq_[k].insert(id);
        index_keys_[id].push_back(k);
      }
    }
  }
  void Unindex(InstanceId id) {
    for (const auto& k : index_keys_[id]) {
      auto it = eq_.find(k);
      if (it != eq_.end()) {
        it->second.erase(id);
        if (it->second.empty()) eq_.erase(it);
      }
    }
    index_keys_.erase(id);
    for (auto& [t, s] : unindexed_) s.erase(id);
    for (auto& [t, s] : reading_) s.erase(id);
  }

  mutable std::mutex mu_;
  std::map<std::string, InstanceId> ids_;
  std::unordered_map<InstanceId, std::shared_ptr<const sqlmap::QueryInstance>> instances_;
  std::unordered_map<InstanceId, std::set<std::string>> keys_of_;
  std::unordered_map<std::string, std::set<InstanceId>> instances_of_key_;
  std::unordered_map<std::string, std::set<InstanceId>> eq_;
  std::unordered_map<InstanceId, std::vector<std::string>> index_keys_;
  std::unordered_map<std::string, std::set<InstanceId>> unindexed_;
  std::unordered_map<std::string, std::set<InstanceId>> reading_;
  std::unordered_map<std::string, std::set<std::string>> parents_;
  std::map<std::string, Request> inflight_;
  uint64_t applied_ = 0;
  int clears_ = 0;
};

// Forwards to another source and records how the processor looks things up:
// the probe count of every batch lookup, the number of single lookups, and
// the order of taints ('T') and batch lookups ('L'). Thread-safe.
class ProbeRecordingSource : public DependencySource {
 public:
  explicit ProbeRecordingSource(DependencySource* inner) : inner_(inner) {}

  std::vector<size_t> batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }
  size_t single_lookups() const {
    std::lock_guard lock(mu_);
    return single_;
  }
  std::string events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  void ClearRecord() {
    std::lock_guard lock(mu_);
    batches_.clear();
    single_ = 0;
    events_.clear();
  }

  void CandidatesByValue(std::string_view table, std::string_view column, std::string_view value,
                         std::vector<InstanceId>* out) const override {
    {
      std::lock_guard lock(mu_);
      ++single_;
    }
    inner_->CandidatesByValue(table, column, value, out);
  }
  void CandidatesByValues(std::span<const ValueProbe> probes, std::vector<InstanceId>* out,
                          std::vector<size_t>* ends) const override {
    {
      std::lock_guard lock(mu_);
      batches_.push_back(probes.size());
      events_.push_back('L');
    }
    inner_->CandidatesByValues(probes, out, ends);
  }
  void UnindexedInstances(std::string_view table, std::vector<InstanceId>* out) const override {
    inner_->UnindexedInstances(table, out);
  }
  bool IndexedColumns(std::string_view table, std::vector<std::string>* out) const override {
    return inner_->IndexedColumns(table, out);
  }
  void InstancesReading(std::string_view table, std::vector<InstanceId>* out) const override {
    inner_->InstancesReading(table, out);
  }
  std::shared_ptr<const sqlmap::QueryInstance> GetInstance(InstanceId id) const override {
    return inner_->GetInstance(id);
  }
  void KeysOfInstance(InstanceId id, std::vector<std::string>* out) const override {
    inner_->KeysOfInstance(id, out);
  }
  void ParentsOf(std::string_view key, std::vector<std::string>* out) const override {
    inner_->ParentsOf(key, out);
  }
  Status RemoveKeys(std::span<const std::string> keys) override { return inner_->RemoveKeys(keys); }
  Status Clear() override { return inner_->Clear(); }
  Status SetAppliedLsn(uint64_t lsn) override { return inner_->SetAppliedLsn(lsn); }
  uint64_t AppliedLsn() const override { return inner_->AppliedLsn(); }
  size_t TaintMatching(std::string_view table,
                       const std::function<bool(const sqlmap::QueryInstance&)>& affects) override {
    {
      std::lock_guard lock(mu_);
      events_.push_back('T');
    }
    return inner_->TaintMatching(table, affects);
  }
  size_t TaintAll() override { return inner_->TaintAll(); }

 private:
  DependencySource* inner_;
  mutable std::mutex mu_;
  mutable std::vector<size_t> batches_;
  mutable size_t single_ = 0;
  mutable std::string events_;
};

// Records every ejection; tests await keys with a bounded deadline. Can be
// closed like a gate so that Eject() blocks until Open() (ack-ordering tests).
class RecordingEjector : public Ejector {
 public:
  Status Eject(std::span<const std::string> keys) override {
    std::unique_lock lock(mu_);
    ++calls_;
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
    if (fail_next_ > 0) {
      --fail_next_;
      return Status::Unavailable("edge unreachable (test)");
    }
    for (const auto& k : keys) {
      ejected_.push_back(k);
      counts_[k]++;
    }
    cv_.notify_all();
    return Status::OK();
  }
  Status EjectAll() override {
    std::lock_guard lock(mu_);
    ++eject_all_;
    cv_.notify_all();
    return Status::OK();
  }
  void SetVouched(bool v) override {
    std::lock_guard lock(mu_);
    vouched_ = v;
    cv_.notify_all();
  }

  void Close() {
    std::lock_guard lock(mu_);
    open_ = false;
    entered_ = false;
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void FailNext(int n) {
    std::lock_guard lock(mu_);
    fail_next_ = n;
  }
  // Waits until `pred` holds (under the lock), at most `seconds`.
  bool WaitFor(const std::function<bool()>& pred, double seconds = 20) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::duration<double>(seconds), pred);
  }
  bool WaitEjected(const std::string& key, double seconds = 20) {
    return WaitFor([&] { return counts_.count(key) > 0; }, seconds);
  }
  bool WaitEntered(double seconds = 20) {
    return WaitFor([&] { return entered_; }, seconds);
  }
  bool WaitEjectAll(int n = 1, double seconds = 20) {
    return WaitFor([&] { return eject_all_ >= n; }, seconds);
  }
  bool WaitVouched(bool v, double seconds = 20) {
    return WaitFor([&] { return vouched_ == v; }, seconds);
  }
  bool Ejected(const std::string& key) const {
    std::lock_guard lock(mu_);
    return counts_.count(key) > 0;
  }
  std::set<std::string> EjectedSet() const {
    std::lock_guard lock(mu_);
    return {ejected_.begin(), ejected_.end()};
  }
  int eject_all_count() const {
    std::lock_guard lock(mu_);
    return eject_all_;
  }
  void Reset() {
    std::lock_guard lock(mu_);
    ejected_.clear();
    counts_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> ejected_;
  std::map<std::string, int> counts_;
  int calls_ = 0;
  int eject_all_ = 0;
  int fail_next_ = 0;
  bool open_ = true;
  bool entered_ = false;
  bool vouched_ = false;
};

}  // namespace cacheportal::invalidator::test
