#include "edgecache/disk_tier.h"

#include <cstring>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

namespace cacheportal::edge {

namespace {

// Record keys are "<cache key>\0<vary values>"; cache keys never contain NUL
// (they are percent-escaped), so the variants of a key are one prefix range.
// Meta records start with \x01, which no cache key (a method name) does.
constexpr std::string_view kCleanMarker =
    "\x01"
    "clean";
constexpr uint8_t kFormat = 1;

std::string RecordKey(std::string_view key, std::string_view vary_values) {
  std::string k;
  k.reserve(key.size() + 1 + vary_values.size());
  k.append(key);
  k.push_back('\0');
  k.append(vary_values);
  return k;
}

void PutU64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}

void PutStr(std::string* out, std::string_view s) {
  PutU64(out, s.size());
  out->append(s);
}

struct Reader {
  std::string_view in;
  bool ok = true;
  uint64_t U64() {
    if (in.size() < 8) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(8);
    return v;
  }
  std::string Str() {
    uint64_t n = U64();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

}  // namespace

std::string EncodeRecord(const CachedObject& o, uint64_t position) {
  std::string out;
  const Body empty;
  const Body& body = o.body ? *o.body : empty;
  out.reserve(128 + o.head.size() + body.size() + o.url.size());
  out.push_back(static_cast<char>(kFormat));
  PutU64(&out, position);
  PutU64(&out, static_cast<uint64_t>(o.status));
  PutU64(&out, static_cast<uint64_t>(o.stored_at_unix));
  PutU64(&out, static_cast<uint64_t>(o.expires_at_unix));
  PutU64(&out, (uint64_t{o.etag_off} << 48) | (uint64_t{o.etag_len} << 32) |
                   (uint64_t{o.lm_off} << 16) | o.lm_len);
  PutU64(&out, o.body_hash);
  PutU64(&out, o.esi ? 1 : 0);
  PutStr(&out, o.head);
  PutStr(&out, body);
  PutStr(&out, o.url);
  PutStr(&out, o.vary_values);
  PutU64(&out, o.vary_names.size());
  for (const auto& n : o.vary_names) PutStr(&out, n);
  PutU64(&out, o.children.size());
  for (const auto& c : o.children) PutStr(&out, c);
  return out;
}

bool DecodeRecord(std::string_view bytes, CachedObject* o, uint64_t* position, bool* esi) {
  if (bytes.empty() || static_cast<uint8_t>(bytes[0]) != kFormat) return false;
  Reader r{bytes.substr(1)};
  *position = r.U64();
  o->status = static_cast<int>(r.U64());
  o->stored_at_unix = static_cast<int64_t>(r.U64());
  o->expires_at_unix = static_cast<int64_t>(r.U64());
  uint64_t v = r.U64();
  o->etag_off = static_cast<uint16_t>(v >> 48);
  o->etag_len = static_cast<uint16_t>(v >> 32);
  o->lm_off = static_cast<uint16_t>(v >> 16);
  o->lm_len = static_cast<uint16_t>(v);
  o->body_hash = r.U64();
  *esi = r.U64() != 0;
  o->head = r.Str();
  o->body = std::make_shared<const Body>(r.Str());
  o->url = r.Str();
  o->vary_values = r.Str();
  uint64_t n = r.U64();
  if (!r.ok || n > r.in.size()) return false;
  o->vary_names.clear();
  for (uint64_t i = 0; i < n && r.ok; ++i) o->vary_names.push_back(r.Str());
  n = r.U64();
  if (!r.ok || n > r.in.size()) return false;
  o->children.clear();
  for (uint64_t i = 0; i < n && r.ok; ++i) o->children.push_back(r.Str());
  if (!r.ok || !r.in.empty()) return false;
  // Validators must lie inside the head.
  if (size_t{o->etag_off} + o->etag_len > o->head.size() ||
      size_t{o->lm_off} + o->lm_len > o->head.size())
    return false;
  return true;
}

DiskTier::DiskTier(rocksdb::DB* db, uint64_t budget) : db_(db), budget_(budget) {}
DiskTier::~DiskTier() = default;

Result<std::unique_ptr<DiskTier>> DiskTier::Open(const std::string& path, uint64_t budget_bytes,
                                                 const DiskResume& resume, int64_t now_unix,
                                                 DiskLoadReport* report) {
  DiskLoadReport local;
  if (!report) report = &local;
  *report = DiskLoadReport{};
  rocksdb::Options options;
  options.create_if_missing = true;
  options.max_open_files = 256;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) return Status::IOError("edge disk tier: cannot open " + path + ": " + s.ToString());
  std::unique_ptr<DiskTier> tier(new DiskTier(raw, budget_bytes));

