// Decide() as a pure function: tables of requests → verdicts, keys and
// origin targets. No sockets, no clock (now_unix is an argument).
#include <gtest/gtest.h>

#include <set>

#include "common/session_cookie.h"
#include "differentiator/differentiator.h"

namespace cacheportal::differentiator {
namespace {

constexpr int64_t kNow = 1'800'000'000;
constexpr const char* kSecret = "test-secret";

constexpr const char* kRules = R"(
version: 1
defaults:
  ttl: 3600
  strip: {path_params: [jsessionid], query: [utm_*, gclid, fbclid]}
rules:
  - name: mylist
    match: {path: /frag/mylist}
    action: cache
    key: {session: [user], cookies: [lang]}
    ttl: 300
  - name: catalog
    match: {path: "/product/*"}
    action: cache
    key: {cookies: [lang]}
  - name: items
    match: {path_regex: "^/frag/items$"}
    action: cache
    key: {query: [product]}
  - name: anyquery
    match: {path: /list}
    action: cache
    key: {query: ["*"]}
  - name: search
    match: {methods: [POST], path: /search}
    action: cache
    key: {body: [q, category]}
    max_body_bytes: 1024
  - name: hdr
    match: {path: /hdr}
    action: cache
    key: {headers: [Accept-Language]}
  - name: special
    match: {path: /order/special}
    action: pass
  - name: orders
    match: {path: "/order/*"}
    action: cache
  - name: cart
    match: {methods: ["*"], path: "/cart/**"}
    action: pass
)";

using Headers = std::vector<std::pair<std::string, std::string>>;

class DecideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = RuleSet::LoadText(kRules, "test.yaml", kSecret);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    rules_ = r.value();
  }

  Decision DecideFor(std::string_view method, std::string_view target, const Headers& headers = {},
                     std::string_view body = {}, int64_t now = kNow) {
    RequestView req;
    req.method = method;
    req.target = target;
    for (const auto& [n, v] : headers) req.headers.emplace_back(n, v);
    req.body = body;
    return rules_->Decide(req, now);
  }

  std::string Key(std::string_view method, std::string_view target, const Headers& headers = {},
                  std::string_view body = {}) {
    Decision d = DecideFor(method, target, headers, body);
    EXPECT_EQ(d.verdict, Verdict::kCache) << target << ": " << d.reason;
    return d.key.ToString();
  }

  std::string Sid(const std::string& user, int64_t expires = kNow + 3600,
                  const std::string& secret = kSecret) {
    return "sid=" + SessionCookieCodec(secret).Encode({user, "en_US", expires});
  }

  std::shared_ptr<const RuleSet> rules_;
};

TEST_F(DecideTest, CookieOrderSeveralHeadersAndUnknownCookiesGiveTheSameKey) {
  const Headers variants[] = {
      {{"Cookie", "lang=ja"}},
      {{"Cookie", "tracker=1; lang=ja; _ga=GA1.2.3"}},
      {{"Cookie", "_ga=x;lang=ja"}},
      {{"Cookie", "a=1"}, {"Cookie", "lang=ja"}, {"cookie", "b=2"}},
      {{"COOKIE", "  lang=ja  ;  z=9 "}},
      {{"Cookie", "lang=\"ja\""}},
  };
  std::set<std::string> keys;
  for (const auto& h : variants) keys.insert(Key("GET", "/product/FI-SW-01", h));
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(*keys.begin(), "GET /product/FI-SW-01 cookies[lang=ja]");
}

TEST_F(DecideTest, LangCookieSplitsTheCatalogAndAbsentIsItsOwnKey) {
  std::string ja = Key("GET", "/product/X", {{"Cookie", "lang=ja"}});
  std::string en = Key("GET", "/product/X", {{"Cookie", "lang=en"}});
  std::string none = Key("GET", "/product/X");
  std::string empty = Key("GET", "/product/X", {{"Cookie", "lang="}});
  EXPECT_EQ(std::set<std::string>({ja, en, none, empty}).size(), 4u);
  EXPECT_EQ(none, "GET /product/X absent[cookie.lang]");
}

TEST_F(DecideTest, AmbiguousCookiePasses) {
  Decision d = DecideFor("GET", "/product/X", {{"Cookie", "lang=ja"}, {"Cookie", "lang=en"}});
  EXPECT_EQ(d.verdict, Verdict::kPass);
  EXPECT_NE(d.reason.find("ambiguous cookie 'lang'"), std::string::npos) << d.reason;
}

