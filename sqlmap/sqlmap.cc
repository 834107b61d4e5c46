// SqlMap on RocksDB with an in-memory mirror (see sqlmap.h for the layout).
//
// Writers are serialised by `write_mu_`; each call plans its changes against
// the mirror, commits them to RocksDB in one WriteBatch, and only then applies
// them to the mirror under the exclusive lock, so the mirror never shows a
// state the disk does not have.
#include "sqlmap/sqlmap.h"

#include <rocksdb/db.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "common/log.h"
#include "sqlmap/analyzer.h"
#include "sqlmap/codec.h"

namespace cacheportal::sqlmap {

// ---------------------------------------------------------------- canonical values

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
// ASCII only, as <cctype> is in the "C" locale this process runs in (nothing
// calls setlocale), minus its library call per character, which was most of
// the cost of canonicalising a value. The form must not depend on a locale.
char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

std::string_view Trim(std::string_view v) {
  size_t b = 0, e = v.size();
  while (b < e && (v[b] == ' ' || v[b] == '\t' || v[b] == '\n' || v[b] == '\r')) ++b;
  while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\n' || v[e - 1] == '\r')) {
    --e;
  }
  return v.substr(b, e - b);
}

// "d+ sep d+ sep d+" with sep '-' or '/' or '.': a date in some DateStyle.
bool LooksLikeDate(std::string_view v) {
  size_t i = 0;
  if (i < v.size() && v[i] == '-') ++i;  // BC years are written otherwise; harmless
  int groups = 0;
  char sep = 0;
  while (i < v.size()) {
    size_t start = i;
    while (i < v.size() && IsDigit(v[i])) ++i;
    if (i == start) return false;
    ++groups;
    if (i == v.size()) break;
    char c = v[i];
    if (c != '-' && c != '/' && c != '.') return groups == 3;
    if (sep && c != sep) return false;
    sep = c;
    ++i;
  }
  return groups == 3 && sep != 0;
}

bool IsOneOf(std::string_view s, std::initializer_list<std::string_view> words) {
  return std::find(words.begin(), words.end(), s) != words.end();
}

bool IsUuidLike(std::string_view v, std::string* out) {
  std::string hex;
  for (char c : v) {
    if (c == '{' || c == '}' || c == '-') continue;
    if (!IsHexDigit(c)) return false;
    hex.push_back(AsciiLower(c));
  }
  if (hex.size() != 32) return false;
  *out = std::move(hex);
  return true;
}

}  // namespace

std::optional<std::string> CanonicalIndexValue(std::string_view raw) {
  if (raw.size() > 1024) return std::nullopt;
  std::string_view v = Trim(raw);
  // Integers and decimals.
  {
    size_t i = 0;
    bool neg = false;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) neg = v[i++] == '-';
    size_t int_start = i;
    while (i < v.size() && IsDigit(v[i])) ++i;
    size_t int_end = i;
    size_t frac_start = i, frac_end = i;
    bool dot = false;
    if (i < v.size() && v[i] == '.') {
      dot = true;
      frac_start = ++i;
      while (i < v.size() && IsDigit(v[i])) ++i;
      frac_end = i;
    }
    bool digits = int_end > int_start || frac_end > frac_start;
    if (digits && i == v.size() && !v.empty()) {
      std::string_view ip = v.substr(int_start, int_end - int_start);
      std::string_view fp = dot ? v.substr(frac_start, frac_end - frac_start) : std::string_view();
      while (!ip.empty() && ip[0] == '0') ip.remove_prefix(1);
      while (!fp.empty() && fp.back() == '0') fp.remove_suffix(1);
      std::string out;
      if (ip.empty() && fp.empty()) {
        out = "0";
      } else {
        if (neg) out.push_back('-');
        out.append(ip.empty() ? std::string_view("0") : ip);
        if (!fp.empty()) {
          out.push_back('.');
          out.append(fp);
        }
      }
      if (out == "1") return std::string("t");
      if (out == "0") return std::string("f");
      return out;
    }
  }
  if (v.find(':') != std::string_view::npos || v.find('$') != std::string_view::npos) {
    return std::nullopt;
  }
  if (!v.empty() && (v[0] == '\\' || v[0] == '[' || v[0] == '(')) return std::nullopt;
  std::string uuid;
  if (IsUuidLike(v, &uuid)) return uuid;
  if (!v.empty() && v[0] == '{') return std::nullopt;
  if (LooksLikeDate(v)) return std::nullopt;
  // 1e5, 1.5E-3, inf-ish numbers: float8 text differs by precision settings.
  {
    size_t i = 0;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
    size_t ds = i;
    while (i < v.size() && (IsDigit(v[i]) || v[i] == '.')) ++i;
    if (i > ds && i < v.size() && (v[i] == 'e' || v[i] == 'E')) return std::nullopt;
  }
  std::string lower(v);
  for (char& c : lower) c = AsciiLower(c);
  // Short word lists compared in place: hashing the value for three set
  // lookups was most of an index lookup's own cost. None is over 9 bytes.
  if (lower.size() <= 9) {
    if (IsOneOf(lower, {"today", "tomorrow", "yesterday", "now", "epoch", "infinity", "-infinity",
                        "+infinity", "allballs"}))
      return std::nullopt;
    if (IsOneOf(lower, {"true", "yes", "on", "t", "y", "tr", "tru", "ye"})) return std::string("t");
    if (IsOneOf(lower, {"false", "no", "off", "f", "n", "fa", "fal", "fals", "of"}))
      return std::string("f");
  }
  return lower;
}

// ---------------------------------------------------------------- the map

