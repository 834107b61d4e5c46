#include "common/session_cookie.h"

#include <gtest/gtest.h>

namespace cacheportal {
namespace {

TEST(SessionCookie, RoundTrips) {
  SessionCookieCodec codec("secret");
  SessionData d{"j2ee", "ja_JP", 2000};
  std::string v = codec.Encode(d);
  EXPECT_EQ(v.substr(0, 3), "v1.");
  auto back = codec.Decode(v, 1000);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->user_id, "j2ee");
  EXPECT_EQ(back->locale, "ja_JP");
  EXPECT_EQ(back->expires_unix, 2000);
}

TEST(SessionCookie, RejectsTamperingExpiryAndWrongSecret) {
  SessionCookieCodec codec("secret");
  std::string v = codec.Encode({"alice", "en_US", 2000});
  EXPECT_FALSE(codec.Decode(v, 2000)) << "expired at its expiry second";
  EXPECT_FALSE(SessionCookieCodec("other").Decode(v, 1000));
  // Swap in another user's payload with the original MAC.
  std::string forged = codec.Encode({"mallory", "en_US", 2000});
  std::string spliced = forged.substr(0, forged.rfind('.')) + v.substr(v.rfind('.'));
  EXPECT_FALSE(codec.Decode(spliced, 1000));
  std::string flipped = v;
  flipped[5] = flipped[5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(codec.Decode(flipped, 1000));
  EXPECT_FALSE(codec.Decode("", 1000));
  EXPECT_FALSE(codec.Decode("v1.", 1000));
  EXPECT_FALSE(codec.Decode("v1.!!.??", 1000));
}

TEST(Encoding, Base64UrlAndPercent) {
  for (std::string s : std::initializer_list<std::string>{"", "a", "ab", "abc", "abcd",
                                                          std::string("\0\xff\x10", 3)}) {
    auto back = Base64UrlDecode(Base64UrlEncode(s));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(Base64UrlDecode("a"));
  EXPECT_FALSE(Base64UrlDecode("a+b="));
  EXPECT_EQ(PercentEncode("a b/é"), "a%20b%2F%C3%A9");
  EXPECT_EQ(PercentDecode("a+b%2F%C3%A9%zz"), "a b/é%zz");
}

}  // namespace
}  // namespace cacheportal

namespace cacheportal {
namespace {
TEST(Encoding, Base64UrlRejectsNonCanonicalTrailingBits) {
  EXPECT_EQ(Base64UrlEncode("a"), "YQ");
  EXPECT_FALSE(Base64UrlDecode("YR")) << "low bits of the last character must be zero";
}
}  // namespace
}  // namespace cacheportal
