// Named outcomes of each stage of the edge's request path
// (key → lookup → coalesce → fetch → ESI → store). Every request bumps exactly
// one outcome per stage it reaches; metrics export them as
// cacheportal_edge_stage_total{stage=...,outcome=...} and tests assert on them.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cacheportal::edge {

enum class KeyOutcome {
  kCache,          // the rules gave a key
  kPass,           // the rules said pass
  kMethod,         // not GET/HEAD: always passed
  kReadYourWrites  // the session wrote recently: bypass the cache
};
inline constexpr const char* kKeyOutcomeNames[] = {"cache", "pass", "method", "read_your_writes"};

enum class LookupOutcome {
  kHit,
  kMiss,
  kExpired,       // found but past its TTL backstop
  kNotVouched,    // the edge cannot vouch for freshness (SetVouched(false)): no hits
  kRevalidate,    // client Cache-Control: no-cache with edge.client_no_cache=revalidate
  kVaryMismatch,  // found, but no variant for this request's Vary'd headers
  kDiskHit        // not in memory; found in the disk tier and promoted
};
inline constexpr const char* kLookupOutcomeNames[] = {
    "hit", "miss", "expired", "not_vouched", "revalidate", "vary_mismatch", "disk_hit"};

enum class CoalesceOutcome {
  kLeader,          // first miss: this request fetches for everyone
  kFollowerServed,  // waited and got the leader's cacheable answer
  kReleased,        // waited; the answer was uncacheable (or another variant): fetch yourself
  kTimedOut,        // waited too long: fetch yourself
  kQueueFull        // too many waiters already: fetch yourself
};
inline constexpr const char* kCoalesceOutcomeNames[] = {"leader", "follower_served", "released",
                                                        "timed_out", "queue_full"};

enum class FetchOutcome {
  kOk,
  kConnectFailed,  // 502
  kTimeout,        // 504
  kProtocolError,  // 502
  kBodyTooLarge,   // 502
};
inline constexpr const char* kFetchOutcomeNames[] = {"ok", "connect_failed", "timeout",
                                                     "protocol_error", "body_too_large"};

enum class EsiOutcome {
  kNotEsi,
  kAssembled,
  kAssembledWithErrors,  // markup errors or failed includes; assembled anyway
  kDepthExceeded,        // nested too deep: includes left out
};
inline constexpr const char* kEsiOutcomeNames[] = {"not_esi", "assembled", "assembled_with_errors",
                                                   "depth_exceeded"};

enum class StoreOutcome {
  kStored,
  kUncacheableStatus,
  kSetCookie,
  kPrivate,  // Cache-Control private
  kNoStore,  // Cache-Control no-store
  kVaryStar,
  kTooLarge,          // bigger than a shard's budget
  kNoRegistrar,       // nothing can vouch for it (standalone without --ttl-only)
  kRegistrarRefused,  // PageRegistrar verdict other than kStore
  kTainted,           // Eject() arrived while the fill was in flight
  kNotVouched,        // SetVouched(false) while filling
  kFragmentFailed,    // an ESI include failed or was uncacheable: the assembly is not stored
  kFetchFailed,       // no origin answer (502/504)
};
inline constexpr const char* kStoreOutcomeNames[] = {
    "stored",      "uncacheable_status", "set_cookie",   "private",           "no_store",
    "vary_star",   "too_large",          "no_registrar", "registrar_refused", "tainted",
    "not_vouched", "fragment_failed",    "fetch_failed"};

// Fixed-size counter arrays indexed by an outcome enum.
template <typename E, size_t N>
struct OutcomeCounters {
  std::array<std::atomic<uint64_t>, N> v{};
  void Add(E e) { v[static_cast<size_t>(e)].fetch_add(1, std::memory_order_relaxed); }
  uint64_t Get(E e) const { return v[static_cast<size_t>(e)].load(std::memory_order_relaxed); }
};

}  // namespace cacheportal::edge
