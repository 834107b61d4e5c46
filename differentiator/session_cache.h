// Private to the differentiator: remembers signed session cookies that
// verified, so a signed-in visitor's every request does not pay an
// HMAC-SHA256 (about 2 µs with OpenSSL 3's one-shot HMAC) on the hit path.
//
// Safe because a cookie's verification result depends only on its exact bytes
// and the clock: the entry keeps the cookie's own expiry and a lookup at or
// after it misses (and drops the entry). Only cookies that verified are kept,
// and they can only have been issued by the store, so an attacker cannot fill
// the cache with forgeries; each shard is still bounded and simply cleared
// when full.
//
// Thread-safety: all methods may be called concurrently (sharded mutexes).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/session_cookie.h"

namespace cacheportal::differentiator::internal {

class VerifiedSessionCache {
 public:
  explicit VerifiedSessionCache(std::string secret) : codec_(std::move(secret)) {}

  // Same contract as SessionCookieCodec::Decode.
  std::optional<SessionData> Decode(std::string_view value, int64_t now_unix) const;

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxPerShard = 4096;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, SessionData, StringHash, std::equal_to<>> entries;
  };

  SessionCookieCodec codec_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace cacheportal::differentiator::internal