namespace {

using codec::Fixed64BE;
using codec::PutString;
using codec::PutVarint;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StrMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;
using StrSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

enum Cf { kPages = 0, kInstances, kTemplates, kEqIndex, kUnindexed, kParents, kMeta, kNumCf };
const char* const kCfNames[kNumCf] = {"pages",     "instances", "templates", "eq_index",
                                      "unindexed", "parents",   "meta"};
constexpr char kLsnKey[] = "applied_lsn";

// One index entry of an instance: (table, column, canonical value) or, with
// unindexed=true, membership of unindexed(table).
struct IndexEntry {
  std::string table;
  std::string column;
  std::string value;
  bool unindexed = false;
  bool operator==(const IndexEntry& o) const {
    return unindexed == o.unindexed && table == o.table && column == o.column && value == o.value;
  }
};

std::string EqKey(const IndexEntry& e, InstanceId id) {
  std::string k;
  PutString(&k, e.table);
  PutString(&k, e.column);
  PutString(&k, e.value);
  codec::PutFixed64BE(&k, id);
  return k;
}
std::string UnindexedKey(std::string_view table, InstanceId id) {
  std::string k;
  PutString(&k, table);
  codec::PutFixed64BE(&k, id);
  return k;
}
std::string ParentKey(std::string_view child, std::string_view parent) {
  std::string k;
  PutString(&k, child);
  PutString(&k, parent);
  return k;
}

constexpr size_t kMaxIndexValuesPerInstance = 1000;

bool KeyLikeColumn(std::string_view c) {
  auto ends = [&](std::string_view suffix) {
    return c.size() >= suffix.size() && c.substr(c.size() - suffix.size()) == suffix;
  };
  return ends("id") || ends("key") || ends("code") || ends("sku") || ends("uuid") ||
         ends("email") || ends("name") || ends("slug");
}

// The one indexable conjunct of a table's predicate, if any.
bool IndexableConjunct(const Predicate& p, const QueryInstance& qi, std::string* column,
                       std::vector<std::string>* values) {
  auto try_compare = [&](const Predicate& c) {
    if (c.kind != Predicate::Kind::kCompare) return false;
    if (c.op != CompareOp::kEq && c.op != CompareOp::kIn) return false;
    // A huge IN list would flood the index: such instances wait in unindexed.
    if (c.slots.size() > kMaxIndexValuesPerInstance) return false;
    std::vector<std::string> vals;
    for (int s : c.slots) {
      if (s < 0 || static_cast<size_t>(s) >= qi.values.size()) return false;
      const auto& v = qi.values[s];
      if (!v) {
        if (c.op == CompareOp::kIn) continue;  // x IN (.., NULL) never matches via NULL
        return false;
      }
      auto canon = CanonicalIndexValue(*v);
      if (!canon) return false;
      vals.push_back(std::move(*canon));
    }
    if (vals.empty()) return false;
    std::sort(vals.begin(), vals.end());
    vals.erase(std::unique(vals.begin(), vals.end()), vals.end());
    *column = c.column;
    *values = std::move(vals);
    return true;
  };
  if (try_compare(p)) return true;
  if (p.kind != Predicate::Kind::kAnd) return false;
  // Any conjunct is sound; prefer the most selective-looking one, so that a
  // changed row finds few candidates: key-like columns over `locale` or
  // `status`, = over IN. Ties keep text order.
  const Predicate* best = nullptr;
  int best_score = -1;
  for (const auto& c : p.children) {
    if (c.kind != Predicate::Kind::kCompare || (c.op != CompareOp::kEq && c.op != CompareOp::kIn)) {
      continue;
    }
    int score = (c.op == CompareOp::kEq ? 1 : 0) + (KeyLikeColumn(c.column) ? 2 : 0);
    if (score > best_score && try_compare(c)) {
      best = &c;
      best_score = score;
    }
  }
  return best != nullptr && try_compare(*best);
}

std::vector<IndexEntry> EntriesFor(const QueryInstance& qi) {
  std::vector<IndexEntry> out;
  auto add = [&](IndexEntry e) {
    if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(std::move(e));
  };
  const QueryTemplate& t = *qi.tmpl;
  for (const auto& tr : t.tables) {
    std::string column;
    std::vector<std::string> values;
    if (t.precision == Precision::kPrecise &&
        IndexableConjunct(tr.predicate, qi, &column, &values)) {
      for (auto& v : values) add({tr.table, column, std::move(v), false});
    } else {
      add({tr.table, {}, {}, true});
    }
  }
  return out;
}

std::string EncodeInstance(const QueryInstance& qi) {
  std::string out;
  PutVarint(&out, 1);  // version
  PutVarint(&out, qi.tmpl->shape_id);
  PutVarint(&out, qi.values.size());
  for (const auto& v : qi.values) codec::PutOptString(&out, v);
  return out;
}

bool DecodeInstance(std::string_view in, uint64_t* shape_id,
                    std::vector<std::optional<std::string>>* values) {
  codec::Reader r(in);
  uint64_t version, n;
  if (!r.Varint(&version) || version != 1 || !r.Varint(shape_id) || !r.Varint(&n) ||
      n > (1u << 24)) {
    return false;
  }
  values->resize(n);
  for (auto& v : *values) {
    if (!codec::GetOptString(&r, &v)) return false;
  }
  return r.Done();
}

std::string EncodePage(const PageInfo& p) {
  std::string out;
  PutVarint(&out, 1);
  PutVarint(&out, static_cast<uint64_t>(p.stored_at_ms));
  PutString(&out, p.url);
  PutVarint(&out, p.instances.size());
  for (auto id : p.instances) codec::PutFixed64BE(&out, id);
  PutVarint(&out, p.children.size());
  for (const auto& c : p.children) PutString(&out, c);
  return out;
}

bool DecodePage(std::string_view in, PageInfo* p) {
  codec::Reader r(in);
  uint64_t version, at, n;
  if (!r.Varint(&version) || version != 1 || !r.Varint(&at) || !r.String(&p->url) ||
      !r.Varint(&n) || n > (1u << 24)) {
    return false;
  }
  p->stored_at_ms = static_cast<int64_t>(at);
  p->instances.resize(n);
  for (auto& id : p->instances) {
    if (!r.Fixed64BE(&id)) return false;
  }
  if (!r.Varint(&n) || n > (1u << 24)) return false;
  p->children.resize(n);
  for (auto& c : p->children) {
    if (!r.String(&c)) return false;
  }
  return r.Done();
}

// The keys of one instance: most instances belong to one or a few pages, so
// a short vector; a widely shared one (a menu fragment's query) gets a set.
class KeySet {
 public:
  void insert(const std::string& k) {
    if (big_) {
      big_->insert(k);
      return;
    }
    if (std::find(small_.begin(), small_.end(), k) != small_.end()) return;
    if (small_.size() < kSmall) {
      small_.push_back(k);
      return;
    }
    big_ = std::make_unique<StrSet>(small_.begin(), small_.end());
    big_->insert(k);
    small_.clear();
    small_.shrink_to_fit();
  }
  void erase(const std::string& k) {
    if (big_) {
      big_->erase(k);
      return;
    }
    auto it = std::find(small_.begin(), small_.end(), k);
    if (it == small_.end()) return;
    *it = std::move(small_.back());
    small_.pop_back();
  }
  size_t size() const { return big_ ? big_->size() : small_.size(); }
  bool empty() const { return size() == 0; }
  template <typename F>
  void ForEach(F&& f) const {
    if (big_) {
      for (const auto& k : *big_) f(k);
    } else {
      for (const auto& k : small_) f(k);
    }
  }

