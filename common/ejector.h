// Ejector: how invalidations reach caches. The invalidator calls it; the
// in-process edge, a remote edge over HTTP purge, or a Varnish fleet
// implement it.
//
// Contract (the freshness contract depends on it):
//  * Eject() returns only after every listed key is gone from the cache AND
//    any fill of that key that is in flight at the time of the call will not
//    be stored (the edge marks pending fills as tainted). A remote
//    implementation returns non-OK when it cannot confirm that; the
//    invalidator then retries and does not acknowledge the replication
//    position.
//  * EjectAll() is the same for every key (used when the slot was lost, on
//    TRUNCATE of widely read tables, or when the map is unusable).
//  * SetVouched(false) makes the cache stop serving hits (fail closed) until
//    SetVouched(true); used while the invalidator is disconnected or lags
//    beyond max_staleness.
// Implementations must be thread-safe. Keys are cache-key strings as produced
// by differentiator::CacheKey::ToString(); ejecting an unknown key is OK.
#pragma once

#include <span>
#include <string>

#include "common/status.h"

namespace cacheportal {

class Ejector {
 public:
  virtual ~Ejector() = default;
  virtual Status Eject(std::span<const std::string> keys) = 0;
  virtual Status EjectAll() = 0;
  virtual void SetVouched(bool vouched) = 0;
};

}  // namespace cacheportal