TEST_F(DecideTest, TamperedWrongSecretExpiredOrDuplicateSessionPasses) {
  std::string good = Sid("alice");
  std::string tampered = good;
  tampered[8] = tampered[8] == 'A' ? 'B' : 'A';
  const std::string bad[] = {
      tampered,
      Sid("alice", kNow + 3600, "other-secret"),
      Sid("alice", kNow - 1),  // expired
      Sid("alice", kNow),      // expires this second
      "sid=garbage",
      "sid=",
      good + "; " + Sid("bob"),  // two sessions: whose page?
  };
  for (const auto& cookie : bad) {
    Decision d = DecideFor("GET", "/frag/mylist", {{"Cookie", cookie}});
    EXPECT_EQ(d.verdict, Verdict::kPass) << cookie;
    EXPECT_EQ(d.reason, "invalid session cookie") << cookie;
    EXPECT_EQ(d.rule, "mylist");
    EXPECT_EQ(d.origin_target, "/frag/mylist");
  }
  // A rule blind to the session does not care.
  EXPECT_EQ(DecideFor("GET", "/product/X", {{"Cookie", tampered}}).verdict, Verdict::kCache);
}

TEST_F(DecideTest, ASessionThatVerifiedEarlierStillExpires) {
  std::string cookie = Sid("alice", kNow + 60);
  EXPECT_EQ(DecideFor("GET", "/frag/mylist", {{"Cookie", cookie}}, {}, kNow).verdict,
            Verdict::kCache);
  Decision later = DecideFor("GET", "/frag/mylist", {{"Cookie", cookie}}, {}, kNow + 60);
  EXPECT_EQ(later.verdict, Verdict::kPass);
  EXPECT_EQ(later.reason, "invalid session cookie");
}

TEST_F(DecideTest, ValidSessionsKeyMyListPerUserButNotTheCatalog) {
  std::string alice = Sid("alice"), bob = Sid("bob");
  std::string ka = Key("GET", "/frag/mylist", {{"Cookie", alice + "; lang=en"}});
  std::string kb = Key("GET", "/frag/mylist", {{"Cookie", "lang=en; " + bob}});
  std::string anon = Key("GET", "/frag/mylist", {{"Cookie", "lang=en"}});
  EXPECT_EQ(ka, "GET /frag/mylist cookies[lang=en] session[user=alice]");
  EXPECT_EQ(kb, "GET /frag/mylist cookies[lang=en] session[user=bob]");
  EXPECT_EQ(anon, "GET /frag/mylist cookies[lang=en] absent[session.user]");
  // Alice again with a freshly issued cookie (other expiry): same key.
  EXPECT_EQ(Key("GET", "/frag/mylist", {{"Cookie", Sid("alice", kNow + 99) + ";lang=en"}}), ka);
  EXPECT_EQ(DecideFor("GET", "/frag/mylist", {{"Cookie", alice}}).ttl, std::chrono::seconds(300));

  std::string ca = Key("GET", "/product/X", {{"Cookie", alice + "; lang=en"}});
  std::string cb = Key("GET", "/product/X", {{"Cookie", bob + "; lang=en"}});
  std::string cn = Key("GET", "/product/X", {{"Cookie", "lang=en"}});
  EXPECT_EQ(ca, cb);
  EXPECT_EQ(ca, cn);
}