 private:
  static constexpr size_t kSmall = 8;
  std::vector<std::string> small_;
  std::unique_ptr<StrSet> big_;
};

struct InstanceRec {
  std::shared_ptr<const QueryInstance> inst;
  KeySet keys;  // pages using it: the reference count
  std::vector<IndexEntry> entries;
};

struct TemplateRec {
  std::shared_ptr<const QueryTemplate> tmpl;
  uint64_t refs = 0;  // instances using it
};

// Allocator for the big flat index: 2 MiB-aligned and madvise(MADV_HUGEPAGE)
// so a random probe into a table of millions of slots costs one cache miss
// and no page walk (the TLB covers the table). Falls back silently.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT
  T* allocate(size_t n) {
    size_t bytes = n * sizeof(T);
    constexpr size_t kHuge = 2u << 20;
    if (bytes >= kHuge) {
      size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
      void* p = std::aligned_alloc(kHuge, rounded);
      if (p == nullptr) throw std::bad_alloc();
      ::madvise(p, rounded, MADV_HUGEPAGE);
      return static_cast<T*>(p);
    }
    void* p = std::malloc(bytes);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

// Open addressing with linear probing, shared by the two flat tables below:
// a slot with key 0 is empty and `home(key)` is where a key's probe starts.

// Removes slots[i] without tombstones: later entries of the same probe run
// shift back into the hole, so every probe sequence stays intact.
template <typename Slots, typename Home>
void EraseShiftingBack(Slots& slots, size_t i, Home home) {
  size_t mask = slots.size() - 1;
  size_t hole = i;
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (slots[j].key == 0) break;
    size_t h = home(slots[j].key);
    bool movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
    if (movable) {
      slots[hole] = std::move(slots[j]);
      hole = j;
    }
  }
  slots[hole] = {};
}

// Doubles the table and re-inserts every entry.
template <typename Slots, typename Home>
void GrowDoubling(Slots& slots, Home home) {
  Slots old = std::move(slots);
  slots.clear();
  slots.resize(old.size() * 2);
  size_t mask = slots.size() - 1;
  for (auto& s : old) {
    if (s.key == 0) continue;
    size_t i = home(s.key);
    while (slots[i].key != 0) i = (i + 1) & mask;
    slots[i] = std::move(s);
  }
}

// (table, column, canonical value) → instance ids, keyed by a 64-bit hash of
// the triple: open addressing with linear probing, so a lookup touches one
// cache line whatever the map size. A hash collision can only add
// candidates (the invalidator evaluates each instance's predicate), never
// hide one. Most keys hold one instance, kept inline; more spill to a set.
class EqIndex {
 public:
  static uint64_t Key(std::string_view table, std::string_view column, std::string_view value) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](std::string_view s) {
      for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
      }
      h ^= 0xff;  // separator
      h *= 1099511628211ull;
    };
    mix(table);
    mix(column);
    mix(value);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    h &= ~kManyBit;  // the top bit tags a slot, see Slot
    return h == 0 ? 1 : h;
  }

  EqIndex() { slots_.resize(1024); }
  ~EqIndex() { FreeSets(); }
  EqIndex(const EqIndex&) = delete;
  EqIndex& operator=(const EqIndex&) = delete;

  void Insert(uint64_t key, InstanceId id) {
    if ((used_ + 1) * 2 > slots_.size()) Grow();
    Slot& s = slots_[Find(key)];
    if (s.key == 0) {
      s.key = key;
      s.value = id;
      ++used_;
    } else if (!IsMany(s)) {
      if (s.value == id) return;
      auto* many = new std::unordered_set<InstanceId>{s.value, id};
      s.value = reinterpret_cast<uintptr_t>(many);
      s.key |= kManyBit;
    } else {
      Many(s)->insert(id);
    }
  }

  void Erase(uint64_t key, InstanceId id) {
    size_t i = Find(key);
    Slot& s = slots_[i];
    if (s.key == 0) return;
    if (IsMany(s)) {
      auto* many = Many(s);
      many->erase(id);
      if (many->size() > 1) return;
      if (many->size() == 1) {
        s.value = *many->begin();
        s.key &= ~kManyBit;
        delete many;
        return;
      }
      delete many;
    } else if (s.value != id) {
      return;
    }
    EraseShiftingBack(slots_, i, [mask = slots_.size() - 1](uint64_t k) { return k & mask; });
    --used_;
  }

  template <typename F>
  void ForEach(uint64_t key, F&& f) const {
    const Slot& s = slots_[Find(key)];
    if (s.key == 0) return;
    if (IsMany(s)) {
      for (auto id : *Many(s)) f(id);
    } else {
      f(s.value);
    }
  }

  // Asks for the cache line of `key`'s home slot without waiting for it: a
  // batch prefetches every probe's slot before reading any, so their misses
  // overlap. Most probes end in the home slot (the table is at most half
  // full); a longer run costs the next line's miss as before.
  void Prefetch(uint64_t key) const {
    __builtin_prefetch(&slots_[key & (slots_.size() - 1)], /*rw=*/0, /*locality=*/3);
  }

  void Clear() {
    FreeSets();
    slots_.clear();
    slots_.resize(1024);
    used_ = 0;
  }

 private:
  // 16 bytes, so four slots share a cache line and none straddles two: a
  // probe costs one miss at any table size (24-byte slots straddled lines
  // and cost a second miss on a third of the probes). A key holding one
  // instance keeps its id inline; with more, the top bit of `key` is set and
  // `value` points to the set. Keys never have that bit (Key() clears it).
  struct Slot {
    uint64_t key = 0;  // 0 = empty
    uint64_t value = 0;
  };
  static constexpr uint64_t kManyBit = 1ull << 63;
  static_assert(sizeof(Slot) == 16);

  static bool IsMany(const Slot& s) { return (s.key & kManyBit) != 0; }
  static std::unordered_set<InstanceId>* Many(const Slot& s) {
    return reinterpret_cast<std::unordered_set<InstanceId>*>(static_cast<uintptr_t>(s.value));
  }

  void FreeSets() {
    for (auto& s : slots_) {
      if (IsMany(s)) delete Many(s);
    }
  }

  size_t Find(uint64_t key) const {
    size_t mask = slots_.size() - 1;
    size_t i = key & mask;
    while (slots_[i].key != 0 && (slots_[i].key & ~kManyBit) != key) i = (i + 1) & mask;
    return i;
  }

  void Grow() {
    GrowDoubling(slots_, [mask = slots_.size() * 2 - 1](uint64_t k) { return k & mask; });
  }

  std::vector<Slot, HugePageAllocator<Slot>> slots_;
  size_t used_ = 0;
};

