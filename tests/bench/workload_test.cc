#include "bench/paper/workload.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace cacheportal::bench {
namespace {

Catalog SmallCatalog() {
  Catalog c;
  c.categories = {"FISH", "DOGS"};
  c.products = {{"FI-SW-01", "FISH"}, {"K9-BD-01", "DOGS"}, {"FI-FW-01", "FISH"}};
  c.items = {{"EST-1", "FI-SW-01"}, {"EST-2", "FI-SW-01"}, {"EST-6", "K9-BD-01"}};
  c.search_terms = {"angelfish", "bulldog"};
  return c;
}

TEST(ZipfSampler, ProbabilitiesFollowThePowerLawAndSumToOne) {
  ZipfSampler z(100, 1.0);
  double sum = 0;
  for (size_t k = 0; k < z.size(); ++k) sum += z.Probability(k);
  EXPECT_NEAR(sum, 1.0, 1e-9);
  EXPECT_NEAR(z.Probability(0) / z.Probability(1), 2.0, 1e-9);
  EXPECT_NEAR(z.Probability(0) / z.Probability(9), 10.0, 1e-9);
  ZipfSampler z2(10, 2.0);
  EXPECT_NEAR(z2.Probability(0) / z2.Probability(2), 9.0, 1e-9);
  EXPECT_EQ(z.Probability(100), 0.0);
}

TEST(ZipfSampler, SampleFrequenciesMatchTheProbabilities) {
  ZipfSampler z(20, 1.0);
  std::mt19937_64 rng(42);
  std::vector<int> counts(20);
  constexpr int kN = 200000;
  for (int i = 0; i < kN; ++i) {
    size_t k = z.Sample(rng);
    ASSERT_LT(k, 20u);
    ++counts[k];
  }
  for (size_t k = 0; k < 20; ++k)
    EXPECT_NEAR(static_cast<double>(counts[k]) / kN, z.Probability(k), 0.01) << "rank " << k;
}

TEST(ZipfSampler, UniformWhenExponentIsZeroAndSafeWhenEmpty) {
  ZipfSampler z(4, 0.0);
  for (size_t k = 0; k < 4; ++k) EXPECT_NEAR(z.Probability(k), 0.25, 1e-12);
  ZipfSampler empty(0, 1.0);
  std::mt19937_64 rng(1);
  EXPECT_EQ(empty.Sample(rng), 0u);
}

TEST(Mix, ApplyOverridesNamedWeightsAndRejectsBadSpecs) {
  Mix m = Mix::Browse();
  ASSERT_TRUE(m.Apply("home=1,category=0,product=0,item=0,search=0,lang=0").ok());
  EXPECT_DOUBLE_EQ(m.Fraction(Action::kHome), 1.0);
  EXPECT_TRUE(m.Apply("bogus=1").IsInvalidArgument());
  EXPECT_TRUE(m.Apply("home").IsInvalidArgument());
  EXPECT_TRUE(m.Apply("home=-1").IsInvalidArgument());
  EXPECT_TRUE(m.Apply("home=x").IsInvalidArgument());
  Mix zero;
  EXPECT_TRUE(zero.Apply("home=0").IsInvalidArgument());
}

TEST(Mix, SampleFrequenciesMatchTheWeights) {
  Mix m;
  ASSERT_TRUE(m.Apply("home=1,item=3").ok());
  std::mt19937_64 rng(7);
  int items = 0;
  constexpr int kN = 100000;
  for (int i = 0; i < kN; ++i) {
    Action a = m.Sample(rng);
    ASSERT_TRUE(a == Action::kHome || a == Action::kItem);
    items += a == Action::kItem;
  }
  EXPECT_NEAR(static_cast<double>(items) / kN, 0.75, 0.01);
}

TEST(Mix, DefaultBrowseMixIsMostlyCatalogue) {
  Mix b = Mix::Browse();
  double catalog = 0;
  for (size_t i = 0; i < kActionCount; ++i)
    if (IsCatalogAction(static_cast<Action>(i))) catalog += b.Fraction(static_cast<Action>(i));
  EXPECT_GE(catalog, 0.95);
  EXPECT_EQ(b.Fraction(Action::kCheckout), 0.0);
  EXPECT_GT(Mix::Buy().Fraction(Action::kCheckout), 0.0);
}

TEST(Workload, BrowsersNeverTakePersonalActions) {
  Catalog c = SmallCatalog();
  WorkloadOptions o;
  o.browse = Mix();
  ASSERT_TRUE(o.browse.Apply("cart_add=1,checkout=1,signin=1,item=1").ok());
  Workload wl(&c, o);
  UserState u;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1000; ++i) {
    Action a = wl.Next(u, rng);
    EXPECT_TRUE(IsCatalogAction(a) || a == Action::kLang) << ActionName(a);
  }
}

