// SqlMap: the durable page ⇄ query instance ⇄ table map and its predicate
// index (RocksDB, with an in-memory mirror for the invalidator's lookups).
//
// Shape follows RocksDB: SqlMap::Open(options, &map) returns Status; NotFound
// is a normal outcome. Layout (column families): pages (key → instances,
// children, url, stored_at), instances (id → template shape id + values; the
// instance → keys direction is rebuilt from `pages` at Open, so a shared
// instance is not rewritten on every page), templates (shape id → serialized
// template), eq_index ((table, column, value, id) → "", for = and IN
// predicates), unindexed ((table, id) → "", instances with no indexable
// predicate), parents ((fragment key, page key) → ""), meta (applied
// replication LSN). Every record is written and removed with its owner in
// one WriteBatch; instances and templates are reference-counted by the pages
// and instances that use them.
//
// Thread-safety: all methods are safe to call concurrently. Lookups take a
// shared lock on in-memory structures and never touch disk; writes are
// batched (one WriteBatch per call).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sqlmap/query_template.h"

namespace cacheportal::sqlmap {

using InstanceId = uint64_t;  // stable hash of (fingerprint, values)

struct MapOptions {
  std::string path;          // RocksDB directory (created when absent)
  bool sync_writes = false;  // fsync each batch
  bool create_if_missing = true;
  // Open without the writer lock (inspection while a server runs the map):
  // sees what was written up to the open; every write returns NotSupported.
  // Default: false.
  bool read_only = false;
};

// The form values take in the (table, column, value) index. Both sides meet
// here: the instance's literal or $n value when it is indexed, and the
// changed row's column value (pgoutput text) when it is looked up. Many-to-one
// merges only add candidates (a column has one type, so e.g. merging "1" with
// "t" costs nothing), never lose one. Applied in order:
//   * surrounding spaces trimmed (char(n) padding; int input trims too);
//   * integers: '+' and leading zeros dropped, -0 → 0 ("007" → "7");
//   * decimals: leading zeros and trailing fractional zeros dropped
//     ("10.50" → "10.5", "5.0" → "5", ".5" → "0.5");
//   * booleans: true/yes/on/t/y/1 → "t", false/no/off/f/n/0 → "f";
//   * UUIDs: braces and hyphens dropped;
//   * everything else lowercased (uuid/hex/bool case, citext).
// Not indexable (nullopt): values whose text form depends on the column type
// in ways we cannot normalise without it — anything with ':' (times,
// timestamps), dates (d-d-d, d/d/d), exponents (1e5), '$' (money), a leading
// '\' (bytea) or '{' (arrays), the special date words (today, now, epoch,
// infinity...), and values over 1 KiB. An instance whose value is not
// indexable goes to unindexed(table); a row value that is not indexable makes
// CandidatesByValue return every instance indexed on (table, column).
std::optional<std::string> CanonicalIndexValue(std::string_view value);

// One lookup of a batch (SqlMap::CandidatesByValues): `value` is the row's
// text, canonicalised by the map as for CandidatesByValue.
struct ValueProbe {
  std::string_view table;
  std::string_view column;
  std::string_view value;
};

struct PageInfo {
  std::string key;
  std::string url;
  int64_t stored_at_ms = 0;  // Unix epoch milliseconds
  std::vector<uint64_t> instances;
  std::vector<std::string> children;
  // In memory only: bumped by every PutPage of the key (see RemoveKeysIfUnchanged).
  uint64_t generation = 0;
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

  // The invalidator's removal after an ejection. Between collecting a key
  // (KeyGeneration) and removing it, the ejected page may have been fetched
  // again and registered afresh; removing that new registration would leave
  // a cached page no change can find (a lost ejection). So a key is removed
  // only while its generation is still the one recorded before the ejection.
  // 0 = not registered.
  virtual uint64_t KeyGeneration(std::string_view key) const { return 0; }
  virtual Status RemoveKeysIfUnchanged(std::span<const std::string> keys,
                                       std::span<const uint64_t> generations) {
    return RemoveKeys(keys);
  }
  virtual Status Clear() = 0;

  // --- invalidator lookups (in memory) ---
  // Instances with an indexable predicate `column = value` (or IN) on `table`.
  // `value` is the row's text (canonicalised here, see CanonicalIndexValue);
  // when it is not indexable, every instance indexed on (table, column).
  virtual void CandidatesByValue(std::string_view table, std::string_view column,
                                 std::string_view value, std::vector<InstanceId>* out) const = 0;
  // The same for several values at once: appends to `out` exactly what
  // CandidatesByValue would for each probe in turn (concatenated, in probe
  // order), and, when `ends` is not null, appends one entry per probe: the
  // size of `out` after that probe's candidates. Faster per value than
  // single calls on a big map: every probe's slot is requested from memory
  // before any is read, so the cache misses overlap (memory-level
  // parallelism), and the lock is taken once.
  virtual void CandidatesByValues(std::span<const ValueProbe> probes, std::vector<InstanceId>* out,
                                  std::vector<size_t>* ends) const {
    for (const ValueProbe& p : probes) {
      CandidatesByValue(p.table, p.column, p.value, out);
      if (ends) ends->push_back(out->size());
    }
  }
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
  // Columns of `table` that some instance is indexed on: the invalidator
  // looks up a changed row's (old and new) value of each.
  virtual void IndexedColumns(std::string_view table, std::vector<std::string>* out) const = 0;
  // Every registered page (coverage reports). Holds the shared lock while
  // calling `f`: do not call back into the map from it.
  virtual void ForEachPage(const std::function<void(const PageInfo&)>& f) const = 0;

  // --- replication position (stored with the map so they survive together) ---
  virtual Status SetAppliedLsn(uint64_t lsn) = 0;
  virtual uint64_t AppliedLsn() const = 0;

  virtual MapStats GetStats() const = 0;
  // For `cacheportal map show KEY`: NotFound when the key is not registered.
  virtual Status DescribePage(std::string_view key, std::string* out) const = 0;
};

}  // namespace cacheportal::sqlmap
