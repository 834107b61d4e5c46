// Pure caching decisions: no socket, no clock.
#include "edgecache/cacheability.h"

#include <gtest/gtest.h>

namespace cacheportal::edge {
namespace {

TEST(Cacheability, StorabilityTable) {
  struct Row {
    int status;
    HeaderList headers;
    StoreOutcome want;
  } rows[] = {
      {200, {}, StoreOutcome::kStored},
      {404, {}, StoreOutcome::kStored},
      {500, {}, StoreOutcome::kUncacheableStatus},
      {302, {}, StoreOutcome::kUncacheableStatus},
      {200, {{"Set-Cookie", "a=1"}}, StoreOutcome::kSetCookie},
      {200, {{"Cache-Control", "public, max-age=60"}}, StoreOutcome::kStored},
      {200, {{"cache-control", "Private"}}, StoreOutcome::kPrivate},
      {200, {{"Cache-Control", "max-age=0, no-store"}}, StoreOutcome::kNoStore},
      {200, {{"Vary", "Accept, *"}}, StoreOutcome::kVaryStar},
  };
  for (const auto& r : rows) EXPECT_EQ(ResponseStorability(r.status, r.headers), r.want);
}

TEST(Cacheability, VaryIsNormalised) {
  bool star = true;
  auto v = ParseVary("Accept-Language, accept-encoding ,Accept-Language", &star);
  EXPECT_FALSE(star);
  EXPECT_EQ(v, (std::vector<std::string>{"accept-encoding", "accept-language"}));
}

TEST(Cacheability, ConditionalMatching) {
  EXPECT_TRUE(IfNoneMatchMatches("\"a\", \"b\"", "\"b\""));
  EXPECT_TRUE(IfNoneMatchMatches("W/\"b\"", "\"b\""));
  EXPECT_TRUE(IfNoneMatchMatches("*", "\"x\""));
  EXPECT_FALSE(IfNoneMatchMatches("\"a\"", "\"b\""));
  EXPECT_TRUE(NotModifiedSince("Sun, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT"));
  EXPECT_FALSE(NotModifiedSince("Sat, 05 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT"));
  EXPECT_FALSE(NotModifiedSince("garbage", "Sun, 06 Nov 1994 08:49:37 GMT"));
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(Cacheability, StrongEtagDependsOnTheBody) {
  EXPECT_EQ(StrongEtagFor("abc"), StrongEtagFor("abc"));
  EXPECT_NE(StrongEtagFor("abc"), StrongEtagFor("abd"));
  EXPECT_EQ(StrongEtagFor("abc").front(), '"');
}

TEST(Cacheability, CookieValue) {
  EXPECT_EQ(CookieValue("a=1; sid=xyz ;b=2", "sid").value(), "xyz");
  EXPECT_FALSE(CookieValue("asid=1", "sid").has_value());
  EXPECT_FALSE(CookieValue("", "sid").has_value());
}

}  // namespace
}  // namespace cacheportal::edge
