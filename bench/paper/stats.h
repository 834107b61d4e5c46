// Measurement: percentiles, the per-second timeline of one run, and the
// summary the report prints. Recorder is thread-safe (one mutex; a few
// thousand records a second do not contend measurably).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace cacheportal::bench {

// Nearest-rank percentile of `sorted` (ascending), p in [0,100]; 0 when empty.
double Percentile(const std::vector<double>& sorted, double p);

enum class CacheState : uint8_t { kNone, kHit, kMiss, kPass };
CacheState ParseXCache(std::string_view v);

// One second of a run.
struct SecondStats {
  int second = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t hits = 0, misses = 0, passes = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0, mean_ms = 0;
  double HitRatio() const { return requests ? static_cast<double>(hits) / requests : 0; }
};

struct RunSummary {
  std::string label;  // "origin" or "edge"
  int users = 0;
  double seconds = 0;
  uint64_t requests = 0, errors = 0, hits = 0, misses = 0, passes = 0;
  uint64_t catalog_requests = 0, catalog_hits = 0;
  double throughput = 0;  // requests/s
  double mean_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
  double HitRatio() const { return requests ? static_cast<double>(hits) / requests : 0; }
  double CatalogHitRatio() const {
    return catalog_requests ? static_cast<double>(catalog_hits) / catalog_requests : 0;
  }
};

class Recorder {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Recorder(Clock::time_point start) : start_(start) {}

  // Records one finished request (latency in microseconds) in the second it
  // finished.
  void Record(Clock::time_point done, int64_t latency_us, bool ok, CacheState cache, bool catalog);

  // Stats of second `s` (0-based from start), computed from what is recorded.
  SecondStats Second(int s) const;
  std::vector<SecondStats> Timeline(int seconds) const;
  // Summary over seconds [from_s, to_s) (the warm-up is left out).
  RunSummary Summarize(std::string label, int users, int from_s, int to_s) const;

 private:
  struct Bucket {
    uint64_t errors = 0, hits = 0, misses = 0, passes = 0, catalog = 0, catalog_hits = 0;
    std::vector<double> ms;
  };
  mutable std::mutex mu_;
  Clock::time_point start_;
  std::vector<Bucket> buckets_;
};

}  // namespace cacheportal::bench