  // The clean marker vouches only for the shutdown that wrote it: it is
  // consumed here, before anything new is stored.
  std::string marker;
  bool has_marker = false;
  uint64_t clean_position = 0;
  if (tier->db_
          ->Get(rocksdb::ReadOptions(), rocksdb::Slice(kCleanMarker.data(), kCleanMarker.size()),
                &marker)
          .ok() &&
      marker.size() == 8) {
    Reader r{marker};
    clean_position = r.U64();
    has_marker = true;
  }
  report->clean_marker = has_marker;
  if (!resume.known)
    report->reason = "the invalidator's resume position is unknown";
  else if (resume.slot_recreated)
    report->reason = "the replication slot was recreated (changes may have been skipped)";
  const bool discard_all = !report->reason.empty();

  rocksdb::WriteBatch drop;
  drop.Delete(rocksdb::Slice(kCleanMarker.data(), kCleanMarker.size()));
  std::unique_ptr<rocksdb::Iterator> it(tier->db_->NewIterator(rocksdb::ReadOptions()));
  std::vector<std::pair<int64_t, std::string>> kept;  // (stored_at, record key) for FIFO order
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    if (!k.empty() && k[0] == '\x01') continue;
    CachedObject o;
    uint64_t position = 0;
    bool esi = false;
    bool keep = !discard_all &&
                DecodeRecord(std::string_view(it->value().data(), it->value().size()), &o,
                             &position, &esi) &&
                (o.expires_at_unix == 0 || o.expires_at_unix > now_unix);
    if (keep) {
      uint64_t vouched_through = has_marker ? std::max(position, clean_position) : position;
      keep = vouched_through >= resume.position;
    }
    if (!keep) {
      drop.Delete(it->key());
      ++report->discarded;
      continue;
    }
    Meta m;
    m.url = std::move(o.url);
    m.bytes = k.size() + it->value().size();
    tier->bytes_ += m.bytes;
    tier->index_.emplace(std::string(k), std::move(m));
    kept.emplace_back(o.stored_at_unix, std::string(k));
  }
  if (!it->status().ok())
    return Status::IOError("edge disk tier: cannot read " + path + ": " + it->status().ToString());
  it.reset();
  std::stable_sort(kept.begin(), kept.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [at, k] : kept) {
    uint64_t seq = tier->next_seq_++;
    tier->index_[k].seq = seq;
    tier->fifo_.emplace(seq, std::move(k));
  }
  report->kept = kept.size();
  {
    std::lock_guard lock(tier->mu_);
    while (tier->bytes_ > tier->budget_ && !tier->fifo_.empty()) {
      std::string k = tier->fifo_.begin()->second;
      tier->DropLocked(k, &drop);
      --report->kept;
      ++report->discarded;
    }
  }
  rocksdb::WriteOptions sync;
  sync.sync = true;
  s = tier->db_->Write(sync, &drop);
  if (!s.ok())
    return Status::IOError("edge disk tier: cannot discard stale records in " + path + ": " +
                           s.ToString());
  return tier;
}

void DiskTier::DropLocked(const std::string& record_key, void* batch) {
  auto it = index_.find(record_key);
  if (it == index_.end()) return;
  bytes_ -= it->second.bytes;
  fifo_.erase(it->second.seq);
  static_cast<rocksdb::WriteBatch*>(batch)->Delete(record_key);
  index_.erase(it);
}