// id → instance for GetInstance(), the invalidator's per-candidate call:
// the same flat layout as EqIndex (one probe on huge pages, then the
// instance itself), instead of a node-based map's bucket + node + record.
class InstanceTable {
 public:
  InstanceTable() { slots_.resize(1024); }

  void Put(InstanceId id, std::shared_ptr<const QueryInstance> qi) {
    if ((used_ + 1) * 2 > slots_.size()) Grow();
    Slot& s = slots_[Find(Norm(id))];
    if (s.key == 0) ++used_;
    s.key = Norm(id);
    s.inst = std::move(qi);
  }

  std::shared_ptr<const QueryInstance> Get(InstanceId id) const {
    const Slot& s = slots_[Find(Norm(id))];
    return s.key == 0 ? nullptr : s.inst;
  }

  void Erase(InstanceId id) {
    uint64_t key = Norm(id);
    size_t i = Find(key);
    if (slots_[i].key == 0) return;
    EraseShiftingBack(slots_, i, [this](uint64_t k) { return Home(k); });
    --used_;
  }

  void Clear() {
    slots_.clear();
    slots_.resize(1024);
    used_ = 0;
  }

 private:
  struct Slot {
    uint64_t key = 0;  // 0 = empty
    std::shared_ptr<const QueryInstance> inst;
  };
  // Ids are hashes already; 0 is reserved for "empty".
  static uint64_t Norm(InstanceId id) { return id == 0 ? 1 : id; }
  size_t Home(uint64_t key) const {
    return (key * 0x9E3779B97F4A7C15ull >> 20) & (slots_.size() - 1);
  }
  size_t Find(uint64_t key) const {
    size_t mask = slots_.size() - 1;
    size_t i = Home(key);
    while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1) & mask;
    return i;
  }
  // Home() reads the new size, so it is evaluated after the resize.
  void Grow() {
    GrowDoubling(slots_, [this](uint64_t k) { return Home(k); });
  }

  std::vector<Slot, HugePageAllocator<Slot>> slots_;
  size_t used_ = 0;
};

struct TableIndex {
  StrMap<uint64_t> column_entries;  // indexed column → number of index entries on it
  std::unordered_set<InstanceId> unindexed;
  std::unordered_map<InstanceId, uint32_t> readers;  // id → number of entries on this table
};

