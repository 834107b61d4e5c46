// The byte-level parsers behind Decide(): path canonicalisation and globs.
#include "differentiator/request_parsing.h"

#include <gtest/gtest.h>

namespace cacheportal::differentiator::internal {
namespace {

struct PathCase {
  const char* raw;
  const char* canonical;  // nullptr = rejected
};

TEST(CanonicalisePath, NormalisesEncodingSlashesAndDotSegments) {
  const PathCase cases[] = {
      {"/", "/"},
      {"/product/FI-SW-01", "/product/FI-SW-01"},
      {"//product///FI-SW-01", "/product/FI-SW-01"},
      {"/product/FI-SW-01/", "/product/FI-SW-01/"},
      {"/product/FI-SW-01//", "/product/FI-SW-01/"},
      {"/product/%46%49-SW-01", "/product/FI-SW-01"},  // unreserved escapes decoded
      {"/a%2fb", "/a%2Fb"},                            // reserved stay escaped, upper-case hex
      {"/a%2Fb/c", "/a%2Fb/c"},
      {"/a b", "/a%20b"},  // bytes outside pchar escaped
      {"/a/./b", "/a/b"},
      {"/a/b/..", "/a/"},
      {"/product/../cart", "/cart"},
      {"/product/%2e%2e/cart", "/cart"},  // encoded dot segments too
      {"/../../x", "/x"},
      {"/a/.", "/a/"},
      {"/caf\xc3\xa9", "/caf%C3%A9"},
      {"/a%zz", nullptr},
      {"/a%4", nullptr},
      {"product", nullptr},
      {"", nullptr},
  };
  for (const auto& c : cases) {
    std::string out;
    const char* why = CanonicalisePath(c.raw, PathParamStrip{true, nullptr}, &out);
    if (c.canonical == nullptr) {
      EXPECT_NE(why, nullptr) << c.raw;
    } else {
      EXPECT_EQ(why, nullptr) << c.raw << ": " << why;
      EXPECT_EQ(out, c.canonical) << c.raw;
    }
  }
}

TEST(CanonicalisePath, StripsOnlyListedPathParameters) {
  std::vector<std::string> names = {"jsessionid"};
  PathParamStrip strip{false, &names};
  const PathCase cases[] = {
      {"/product/FI-SW-01;jsessionid=ABC123", "/product/FI-SW-01"},
      {"/product/FI-SW-01;JSESSIONID=ABC123", "/product/FI-SW-01"},  // names case-insensitive
      {"/a;jsessionid=1/b", "/a/b"},
      {"/a;v=2;jsessionid=1", "/a;v=2"},
      {"/a;v=2", "/a;v=2"},
      {"/;jsessionid=1", "/"},
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(CanonicalisePath(c.raw, strip, &out), nullptr) << c.raw;
    EXPECT_EQ(out, c.canonical) << c.raw;
  }
  std::string all;
  ASSERT_EQ(CanonicalisePath("/a;v=2;jsessionid=1/b;x", PathParamStrip{true, nullptr}, &all),
            nullptr);
  EXPECT_EQ(all, "/a/b");
}

struct GlobCase {
  const char* glob;
  const char* path;
  bool match;
};

TEST(PathGlob, StarIsOneSegmentDoubleStarIsAny) {
  const GlobCase cases[] = {
      {"/product/*", "/product/FI-SW-01", true},
      {"/product/*", "/product/a/b", false},
      {"/product/*", "/product", false},
      {"/product/*", "/products/x", false},
      {"/product/*.html", "/product/x.html", true},
      {"/product/*.html", "/product/x.htm", false},
      {"/frag/**", "/frag", true},
      {"/frag/**", "/frag/a/b/c", true},
      {"/frag/**", "/fragment", false},
      {"/a/**/z", "/a/z", true},
      {"/a/**/z", "/a/b/c/z", true},
      {"/a/**/z", "/a/b/c/y", false},
      {"/**", "/", true},
      {"/**", "/anything/at/all", true},
      {"/", "/", true},
      {"/", "/x", false},
      {"/search", "/search", true},
      {"/search", "/search/", false},
  };
  for (const auto& c : cases) {
    PathGlob g;
    ASSERT_EQ(CompilePathGlob(c.glob, &g), "") << c.glob;
    EXPECT_EQ(g.Matches(c.path), c.match) << c.glob << " vs " << c.path;
  }
}

TEST(PathGlob, RejectsUnsupportedSyntax) {
  for (const char* bad : {"product/*", "/a**", "/a/**b", "/a?b", "/{id}", "/a[0-9]", "/a;x", ""}) {
    PathGlob g;
    EXPECT_NE(CompilePathGlob(bad, &g), "") << bad;
  }
}

TEST(NameGlob, MatchesTrackerPatterns) {
  EXPECT_TRUE(NameGlobMatch("utm_*", "utm_source"));
  EXPECT_TRUE(NameGlobMatch("utm_*", "utm_"));
  EXPECT_FALSE(NameGlobMatch("utm_*", "xutm_source"));
  EXPECT_TRUE(NameGlobMatch("gclid", "gclid"));
  EXPECT_FALSE(NameGlobMatch("gclid", "gclidx"));
  EXPECT_TRUE(NameGlobMatch("*id", "fbclid"));
}

TEST(RegexLiteralPrefix, OnlyWhatEveryMatchMustStartWith) {
  const std::pair<const char*, const char*> cases[] = {
      {"^/frag/items$", "/frag/items"},
      {"^/frags?$", "/frag"},
      {"^/a+b", "/a"},
      {"^/(signin|signout)$", ""},
      {"^/a|^/b", ""},
      {"/frag", ""},
      {"^/a\\.b", "/a.b"},
      {"^/a\\d", "/a"},
      {"^/a{2}", "/"},
      {"^/a*b", "/"},
      {"^/a.b", "/a"},
      {"^/a[bc]", "/a"},
      {"^/a(b)", "/a"},
      {"^", ""},
  };
  for (const auto& [re, prefix] : cases) EXPECT_EQ(RegexLiteralPrefix(re), prefix) << re;
  bool exact = false;
  EXPECT_EQ(RegexLiteralPrefix("^/frag/items$", &exact), "/frag/items");
  EXPECT_TRUE(exact);
  for (const char* re : {"^/frag/items", "^/frags?$", "^/a.$", "^/a$b", "^/a\\d$"}) {
    RegexLiteralPrefix(re, &exact);
    EXPECT_FALSE(exact) << re;
  }
}

TEST(FindCookie, AcrossHeadersWithSpacesAndQuotes) {
  RequestView req;
  req.headers = {{"Cookie", "a=1;  lang=ja ;b=2"}, {"cookie", "sid=\"xyz\""}};
  std::string_view v;
  EXPECT_EQ(FindCookie(req, "lang", &v), 1);
  EXPECT_EQ(v, "ja");
  EXPECT_EQ(FindCookie(req, "sid", &v), 1);
  EXPECT_EQ(v, "xyz");
  EXPECT_EQ(FindCookie(req, "missing", &v), 0);
  req.headers.push_back({"COOKIE", "lang=en"});
  EXPECT_EQ(FindCookie(req, "lang", &v), 2) << "two different values are ambiguous";
  req.headers.back().second = "lang=ja";
  EXPECT_EQ(FindCookie(req, "lang", &v), 1) << "the same value twice is not";
}

}  // namespace
}  // namespace cacheportal::differentiator::internal
