#include "invalidator/sqlmap_source.h"

#include "sqlmap/sqlmap.h"

namespace cacheportal::invalidator {
namespace {

class SqlMapSource final : public DependencySource {
 public:
  SqlMapSource(sqlmap::SqlMap* map, InFlightHooks hooks) : map_(map), hooks_(std::move(hooks)) {}

  void CandidatesByValue(std::string_view table, std::string_view column, std::string_view value,
                         std::vector<InstanceId>* out) const override {
    map_->CandidatesByValue(table, column, value, out);
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
  void KeysOfInstance(InstanceId id, std::vector<std::string>* out) const override {
    map_->KeysOfInstance(id, out);
  }
  void ParentsOf(std::string_view key, std::vector<std::string>* out) const override {
    map_->ParentsOf(key, out);
  }
  Status RemoveKeys(std::span<const std::string> keys) override { return map_->RemoveKeys(keys); }
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