std::string Hex(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class RocksSqlMap final : public SqlMap {
 public:
  ~RocksSqlMap() override {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    handles_.clear();
    db_.reset();
  }

  Status OpenDb(const MapOptions& options);
  Status Load();

  Status RemoveKeysLocked(std::span<const std::string> keys);  // write_mu_ held
  Status PutPage(std::string_view key, std::span<const QueryInstance> instances,
                 std::span<const std::string> children, std::string_view url) override;
  Status RemoveKeys(std::span<const std::string> keys) override;
  uint64_t KeyGeneration(std::string_view key) const override;
  Status RemoveKeysIfUnchanged(std::span<const std::string> keys,
                               std::span<const uint64_t> generations) override;
  Status Clear() override;

  void CandidatesByValue(std::string_view table, std::string_view column, std::string_view value,
                         std::vector<InstanceId>* out) const override;
  void CandidatesByValues(std::span<const ValueProbe> probes, std::vector<InstanceId>* out,
                          std::vector<size_t>* ends) const override;
  void UnindexedInstances(std::string_view table, std::vector<InstanceId>* out) const override;
  void InstancesReading(std::string_view table, std::vector<InstanceId>* out) const override;
  std::shared_ptr<const QueryInstance> GetInstance(InstanceId id) const override;
  void KeysOfInstance(InstanceId id, std::vector<std::string>* out) const override;
  void ParentsOf(std::string_view key, std::vector<std::string>* out) const override;
  std::vector<std::string> TablesRead() const override;
  void IndexedColumns(std::string_view table, std::vector<std::string>* out) const override;
  void ForEachPage(const std::function<void(const PageInfo&)>& f) const override;

  Status SetAppliedLsn(uint64_t lsn) override;
  uint64_t AppliedLsn() const override;
  MapStats GetStats() const override;
  Status DescribePage(std::string_view key, std::string* out) const override;

 private:
  // A planned change, applied to the mirror after the batch commits.
  struct Plan {
    std::vector<std::pair<InstanceId, std::shared_ptr<const QueryInstance>>> new_instances;
    std::vector<std::vector<IndexEntry>> new_entries;              // parallel to new_instances
    std::vector<std::pair<InstanceId, std::string>> add_refs;      // (instance, key)
    std::vector<std::pair<InstanceId, std::string>> drop_refs;     // (instance, key)
    std::vector<std::pair<std::string, std::string>> add_parents;  // (child, parent)
    std::vector<std::pair<std::string, std::string>> drop_parents;
    std::vector<std::string> removed_pages;
    std::vector<PageInfo> put_pages;
  };

  void PlanRemovePage(const std::string& key, rocksdb::WriteBatch* batch, Plan* plan,
                      std::unordered_map<InstanceId, int64_t>* ref_delta,
                      std::unordered_map<uint64_t, int64_t>* tmpl_delta);
  Status Commit(rocksdb::WriteBatch* batch);
  void Apply(Plan& plan);
  void AddInstanceToMirror(InstanceId id, std::shared_ptr<const QueryInstance> qi,
                           std::vector<IndexEntry> entries);
  void RemoveInstanceFromMirror(InstanceId id);
  // The candidates of a value that is not indexable; mu_ held.
  void InstancesIndexedOnLocked(std::string_view table, std::string_view column,
                                std::vector<InstanceId>* out) const;

  rocksdb::ColumnFamilyHandle* cf(Cf c) const { return handles_[c]; }

  MapOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::WriteOptions write_options_;

  std::mutex write_mu_;
  mutable std::shared_mutex mu_;
  StrMap<PageInfo> pages_;
  std::atomic<uint64_t> next_generation_{1};
  std::unordered_map<InstanceId, InstanceRec> instances_;
  std::unordered_map<uint64_t, TemplateRec> templates_;
  StrMap<TableIndex> tables_;
  EqIndex eq_;
  InstanceTable by_id_;     // mirror of instances_ for GetInstance
  StrMap<StrSet> parents_;  // child → pages including it
  uint64_t index_entries_ = 0;
  uint64_t unindexed_entries_ = 0;
  uint64_t applied_lsn_ = 0;
};

Status RocksSqlMap::OpenDb(const MapOptions& options) {
  options_ = options;
  write_options_.sync = options.sync_writes;
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // The map is read from RocksDB only at Open (a full scan): lookups are
  // served from memory. A vector memtable makes every write an append
  // (sorted once at flush) instead of a skiplist insert at a random id.
  db_options.allow_concurrent_memtable_write = false;
  // Quiet families (meta, parents) would otherwise pin old WAL files until
  // the busy ones force a flush: bound the WAL (and the replay at Open).
  db_options.max_total_wal_size = 128u << 20;
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  descs.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options);
  for (const char* name : kCfNames) descs.emplace_back(name, cf_options);
  if (options.create_if_missing && !options.read_only) {
    std::error_code ec;
    std::filesystem::create_directories(options.path, ec);
    if (ec) return Status::IOError("sqlmap: create " + options.path + ": " + ec.message());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      options.read_only
          ? rocksdb::DB::OpenForReadOnly(db_options, options.path, descs, &handles, &raw)
          : rocksdb::DB::Open(db_options, options.path, descs, &handles, &raw);
  if (!s.ok()) {
    if ((s.IsInvalidArgument() || s.IsPathNotFound() || s.IsIOError()) &&
        (!options.create_if_missing || options.read_only) &&
        !std::filesystem::exists(options.path + "/CURRENT")) {
      return Status::NotFound("sqlmap: no map at " + options.path + ": " + s.ToString());
    }
    return Status::IOError("sqlmap: open " + options.path + ": " + s.ToString());
  }
  db_.reset(raw);
  // handles[0] is the default family (unused): keep ours in Cf order.
  db_->DestroyColumnFamilyHandle(handles[0]);
  handles_.assign(handles.begin() + 1, handles.end());
  return Status::OK();
}

Status RocksSqlMap::Load() {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  size_t corrupt = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kTemplates)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto t = std::make_shared<QueryTemplate>();
      if (!codec::DecodeTemplate(std::string_view(it->value().data(), it->value().size()),
                                 t.get())) {
        ++corrupt;
        continue;
      }
      templates_[t->shape_id].tmpl = t;
    }
    if (!it->status().ok())
      return Status::IOError("sqlmap: load templates: " + it->status().ToString());
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kInstances)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      codec::Reader kr(std::string_view(it->key().data(), it->key().size()));
      uint64_t id = 0, shape = 0;
      auto qi = std::make_shared<QueryInstance>();
      if (!kr.Fixed64BE(&id) ||
          !DecodeInstance(std::string_view(it->value().data(), it->value().size()), &shape,
                          &qi->values)) {
        ++corrupt;
        continue;
      }
      auto t = templates_.find(shape);
      if (t == templates_.end()) {
        ++corrupt;
        continue;
      }
      qi->tmpl = t->second.tmpl;
      t->second.refs++;
      by_id_.Put(id, qi);
      instances_[id].inst = std::move(qi);
    }
    if (!it->status().ok())
      return Status::IOError("sqlmap: load instances: " + it->status().ToString());
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kPages)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      PageInfo p;
      p.key = it->key().ToString();
      if (!DecodePage(std::string_view(it->value().data(), it->value().size()), &p)) {
        ++corrupt;
        continue;
      }
      for (auto id : p.instances) {
        auto r = instances_.find(id);
        if (r != instances_.end()) r->second.keys.insert(p.key);
      }
      p.generation = next_generation_.fetch_add(1, std::memory_order_relaxed);
      pages_[p.key] = std::move(p);
    }
    if (!it->status().ok())
      return Status::IOError("sqlmap: load pages: " + it->status().ToString());
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kEqIndex)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      codec::Reader r(std::string_view(it->key().data(), it->key().size()));
      IndexEntry e;
      uint64_t id;
      if (!r.String(&e.table) || !r.String(&e.column) || !r.String(&e.value) || !r.Fixed64BE(&id)) {
        ++corrupt;
        continue;
      }
      auto rec = instances_.find(id);
      if (rec == instances_.end()) {
        ++corrupt;
        continue;
      }
      TableIndex& ti = tables_[e.table];
      ti.column_entries[e.column]++;
      eq_.Insert(EqIndex::Key(e.table, e.column, e.value), id);
      ti.readers[id]++;
      rec->second.entries.push_back(std::move(e));
      ++index_entries_;
    }
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kUnindexed)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      codec::Reader r(std::string_view(it->key().data(), it->key().size()));
      IndexEntry e;
      uint64_t id;
      if (!r.String(&e.table) || !r.Fixed64BE(&id)) {
        ++corrupt;
        continue;
      }
      auto rec = instances_.find(id);
      if (rec == instances_.end()) {
        ++corrupt;
        continue;
      }
      e.unindexed = true;
      TableIndex& ti = tables_[e.table];
      ti.unindexed.insert(id);
      ti.readers[id]++;
      rec->second.entries.push_back(std::move(e));
      ++unindexed_entries_;
    }
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kParents)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      codec::Reader r(std::string_view(it->key().data(), it->key().size()));
      std::string child, parent;
      if (!r.String(&child) || !r.String(&parent)) {
        ++corrupt;
        continue;
      }
      parents_[child].insert(parent);
    }
  }
  {
    std::string v;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kMeta), kLsnKey, &v);
    if (s.ok()) {
      codec::Reader r(v);
      if (!r.Fixed64BE(&applied_lsn_)) ++corrupt;
    }
  }
  if (corrupt) {
    log::Warn("sqlmap", "skipped malformed map records", {{"count", std::to_string(corrupt)}});
  }
  return Status::OK();
}

Status RocksSqlMap::Commit(rocksdb::WriteBatch* batch) {
  if (options_.read_only) return Status::NotSupported("sqlmap: opened read-only");
  rocksdb::Status s = db_->Write(write_options_, batch);
  if (!s.ok()) return Status::IOError("sqlmap: write: " + s.ToString());
  return Status::OK();
}

void RocksSqlMap::PlanRemovePage(const std::string& key, rocksdb::WriteBatch* batch, Plan* plan,
                                 std::unordered_map<InstanceId, int64_t>* ref_delta,
                                 std::unordered_map<uint64_t, int64_t>* tmpl_delta) {
  auto it = pages_.find(key);
  if (it == pages_.end()) return;
  batch->Delete(cf(kPages), key);
  plan->removed_pages.push_back(key);
  for (auto id : it->second.instances) {
    plan->drop_refs.emplace_back(id, key);
    (*ref_delta)[id] -= 1;
  }
  for (const auto& c : it->second.children) {
    batch->Delete(cf(kParents), ParentKey(c, key));
    plan->drop_parents.emplace_back(c, key);
  }
  (void)tmpl_delta;
}

