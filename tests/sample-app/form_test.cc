// Pure parsing of what browsers send the store (no server, no database).
#include "sample-app/form.h"

#include <gtest/gtest.h>

#include "sample-app/html.h"
#include "sample-app/password.h"

namespace cacheportal::store {
namespace {

TEST(StoreForm, ParsesUrlEncodedFields) {
  auto f = ParseUrlEncoded("q=big+fish&category=FISH&empty=&flag&q=second&x=%E9%AD%9A");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->Get("q"), "big fish");  // first value wins
  EXPECT_EQ(f->Get("category"), "FISH");
  EXPECT_EQ(f->Get("empty"), "");
  EXPECT_EQ(f->Get("flag"), "");
  EXPECT_EQ(f->Get("x"), "魚");
  EXPECT_FALSE(f->Get("missing").has_value());
  EXPECT_TRUE(ParseUrlEncoded("").ok());
  EXPECT_TRUE(ParseUrlEncoded("&&a=1&&").ok());
}

TEST(StoreForm, RejectsBadEscapesInvalidUtf8AndNul) {
  for (const char* bad : {"q=%", "q=%4", "q=%zz", "q=%ff", "q=%c3%28", "q=%00", "q=%ed%a0%80",
                          "q=%c0%af", "q=%f4%90%80%80", "%zz=1"})
    EXPECT_FALSE(ParseUrlEncoded(bad).ok()) << bad;
}

TEST(StoreForm, BodiesByContentType) {
  auto u = ParseFormBody("application/x-www-form-urlencoded; charset=utf-8", "q=a+b");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->Get("q"), "a b");
  auto j = ParseFormBody("application/json", R"({"q":"x","n":5,"b":true,"o":{"k":[1]},"q":"y"})");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(j->Get("q"), "y");  // the last of a repeated member
  EXPECT_EQ(j->Get("n"), "5");
  EXPECT_EQ(j->Get("b"), "true");
  EXPECT_EQ(j->Get("o"), R"({"k":[1]})");
  EXPECT_TRUE(ParseFormBody("application/vnd.api+json", R"({"q":"x"})").ok());
  auto m =
      ParseFormBody("multipart/form-data; boundary=b",
                    "--b\r\ncontent-disposition: form-data; name=q\r\n\r\nline1\r\nline2\r\n"
                    "--b\r\nContent-Disposition: form-data; filename=\"a;b\"; name=\"f\"\r\n\r\n"
                    "\r\n--b--");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->Get("q"), "line1\r\nline2");
  EXPECT_EQ(m->Get("f"), "");
  EXPECT_TRUE(ParseFormBody("text/plain", "").ok());  // empty: no fields
  EXPECT_FALSE(ParseFormBody("", "q=1").ok());
  EXPECT_FALSE(ParseFormBody("text/plain", "q=1").ok());
  EXPECT_FALSE(ParseFormBody("application/json", "{").ok());
  EXPECT_FALSE(ParseFormBody("application/json", "[]").ok());
  EXPECT_FALSE(ParseFormBody("application/json", R"({"q":"a\u0000b"})").ok());
  for (const char* bad : {"--b\r\n\r\nno name\r\n--b--",  // no disposition
                          "--b\r\nContent-Disposition: attachment; name=q\r\n\r\nv\r\n--b--",
                          "--b\r\nContent-Disposition: form-data; name=q\r\n\r\nv",  // unterminated
                          "--c\r\nContent-Disposition: form-data; name=q\r\n\r\nv\r\n--c--"})
    EXPECT_FALSE(ParseFormBody("multipart/form-data; boundary=b", bad).ok()) << bad;
  EXPECT_FALSE(ParseFormBody("multipart/form-data", "--b\r\n").ok());  // no boundary parameter
}

TEST(StoreForm, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("エンゼルフィッシュ ¥ 😀"));
  EXPECT_FALSE(IsValidUtf8(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidUtf8("\xe3\x82"));  // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

TEST(StoreForm, SplitsTargetsAndCookies) {
  auto [path, query] = SplitTarget("/frag/item?id=EST-1&x=?");
  EXPECT_EQ(path, "/frag/item");
  EXPECT_EQ(query, "id=EST-1&x=?");
  EXPECT_EQ(SplitTarget("/").second, "");
  auto cookies = ParseCookies({"lang=ja; sid=v1.a.b", " junk ; =x; quoted=\"v\""});
  ASSERT_EQ(cookies.size(), 3u);
  EXPECT_EQ(cookies[0], (std::pair<std::string, std::string>{"lang", "ja"}));
  EXPECT_EQ(cookies[1].second, "v1.a.b");
  EXPECT_EQ(cookies[2], (std::pair<std::string, std::string>{"quoted", "v"}));
}

TEST(StoreHtml, EscapesTextAndIds) {
  EXPECT_EQ(Esc("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(EscUrl("FI-SW-01"), "FI-SW-01");
  EXPECT_EQ(EscUrl("a b/c\"d"), "a%20b%2Fc%22d");
}

TEST(StorePassword, HashesVerifyAndRejectTampering) {
  std::string h = HashPassword("secret", "salt", 1000);
  EXPECT_EQ(h.rfind("pbkdf2_sha256$1000$", 0), 0u);
  EXPECT_TRUE(VerifyPassword("secret", h));
  EXPECT_FALSE(VerifyPassword("Secret", h));
  EXPECT_FALSE(VerifyPassword("secret", "secret"));
  EXPECT_FALSE(VerifyPassword("secret", "pbkdf2_sha256$0$c2FsdA$AAAA"));
  EXPECT_FALSE(VerifyPassword("secret", "pbkdf2_sha256$99999999$c2FsdA$AAAA"));
  std::string other_salt = HashPassword("secret", "pepper", 1000);
  EXPECT_NE(h, other_salt);
  EXPECT_EQ(h, HashPassword("secret", "salt", 1000));  // deterministic for a given salt
}

}  // namespace
}  // namespace cacheportal::store
