// VerifiedSessionCache: the same answers as SessionCookieCodec::Decode, with
// expiry still enforced for cookies that verified earlier.
#include "differentiator/session_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace cacheportal::differentiator::internal {
namespace {

TEST(VerifiedSessionCache, AgreesWithTheCodecIncludingExpiryAfterCaching) {
  SessionCookieCodec codec("k");
  VerifiedSessionCache cache("k");
  std::string good = codec.Encode({"alice", "en_US", 2000});
  for (int round = 0; round < 2; ++round) {  // the second round is served from the cache
    auto d = cache.Decode(good, 1000);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->user_id, "alice");
    EXPECT_EQ(d->locale, "en_US");
  }
  EXPECT_FALSE(cache.Decode(good, 2000)) << "expired at its expiry second, cached or not";
  EXPECT_FALSE(cache.Decode(good, 5000));
  std::string tampered = good;
  tampered[4] = tampered[4] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(cache.Decode(tampered, 1000));
  EXPECT_FALSE(VerifiedSessionCache("other").Decode(good, 1000));
}

TEST(VerifiedSessionCache, ManyThreadsManySessions) {
  SessionCookieCodec codec("k");
  VerifiedSessionCache cache("k");
  std::vector<std::string> cookies;
  for (int i = 0; i < 200; ++i)
    cookies.push_back(codec.Encode({"u" + std::to_string(i), "en_US", 9000}));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < 2000; ++n) {
        size_t i = (n * 7 + t) % cookies.size();
        auto d = cache.Decode(cookies[i], 1000);
        if (!d || d->user_id != "u" + std::to_string(i)) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace cacheportal::differentiator::internal
