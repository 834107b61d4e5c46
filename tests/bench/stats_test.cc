#include "bench/paper/stats.h"

#include <gtest/gtest.h>

namespace cacheportal::bench {
namespace {

TEST(Percentile, NearestRank) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 95), 95);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 100), 100);
  EXPECT_EQ(Percentile(v, 0), 1);
  EXPECT_EQ(Percentile({7}, 99), 7);
  EXPECT_EQ(Percentile({}, 50), 0);
  EXPECT_EQ(Percentile({1, 2, 3, 4}, 50), 2);
  EXPECT_EQ(Percentile({1, 2, 3, 4}, 51), 3);
}

TEST(ParseXCache, KnowsTheEdgesValues) {
  EXPECT_EQ(ParseXCache("HIT"), CacheState::kHit);
  EXPECT_EQ(ParseXCache("MISS"), CacheState::kMiss);
  EXPECT_EQ(ParseXCache("PASS"), CacheState::kPass);
  EXPECT_EQ(ParseXCache(""), CacheState::kNone);
}

TEST(Recorder, BucketsBySecondAndSummaryLeavesOutTheWarmup) {
  auto t0 = Recorder::Clock::now();
  Recorder r(t0);
  using std::chrono::milliseconds;
  r.Record(t0 + milliseconds(500), 1000, true, CacheState::kMiss, true);  // warm-up second 0
  r.Record(t0 + milliseconds(1200), 2000, true, CacheState::kHit, true);  // second 1
  r.Record(t0 + milliseconds(1300), 4000, false, CacheState::kPass, false);
  r.Record(t0 + milliseconds(2100), 3000, true, CacheState::kHit, true);  // second 2
  r.Record(t0 - milliseconds(10), 1, true, CacheState::kHit, true);       // before start: dropped
  SecondStats s1 = r.Second(1);
  EXPECT_EQ(s1.requests, 2u);
  EXPECT_EQ(s1.hits, 1u);
  EXPECT_EQ(s1.passes, 1u);
  EXPECT_EQ(s1.errors, 1u);
  EXPECT_DOUBLE_EQ(s1.p50_ms, 2.0);
  EXPECT_DOUBLE_EQ(s1.mean_ms, 3.0);
  EXPECT_EQ(r.Timeline(4).size(), 4u);
  EXPECT_EQ(r.Timeline(4)[3].requests, 0u);

  RunSummary sum = r.Summarize("edge", 8, 1, 3);
  EXPECT_EQ(sum.requests, 3u);
  EXPECT_EQ(sum.hits, 2u);
  EXPECT_EQ(sum.errors, 1u);
  EXPECT_DOUBLE_EQ(sum.throughput, 1.5);
  EXPECT_DOUBLE_EQ(sum.p50_ms, 3.0);
  EXPECT_DOUBLE_EQ(sum.max_ms, 4.0);
  EXPECT_EQ(sum.catalog_requests, 2u);
  EXPECT_DOUBLE_EQ(sum.CatalogHitRatio(), 1.0);
  EXPECT_NEAR(sum.HitRatio(), 2.0 / 3, 1e-12);
}

}  // namespace
}  // namespace cacheportal::bench
