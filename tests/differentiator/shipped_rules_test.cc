// The shipped config/rules.yaml: it loads, and every store URL gets the
// verdict the PetStore set-up calls for.
#include <gtest/gtest.h>

#include "common/session_cookie.h"
#include "differentiator/differentiator.h"
#include "tests/support/test_env.h"

namespace cacheportal::differentiator {
namespace {

constexpr int64_t kNow = 1'800'000'000;
constexpr const char* kSecret = "shipped-rules-test";

class ShippedRules : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = RuleSet::LoadFile(std::string(testing::kSourceDir) + "/config/rules.yaml", kSecret);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    rules_ = r.value();
  }
  Decision DecideFor(std::string_view method, std::string_view target, std::string cookie = {},
                     std::string_view content_type = {}, std::string_view body = {}) {
    RequestView req;
    req.method = method;
    req.target = target;
    if (!cookie.empty()) req.headers.emplace_back("Cookie", cookie_ = std::move(cookie));
    if (!content_type.empty()) req.headers.emplace_back("Content-Type", content_type);
    req.body = body;
    return rules_->Decide(req, kNow);
  }
  std::string Sid(const std::string& user, const std::string& locale = "ja_JP") {
    return "sid=" + SessionCookieCodec(kSecret).Encode({user, locale, kNow + 600});
  }
  std::shared_ptr<const RuleSet> rules_;
  std::string cookie_;
};

TEST_F(ShippedRules, EveryStoreUrlGetsItsVerdict) {
  struct Case {
    const char* method;
    const char* target;
    Verdict verdict;
    const char* rule;
    const char* key;  // for kCache, with cookie "lang=ja"
  } cases[] = {
      {"GET", "/", Verdict::kCache, "home", "GET / cookies[lang=ja] absent[session.locale]"},
      {"GET", "/category/FISH", Verdict::kCache, "category-page",
       "GET /category/FISH cookies[lang=ja] absent[session.locale]"},
      {"GET", "/product/FI-SW-01", Verdict::kCache, "product-page",
       "GET /product/FI-SW-01 cookies[lang=ja] absent[session.locale]"},
      {"HEAD", "/item/EST-1", Verdict::kCache, "item-page",
       "GET /item/EST-1 cookies[lang=ja] absent[session.locale]"},
      {"GET", "/frag/categories", Verdict::kCache, "frag-categories",
       "GET /frag/categories cookies[lang=ja] absent[session.locale]"},
      {"GET", "/frag/products?category=FISH", Verdict::kCache, "frag-products",
       "GET /frag/products?category=FISH cookies[lang=ja] absent[session.locale]"},
      {"GET", "/frag/items?product=FI-SW-01", Verdict::kCache, "frag-items",
       "GET /frag/items?product=FI-SW-01 cookies[lang=ja] absent[session.locale]"},
      {"GET", "/frag/item?id=EST-1", Verdict::kCache, "frag-item",
       "GET /frag/item?id=EST-1 cookies[lang=ja] absent[session.locale]"},
      {"GET", "/frag/mylist", Verdict::kCache, "frag-mylist",
       "GET /frag/mylist cookies[lang=ja] absent[session.locale,session.user]"},
      {"GET", "/lang/en", Verdict::kPass, "language-switch", nullptr},
      {"GET", "/lang/ja", Verdict::kPass, "language-switch", nullptr},
      {"POST", "/signin", Verdict::kPass, "sign-in", nullptr},
      {"GET", "/signout", Verdict::kPass, "sign-out", nullptr},
      {"GET", "/account", Verdict::kPass, "account", nullptr},
      {"GET", "/cart", Verdict::kPass, "cart", nullptr},
      {"POST", "/cart/add", Verdict::kPass, "cart", nullptr},
      {"POST", "/cart/update", Verdict::kPass, "cart", nullptr},
      {"POST", "/checkout", Verdict::kPass, "checkout", nullptr},
      {"GET", "/checkout", Verdict::kPass, "checkout", nullptr},
      {"GET", "/no/such/page", Verdict::kPass, "everything-else", nullptr},
      {"POST", "/product/FI-SW-01", Verdict::kPass, "everything-else", nullptr},
  };
  for (const auto& c : cases) {
    Decision d = DecideFor(c.method, c.target, "lang=ja; _ga=1");
    EXPECT_EQ(d.verdict, c.verdict) << c.method << " " << c.target << ": " << d.reason;
    EXPECT_EQ(d.rule, c.rule) << c.method << " " << c.target;
    if (c.key) EXPECT_EQ(d.key.ToString(), c.key) << c.method << " " << c.target;
  }
}

