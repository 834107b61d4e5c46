#include "differentiator/session_cache.h"

namespace cacheportal::differentiator::internal {

std::optional<SessionData> VerifiedSessionCache::Decode(std::string_view value,
                                                        int64_t now_unix) const {
  size_t h = StringHash()(value);
  Shard& shard = shards_[h % kShards];
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.entries.find(value);
    if (it != shard.entries.end()) {
      if (it->second.expires_unix > now_unix) return it->second;
      shard.entries.erase(it);
      return std::nullopt;  // it verified once; now it has expired
    }
  }
  std::optional<SessionData> data = codec_.Decode(value, now_unix);
  if (data) {
    std::lock_guard<std::mutex> lock(shard.mu);
    if (shard.entries.size() >= kMaxPerShard) shard.entries.clear();
    shard.entries.emplace(std::string(value), *data);
  }
  return data;
}

}  // namespace cacheportal::differentiator::internal