TEST_F(DecideTest, PostKeysAreTheSameInAllThreeEncodings) {
  const std::string multipart =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"category\"\r\n\r\n"
      "FISH\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"csrf\"\r\n\r\n"
      "ignored\r\n"
      "--XyZ\r\n"
      "Content-Type: text/plain\r\n"
      "Content-Disposition: form-data; name=\"q\"\r\n\r\n"
      "angel fish\r\n"
      "--XyZ--\r\n";
  struct Case {
    const char* content_type;
    std::string body;
  } cases[] = {
      {"application/x-www-form-urlencoded", "q=angel+fish&category=FISH"},
      {"application/x-www-form-urlencoded; charset=UTF-8", "category=FISH&csrf=1&q=angel%20fish"},
      {"multipart/form-data; boundary=XyZ", multipart},
      {"multipart/form-data; boundary=\"XyZ\"", "preamble\r\n" + multipart},
      {"application/json", R"({"q": "angel fish", "category": "FISH", "page": {"n": 2}})"},
      {"application/json; charset=utf-8", R"({"category":"FISH","q":"angel\u0020fish"})"},
  };
  std::set<std::string> keys;
  for (const auto& c : cases) {
    keys.insert(Key("POST", "/search", {{"Content-Type", c.content_type}}, c.body));
  }
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(*keys.begin(), "POST /search body[category=FISH&q=angel%20fish]");

  // Other values, and a missing optional field, are other keys.
  std::string other = Key("POST", "/search", {{"Content-Type", "application/json"}},
                          R"({"q":"angel fish","category":"DOGS"})");
  std::string no_cat = Key("POST", "/search",
                           {{"Content-Type", "application/x-www-form-urlencoded"}}, "q=angel+fish");
  EXPECT_EQ(no_cat, "POST /search body[q=angel%20fish] absent[body.category]");
  EXPECT_EQ(std::set<std::string>({*keys.begin(), other, no_cat}).size(), 3u);
  // JSON numbers are keyed by their text, like the same value in a form.
  EXPECT_EQ(Key("POST", "/search", {{"Content-Type", "application/json"}}, R"({"q":5})"),
            Key("POST", "/search", {{"Content-Type", "application/x-www-form-urlencoded"}}, "q=5"));
}

TEST_F(DecideTest, UnusableBodiesPassWithAReason) {
  struct Case {
    const char* content_type;
    std::string body;
    const char* reason;
  } cases[] = {
      {"multipart/form-data", "--X\r\n\r\nv\r\n--X--", "multipart body without boundary"},
      {"multipart/form-data; boundary=X",
       "--X\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nangel",
       "truncated multipart body"},
      {"multipart/form-data; boundary=X", "--X\r\nContent-Disposition: form-data; name=\"q\"",
       "truncated multipart body"},
      {"multipart/form-data; boundary=X",
       "--X\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nangel\r\n--X\r\n",
       "truncated multipart body"},
      {"multipart/form-data; boundary=X", "no boundary here",
       "multipart body has no boundary line"},
      {"multipart/form-data; boundary=X", "--X\r\nContent-Type: text/plain\r\n\r\nv\r\n--X--",
       "multipart part without a field name"},
      {"application/json", "[1, 2]", "JSON body is not an object"},
      {"application/json", "\"q\"", "JSON body is not an object"},
      {"application/json", "{\"q\": ", "unparsable JSON body"},
      {"text/plain", "q=1", "unsupported POST body Content-Type"},
      {"", "q=1", "POST body without Content-Type"},
      {"application/x-www-form-urlencoded", std::string(1025, 'a'),
       "POST body over max_body_bytes (1024)"},
  };
  for (const auto& c : cases) {
    Headers h;
    if (*c.content_type) h.push_back({"Content-Type", c.content_type});
    Decision d = DecideFor("POST", "/search", h, c.body);
    EXPECT_EQ(d.verdict, Verdict::kPass) << c.body;
    EXPECT_EQ(d.reason, c.reason) << c.body;
    EXPECT_EQ(d.origin_target, "/search");
  }
  Decision d =
      DecideFor("POST", "/search",
                {{"Content-Type", "application/json"}, {"content-type", "text/plain"}}, "{}");
  EXPECT_EQ(d.verdict, Verdict::kPass);
  EXPECT_EQ(d.reason, "several different Content-Type headers");
}

TEST_F(DecideTest, UrlNoiseIsStrippedFromKeyAndOriginTarget) {
  Decision d = DecideFor("GET", "/product/FI-SW-01;jsessionid=0A1B2C?utm_source=news&gclid=x",
                         {{"Cookie", "lang=en"}});
  ASSERT_EQ(d.verdict, Verdict::kCache) << d.reason;
  EXPECT_EQ(d.key.ToString(), "GET /product/FI-SW-01 cookies[lang=en]");
  EXPECT_EQ(d.origin_target, "/product/FI-SW-01");
  EXPECT_EQ(d.key.ToString(), Key("GET", "/product/FI-SW-01", {{"Cookie", "lang=en"}}));

  d = DecideFor("GET", "/frag/items?utm_medium=x&product=FI-SW-01&fbclid=y&page=2");
  ASSERT_EQ(d.verdict, Verdict::kCache) << d.reason;
  EXPECT_EQ(d.key.ToString(), "GET /frag/items?product=FI-SW-01");
  EXPECT_EQ(d.origin_target, "/frag/items?product=FI-SW-01&page=2")
      << "unknown parameters are forwarded, only noise is dropped";

  // Noise is stripped even from requests that pass.
  d = DecideFor("POST", "/cart/add;jsessionid=1?utm_campaign=z&item=EST-1");
  EXPECT_EQ(d.verdict, Verdict::kPass);
  EXPECT_EQ(d.origin_target, "/cart/add?item=EST-1");
  // Nothing to strip: the target is forwarded as received.
  d = DecideFor("GET", "/frag/items?product=A&page=2");
  EXPECT_EQ(d.origin_target, "/frag/items?product=A&page=2");
}