void DiskTier::Put(const std::string& key, const CachedObject& object, uint64_t position) {
  std::string rk = RecordKey(key, object.vary_values);
  std::string value = EncodeRecord(object, position);
  uint64_t size = rk.size() + value.size();
  if (size > budget_) return;
  std::lock_guard lock(mu_);
  rocksdb::WriteBatch batch;
  DropLocked(rk, &batch);
  while (bytes_ + size > budget_ && !fifo_.empty()) {
    std::string oldest = fifo_.begin()->second;
    DropLocked(oldest, &batch);
  }
  batch.Put(rk, value);
  // Unsynced: losing it in a crash is a miss. Ordered in the log before any
  // later synced Erase, which makes it (and these deletes) durable too.
  if (!db_->Write(rocksdb::WriteOptions(), &batch).ok()) return;
  Meta m;
  m.url = object.url;
  m.bytes = size;
  m.seq = next_seq_++;
  fifo_.emplace(m.seq, rk);
  bytes_ += size;
  index_.emplace(std::move(rk), std::move(m));
}

Status DiskTier::Erase(const std::vector<std::string>& keys) {
  std::lock_guard lock(mu_);
  rocksdb::WriteBatch batch;
  for (const auto& key : keys) {
    std::string prefix = key;
    prefix.push_back('\0');
    auto it = index_.lower_bound(prefix);
    std::vector<std::string> victims;
    for (; it != index_.end() && it->first.starts_with(prefix); ++it) victims.push_back(it->first);
    for (const auto& v : victims) DropLocked(v, &batch);
  }
  if (batch.Count() == 0) return Status::OK();
  rocksdb::WriteOptions sync;
  sync.sync = true;
  rocksdb::Status s = db_->Write(sync, &batch);
  if (!s.ok()) return Status::IOError("edge disk tier: ejection not durable: " + s.ToString());
  return Status::OK();
}

Status DiskTier::Clear() {
  std::lock_guard lock(mu_);
  rocksdb::WriteBatch batch;
  for (const auto& [k, m] : index_) batch.Delete(k);
  index_.clear();
  fifo_.clear();
  bytes_ = 0;
  rocksdb::WriteOptions sync;
  sync.sync = true;
  rocksdb::Status s = db_->Write(sync, &batch);
  if (!s.ok()) return Status::IOError("edge disk tier: flush not durable: " + s.ToString());
  return Status::OK();
}

std::vector<std::string> DiskTier::KeysWhereUrl(
    const std::function<bool(std::string_view)>& pred) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> keys;
  for (const auto& [rk, m] : index_) {
    if (!pred(m.url)) continue;
    std::string key = rk.substr(0, rk.find('\0'));
    if (keys.empty() || keys.back() != key) keys.push_back(std::move(key));
  }
  return keys;
}

bool DiskTier::Lookup(std::string_view key,
                      const std::function<std::string(std::string_view)>& vary_value_of,
                      const std::function<void(std::shared_ptr<CachedObject>, bool)>& accept) {
  std::lock_guard lock(mu_);
  std::string prefix(key);
  prefix.push_back('\0');
  auto it = index_.lower_bound(prefix);
  for (; it != index_.end() && it->first.starts_with(prefix); ++it) {
    std::string value;
    if (!db_->Get(rocksdb::ReadOptions(), it->first, &value).ok()) continue;
    auto o = std::make_shared<CachedObject>();
    uint64_t position = 0;
    bool esi = false;
    if (!DecodeRecord(value, o.get(), &position, &esi)) continue;
    if (!o->vary_names.empty() &&
        MemoryStore::VariantValues(o->vary_names, vary_value_of) != o->vary_values)
      continue;
    accept(std::move(o), esi);
    return true;
  }
  return false;
}

Status DiskTier::MarkClean(uint64_t position) {
  std::lock_guard lock(mu_);
  std::string v;
  PutU64(&v, position);
  rocksdb::WriteOptions sync;
  sync.sync = true;
  rocksdb::Status s = db_->Put(sync, rocksdb::Slice(kCleanMarker.data(), kCleanMarker.size()), v);
  if (!s.ok())
    return Status::IOError("edge disk tier: cannot write the clean marker: " + s.ToString());
  return Status::OK();
}

uint64_t DiskTier::objects() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

uint64_t DiskTier::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

bool DiskTier::Contains(std::string_view key) const {
  std::lock_guard lock(mu_);
  std::string prefix(key);
  prefix.push_back('\0');
  auto it = index_.lower_bound(prefix);
  return it != index_.end() && it->first.starts_with(prefix);
}

}  // namespace cacheportal::edge
