#include "bench/paper/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace cacheportal::bench {

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  if (p <= 0) return sorted.front();
  if (p >= 100) return sorted.back();
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::max<size_t>(rank, 1) - 1];
}

CacheState ParseXCache(std::string_view v) {
  if (v == "HIT") return CacheState::kHit;
  if (v == "MISS") return CacheState::kMiss;
  if (v == "PASS") return CacheState::kPass;
  return CacheState::kNone;
}

void Recorder::Record(Clock::time_point done, int64_t latency_us, bool ok, CacheState cache,
                      bool catalog) {
  auto since = std::chrono::duration_cast<std::chrono::milliseconds>(done - start_).count();
  if (since < 0) return;
  size_t s = static_cast<size_t>(since / 1000);
  std::lock_guard lock(mu_);
  if (buckets_.size() <= s) buckets_.resize(s + 1);
  Bucket& b = buckets_[s];
  b.ms.push_back(static_cast<double>(latency_us) / 1000.0);
  if (!ok) ++b.errors;
  if (cache == CacheState::kHit) ++b.hits;
  if (cache == CacheState::kMiss) ++b.misses;
  if (cache == CacheState::kPass) ++b.passes;
  if (catalog) {
    ++b.catalog;
    if (cache == CacheState::kHit) ++b.catalog_hits;
  }
}

SecondStats Recorder::Second(int s) const {
  SecondStats out;
  out.second = s;
  std::vector<double> ms;
  {
    std::lock_guard lock(mu_);
    if (s < 0 || static_cast<size_t>(s) >= buckets_.size()) return out;
    const Bucket& b = buckets_[static_cast<size_t>(s)];
    ms = b.ms;
    out.errors = b.errors;
    out.hits = b.hits;
    out.misses = b.misses;
    out.passes = b.passes;
  }
  out.requests = ms.size();
  std::sort(ms.begin(), ms.end());
  out.p50_ms = Percentile(ms, 50);
  out.p95_ms = Percentile(ms, 95);
  out.p99_ms = Percentile(ms, 99);
  out.mean_ms = ms.empty() ? 0 : std::accumulate(ms.begin(), ms.end(), 0.0) / ms.size();
  return out;
}

std::vector<SecondStats> Recorder::Timeline(int seconds) const {
  std::vector<SecondStats> out;
  for (int s = 0; s < seconds; ++s) out.push_back(Second(s));
  return out;
}

RunSummary Recorder::Summarize(std::string label, int users, int from_s, int to_s) const {
  RunSummary r;
  r.label = std::move(label);
  r.users = users;
  double seconds = std::max(0, to_s - from_s);
  r.seconds = seconds;
  std::vector<double> ms;
  {
    std::lock_guard lock(mu_);
    size_t n = std::min(buckets_.size(), static_cast<size_t>(std::max(0, to_s)));
    for (size_t i = static_cast<size_t>(std::max(0, from_s)); i < n; ++i) {
      const Bucket& b = buckets_[i];
      ms.insert(ms.end(), b.ms.begin(), b.ms.end());
      r.errors += b.errors;
      r.hits += b.hits;
      r.misses += b.misses;
      r.passes += b.passes;
      r.catalog_requests += b.catalog;
      r.catalog_hits += b.catalog_hits;
    }
  }
  r.requests = ms.size();
  std::sort(ms.begin(), ms.end());
  r.throughput = seconds > 0 ? static_cast<double>(r.requests) / seconds : 0;
  r.mean_ms = ms.empty() ? 0 : std::accumulate(ms.begin(), ms.end(), 0.0) / ms.size();
  r.p50_ms = Percentile(ms, 50);
  r.p95_ms = Percentile(ms, 95);
  r.p99_ms = Percentile(ms, 99);
  r.max_ms = ms.empty() ? 0 : ms.back();
  return r;
}

}  // namespace cacheportal::bench