TEST_F(DecideTest, PathNormalisationCannotSneakIntoAnotherRule) {
  // /product/../cart/add is /cart/add: it must hit the pass rule, and the
  // origin must be asked for exactly what the decision was about.
  Decision d = DecideFor("GET", "/product/%2e%2e/cart/add");
  EXPECT_EQ(d.verdict, Verdict::kPass);
  EXPECT_EQ(d.rule, "cart");
  EXPECT_EQ(d.origin_target, "/cart/add");
  d = DecideFor("GET", "//product//%46I-SW-01", {{"Cookie", "lang=en"}});
  EXPECT_EQ(d.key.ToString(), "GET /product/FI-SW-01 cookies[lang=en]");
  EXPECT_EQ(d.origin_target, "/product/FI-SW-01");
  EXPECT_EQ(DecideFor("GET", "/product/%zz").reason, "malformed percent-encoding in path");
  EXPECT_EQ(DecideFor("GET", "http://evil/product/X").reason, "target is not in origin-form");
}

TEST_F(DecideTest, GlobAndRegexMatching) {
  struct Case {
    const char* method;
    const char* target;
    Verdict verdict;
    const char* rule;
  } cases[] = {
      {"GET", "/product/FI-SW-01", Verdict::kCache, "catalog"},
      {"GET", "/product/FI-SW-01/extra", Verdict::kPass, ""},  // * is one segment
      {"GET", "/frag/items?product=A", Verdict::kCache, "items"},
      {"GET", "/frag/items/", Verdict::kPass, ""},  // regex anchored with $
      {"GET", "/cart", Verdict::kPass, "cart"},
      {"POST", "/cart/update", Verdict::kPass, "cart"},
      {"DELETE", "/cart/a/b", Verdict::kPass, "cart"},
      {"POST", "/product/X", Verdict::kPass, ""},  // methods default to GET, HEAD
      {"GET", "/search", Verdict::kPass, ""},      // search is POST only
      {"HEAD", "/product/X", Verdict::kCache, "catalog"},
  };
  for (const auto& c : cases) {
    Decision d = DecideFor(c.method, c.target);
    EXPECT_EQ(d.verdict, c.verdict) << c.method << " " << c.target << ": " << d.reason;
    EXPECT_EQ(d.rule, c.rule) << c.method << " " << c.target;
    if (*c.rule == '\0') {
      EXPECT_EQ(d.reason, "no rule matched");
    }
  }
}

TEST_F(DecideTest, FirstMatchWins) {
  Decision special = DecideFor("GET", "/order/special");
  EXPECT_EQ(special.verdict, Verdict::kPass);
  EXPECT_EQ(special.rule, "special");
  EXPECT_EQ(special.reason, "rule 'special' says pass");
  Decision other = DecideFor("GET", "/order/other");
  EXPECT_EQ(other.verdict, Verdict::kCache);
  EXPECT_EQ(other.rule, "orders");
  EXPECT_EQ(other.key.ToString(), "GET /order/other") << "a rule that keeps nothing";
  EXPECT_EQ(other.ttl, std::chrono::seconds(3600)) << "defaults.ttl";
}

TEST_F(DecideTest, HeadIsKeyedAsGet) {
  EXPECT_EQ(Key("HEAD", "/product/X", {{"Cookie", "lang=ja"}}),
            Key("GET", "/product/X", {{"Cookie", "lang=ja"}}));
}