Status RocksSqlMap::PutPage(std::string_view key_view, std::span<const QueryInstance> instances,
                            std::span<const std::string> children, std::string_view url) {
  if (key_view.empty()) return Status::InvalidArgument("sqlmap: empty cache key");
  for (const auto& qi : instances) {
    if (!qi.tmpl) return Status::InvalidArgument("sqlmap: instance without template");
  }
  std::string key(key_view);
  std::lock_guard wl(write_mu_);
  rocksdb::WriteBatch batch;
  Plan plan;
  std::unordered_map<InstanceId, int64_t> ref_delta;
  std::unordered_map<uint64_t, int64_t> tmpl_delta;
  PlanRemovePage(key, &batch, &plan, &ref_delta, &tmpl_delta);

  PageInfo page;
  page.key = key;
  page.url = std::string(url);
  page.stored_at_ms = NowMs();
  std::unordered_set<InstanceId> seen;
  std::unordered_set<uint64_t> new_templates;
  for (const auto& qi : instances) {
    InstanceId id = qi.IdValue();
    if (!seen.insert(id).second) continue;
    page.instances.push_back(id);
    plan.add_refs.emplace_back(id, key);
    ref_delta[id] += 1;
    if (instances_.count(id)) continue;
    // New instance: share the stored template when the shape is known.
    auto shared = std::make_shared<QueryInstance>(qi);
    auto t = templates_.find(qi.tmpl->shape_id);
    if (t != templates_.end()) {
      shared->tmpl = t->second.tmpl;
    } else if (new_templates.insert(qi.tmpl->shape_id).second) {
      std::string enc;
      codec::EncodeTemplate(*qi.tmpl, &enc);
      batch.Put(cf(kTemplates), Fixed64BE(qi.tmpl->shape_id), enc);
    }
    batch.Put(cf(kInstances), Fixed64BE(id), EncodeInstance(*shared));
    std::vector<IndexEntry> entries = EntriesFor(*shared);
    for (const auto& e : entries) {
      if (e.unindexed) {
        batch.Put(cf(kUnindexed), UnindexedKey(e.table, id), "");
      } else {
        batch.Put(cf(kEqIndex), EqKey(e, id), "");
      }
    }
    plan.new_instances.emplace_back(id, std::move(shared));
    plan.new_entries.push_back(std::move(entries));
  }
  std::unordered_set<std::string> child_seen;
  for (const auto& c : children) {
    if (c.empty() || c == key || !child_seen.insert(c).second) continue;
    page.children.push_back(c);
    batch.Put(cf(kParents), ParentKey(c, key), "");
    plan.add_parents.emplace_back(c, key);
  }
  // Parent entries that the removal deleted but the new page re-adds must stay.
  batch.Put(cf(kPages), key, EncodePage(page));

  // Instances whose last reference goes: delete them and their index entries.
  for (const auto& [id, delta] : ref_delta) {
    if (delta >= 0) continue;
    auto it = instances_.find(id);
    if (it == instances_.end()) continue;
    if (static_cast<int64_t>(it->second.keys.size()) + delta > 0) continue;
    batch.Delete(cf(kInstances), Fixed64BE(id));
    for (const auto& e : it->second.entries) {
      if (e.unindexed) {
        batch.Delete(cf(kUnindexed), UnindexedKey(e.table, id));
      } else {
        batch.Delete(cf(kEqIndex), EqKey(e, id));
      }
    }
    uint64_t shape = it->second.inst->tmpl->shape_id;
    tmpl_delta[shape] -= 1;
  }
  for (const auto& [shape, delta] : tmpl_delta) {
    auto t = templates_.find(shape);
    if (t != templates_.end() && static_cast<int64_t>(t->second.refs) + delta <= 0) {
      // Unless a new instance of this page brings the same shape back.
      bool reused = false;
      for (const auto& [nid, nqi] : plan.new_instances) {
        if (nqi->tmpl->shape_id == shape) reused = true;
      }
      if (!reused) batch.Delete(cf(kTemplates), Fixed64BE(shape));
    }
  }
  // The delete of an old (child, key) parent entry precedes the re-put in
  // the batch order, so a kept child survives.
  page.generation = next_generation_.fetch_add(1, std::memory_order_relaxed);
  plan.put_pages.push_back(std::move(page));
  Status s = Commit(&batch);
  if (!s.ok()) return s;
  Apply(plan);
  return Status::OK();
}

uint64_t RocksSqlMap::KeyGeneration(std::string_view key) const {
  std::shared_lock lock(mu_);
  auto it = pages_.find(key);
  return it == pages_.end() ? 0 : it->second.generation;
}

Status RocksSqlMap::RemoveKeysIfUnchanged(std::span<const std::string> keys,
                                          std::span<const uint64_t> generations) {
  if (keys.size() != generations.size())
    return Status::InvalidArgument("sqlmap: one generation per key");
  // write_mu_ serialises this with PutPage, so no registration can slip in
  // between the check and the removal.
  std::lock_guard wl(write_mu_);
  std::vector<std::string> unchanged;
  {
    std::shared_lock lock(mu_);
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = pages_.find(keys[i]);
      if (it != pages_.end() && generations[i] != 0 && it->second.generation == generations[i])
        unchanged.push_back(keys[i]);
    }
  }
  return RemoveKeysLocked(unchanged);
}

Status RocksSqlMap::RemoveKeys(std::span<const std::string> keys) {
  std::lock_guard wl(write_mu_);
  return RemoveKeysLocked(keys);
}

Status RocksSqlMap::RemoveKeysLocked(std::span<const std::string> keys) {
  rocksdb::WriteBatch batch;
  Plan plan;
  std::unordered_map<InstanceId, int64_t> ref_delta;
  std::unordered_map<uint64_t, int64_t> tmpl_delta;
  std::unordered_set<std::string> done;
  for (const auto& k : keys) {
    if (!done.insert(k).second) continue;
    PlanRemovePage(k, &batch, &plan, &ref_delta, &tmpl_delta);
  }
  if (plan.removed_pages.empty()) return Status::OK();
  for (const auto& [id, delta] : ref_delta) {
    auto it = instances_.find(id);
    if (it == instances_.end()) continue;
    if (static_cast<int64_t>(it->second.keys.size()) + delta > 0) continue;
    batch.Delete(cf(kInstances), Fixed64BE(id));
    for (const auto& e : it->second.entries) {
      if (e.unindexed) {
        batch.Delete(cf(kUnindexed), UnindexedKey(e.table, id));
      } else {
        batch.Delete(cf(kEqIndex), EqKey(e, id));
      }
    }
    tmpl_delta[it->second.inst->tmpl->shape_id] -= 1;
  }
  for (const auto& [shape, delta] : tmpl_delta) {
    auto t = templates_.find(shape);
    if (t != templates_.end() && static_cast<int64_t>(t->second.refs) + delta <= 0) {
      batch.Delete(cf(kTemplates), Fixed64BE(shape));
    }
  }
  Status s = Commit(&batch);
  if (!s.ok()) return s;
  Apply(plan);
  return Status::OK();
}

