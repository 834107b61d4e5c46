#include "edgecache/store.h"

#include <atomic>

namespace cacheportal::edge {

namespace {
// Rough per-object bookkeeping (object, control blocks, map and list nodes),
// so the budget tracks real memory rather than body bytes alone.
constexpr size_t kFixedOverhead = 256;
}  // namespace

size_t CachedObject::Charge(size_t key_size) const {
  size_t n = kFixedOverhead + key_size + head.size() + vary_values.size() + url.size();
  if (body) n += body->size();
  for (const auto& c : children) n += c.size() + 32;
  for (const auto& v : vary_names) n += v.size() + 32;
  return n;
}

struct MemoryStore::Shard {
  struct Variant {
    std::string values;
    std::shared_ptr<const CachedObject> object;
    size_t charge = 0;
  };
  struct Entry {
    std::string key;
    std::vector<Variant> variants;  // usually one
    size_t charge = 0;
  };
  using List = std::list<Entry>;

  mutable std::mutex mu;
  List lru;                                                  // front = most recently used
  std::unordered_map<std::string_view, List::iterator> map;  // views into Entry::key
  uint64_t bytes = 0;
  uint64_t objects = 0;
  std::atomic<uint64_t> evictions{0};
  uint64_t budget = 0;

  void RemoveLocked(List::iterator it, std::vector<std::shared_ptr<const CachedObject>>* out) {
    bytes -= it->charge;
    objects -= it->variants.size();
    if (out)
      for (auto& v : it->variants) out->push_back(std::move(v.object));
    map.erase(std::string_view(it->key));
    lru.erase(it);
  }
};

MemoryStore::MemoryStore(uint64_t budget_bytes, size_t shards) : budget_(budget_bytes) {
  if (shards == 0) shards = 1;
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->budget = budget_bytes / shards;
  }
}

MemoryStore::~MemoryStore() = default;

MemoryStore::Shard& MemoryStore::ShardFor(std::string_view key) const {
  // Different bits from the ones std::unordered_map uses inside the shard.
  size_t h = std::hash<std::string_view>{}(key);
  return *shards_[(h >> 17) % shards_.size()];
}

std::string MemoryStore::VariantValues(
    const std::vector<std::string>& names,
    const std::function<std::string(std::string_view)>& value_of) {
  std::string out;
  for (const auto& n : names) {
    out += n;
    out += '=';
    out += value_of(n);
    out += '\n';
  }
  return out;
}

StoreLookup MemoryStore::Lookup(std::string_view key,
                                const std::function<std::string(std::string_view)>& vary_value_of,
                                std::shared_ptr<const CachedObject>* out) {
  Shard& s = ShardFor(key);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return StoreLookup::kAbsent;
  auto& entry = *it->second;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  if (entry.variants.size() == 1 && entry.variants[0].object->vary_names.empty()) {
    *out = entry.variants[0].object;
    return StoreLookup::kFound;
  }
  // All variants of a key share the Vary list of the newest response.
  const auto& names = entry.variants.front().object->vary_names;
  std::string values = VariantValues(names, vary_value_of);
  for (const auto& v : entry.variants) {
    if (v.values == values) {
      *out = v.object;
      return StoreLookup::kFound;
    }
  }
  return StoreLookup::kVaryMismatch;
}

bool MemoryStore::Insert(const std::string& key, std::shared_ptr<const CachedObject> object,
                         std::vector<std::shared_ptr<const CachedObject>>* evicted) {
  Shard& s = ShardFor(key);
  size_t charge = object->Charge(key.size());
  if (charge > s.budget) return false;
  std::lock_guard lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) {
    s.lru.push_front(Shard::Entry{key, {}, 0});
    it = s.map.emplace(std::string_view(s.lru.front().key), s.lru.begin()).first;
  } else {
    s.lru.splice(s.lru.begin(), s.lru, it->second);
  }
  Shard::Entry& entry = *it->second;
  // A new Vary list invalidates variants recorded under the old one.
  if (!entry.variants.empty() && entry.variants.front().object->vary_names != object->vary_names) {
    for (auto& v : entry.variants) {
      s.bytes -= v.charge;
      s.objects--;
      entry.charge -= v.charge;
      if (evicted) evicted->push_back(std::move(v.object));
    }
    entry.variants.clear();
  }
  bool replaced = false;
  for (auto& v : entry.variants) {
    if (v.values == object->vary_values) {
      s.bytes -= v.charge;
      entry.charge -= v.charge;
      v.object = std::move(object);
      v.charge = charge;
      replaced = true;
      break;
    }
  }
  if (!replaced) {
    entry.variants.push_back(Shard::Variant{object->vary_values, std::move(object), charge});
    s.objects++;
  }
  entry.charge += charge;
  s.bytes += charge;
  // Evict from the cold end, never the entry just written.
  while (s.bytes > s.budget && s.lru.size() > 1) {
    auto victim = std::prev(s.lru.end());
    s.RemoveLocked(victim, evicted);
    s.evictions.fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

std::vector<std::shared_ptr<const CachedObject>> MemoryStore::Erase(std::string_view key) {
  std::vector<std::shared_ptr<const CachedObject>> out;
  Shard& s = ShardFor(key);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(key);
  if (it != s.map.end()) s.RemoveLocked(it->second, &out);
  return out;
}

std::vector<std::string> MemoryStore::EraseIf(
    const std::function<bool(std::string_view, const CachedObject&)>& pred) {
  std::vector<std::string> removed;
  for (auto& sp : shards_) {
    Shard& s = *sp;
    std::lock_guard lock(s.mu);
    for (auto it = s.lru.begin(); it != s.lru.end();) {
      bool match = false;
      for (const auto& v : it->variants)
        if (pred(it->key, *v.object)) match = true;
      auto next = std::next(it);
      if (match) {
        removed.push_back(it->key);
        s.RemoveLocked(it, nullptr);
      }
      it = next;
    }
  }
  return removed;
}

bool MemoryStore::Contains(std::string_view key) const {
  Shard& s = ShardFor(key);
  std::lock_guard lock(s.mu);
  return s.map.find(key) != s.map.end();
}

void MemoryStore::Clear() {
  for (auto& sp : shards_) {
    std::lock_guard lock(sp->mu);
    sp->map.clear();
    sp->lru.clear();
    sp->bytes = 0;
    sp->objects = 0;
  }
}

StoreStats MemoryStore::Stats() const {
  StoreStats st;
  for (const auto& sp : shards_) {
    std::lock_guard lock(sp->mu);
    st.objects += sp->objects;
    st.bytes += sp->bytes;
    st.evictions += sp->evictions.load(std::memory_order_relaxed);
  }
  return st;
}

}  // namespace cacheportal::edge
