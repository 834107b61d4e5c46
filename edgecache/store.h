// The edge's in-memory object store: sharded (a mutex, a hash map and an LRU
// list per shard; no global lock on the hit path), with a byte budget and LRU
// eviction. Objects are immutable and shared: a hit hands out a
// shared_ptr<const CachedObject> whose body is written straight to the socket,
// never copied.
//
// A map entry is one cache key; it holds the object's variants when the origin
// answered with Vary (each variant keyed by the request's values of the Vary'd
// headers). Ejecting a key removes all its variants.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "edgecache/esi_parser.h"

namespace cacheportal::edge {

using Body = std::string;

// One stored response. Built once by the fetch stage, then never mutated.
struct CachedObject {
  int status = 200;
  // "HTTP/1.1 200 OK\r\n" + end-to-end header lines, each ending in CRLF,
  // without Age, X-Cache, Connection and the blank line: the hit path appends
  // those per request.
  std::string head;
  std::shared_ptr<const Body> body;
  // Validators, as byte ranges of `head` (saves two strings per object):
  // the ETag as sent (generated when the origin gave none), Last-Modified.
  uint16_t etag_off = 0, etag_len = 0, lm_off = 0, lm_len = 0;
  std::string_view etag() const { return std::string_view(head).substr(etag_off, etag_len); }
  std::string_view last_modified() const { return std::string_view(head).substr(lm_off, lm_len); }
  int64_t stored_at_unix = 0;
  int64_t expires_at_unix = 0;          // 0 = no TTL backstop
  std::vector<std::string> vary_names;  // lowercase; empty = no Vary
  std::string vary_values;              // this variant's request values, joined
  std::vector<std::string> children;    // ESI fragment keys assembled into the body
  std::string url;                      // origin target, for ban and reports
  uint64_t body_hash = 0;               // FNV-1a of the body (assembled ETags)
  // ESI template: set when the body is marked up with ESI. Then `body` is the
  // raw markup, `head` has no Content-Length/ETag, and every delivery (hit or
  // miss) assembles the includes anew for the request at hand, so a fragment
  // keyed per user is never baked into a page shared by many.
  std::shared_ptr<const std::vector<EsiInstruction>> esi;

  // Bytes charged against the budget: body, strings and a fixed overhead.
  size_t Charge(size_t key_size) const;
};

// What Lookup found. `object` is null unless outcome says found.
enum class StoreLookup { kFound, kAbsent, kVaryMismatch };

struct StoreStats {
  uint64_t objects = 0;  // variants stored
  uint64_t bytes = 0;
  uint64_t evictions = 0;
};

class MemoryStore {
 public:
  // budget_bytes is split evenly across shards; an object bigger than one
  // shard's share is refused.
  MemoryStore(uint64_t budget_bytes, size_t shards);
  ~MemoryStore();
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // Finds `key`; when the entry has Vary'd variants, `vary_value_of(name)`
  // gives this request's value of a header (lowercase name). Touches LRU.
  StoreLookup Lookup(std::string_view key,
                     const std::function<std::string(std::string_view)>& vary_value_of,
                     std::shared_ptr<const CachedObject>* out);

  // Inserts or replaces the variant. Returns false if too large. Objects
  // evicted to make room are appended to *evicted (may be null).
  bool Insert(const std::string& key, std::shared_ptr<const CachedObject> object,
              std::vector<std::shared_ptr<const CachedObject>>* evicted);

  // Removes the key with all its variants; returns the removed objects.
  std::vector<std::shared_ptr<const CachedObject>> Erase(std::string_view key);
  // Removes every entry for which pred(key, object) holds (any variant).
  // Returns the removed keys.
  std::vector<std::string> EraseIf(
      const std::function<bool(std::string_view, const CachedObject&)>& pred);
  void Clear();
  // Whether the key has at least one variant stored (no LRU touch).
  bool Contains(std::string_view key) const;

  StoreStats Stats() const;
  uint64_t budget_bytes() const { return budget_; }

  // Joins the Vary'd request values into a variant id.
  static std::string VariantValues(const std::vector<std::string>& names,
                                   const std::function<std::string(std::string_view)>& value_of);

 private:
  struct Shard;
  Shard& ShardFor(std::string_view key) const;
  uint64_t budget_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace cacheportal::edge