TEST(Workload, BuyersSignInBeforeTheCartAndAddBeforeCheckout) {
  Catalog c = SmallCatalog();
  WorkloadOptions o;
  o.buy = Mix();
  ASSERT_TRUE(o.buy.Apply("checkout=1").ok());
  Workload wl(&c, o);
  UserState u;
  u.buyer = true;
  std::mt19937_64 rng(3);
  EXPECT_EQ(wl.Next(u, rng), Action::kSignin);
  u.sid = "abc";
  EXPECT_EQ(wl.Next(u, rng), Action::kCartAdd);
  u.cart_lines = 1;
  EXPECT_EQ(wl.Next(u, rng), Action::kCheckout);
}

TEST(Workload, BuildsTheStoresUrlsAndForms) {
  Catalog c = SmallCatalog();
  Workload wl(&c, {});
  UserState u;
  u.username = "user3";
  std::mt19937_64 rng(5);
  EXPECT_EQ(wl.Build(Action::kHome, u, rng).target, "/");
  Request cat = wl.Build(Action::kCategory, u, rng);
  EXPECT_TRUE(cat.target == "/category/FISH" || cat.target == "/category/DOGS") << cat.target;
  EXPECT_EQ(wl.Build(Action::kProduct, u, rng).target.rfind("/product/", 0), 0u);
  Request item = wl.Build(Action::kItem, u, rng);
  EXPECT_NE(c.FindItem(item.target.substr(6)), nullptr) << item.target;
  EXPECT_TRUE(item.headers.empty());
  Request search = wl.Build(Action::kSearch, u, rng);
  EXPECT_EQ(search.method, "POST");
  EXPECT_EQ(search.target, "/search");
  EXPECT_TRUE(search.body == "q=angelfish" || search.body == "q=bulldog") << search.body;
  Request signin = wl.Build(Action::kSignin, u, rng);
  EXPECT_EQ(signin.body, "username=user3&password=password");
  u.sid = "S1";
  u.ja = true;
  Request add = wl.Build(Action::kCartAdd, u, rng);
  EXPECT_EQ(add.target, "/cart/add");
  EXPECT_EQ(add.body.rfind("itemid=EST-", 0), 0u);
  ASSERT_EQ(add.headers.size(), 2u);
  EXPECT_EQ(add.headers[0].second, "lang=ja; sid=S1");
  EXPECT_EQ(wl.Build(Action::kLang, u, rng).target, "/lang/en");
}

TEST(Workload, ObserveTakesCookiesAndCountsTheCart) {
  UserState u;
  Response r;
  r.status = 303;
  r.headers = {{"Set-Cookie", "sid=abc.def; Path=/; HttpOnly"}, {"set-cookie", "lang=ja; Path=/"}};
  Workload::Observe(Action::kSignin, r, &u);
  EXPECT_EQ(u.sid, "abc.def");
  EXPECT_TRUE(u.ja);
  Workload::Observe(Action::kCartAdd, Response{303, {}, {}}, &u);
  EXPECT_EQ(u.cart_lines, 1);
  Workload::Observe(Action::kCheckout, Response{303, {}, {}}, &u);
  EXPECT_EQ(u.cart_lines, 0);
}

TEST(FormEncode, EscapesReservedBytes) {
  EXPECT_EQ(FormEncode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
  EXPECT_EQ(FormEncode("EST-1_x.~"), "EST-1_x.~");
}

}  // namespace
}  // namespace cacheportal::bench