TEST_F(ShippedRules, SearchIsKeyedByFieldsAndLanguage) {
  Decision form = DecideFor("POST", "/search", "lang=en", "application/x-www-form-urlencoded",
                            "q=fish&category=FISH&submit=Go");
  ASSERT_EQ(form.verdict, Verdict::kCache) << form.reason;
  EXPECT_EQ(form.key.ToString(),
            "POST /search cookies[lang=en] body[category=FISH&q=fish] absent[session.locale]");
  Decision json = DecideFor("POST", "/search", "lang=en", "application/json",
                            R"({"category":"FISH","q":"fish"})");
  EXPECT_EQ(json.key.ToString(), form.key.ToString());
  EXPECT_EQ(form.ttl, std::chrono::seconds(600));
}

TEST_F(ShippedRules, CatalogIsBlindToTheSessionMyListIsNot) {
  std::string alice = Sid("alice"), bob = Sid("bob");
  EXPECT_EQ(DecideFor("GET", "/product/FI-SW-01", alice + "; lang=en").key.ToString(),
            DecideFor("GET", "/product/FI-SW-01", bob + "; lang=en").key.ToString());
  Decision a = DecideFor("GET", "/frag/mylist", alice + "; lang=en");
  Decision b = DecideFor("GET", "/frag/mylist", bob + "; lang=en");
  ASSERT_EQ(a.verdict, Verdict::kCache);
  EXPECT_EQ(a.key.ToString(), "GET /frag/mylist cookies[lang=en] session[locale=ja_JP&user=alice]");
  EXPECT_NE(a.key.ToString(), b.key.ToString());
  std::string tampered = alice;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  Decision t = DecideFor("GET", "/frag/mylist", tampered + "; lang=en");
  EXPECT_EQ(t.verdict, Verdict::kPass);
  EXPECT_EQ(t.reason, "invalid session cookie");
}

// The store renders in the `lang` cookie's language, else in the signed-in
// user's locale: a Japanese user without `lang` must not get the anonymous
// (English) copy, yet all Japanese users share one copy.
TEST_F(ShippedRules, CatalogLanguageFollowsTheStoresChoice) {
  std::string anon = DecideFor("GET", "/category/FISH").key.ToString();
  std::string ja_user = DecideFor("GET", "/category/FISH", Sid("alice")).key.ToString();
  std::string ja_user2 = DecideFor("GET", "/category/FISH", Sid("bob")).key.ToString();
  std::string en_user = DecideFor("GET", "/category/FISH", Sid("carol", "en_US")).key.ToString();
  EXPECT_EQ(anon, "GET /category/FISH absent[cookie.lang,session.locale]");
  EXPECT_EQ(ja_user, "GET /category/FISH session[locale=ja_JP] absent[cookie.lang]");
  EXPECT_EQ(ja_user, ja_user2);
  EXPECT_NE(ja_user, anon);
  EXPECT_NE(en_user, ja_user);
}

TEST_F(ShippedRules, NoiseIsStrippedEverywhere) {
  Decision d =
      DecideFor("GET", "/product/FI-SW-01;jsessionid=ABC?utm_source=mail&fbclid=1", "lang=ja");
  EXPECT_EQ(d.key.ToString(), "GET /product/FI-SW-01 cookies[lang=ja] absent[session.locale]");
  EXPECT_EQ(d.origin_target, "/product/FI-SW-01");
  Decision cart = DecideFor("GET", "/cart;jsessionid=ABC?gclid=7");
  EXPECT_EQ(cart.verdict, Verdict::kPass);
  EXPECT_EQ(cart.origin_target, "/cart");
}

}  // namespace
}  // namespace cacheportal::differentiator
