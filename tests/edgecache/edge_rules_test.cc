// The edge with the real differentiator: rules loaded from YAML text decide
// cache/pass and the key (here: the `lang` cookie splits a page).
#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "edgecache/edge_server.h"
#include "tests/edgecache/test_http.h"

namespace cacheportal::edge {
namespace {

using testing::ClientResponse;
using testing::Fetch;
using testing::Gate;
using testing::OriginRequest;
using testing::OriginResponse;
using testing::TinyOrigin;
using testing::WaitUntil;

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

constexpr char kDespiteRules[] = R"(version: 1
rules:
  - name: despite-cookie
    match: {path: "/sc/**"}
    action: cache
    store_despite: [set-cookie]
  - name: despite-private
    match: {path: "/priv/**"}
    action: cache
    key: {cookies: [user]}
    store_despite: [private, no-store]
  - name: despite-status
    match: {path: "/moved/**"}
    action: cache
    store_despite: [status]
  - name: plain
    match: {path: "/**"}
    action: cache
)";

struct RulesEdge {
  explicit RulesEdge(TinyOrigin::Handler h) : origin(std::move(h)) {
    auto rules = differentiator::RuleSet::LoadText(kDespiteRules, "despite.yaml", "secret");
    EXPECT_TRUE(rules.ok()) << rules.status().ToString();
    EdgeOptions o;
    o.listen_port = 0;
    o.admin_port = 0;
    o.origin_port = origin.port();
    EdgeDeps d;
    d.rules = rules.value();
    d.store_without_registrar = true;
    auto e = EdgeServer::Start(o, std::move(d));
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    if (e.ok()) edge = std::move(e.value());
  }
  ClientResponse Get(const std::string& target,
                     const std::vector<std::pair<std::string, std::string>>& h = {}) {
    return Fetch(edge->port(), "GET", target, h);
  }
  TinyOrigin origin;
  std::unique_ptr<EdgeServer> edge;
};

TEST(EdgeWithRules, StoreDespiteSetCookieStoresThePageWithoutTheCookie) {
  std::atomic<int> n{0};
  RulesEdge e([&](const OriginRequest&) {
    OriginResponse res;
    res.body = "page";
    res.headers = {{"Set-Cookie", "sid=" + std::to_string(++n) + "; HttpOnly"}};
    return res;
  });
  auto first = e.Get("/sc/a");
  EXPECT_EQ(first.Header("x-cache"), "MISS");
  EXPECT_EQ(first.Header("set-cookie"), "sid=1; HttpOnly");  // the requester's own cookie
  auto second = e.Get("/sc/a");
  EXPECT_EQ(second.Header("x-cache"), "HIT");
  EXPECT_EQ(second.body, "page");
  EXPECT_EQ(second.headers.count("set-cookie"), 0u);  // never replayed to another user
  EXPECT_EQ(e.origin.Count("/sc/a"), 1);
  // Without the rule key the same answer is not stored.
  EXPECT_EQ(e.Get("/other").Header("x-cache"), "MISS");
  EXPECT_EQ(e.Get("/other").Header("x-cache"), "MISS");
  EXPECT_EQ(e.origin.Count("/other"), 2);
  EXPECT_EQ(e.edge->Metrics().Outcome("store/set_cookie"), 2u);
}

TEST(EdgeWithRules, CoalescedWaitersOfAStoredDespiteCookiePageGetNoCookie) {
  constexpr int kClients = 4;
  Gate gate;
  EdgeServer* edge_ptr = nullptr;
  RulesEdge e([&](const OriginRequest&) {
    WaitUntil([&] { return edge_ptr && edge_ptr->Metrics().coalesce_waiting == kClients - 1; });
    gate.Wait();
    OriginResponse res;
    res.body = "hot";
    res.headers = {{"Set-Cookie", "sid=leader"}};
    return res;
  });
  edge_ptr = e.edge.get();
  std::vector<std::future<ClientResponse>> futures;
  for (int i = 0; i < kClients; ++i)
    futures.push_back(std::async(std::launch::async, [&] { return e.Get("/sc/hot"); }));
  ASSERT_TRUE(WaitUntil([&] { return e.edge->Metrics().coalesce_waiting == kClients - 1; }));
  gate.Open();
  int with_cookie = 0;
  for (auto& fu : futures) {
    auto r = fu.get();
    EXPECT_EQ(r.body, "hot");
    with_cookie += r.headers.count("set-cookie") ? 1 : 0;
  }
  EXPECT_EQ(with_cookie, 1);  // the leader only
  EXPECT_EQ(e.origin.Count("/sc/hot"), 1);
}

TEST(EdgeWithRules, StoreDespitePrivateAndNoStoreKeepsEachUsersCopy) {
  RulesEdge e([](const OriginRequest& r) {
    OriginResponse res;
    auto it = r.headers.find("cookie");
    res.body = it == r.headers.end() ? "anon" : it->second;
    res.headers = {{"Cache-Control", r.Path() == "/priv/a" ? "private" : "no-store"}};
    return res;
  });
  EXPECT_EQ(e.Get("/priv/a", {{"Cookie", "user=al"}}).Header("x-cache"), "MISS");
  auto al = e.Get("/priv/a", {{"Cookie", "user=al"}});
  EXPECT_EQ(al.Header("x-cache"), "HIT");
  EXPECT_EQ(al.Header("cache-control"), "private");  // downstream caches still obey it
  auto bo = e.Get("/priv/a", {{"Cookie", "user=bo"}});
  EXPECT_EQ(bo.Header("x-cache"), "MISS");
  EXPECT_EQ(bo.body, "user=bo");
  e.Get("/priv/b", {{"Cookie", "user=al"}});
  EXPECT_EQ(e.Get("/priv/b", {{"Cookie", "user=al"}}).Header("x-cache"), "HIT");
}

TEST(EdgeWithRules, StoreDespiteStatusStoresARedirectButNeverA5xx) {
  RulesEdge e([](const OriginRequest& r) {
    OriginResponse res;
    res.status = r.Path().ends_with("/err") ? 503 : 302;
    res.headers = {{"Location", "/elsewhere"}};
    return res;
  });
  e.Get("/moved/a");
  auto hit = e.Get("/moved/a");
  EXPECT_EQ(hit.status, 302);
  EXPECT_EQ(hit.Header("x-cache"), "HIT");
  EXPECT_EQ(hit.Header("location"), "/elsewhere");
  e.Get("/moved/err");
  EXPECT_EQ(e.Get("/moved/err").Header("x-cache"), "MISS");
  e.Get("/plain/redirect");  // no store_despite: 302 is not stored
  EXPECT_EQ(e.Get("/plain/redirect").Header("x-cache"), "MISS");
  EXPECT_EQ(e.origin.Count("/moved/a"), 1);
  EXPECT_EQ(e.origin.Count("/plain/redirect"), 2);
}

}  // namespace
}  // namespace cacheportal::edge