void RocksSqlMap::AddInstanceToMirror(InstanceId id, std::shared_ptr<const QueryInstance> qi,
                                      std::vector<IndexEntry> entries) {
  TemplateRec& tr = templates_[qi->tmpl->shape_id];
  if (!tr.tmpl) tr.tmpl = qi->tmpl;
  tr.refs++;
  for (const auto& e : entries) {
    TableIndex& ti = tables_[e.table];
    if (e.unindexed) {
      ti.unindexed.insert(id);
      ++unindexed_entries_;
    } else {
      ti.column_entries[e.column]++;
      eq_.Insert(EqIndex::Key(e.table, e.column, e.value), id);
      ++index_entries_;
    }
    ti.readers[id]++;
  }
  by_id_.Put(id, qi);
  InstanceRec& rec = instances_[id];
  rec.inst = std::move(qi);
  rec.entries = std::move(entries);
}

void RocksSqlMap::RemoveInstanceFromMirror(InstanceId id) {
  auto it = instances_.find(id);
  if (it == instances_.end()) return;
  for (const auto& e : it->second.entries) {
    auto ti_it = tables_.find(e.table);
    if (ti_it == tables_.end()) continue;
    TableIndex& ti = ti_it->second;
    if (e.unindexed) {
      if (ti.unindexed.erase(id)) --unindexed_entries_;
    } else {
      eq_.Erase(EqIndex::Key(e.table, e.column, e.value), id);
      --index_entries_;
      auto col = ti.column_entries.find(e.column);
      if (col != ti.column_entries.end() && --col->second == 0) ti.column_entries.erase(col);
    }
    auto r = ti.readers.find(id);
    if (r != ti.readers.end() && --r->second == 0) ti.readers.erase(r);
    if (ti.readers.empty() && ti.unindexed.empty() && ti.column_entries.empty())
      tables_.erase(ti_it);
  }
  uint64_t shape = it->second.inst->tmpl->shape_id;
  auto t = templates_.find(shape);
  if (t != templates_.end() && --t->second.refs == 0) templates_.erase(t);
  by_id_.Erase(id);
  instances_.erase(it);
}

void RocksSqlMap::Apply(Plan& plan) {
  std::unique_lock lock(mu_);
  for (const auto& k : plan.removed_pages) pages_.erase(k);
  for (const auto& [c, p] : plan.drop_parents) {
    auto it = parents_.find(c);
    if (it == parents_.end()) continue;
    it->second.erase(p);
    if (it->second.empty()) parents_.erase(it);
  }
  for (size_t i = 0; i < plan.new_instances.size(); ++i) {
    AddInstanceToMirror(plan.new_instances[i].first, plan.new_instances[i].second,
                        std::move(plan.new_entries[i]));
  }
  for (const auto& [id, k] : plan.drop_refs) {
    auto it = instances_.find(id);
    if (it != instances_.end()) it->second.keys.erase(k);
  }
  for (const auto& [id, k] : plan.add_refs) {
    auto it = instances_.find(id);
    if (it != instances_.end()) it->second.keys.insert(k);
  }
  for (const auto& [id, k] : plan.drop_refs) {
    auto it = instances_.find(id);
    if (it != instances_.end() && it->second.keys.empty()) RemoveInstanceFromMirror(id);
  }
  for (const auto& [c, p] : plan.add_parents) parents_[c].insert(p);
  for (auto& p : plan.put_pages) {
    std::string k = p.key;
    pages_[k] = std::move(p);
  }
}

Status RocksSqlMap::Clear() {
  std::lock_guard wl(write_mu_);
  rocksdb::WriteBatch batch;
  for (int c = 0; c < kNumCf; ++c) {
    if (c == kMeta) continue;
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf(static_cast<Cf>(c))));
    for (it->SeekToFirst(); it->Valid(); it->Next())
      batch.Delete(cf(static_cast<Cf>(c)), it->key());
  }
  Status s = Commit(&batch);
  if (!s.ok()) return s;
  std::unique_lock lock(mu_);
  pages_.clear();
  instances_.clear();
  templates_.clear();
  tables_.clear();
  eq_.Clear();
  by_id_.Clear();
  parents_.clear();
  index_entries_ = 0;
  unindexed_entries_ = 0;
  return Status::OK();
}

void RocksSqlMap::CandidatesByValue(std::string_view table, std::string_view column,
                                    std::string_view value, std::vector<InstanceId>* out) const {
  const ValueProbe probe{table, column, value};
  CandidatesByValues(std::span<const ValueProbe>(&probe, 1), out, nullptr);
}

void RocksSqlMap::InstancesIndexedOnLocked(std::string_view table, std::string_view column,
                                           std::vector<InstanceId>* out) const {
  // Not indexable: every instance indexed on (table, column) may match.
  auto ti = tables_.find(table);
  if (ti == tables_.end() || !ti->second.column_entries.count(column)) return;
  for (const auto& [id, n] : ti->second.readers) {
    auto rec = instances_.find(id);
    if (rec == instances_.end()) continue;
    for (const auto& e : rec->second.entries) {
      if (!e.unindexed && e.table == table && e.column == column) {
        out->push_back(id);
        break;
      }
    }
  }
}

