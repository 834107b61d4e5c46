// Invalidator metrics: counters, gauges and the invalidation-latency
// histogram (Commit's commit_time → ejection done). A snapshot is a plain
// struct; the live counters are atomics updated by the stream thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace cacheportal::invalidator {

// Log-linear buckets over microseconds: 1 µs .. ~1 h, ~4.5% wide.
class LatencyHistogram {
 public:
  static constexpr int kBuckets = 512;
  void Record(int64_t micros);
  uint64_t count() const { return count_; }
  int64_t max() const { return max_; }
  // p in [0,100]; upper bound of the bucket holding the p-th percentile (µs).
  int64_t Percentile(double p) const;
  void Merge(const LatencyHistogram& other);

 private:
  static int BucketOf(int64_t micros);
  static int64_t UpperOf(int bucket);
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  int64_t max_ = 0;
};

struct InvalidatorMetrics {
  uint64_t transactions = 0;           // committed transactions processed
  uint64_t replayed_transactions = 0;  // skipped: end_lsn already applied
  uint64_t changes = 0;                // row changes (insert/update/delete) + truncated tables
  uint64_t candidates_evaluated = 0;   // instance evaluations against changes
  uint64_t ejected_keys = 0;           // keys passed to Ejector::Eject (after per-txn dedup)
  uint64_t eject_calls = 0;
  uint64_t eject_failures = 0;
  uint64_t eject_all = 0;  // EjectAll() calls (lost slot, unknown relation)
  uint64_t polling_queries = 0;
  // Join checks answered by those queries: one partner poll settles every
  // candidate instance of a template for a changed row, so
  // poll_instances / polling_queries is the batching factor.
  uint64_t poll_instances = 0;
  uint64_t poll_overflows = 0;        // partner polls with too many partners (probed per instance)
  uint64_t poll_errors = 0;           // a failed poll ejects conservatively
  uint64_t poll_guard_ejections = 0;  // provisional "no" overturned by a later commit
  uint64_t poll_timeouts = 0;         // polls cut by statement_timeout (also in poll_errors)
  uint64_t polls_skipped = 0;  // join checks ejected without polling: budget spent or backlog
  uint64_t tainted_requests = 0;
  uint64_t reconnects = 0;
  uint64_t slot_recreated = 0;
  double changes_per_second = 0;  // over the last status interval
  double lag_seconds = 0;         // now - commit_time of the last commit applied (0 when idle)
  uint64_t lag_bytes = 0;         // server WAL end - applied LSN
  uint64_t slot_retained_wal_bytes = 0;  // pg_current_wal_lsn() - restart_lsn of the slot
  uint64_t applied_lsn = 0;
  uint64_t confirmed_lsn = 0;  // last flush position sent to the server
  bool connected = false;
  bool vouched = false;
  uint64_t vouch_withdrawals_lag = 0;      // watchdog: a received change outlived max_staleness
  uint64_t vouch_withdrawals_silence = 0;  // watchdog: server (or stream thread) silent too long
  uint64_t pending_transactions = 0;       // received, not yet fully ejected
  double oldest_pending_age_seconds = 0;   // now - commit time of the oldest of them
  LatencyHistogram latency;                // µs
  std::string last_error;

  double InstancesPerPoll() const {
    return polling_queries ? static_cast<double>(poll_instances) / polling_queries : 0;
  }
  double CandidatesPerChange() const {
    return changes ? static_cast<double>(candidates_evaluated) / changes : 0;
  }
  // Prometheus text exposition (cacheportal_invalidator_* names).
  std::string ToPrometheus() const;
};

}  // namespace cacheportal::invalidator
