#include "invalidator/metrics.h"

#include <cmath>
#include <cstdio>

namespace cacheportal::invalidator {

int LatencyHistogram::BucketOf(int64_t us) {
  if (us < 1) return 0;
  // 16 buckets per power of two.
  double b = std::log2(static_cast<double>(us)) * 16.0;
  int i = static_cast<int>(b) + 1;
  return i >= kBuckets ? kBuckets - 1 : i;
}

int64_t LatencyHistogram::UpperOf(int bucket) {
  if (bucket == 0) return 1;
  return static_cast<int64_t>(std::ceil(std::exp2(bucket / 16.0)));
}

void LatencyHistogram::Record(int64_t us) {
  if (us < 0) us = 0;
  ++buckets_[BucketOf(us)];
  ++count_;
  if (us > max_) max_ = us;
}

int64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * count_));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(UpperOf(i), max_);
  }
  return max_;
}

void LatencyHistogram::Merge(const LatencyHistogram& o) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += o.buckets_[i];
  count_ += o.count_;
  if (o.max_ > max_) max_ = o.max_;
}

std::string InvalidatorMetrics::ToPrometheus() const {
  std::string out;
  char buf[256];
  auto line = [&](const char* name, double v) {
    std::snprintf(buf, sizeof buf, "cacheportal_invalidator_%s %.17g\n", name, v);
    out += buf;
  };
  line("transactions_total", transactions);
  line("replayed_transactions_total", replayed_transactions);
  line("changes_total", changes);
  line("candidates_evaluated_total", candidates_evaluated);
  line("ejected_keys_total", ejected_keys);
  line("eject_failures_total", eject_failures);
  line("eject_all_total", eject_all);
  line("polling_queries_total", polling_queries);
  line("poll_instances_total", poll_instances);
  line("poll_overflows_total", poll_overflows);
  line("poll_errors_total", poll_errors);
  line("poll_timeouts_total", poll_timeouts);
  line("polls_skipped_total", polls_skipped);
  line("vouch_withdrawals_lag_total", vouch_withdrawals_lag);
  line("vouch_withdrawals_silence_total", vouch_withdrawals_silence);
  line("pending_transactions", pending_transactions);
  line("oldest_pending_age_seconds", oldest_pending_age_seconds);
  line("tainted_requests_total", tainted_requests);
  line("reconnects_total", reconnects);
  line("slot_recreated_total", slot_recreated);
  line("changes_per_second", changes_per_second);
  line("lag_seconds", lag_seconds);
  line("lag_bytes", lag_bytes);
  line("slot_retained_wal_bytes", slot_retained_wal_bytes);
  line("connected", connected ? 1 : 0);
  line("vouched", vouched ? 1 : 0);
  for (double q : {50.0, 90.0, 99.0, 99.9}) {
    std::snprintf(buf, sizeof buf,
                  "cacheportal_invalidator_latency_seconds{quantile=\"%g\"} %.6f\n", q / 100,
                  latency.Percentile(q) / 1e6);
    out += buf;
  }
  line("latency_seconds_count", latency.count());
  line("latency_seconds_max", latency.max() / 1e6);
  return out;
}

}  // namespace cacheportal::invalidator
