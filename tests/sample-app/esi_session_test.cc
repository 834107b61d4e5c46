// ESI markup vs self-assembled pages, and the signed session cookie.
#include <gtest/gtest.h>

#include <ctime>

#include "common/session_cookie.h"
#include "store_fixture.h"

namespace cacheportal::testing {
namespace {

bool Has(const std::string& body, const std::string& needle) {
  return body.find(needle) != std::string::npos;
}

const Headers kEsi = {{"Surrogate-Capability", "edge1=\"ESI/1.0\""}};

Headers With(Headers h, const Headers& more) {
  h.insert(h.end(), more.begin(), more.end());
  return h;
}

// What an ESI processor does: replace every include by the fragment's body,
// fetched with the same request headers.
std::string Substitute(uint16_t port, const std::string& page, const Headers& h, int* includes) {
  static const std::string kOpen = "<esi:include src=\"";
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t at = page.find(kOpen, pos);
    if (at == std::string::npos) break;
    out += page.substr(pos, at - pos);
    size_t start = at + kOpen.size();
    size_t end = page.find("\"/>", start);
    if (end == std::string::npos) {
      ADD_FAILURE() << "unterminated include at " << at;
      return out;
    }
    std::string src = page.substr(start, end - start);
    auto frag = Get(port, src, h);
    EXPECT_EQ(frag.status, 200) << src;
    out += frag.body;
    pos = end + 3;
    ++*includes;
  }
  return out + page.substr(pos);
}

class StoreEsi : public StoreTest {
 protected:
  // The ESI page with its includes resolved must equal the page the store
  // assembles itself, byte for byte.
  void ExpectSameBytes(const std::string& method, const std::string& path, const Headers& h,
                       const std::string& body = {}) {
    auto plain = HttpCall(port(), method, path, h, body);
    auto esi = HttpCall(port(), method, path, With(h, kEsi), body);
    ASSERT_EQ(plain.status, 200) << path << plain.body;
    ASSERT_EQ(esi.status, 200) << path;
    EXPECT_EQ(esi.Header("Surrogate-Control"), "content=\"ESI/1.0\"") << path;
    EXPECT_EQ(plain.Header("Surrogate-Control"), "") << path;
    EXPECT_FALSE(Has(plain.body, "<esi:")) << path;
    int includes = 0;
    std::string assembled = Substitute(port(), esi.body, h, &includes);
    EXPECT_GE(includes, 2) << path;  // at least categories and mylist
    EXPECT_EQ(assembled, plain.body) << path;
  }
};

TEST_F(StoreEsi, EsiPagesAssembleToTheSameBytes) {
  // Give j2ee a purchase so that its mylist fragment has content.
  std::string sid = SignIn("j2ee", "j2ee");
  ASSERT_EQ(PostForm(port(), "/cart/add", "itemid=EST-6", {{"Cookie", sid}}).status, 303);
  ASSERT_EQ(PostForm(port(), "/checkout", "", {{"Cookie", sid}}).status, 303);

  const std::vector<Headers> who = {
      {}, {{"Cookie", "lang=ja"}}, {{"Cookie", sid}}, {{"Cookie", sid + "; lang=ja"}}};
  for (const auto& h : who) {
    for (const char* path : {"/", "/category/FISH", "/product/FI-SW-01", "/item/EST-1"})
      ExpectSameBytes("GET", path, h);
    ExpectSameBytes("POST", "/search",
                    With(h, {{"Content-Type", "application/x-www-form-urlencoded"}}), "q=fish");
  }
  ExpectSameBytes("GET", "/account", {{"Cookie", sid}});
  ExpectSameBytes("GET", "/cart", {{"Cookie", sid}});
}

TEST_F(StoreEsi, EsiIncludesNameTheFragments) {
  auto r = Get(port(), "/product/FI-SW-01", kEsi);
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(Has(r.body, "<esi:include src=\"/frag/categories\"/>"));
  EXPECT_TRUE(Has(r.body, "<esi:include src=\"/frag/items?product=FI-SW-01\"/>"));
  EXPECT_TRUE(Has(r.body, "<esi:include src=\"/frag/mylist\"/>"));
  EXPECT_FALSE(Has(r.body, "Angelfish"));
  auto c = Get(port(), "/category/REPTILES", kEsi);
  EXPECT_TRUE(Has(c.body, "<esi:include src=\"/frag/products?category=REPTILES\"/>"));
  auto i = Get(port(), "/item/EST-11", kEsi);
  EXPECT_TRUE(Has(i.body, "<esi:include src=\"/frag/item?id=EST-11\"/>"));
  // A capability header that does not offer ESI/1.0 gets an assembled page.
  auto other = Get(port(), "/item/EST-11", {{"Surrogate-Capability", "edge=\"ESI-Inline/1.0\""}});
  EXPECT_FALSE(Has(other.body, "<esi:"));
}

TEST_F(StoreEsi, CatalogMarkupDoesNotDependOnTheUser) {
  std::string sid = SignIn("user1", "password");
  for (const char* path :
       {"/", "/category/DOGS", "/product/K9-DL-01", "/item/EST-10", "/frag/categories",
        "/frag/products?category=DOGS", "/frag/items?product=K9-DL-01", "/frag/item?id=EST-10"}) {
    auto anon = Get(port(), path, kEsi);
    auto user = Get(port(), path, With(kEsi, {{"Cookie", sid}}));
    ASSERT_EQ(anon.status, 200) << path;
    EXPECT_EQ(anon.body, user.body) << path;
  }
  // Only the personalised fragment differs.
  EXPECT_NE(Get(port(), "/frag/mylist").body, Get(port(), "/frag/mylist", {{"Cookie", sid}}).body);
}

using StoreSession = StoreTest;

TEST_F(StoreSession, SigninIssuesASignedCookieWithUserAndLocale) {
  auto r = PostForm(port(), "/signin", "username=ACID&password=ACID");
  ASSERT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(r.Header("Location"), "/");
  auto sid = SetCookieValue(r, "sid");
  ASSERT_TRUE(sid.has_value());
  EXPECT_EQ(sid->rfind("v1.", 0), 0u);
  auto data = SessionCookieCodec(kTestSecret).Decode(*sid, std::time(nullptr));
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(data->user_id, "ACID");
  EXPECT_EQ(data->locale, "ja_JP");  // ACID's profile language
  EXPECT_GT(data->expires_unix, std::time(nullptr));
  bool http_only = false;
  for (const auto& v : r.All("Set-Cookie"))
    if (v.rfind("sid=", 0) == 0) http_only = Has(v, "HttpOnly");
  EXPECT_TRUE(http_only);

  // The session's locale applies without a lang cookie; the cookie wins.
  auto mylist = Get(port(), "/frag/mylist", {{"Cookie", "sid=" + *sid}});
  EXPECT_TRUE(Has(mylist.body, "サインイン中 ACID"));
  EXPECT_TRUE(Has(Get(port(), "/", {{"Cookie", "sid=" + *sid}}).body, "<html lang=\"ja\">"));
  EXPECT_TRUE(
      Has(Get(port(), "/", {{"Cookie", "sid=" + *sid + "; lang=en"}}).body, "<html lang=\"en\">"));

  // With a lang cookie at sign-in, the session takes that locale.
  auto en = PostForm(port(), "/signin", "username=ACID&password=ACID", {{"Cookie", "lang=en"}});
  auto en_data = SessionCookieCodec(kTestSecret)
                     .Decode(SetCookieValue(en, "sid").value_or(""), std::time(nullptr));
  ASSERT_TRUE(en_data.has_value());
  EXPECT_EQ(en_data->locale, "en_US");
}

TEST_F(StoreSession, WrongPasswordIsRefusedWithoutACookie) {
  auto r = PostForm(port(), "/signin", "username=j2ee&password=wrong");
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(Has(r.body, "Invalid user name or password."));
  EXPECT_FALSE(SetCookieValue(r, "sid").has_value());
  auto unknown = PostForm(port(), "/signin", "username=nobody&password=x");
  EXPECT_EQ(unknown.status, 403);
}

TEST_F(StoreSession, TamperedExpiredOrForeignCookiesAreAnonymous) {
  std::string good = SignIn("j2ee", "j2ee").substr(4);
  ASSERT_TRUE(Has(Get(port(), "/frag/mylist", {{"Cookie", "sid=" + good}}).body, "j2ee"));
  ASSERT_EQ(Get(port(), "/account", {{"Cookie", "sid=" + good}}).status, 200);

  SessionData as_acid{"ACID", "en_US", std::time(nullptr) + 3600};
  std::string forged_payload = SessionCookieCodec("other").Encode(as_acid);
  std::vector<std::string> bad;
  // Payload of another user under j2ee's MAC.
  bad.push_back(forged_payload.substr(0, forged_payload.rfind('.')) + good.substr(good.rfind('.')));
  // Flip the MAC's first character: the last one also carries padding bits
  // that the base64url decoder ignores.
  std::string flipped_mac = good;
  size_t mac_at = flipped_mac.rfind('.') + 1;
  flipped_mac[mac_at] = flipped_mac[mac_at] == 'A' ? 'B' : 'A';
  bad.push_back(flipped_mac);
  std::string flipped_payload = good;
  flipped_payload[4] = flipped_payload[4] == 'A' ? 'B' : 'A';
  bad.push_back(flipped_payload);
  bad.push_back(forged_payload);  // signed with another secret
  bad.push_back(SessionCookieCodec(kTestSecret)
                    .Encode(SessionData{"j2ee", "en_US", std::time(nullptr) - 10}));  // expired
  bad.push_back("garbage");
  bad.push_back("");
  for (const auto& value : bad) {
    Headers h = {{"Cookie", "sid=" + value}};
    auto mylist = Get(port(), "/frag/mylist", h);
    EXPECT_EQ(mylist.status, 200) << value;
    EXPECT_EQ(mylist.body, "<aside class=\"mylist\"></aside>\n") << value;
    auto account = Get(port(), "/account", h);
    EXPECT_EQ(account.status, 303) << value;
    EXPECT_EQ(account.Header("Location"), "/signin") << value;
    EXPECT_EQ(Get(port(), "/cart", h).status, 303) << value;
  }
  EXPECT_EQ(Scalar("SELECT count(*) FROM access_log WHERE userid = 'ACID'"), "0");
}

TEST_F(StoreSession, SignoutClearsTheCookie) {
  std::string sid = SignIn("j2ee", "j2ee");
  auto r = Get(port(), "/signout", {{"Cookie", sid}});
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(SetCookieValue(r, "sid"), "");
  bool expired = false;
  for (const auto& v : r.All("Set-Cookie"))
    if (v.rfind("sid=", 0) == 0) expired = Has(v, "Max-Age=0");
  EXPECT_TRUE(expired);
}

TEST_F(StoreSession, SigninPageShowsAForm) {
  auto r = Get(port(), "/signin");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(Has(r.body, "action=\"/signin\""));
  EXPECT_TRUE(Has(r.body, "name=\"password\""));
}

}  // namespace
}  // namespace cacheportal::testing
