// The edge's optional second tier: stored objects also go to a RocksDB
// database, so a restarted edge can answer hits at once (warm restart).
//
// Freshness across a restart. Every record carries the replication position
// (LSN) at which it was stored: every change at or before that position had
// already been ejected from the edge (EdgeDeps::ejected_through). Erase() is
// durable (a synced write) before it returns, and the invalidator confirms a
// position only after its ejections returned, so no confirmed ejection can be
// undone by a crash. On open the tier keeps a record only if every change
// after its position will be replayed by the invalidator (record position >=
// the position it resumes from); a clean shutdown writes a marker that
// re-stamps every record with the position reached then. Unknown resume
// position or a recreated replication slot: everything is discarded.
//
// Records are not loaded into memory at open: a memory miss looks here and
// promotes what it finds. The budget drops the oldest records first.
//
// Thread-safety: every method may be called from any thread (one mutex; the
// database does its own locking).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "edgecache/store.h"

namespace rocksdb {
class DB;
}

namespace cacheportal::edge {

// Where the invalidator will resume replaying changes after this start.
struct DiskResume {
  bool known = false;           // false: discard the disk tier
  uint64_t position = 0;        // every change after this one will be replayed
  bool slot_recreated = false;  // changes may have been skipped: discard
};

struct DiskLoadReport {
  uint64_t kept = 0;       // records vouched for
  uint64_t discarded = 0;  // stale, expired, undecodable or unvouched records
  bool clean_marker = false;
  std::string reason;  // why everything was discarded, if it was
};

class DiskTier {
 public:
  static Result<std::unique_ptr<DiskTier>> Open(const std::string& path, uint64_t budget_bytes,
                                                const DiskResume& resume, int64_t now_unix,
                                                DiskLoadReport* report);
  ~DiskTier();
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;

  // Stores one variant stamped with `position`. Not synced: a record lost in
  // a crash is only a miss. Records bigger than the budget are skipped.
  void Put(const std::string& key, const CachedObject& object, uint64_t position);

  // Removes every variant of each key; synced before it returns.
  Status Erase(const std::vector<std::string>& keys);
  Status Clear();

  // Keys of records whose origin URL satisfies pred (for purge and ban).
  std::vector<std::string> KeysWhereUrl(const std::function<bool(std::string_view)>& pred) const;

  // Finds the variant of `key` for this request's Vary'd header values and
  // calls accept(object, esi_template) under the tier's lock, so a promotion
  // into memory cannot slip between an Erase here and the memory erase that
  // follows it. Returns whether accept was called.
  bool Lookup(std::string_view key,
              const std::function<std::string(std::string_view)>& vary_value_of,
              const std::function<void(std::shared_ptr<CachedObject>, bool esi_template)>& accept);

  // Clean shutdown: every record is valid as of `position` (synced).
  Status MarkClean(uint64_t position);

  uint64_t objects() const;
  uint64_t bytes() const;
  bool Contains(std::string_view key) const;

 private:
  struct Meta {
    std::string url;
    uint64_t bytes = 0;
    uint64_t seq = 0;
  };
  explicit DiskTier(rocksdb::DB* db, uint64_t budget);
  // Removes the record from the index and adds its delete to `batch`.
  void DropLocked(const std::string& record_key, void* batch);

  mutable std::mutex mu_;
  std::unique_ptr<rocksdb::DB> db_;
  uint64_t budget_;
  uint64_t bytes_ = 0;
  uint64_t next_seq_ = 1;
  std::map<std::string, Meta, std::less<>> index_;  // record key → meta
  std::map<uint64_t, std::string> fifo_;            // seq → record key (oldest first)
};

// Record encoding (exposed for tests): stamp and object.
std::string EncodeRecord(const CachedObject& o, uint64_t position);
bool DecodeRecord(std::string_view bytes, CachedObject* o, uint64_t* position, bool* esi_template);

}  // namespace cacheportal::edge
