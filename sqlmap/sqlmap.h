// SqlMap: the durable page ⇄ query instance ⇄ table map and its predicate
// index (RocksDB, with an in-memory mirror for the invalidator's lookups).
//
// Shape follows RocksDB: SqlMap::Open(options, &map) returns Status; NotFound
// is a normal outcome. Layout (column families): pages (key → instances,
// children, url, stored_at), instances (id → template fingerprint + values +
// keys), templates (fingerprint → serialized template), eq_index
// ((table, column, value) → instance ids, for = and IN predicates),
// unindexed (table → instance ids with no indexable predicate), parents
// (fragment key → page keys), meta (applied replication LSN).
//
// Thread-safety: all methods are safe to call concurrently. Lookups take a
// shared lock on in-memory structures and never touch disk; writes are
// batched (one WriteBatch per call).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sqlmap/query_template.h"

namespace cacheportal::sqlmap {

using InstanceId = uint64_t;  // stable hash of (fingerprint, values)

struct MapOptions {
  std::string path;         // RocksDB directory (created when absent)
  bool sync_writes = false; // fsync each batch
  bool create_if_missing = true;
};

struct MapStats {
  uint64_t pages = 0;
  uint64_t instances = 0;
  uint64_t templates = 0;
  uint64_t index_entries = 0;
  uint64_t unindexed_instances = 0;
};

class SqlMap {
 public:
  virtual ~SqlMap() = default;

  static Status Open(const MapOptions& options, std::unique_ptr<SqlMap>* out);

  // Registers `key` as produced by `instances` and including `children`
  // (fragment keys). Replaces an earlier registration of the same key.
  virtual Status PutPage(std::string_view key, std::span<const QueryInstance> instances,
                         std::span<const std::string> children, std::string_view url) = 0;

  // Removes keys and every reverse entry that only they held. Unknown keys are OK.
  virtual Status RemoveKeys(std::span<const std::string> keys) = 0;
  virtual Status Clear() = 0;

  // --- invalidator lookups (in memory) ---
  // Instances with an indexable predicate `column = value` (or IN) on `table`.
  virtual void CandidatesByValue(std::string_view table, std::string_view column,
                                 std::string_view value, std::vector<InstanceId>* out) const = 0;
  // Instances reading `table` with no indexable predicate on it (incl. coarse ones).
  virtual void UnindexedInstances(std::string_view table, std::vector<InstanceId>* out) const = 0;
  // Every instance reading `table` (TRUNCATE, coarse baseline).
  virtual void InstancesReading(std::string_view table, std::vector<InstanceId>* out) const = 0;
  // nullptr when unknown (already removed).
  virtual std::shared_ptr<const QueryInstance> GetInstance(InstanceId id) const = 0;
  virtual void KeysOfInstance(InstanceId id, std::vector<std::string>* out) const = 0;
  // Pages that include fragment `key` (transitively when nested).
  virtual void ParentsOf(std::string_view key, std::vector<std::string>* out) const = 0;
  // Tables read by any registered instance.
  virtual std::vector<std::string> TablesRead() const = 0;

  // --- replication position (stored with the map so they survive together) ---
  virtual Status SetAppliedLsn(uint64_t lsn) = 0;
  virtual uint64_t AppliedLsn() const = 0;

  virtual MapStats GetStats() const = 0;
  // For `cacheportal map show KEY`: NotFound when the key is not registered.
  virtual Status DescribePage(std::string_view key, std::string* out) const = 0;
};

}  // namespace cacheportal::sqlmap