TEST_F(DecideTest, QueryParametersSortedByNameRepeatsInOrder) {
  EXPECT_EQ(Key("GET", "/list?b=2&a=1&c=x&a=0&utm_source=q"), "GET /list?a=1&a=0&b=2&c=x");
  EXPECT_EQ(Key("GET", "/list?a=1&b=2"), Key("GET", "/list?b=2&a=1"));
  EXPECT_NE(Key("GET", "/list?a=1&a=0"), Key("GET", "/list?a=0&a=1"));
  EXPECT_EQ(Key("GET", "/list?q=angel+fish"), Key("GET", "/list?q=angel%20fish"));
  EXPECT_EQ(Key("GET", "/list"), "GET /list");
}

TEST_F(DecideTest, KeyEncodingIsUnambiguous) {
  // Values that contain the key's own separators cannot forge another key.
  EXPECT_NE(Key("GET", "/list?a=1%26b%3D2"), Key("GET", "/list?a=1&b=2"));
  EXPECT_EQ(Key("GET", "/list?a=1%26b%3D2"), "GET /list?a=1%26b%3D2");
  EXPECT_NE(Key("GET", "/product/X", {{"Cookie", "lang=en] session[user=alice"}}),
            Key("GET", "/frag/mylist", {{"Cookie", "lang=en; " + Sid("alice")}}));
  EXPECT_NE(Key("GET", "/product/X", {{"Cookie", "lang=absent[cookie.lang]"}}),
            Key("GET", "/product/X"));
}

TEST_F(DecideTest, HeadersAreKeyedByLowerCaseNameAndJoined) {
  EXPECT_EQ(Key("GET", "/hdr", {{"ACCEPT-LANGUAGE", "ja"}}),
            "GET /hdr headers[accept-language=ja]");
  EXPECT_EQ(Key("GET", "/hdr", {{"Accept-Language", "ja"}, {"accept-language", "en"}}),
            "GET /hdr headers[accept-language=ja%2C%20en]");
  EXPECT_EQ(Key("GET", "/hdr", {{"X-Other", "1"}}), "GET /hdr absent[header.accept-language]");
}

TEST_F(DecideTest, HashIsStableFnv1aOfTheString) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);  // published FNV-1a 64 test vector
  Decision d = DecideFor("GET", "/product/FI-SW-01", {{"Cookie", "lang=ja"}});
  EXPECT_EQ(d.key.Hash(), Fnv1a64(d.key.ToString()));
  EXPECT_EQ(d.key.Hash(), Fnv1a64("GET /product/FI-SW-01 cookies[lang=ja]"));
}

TEST_F(DecideTest, VerdictNames) {
  EXPECT_STREQ(VerdictName(Verdict::kCache), "cache");
  EXPECT_STREQ(VerdictName(Verdict::kPass), "pass");
}

}  // namespace
}  // namespace cacheportal::differentiator

namespace cacheportal::differentiator {
namespace {

// Property: for any target, Decide() does not crash, a cacheable decision's
// origin_target is canonical (deciding on it again gives the same key and
// the same origin_target), and the key path is the origin_target's path.
TEST_F(DecideTest, OriginTargetIsCanonicalForRandomTargets) {
  const char* pieces[] = {
      "/", "//", "product", "frag",       "items",    "list",          "%2e",  "%2E%2e",
      ".", "..", "%41",     "%2f",        "%zz",      ";jsessionid=1", ";v=2", "?",
      "&", "=",  "a",       "utm_source", "product=", "%20",           "+",    "\xc3\xa9",
      "*", "#",  "order",   "special",    "cart",     "mylist",        ";",    "%3B"};
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto next = [&seed]() {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  int cached = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string target = "/";
    int n = 1 + static_cast<int>(next() % 8);
    for (int j = 0; j < n; ++j) target += pieces[next() % std::size(pieces)];
    const char* method = (next() % 4 == 0) ? "HEAD" : "GET";
    Decision d = DecideFor(method, target, {{"Cookie", "lang=en"}});
    if (d.verdict != Verdict::kCache) continue;
    ++cached;
    ASSERT_EQ(d.origin_target.substr(0, d.key.path.size()), d.key.path) << target;
    Decision again = DecideFor(method, d.origin_target, {{"Cookie", "lang=en"}});
    ASSERT_EQ(again.verdict, Verdict::kCache) << target << " -> " << d.origin_target;
    ASSERT_EQ(again.key.ToString(), d.key.ToString()) << target << " -> " << d.origin_target;
    ASSERT_EQ(again.origin_target, d.origin_target) << target;
  }
  EXPECT_GT(cached, 100) << "the generator should reach cache rules";
}

}  // namespace
}  // namespace cacheportal::differentiator