void RocksSqlMap::CandidatesByValues(std::span<const ValueProbe> probes,
                                     std::vector<InstanceId>* out,
                                     std::vector<size_t>* ends) const {
  if (probes.empty()) return;
  // Probes whose home slot has been requested but not yet read. About the
  // number of misses a core keeps in flight (line fill buffers): more would
  // only evict each other's lines.
  constexpr size_t kAhead = 16;
  // 0 = not indexable (Key() never returns 0).
  auto key_of = [](const ValueProbe& p) -> uint64_t {
    std::optional<std::string> canon = CanonicalIndexValue(p.value);
    return canon ? EqIndex::Key(p.table, p.column, *canon) : 0;
  };
  uint64_t ring[kAhead];
  // Only the prefetch needs the lock (the slot table moves when it grows);
  // computing each key right before its prefetch, under the lock, lets probe
  // i + kAhead's canonicalising and hashing overlap probe i's miss.
  std::shared_lock lock(mu_);
  const size_t n = probes.size();
  for (size_t i = 0; i < std::min(n, kAhead); ++i) {
    ring[i] = key_of(probes[i]);
    if (ring[i] != 0) eq_.Prefetch(ring[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    const uint64_t key = ring[i % kAhead];
    if (i + kAhead < n) {
      uint64_t& next = ring[i % kAhead];
      next = key_of(probes[i + kAhead]);
      if (next != 0) eq_.Prefetch(next);
    }
    if (key != 0) {
      eq_.ForEach(key, [out](InstanceId id) { out->push_back(id); });
    } else {
      InstancesIndexedOnLocked(probes[i].table, probes[i].column, out);
    }
    if (ends) ends->push_back(out->size());
  }
}

void RocksSqlMap::UnindexedInstances(std::string_view table, std::vector<InstanceId>* out) const {
  std::shared_lock lock(mu_);
  auto ti = tables_.find(table);
  if (ti == tables_.end()) return;
  out->insert(out->end(), ti->second.unindexed.begin(), ti->second.unindexed.end());
}

void RocksSqlMap::InstancesReading(std::string_view table, std::vector<InstanceId>* out) const {
  std::shared_lock lock(mu_);
  auto ti = tables_.find(table);
  if (ti == tables_.end()) return;
  for (const auto& [id, n] : ti->second.readers) out->push_back(id);
}

std::shared_ptr<const QueryInstance> RocksSqlMap::GetInstance(InstanceId id) const {
  std::shared_lock lock(mu_);
  return by_id_.Get(id);
}

void RocksSqlMap::KeysOfInstance(InstanceId id, std::vector<std::string>* out) const {
  std::shared_lock lock(mu_);
  auto it = instances_.find(id);
  if (it == instances_.end()) return;
  it->second.keys.ForEach([out](const std::string& k) { out->push_back(k); });
}

void RocksSqlMap::ParentsOf(std::string_view key, std::vector<std::string>* out) const {
  std::shared_lock lock(mu_);
  std::unordered_set<std::string> seen;
  std::deque<std::string> todo{std::string(key)};
  while (!todo.empty()) {
    std::string k = std::move(todo.front());
    todo.pop_front();
    auto it = parents_.find(k);
    if (it == parents_.end()) continue;
    for (const auto& p : it->second) {
      if (p == key || !seen.insert(p).second) continue;
      out->push_back(p);
      todo.push_back(p);
    }
  }
}

std::vector<std::string> RocksSqlMap::TablesRead() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  for (const auto& [t, ti] : tables_) {
    if (!ti.readers.empty()) out.push_back(t);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void RocksSqlMap::IndexedColumns(std::string_view table, std::vector<std::string>* out) const {
  std::shared_lock lock(mu_);
  auto ti = tables_.find(table);
  if (ti == tables_.end()) return;
  for (const auto& [c, n] : ti->second.column_entries) out->push_back(c);
}

void RocksSqlMap::ForEachPage(const std::function<void(const PageInfo&)>& f) const {
  std::shared_lock lock(mu_);
  for (const auto& [k, p] : pages_) f(p);
}

Status RocksSqlMap::SetAppliedLsn(uint64_t lsn) {
  if (options_.read_only) return Status::NotSupported("sqlmap: opened read-only");
  std::lock_guard wl(write_mu_);
  rocksdb::Status s = db_->Put(write_options_, cf(kMeta), kLsnKey, Fixed64BE(lsn));
  if (!s.ok()) return Status::IOError("sqlmap: write lsn: " + s.ToString());
  std::unique_lock lock(mu_);
  applied_lsn_ = lsn;
  return Status::OK();
}

uint64_t RocksSqlMap::AppliedLsn() const {
  std::shared_lock lock(mu_);
  return applied_lsn_;
}

MapStats RocksSqlMap::GetStats() const {
  std::shared_lock lock(mu_);
  MapStats s;
  s.pages = pages_.size();
  s.instances = instances_.size();
  s.templates = templates_.size();
  s.index_entries = index_entries_;
  s.unindexed_instances = unindexed_entries_;
  return s;
}

Status RocksSqlMap::DescribePage(std::string_view key, std::string* out) const {
  std::shared_lock lock(mu_);
  auto it = pages_.find(key);
  if (it == pages_.end()) return Status::NotFound("no page registered under " + std::string(key));
  const PageInfo& p = it->second;
  std::string s;
  s += "key:       " + p.key + "\n";
  s += "url:       " + p.url + "\n";
  {
    std::time_t secs = static_cast<std::time_t>(p.stored_at_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    s += "stored_at: " + std::string(buf) + "\n";
  }
  for (const auto& c : p.children) s += "child:     " + c + "\n";
  auto pit = parents_.find(key);
  if (pit != parents_.end()) {
    for (const auto& parent : pit->second) s += "parent:    " + parent + "\n";
  }
  for (auto id : p.instances) {
    auto rec = instances_.find(id);
    if (rec == instances_.end()) {
      s += "instance " + Hex(id) + " (missing)\n";
      continue;
    }
    const QueryInstance& qi = *rec->second.inst;
    const QueryTemplate& t = *qi.tmpl;
    s += "instance " + Hex(id) + "  [" + PrecisionName(t.precision);
    if (!t.coarse_reason.empty()) s += ": " + t.coarse_reason;
    s += "]  shared by " + std::to_string(rec->second.keys.size()) + " key(s)\n";
    s += "  sql:    " + t.normalized_sql + "\n";
    s += "  values:";
    for (size_t i = 0; i < qi.values.size(); ++i) {
      s += " $" + std::to_string(i + 1) + "=" + (qi.values[i] ? "'" + *qi.values[i] + "'" : "NULL");
    }
    s += "\n";
    for (const auto& e : rec->second.entries) {
      if (e.unindexed) {
        s += "  index:  unindexed(" + e.table + ")\n";
      } else {
        s += "  index:  " + e.table + "." + e.column + " = '" + e.value + "'\n";
      }
    }
  }
  *out = std::move(s);
  return Status::OK();
}

}  // namespace

Status SqlMap::Open(const MapOptions& options, std::unique_ptr<SqlMap>* out) {
  if (options.path.empty()) return Status::InvalidArgument("sqlmap: empty path");
  auto map = std::make_unique<RocksSqlMap>();
  Status s = map->OpenDb(options);
  if (!s.ok()) return s;
  s = map->Load();
  if (!s.ok()) return s;
  *out = std::move(map);
  return Status::OK();
}

}  // namespace cacheportal::sqlmap
