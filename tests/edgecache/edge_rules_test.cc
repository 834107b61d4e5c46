// The edge with the real differentiator: rules loaded from YAML text decide
// cache/pass and the key (here: the `lang` cookie splits a page).
#include <gtest/gtest.h>

#include "edgecache/edge_server.h"
#include "tests/edgecache/test_http.h"

namespace cacheportal::edge {
namespace {

using testing::Fetch;
using testing::OriginRequest;
using testing::OriginResponse;
using testing::TinyOrigin;

constexpr char kRules[] = R"(version: 1
defaults:
  ttl: 3600
rules:
  - name: cart
    match: {methods: ["*"], path: "/cart/**"}
    action: pass
  - name: catalog
    match: {methods: [GET, HEAD], path: "/catalog/**"}
    action: cache
    key:
      cookies: [lang]
)";

TEST(EdgeWithRules, RealRulesDecideCachePassAndKey) {
  TinyOrigin origin([](const OriginRequest& r) {
    OriginResponse res;
    auto it = r.headers.find("cookie");
    res.body = r.Path() + (it == r.headers.end() ? "" : " " + it->second);
    return res;
  });
  auto rules = differentiator::RuleSet::LoadText(kRules, "test-rules.yaml", "secret");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EdgeOptions o;
  o.listen_port = 0;
  o.admin_port = 0;
  o.origin_port = origin.port();
  EdgeDeps d;
  d.rules = rules.value();
  d.store_without_registrar = true;
  auto edge = EdgeServer::Start(o, std::move(d));
  ASSERT_TRUE(edge.ok()) << edge.status().ToString();
  uint16_t port = edge.value()->port();

  EXPECT_EQ(Fetch(port, "GET", "/catalog/fish", {{"Cookie", "lang=en; x=1"}}).Header("x-cache"),
            "MISS");
  // Unknown cookies are not part of the key; the language cookie is.
  auto en = Fetch(port, "GET", "/catalog/fish", {{"Cookie", "x=2; lang=en"}});
  EXPECT_EQ(en.Header("x-cache"), "HIT");
  auto ja = Fetch(port, "GET", "/catalog/fish", {{"Cookie", "lang=ja"}});
  EXPECT_EQ(ja.Header("x-cache"), "MISS");
  EXPECT_EQ(ja.body, "/catalog/fish lang=ja");
  EXPECT_EQ(Fetch(port, "GET", "/cart/").Header("x-cache"), "PASS");
  EXPECT_EQ(Fetch(port, "GET", "/other").Header("x-cache"), "PASS");  // no rule: pass
  EXPECT_EQ(origin.Count("/catalog/fish"), 2);
}

}  // namespace
}  // namespace cacheportal::edge
