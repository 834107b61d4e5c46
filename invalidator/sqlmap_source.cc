#include "invalidator/sqlmap_source.h"

#include <mutex>
#include <string>
#include <unordered_map>

#include "sqlmap/sqlmap.h"

namespace cacheportal::invalidator {
namespace {

class SqlMapSource final : public DependencySource {
 private:
  void Remember(const std::vector<std::string>& keys, size_t first) const {
    std::lock_guard lock(seen_mu_);
    // Bounded: a key collected but never removed (failed ejection) is
    // collected again on replay; drop the oldest state wholesale if it grows.
    if (seen_.size() > 1000000) seen_.clear();
    for (size_t i = first; i < keys.size(); ++i) {
      uint64_t g = map_->KeyGeneration(keys[i]);
      auto [it, inserted] = seen_.emplace(keys[i], g);
      // Keep the oldest generation seen: removal must not outrun a
      // registration made after the first collection.
      if (!inserted && g != 0 && (it->second == 0 || g < it->second)) it->second = g;
    }
  }
  mutable std::mutex seen_mu_;
  mutable std::unordered_map<std::string, uint64_t> seen_;

 public:
  SqlMapSource(sqlmap::SqlMap* map, InFlightHooks hooks) : map_(map), hooks_(std::move(hooks)) {}

  void CandidatesByValue(std::string_view table, std::string_view column, std::string_view value,
                         std::vector<InstanceId>* out) const override {
    map_->CandidatesByValue(table, column, value, out);
  }
  void CandidatesByValues(std::span<const ValueProbe> probes, std::vector<InstanceId>* out,
                          std::vector<size_t>* ends) const override {
    map_->CandidatesByValues(probes, out, ends);
  }
  void UnindexedInstances(std::string_view table, std::vector<InstanceId>* out) const override {
    map_->UnindexedInstances(table, out);
  }
  void InstancesReading(std::string_view table, std::vector<InstanceId>* out) const override {
    map_->InstancesReading(table, out);
  }
  bool IndexedColumns(std::string_view table, std::vector<std::string>* out) const override {
    map_->IndexedColumns(table, out);
    return true;
  }
  std::shared_ptr<const sqlmap::QueryInstance> GetInstance(InstanceId id) const override {
    return map_->GetInstance(id);
  }
  // Keys are collected before the ejection and removed after it; the
  // generation seen at collection guards the removal (SqlMap::
  // RemoveKeysIfUnchanged): a page re-registered by a fresh fetch in
  // between stays mapped, so the next change still finds it.
  void KeysOfInstance(InstanceId id, std::vector<std::string>* out) const override {
    size_t first = out->size();
    map_->KeysOfInstance(id, out);
    Remember(*out, first);
  }
  void ParentsOf(std::string_view key, std::vector<std::string>* out) const override {
    size_t first = out->size();
    map_->ParentsOf(key, out);
    Remember(*out, first);
  }
  Status RemoveKeys(std::span<const std::string> keys) override {
    std::vector<uint64_t> generations(keys.size(), 0);
    {
      std::lock_guard lock(seen_mu_);
      for (size_t i = 0; i < keys.size(); ++i) {
        auto it = seen_.find(keys[i]);
        if (it == seen_.end()) continue;
        generations[i] = it->second;
        seen_.erase(it);
      }
    }
    return map_->RemoveKeysIfUnchanged(keys, generations);
  }
  Status Clear() override { return map_->Clear(); }
  Status SetAppliedLsn(uint64_t lsn) override { return map_->SetAppliedLsn(lsn); }
  uint64_t AppliedLsn() const override { return map_->AppliedLsn(); }
  size_t TaintMatching(std::string_view table,
                       const std::function<bool(const sqlmap::QueryInstance&)>& affects) override {
    return hooks_.taint_matching ? hooks_.taint_matching(table, affects) : 0;
  }
  size_t TaintAll() override { return hooks_.taint_all ? hooks_.taint_all() : 0; }

 private:
  sqlmap::SqlMap* map_;
  InFlightHooks hooks_;
};

}  // namespace

std::unique_ptr<DependencySource> MakeSqlMapSource(sqlmap::SqlMap* map, InFlightHooks hooks) {
  return std::make_unique<SqlMapSource>(map, std::move(hooks));
}

}  // namespace cacheportal::invalidator
