// DependencySource: the handful of lookups and writes the invalidator needs
// from the page ⇄ query map and the in-flight registry. The production
// implementation (sqlmap_source.h) forwards to sqlmap::SqlMap and
// sqlmap::InFlightRegistry; tests and benchmarks use an in-memory one.
//
// Contract: implementations are thread-safe. Lookups never block on disk.
// Unknown ids/keys are normal (empty results, nullptr).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sqlmap/query_template.h"
#include "sqlmap/sqlmap.h"

namespace cacheportal::invalidator {

using InstanceId = uint64_t;
using ValueProbe = sqlmap::ValueProbe;  // (table, column, row value)

class DependencySource {
 public:
  virtual ~DependencySource() = default;

  // Instances with an indexable `column = value` (or IN) predicate on `table`.
  virtual void CandidatesByValue(std::string_view table, std::string_view column,
                                 std::string_view value, std::vector<InstanceId>* out) const = 0;
  // Several lookups at once: appends exactly what CandidatesByValue would for
  // each probe in turn and, when `ends` is not null, one entry per probe (the
  // size of `out` after its candidates). The map's implementation overlaps
  // the probes' memory misses; this default just loops.
  virtual void CandidatesByValues(std::span<const ValueProbe> probes, std::vector<InstanceId>* out,
                                  std::vector<size_t>* ends) const {
    for (const ValueProbe& p : probes) {
      CandidatesByValue(p.table, p.column, p.value, out);
      if (ends) ends->push_back(out->size());
    }
  }
  // Instances reading `table` without an indexable predicate on it (incl. coarse ones).
  virtual void UnindexedInstances(std::string_view table, std::vector<InstanceId>* out) const = 0;
  // Columns of `table` some instance is indexed on: only their values need a
  // CandidatesByValue lookup. Returns false when the source cannot tell
  // (then every column of the row is looked up).
  virtual bool IndexedColumns(std::string_view table, std::vector<std::string>* out) const {
    return false;
  }
  // Every instance reading `table`.
  virtual void InstancesReading(std::string_view table, std::vector<InstanceId>* out) const = 0;
  // nullptr when the instance is gone.
  virtual std::shared_ptr<const sqlmap::QueryInstance> GetInstance(InstanceId id) const = 0;
  virtual void KeysOfInstance(InstanceId id, std::vector<std::string>* out) const = 0;
  // Pages that include fragment `key`, transitively.
  virtual void ParentsOf(std::string_view key, std::vector<std::string>* out) const = 0;

  virtual Status RemoveKeys(std::span<const std::string> keys) = 0;
  virtual Status Clear() = 0;
  // The replication position whose ejections are all done (durable with the map).
  virtual Status SetAppliedLsn(uint64_t lsn) = 0;
  virtual uint64_t AppliedLsn() const = 0;

  // In-flight requests: taint every request with an instance on `table` for
  // which `affects` returns true. Returns the number newly tainted.
  virtual size_t TaintMatching(
      std::string_view table, const std::function<bool(const sqlmap::QueryInstance&)>& affects) = 0;
  virtual size_t TaintAll() = 0;
};

}  // namespace cacheportal::invalidator
