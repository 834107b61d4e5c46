// The edge against a tiny origin over real sockets: one behaviour per test,
// asserted on X-Cache, origin request counts and the stage-outcome counters.
#include "edgecache/edge_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include <sys/socket.h>
#include <sys/time.h>
#include <set>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include "common/session_cookie.h"
#include "common/traceparent.h"
#include "tests/edgecache/test_http.h"

namespace cacheportal::edge {
namespace {

using testing::ClientResponse;
using testing::FakeRules;
using testing::Fetch;
using testing::Gate;
using testing::OriginRequest;
using testing::OriginResponse;
using testing::TinyOrigin;
using testing::WaitUntil;

constexpr char kToken[] = "s3cret";

OriginResponse Page(std::string body, std::vector<std::pair<std::string, std::string>> h = {}) {
  OriginResponse r;
  r.body = std::move(body);
  r.headers = std::move(h);
  r.headers.emplace_back("Content-Type", "text/html");
  return r;
}

class FakeRegistrar : public PageRegistrar {
 public:
  RegisterVerdict Complete(const PageRegistration& page) override {
    std::lock_guard lock(mu);
    completed.push_back(page);
    return verdict;
  }
  void Abandon(std::string_view request_id) override {
    std::lock_guard lock(mu);
    abandoned.emplace_back(request_id);
  }
  std::mutex mu;
  RegisterVerdict verdict = RegisterVerdict::kStore;
  std::vector<PageRegistration> completed;
  std::vector<std::string> abandoned;
};

struct EdgeFixture {
  explicit EdgeFixture(TinyOrigin::Handler handler,
                       std::function<void(EdgeOptions&, EdgeDeps&)> tweak = nullptr)
      : origin(std::move(handler)) {
    EdgeOptions o;
    o.listen_port = 0;
    o.admin_port = 0;
    o.admin_token = kToken;
    o.origin_port = origin.port();
    o.threads = 2;
    EdgeDeps d;
    d.rules = std::make_shared<FakeRules>();
    d.store_without_registrar = true;
    if (tweak) tweak(o, d);
    auto r = EdgeServer::Start(o, std::move(d));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) edge = std::move(r.value());
  }
  ClientResponse Get(const std::string& target,
                     const std::vector<std::pair<std::string, std::string>>& h = {}) {
    return Fetch(edge->port(), "GET", target, h);
  }
  ClientResponse Admin(const std::string& method, const std::string& target,
                       const std::string& token = kToken) {
    std::vector<std::pair<std::string, std::string>> h;
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    return Fetch(edge->admin_port(), method, target, h);
  }
  TinyOrigin origin;
  std::unique_ptr<EdgeServer> edge;
};

TEST(EdgeServer, HitMissPassCarryXCache) {
  EdgeFixture f([](const OriginRequest& r) { return Page("page " + r.Path()); });
  auto a = f.Get("/a");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.Header("x-cache"), "MISS");
  EXPECT_EQ(a.body, "page /a");
  auto b = f.Get("/a");
  EXPECT_EQ(b.Header("x-cache"), "HIT");
  EXPECT_EQ(b.body, "page /a");
  EXPECT_FALSE(b.Header("age").empty());
  EXPECT_EQ(f.origin.Count("/a"), 1);
  EXPECT_EQ(f.Get("/pass/x").Header("x-cache"), "PASS");
  EXPECT_EQ(f.Get("/pass/x").Header("x-cache"), "PASS");
  EXPECT_EQ(f.origin.Count("/pass/x"), 2);
  auto m = f.edge->Metrics();
  EXPECT_EQ(m.hits, 1u);
  EXPECT_EQ(m.misses, 1u);
  EXPECT_EQ(m.passes, 2u);
  EXPECT_EQ(m.Outcome("lookup/hit"), 1u);
  EXPECT_EQ(m.Outcome("store/stored"), 1u);
  EXPECT_EQ(m.Outcome("key/pass"), 2u);
}

TEST(EdgeServer, OriginRequestsCarryTraceparentAndSurrogateCapability) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); });
  f.Get("/t");
  f.Get("/pass/t");
  auto reqs = f.origin.Requests();
  ASSERT_EQ(reqs.size(), 2u);
  std::set<std::string> ids;
  for (const auto& r : reqs) {
    auto tp = TraceParent::Parse(r.headers.at("traceparent"));
    ASSERT_TRUE(tp.has_value());
    ids.insert(tp->trace_id);
    EXPECT_EQ(r.headers.at("surrogate-capability"), "cacheportal=\"ESI/1.0\"");
  }
  EXPECT_EQ(ids.size(), 2u);
}

TEST(EdgeServer, AgeGrowsOnHits) {
  EdgeFixture f([](const OriginRequest&) { return Page("aged"); });
  f.Get("/age");
  auto h = f.Get("/age");
  ASSERT_EQ(h.Header("x-cache"), "HIT");
  EXPECT_GE(std::stoi(h.Header("age")), 0);
}

TEST(EdgeServer, CoalescesConcurrentMissesIntoOneOriginRequest) {
  constexpr int kClients = 8;
  Gate gate;
  EdgeServer* edge_ptr = nullptr;
  EdgeFixture f([&](const OriginRequest&) {
    // Hold the answer until every other client is waiting on this fill.
    WaitUntil([&] { return edge_ptr && edge_ptr->Metrics().coalesce_waiting == kClients - 1; });
    gate.Wait();
    return Page("coalesced");
  });
  edge_ptr = f.edge.get();
  std::vector<std::future<ClientResponse>> futures;
  for (int i = 0; i < kClients; ++i)
    futures.push_back(std::async(std::launch::async, [&] { return f.Get("/hot"); }));
  ASSERT_TRUE(WaitUntil([&] { return f.edge->Metrics().coalesce_waiting == kClients - 1; }));
  gate.Open();
  for (auto& fu : futures) {
    auto r = fu.get();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "coalesced");
    EXPECT_EQ(r.Header("x-cache"), "MISS");
  }
  EXPECT_EQ(f.origin.Count("/hot"), 1);
  auto m = f.edge->Metrics();
  EXPECT_EQ(m.coalesced, static_cast<uint64_t>(kClients - 1));
  EXPECT_EQ(m.Outcome("coalesce/leader"), 1u);
  EXPECT_EQ(m.Outcome("coalesce/follower_served"), static_cast<uint64_t>(kClients - 1));
}

TEST(EdgeServer, WaitersOfAnUncacheableAnswerFetchThemselves) {
  constexpr int kClients = 4;
  Gate gate;
  EdgeServer* edge_ptr = nullptr;
  std::atomic<int> calls{0};
  EdgeFixture f([&](const OriginRequest&) {
    if (calls.fetch_add(1) == 0) {
      WaitUntil([&] { return edge_ptr && edge_ptr->Metrics().coalesce_waiting == kClients - 1; });
      gate.Wait();
    }
    return Page("personal", {{"Set-Cookie", "a=b"}});
  });
  edge_ptr = f.edge.get();
  std::vector<std::future<ClientResponse>> futures;
  for (int i = 0; i < kClients; ++i)
    futures.push_back(std::async(std::launch::async, [&] { return f.Get("/cookie"); }));
  ASSERT_TRUE(WaitUntil([&] { return f.edge->Metrics().coalesce_waiting == kClients - 1; }));
  gate.Open();
  for (auto& fu : futures) EXPECT_EQ(fu.get().body, "personal");
  EXPECT_EQ(f.origin.Count("/cookie"), kClients);
  EXPECT_EQ(f.edge->Metrics().Outcome("coalesce/released"), static_cast<uint64_t>(kClients - 1));
}

TEST(EdgeServer, NotModifiedOnIfNoneMatch) {
  EdgeFixture f([](const OriginRequest&) { return Page("etagged"); });
  auto a = f.Get("/e");
  std::string etag = a.Header("etag");
  ASSERT_FALSE(etag.empty());  // generated from the body hash
  auto b = f.Get("/e", {{"If-None-Match", etag}});
  EXPECT_EQ(b.status, 304);
  EXPECT_EQ(b.Header("x-cache"), "HIT");
  EXPECT_TRUE(b.body.empty());
  auto c = f.Get("/e", {{"If-None-Match", "\"other\""}});
  EXPECT_EQ(c.status, 200);
  EXPECT_EQ(c.body, "etagged");
}

TEST(EdgeServer, NotModifiedOnIfModifiedSince) {
  EdgeFixture f([](const OriginRequest&) {
    return Page("dated", {{"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}, {"ETag", "\"v1\""}});
  });
  f.Get("/d");
  auto b = f.Get("/d", {{"If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT"}});
  EXPECT_EQ(b.status, 304);
  auto c = f.Get("/d", {{"If-Modified-Since", "Sat, 05 Nov 1994 08:49:37 GMT"}});
  EXPECT_EQ(c.status, 200);
}

TEST(EdgeServer, VaryKeysVariants) {
  EdgeFixture f([](const OriginRequest& r) {
    auto it = r.headers.find("accept-language");
    return Page(it == r.headers.end() ? "none" : it->second, {{"Vary", "Accept-Language"}});
  });
  EXPECT_EQ(f.Get("/v", {{"Accept-Language", "en"}}).Header("x-cache"), "MISS");
  EXPECT_EQ(f.Get("/v", {{"Accept-Language", "fr"}}).Header("x-cache"), "MISS");
  auto en = f.Get("/v", {{"Accept-Language", "en"}});
  auto fr = f.Get("/v", {{"Accept-Language", "fr"}});
  EXPECT_EQ(en.Header("x-cache"), "HIT");
  EXPECT_EQ(en.body, "en");
  EXPECT_EQ(fr.Header("x-cache"), "HIT");
  EXPECT_EQ(fr.body, "fr");
  EXPECT_EQ(f.origin.Count("/v"), 2);
}

TEST(EdgeServer, SetCookieResponsesAreNotStored) {
  EdgeFixture f([](const OriginRequest&) { return Page("c", {{"Set-Cookie", "sid=1"}}); });
  EXPECT_EQ(f.Get("/sc").Header("x-cache"), "MISS");
  EXPECT_EQ(f.Get("/sc").Header("x-cache"), "MISS");
  EXPECT_EQ(f.origin.Count("/sc"), 2);
  EXPECT_EQ(f.edge->Metrics().Outcome("store/set_cookie"), 2u);
}

TEST(EdgeServer, PrivateAndNoStoreAreNotStored) {
  EdgeFixture f([](const OriginRequest& r) {
    return Page("p", {{"Cache-Control", r.Path() == "/priv" ? "private" : "no-store"}});
  });
  f.Get("/priv");
  f.Get("/nostore");
  EXPECT_EQ(f.Get("/priv").Header("x-cache"), "MISS");
  EXPECT_EQ(f.Get("/nostore").Header("x-cache"), "MISS");
  EXPECT_EQ(f.edge->Metrics().Outcome("store/private"), 2u);
  EXPECT_EQ(f.edge->Metrics().Outcome("store/no_store"), 2u);
}

TEST(EdgeServer, HeadIsAnsweredWithoutBodyAndFillsTheCache) {
  EdgeFixture f([](const OriginRequest&) { return Page("0123456789"); });
  auto h = f.edge ? Fetch(f.edge->port(), "HEAD", "/h") : ClientResponse{};
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.Header("content-length"), "10");
  EXPECT_TRUE(h.body.empty());
  auto g = f.Get("/h");
  EXPECT_EQ(g.Header("x-cache"), "HIT");
  EXPECT_EQ(g.body, "0123456789");
  EXPECT_EQ(f.origin.Requests().at(0).method, "GET");
}

TEST(EdgeServer, PurgeAndBanThroughAdmin) {
  EdgeFixture f([](const OriginRequest& r) { return Page("x" + r.Path()); });
  f.Get("/p/1");
  f.Get("/p/2");
  f.Get("/q/1");
  auto purge = f.Admin("POST", "/purge?key=" + PercentEncode(FakeRules::KeyFor("/p/1")));
  EXPECT_EQ(purge.status, 200);
  EXPECT_EQ(f.Get("/p/1").Header("x-cache"), "MISS");
  EXPECT_EQ(f.Get("/p/2").Header("x-cache"), "HIT");
  EXPECT_EQ(f.Admin("POST", "/purge?url=/p/2").status, 200);
  EXPECT_EQ(f.Get("/p/2").Header("x-cache"), "MISS");
  auto ban = f.Admin("POST", "/ban?prefix=/p/");
  EXPECT_EQ(ban.status, 200);
  EXPECT_EQ(ban.body, "{\"banned\":2}\n");
  EXPECT_EQ(f.Get("/p/1").Header("x-cache"), "MISS");
  EXPECT_EQ(f.Get("/q/1").Header("x-cache"), "HIT");
  EXPECT_EQ(f.Admin("POST", "/ban?regex=%5E/q/%5B0-9%5D$").body, "{\"banned\":1}\n");
  EXPECT_EQ(f.Get("/q/1").Header("x-cache"), "MISS");
  EXPECT_EQ(f.Admin("POST", "/ban?regex=(").status, 400);
}

TEST(EdgeServer, AdminRequiresTheBearerToken) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); });
  EXPECT_EQ(f.Admin("GET", "/metrics", "").status, 401);
  EXPECT_EQ(f.Admin("GET", "/metrics", "wrong").status, 401);
  EXPECT_EQ(f.Admin("POST", "/purge?key=x", "").status, 401);
  auto m = f.Admin("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("cacheportal_edge_hits_total"), std::string::npos);
  EXPECT_NE(m.body.find("cacheportal_edge_stage_total{stage=\"lookup\",outcome=\"hit\"}"),
            std::string::npos);
  auto s = f.Admin("GET", "/stats");
  EXPECT_EQ(s.status, 200);
  EXPECT_NE(s.body.find("\"stored_objects\""), std::string::npos);
}

TEST(EdgeServer, EmptyConfiguredTokenRefusesEveryone) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); },
                [](EdgeOptions& o, EdgeDeps&) { o.admin_token = ""; });
  EXPECT_EQ(f.Admin("GET", "/metrics", "").status, 401);
  EXPECT_EQ(f.Admin("GET", "/metrics", "anything").status, 401);
}

TEST(EdgeServer, EjectDuringFillTaintsIt) {
  Gate gate;
  EdgeFixture f([&](const OriginRequest&) {
    gate.Wait();
    return Page("old");
  });
  auto first = std::async(std::launch::async, [&] { return f.Get("/ej"); });
  ASSERT_TRUE(WaitUntil([&] { return f.origin.Count("/ej") == 1; }));
  std::string key = FakeRules::KeyFor("/ej");
  ASSERT_TRUE(f.edge->Eject(std::span<const std::string>(&key, 1)).ok());
  gate.Open();
  auto r = first.get();
  EXPECT_EQ(r.body, "old");  // served to its requester...
  EXPECT_EQ(r.Header("x-cache"), "MISS");
  EXPECT_EQ(f.Get("/ej").Header("x-cache"), "MISS");  // ...but never stored
  EXPECT_EQ(f.edge->Metrics().Outcome("store/tainted"), 1u);
}

// A second fill overlapping a tainted one could be registered first and then
// lose its map registration to the first one's late refusal, leaving a stored
// copy that no later change finds. So until the tainted fill is done,
// requests for the key fetch alone and store nothing.
TEST(EdgeServer, RequestsDuringATaintedFillNeitherJoinNorReplaceIt) {
  Gate gate;
  std::atomic<int> calls{0};
  EdgeFixture f([&](const OriginRequest&) {
    if (calls.fetch_add(1) == 0) {
      gate.Wait();
      return Page("old");
    }
    return Page("new");
  });
  auto first = std::async(std::launch::async, [&] { return f.Get("/tf"); });
  ASSERT_TRUE(WaitUntil([&] { return f.origin.Count("/tf") == 1; }));
  std::string key = FakeRules::KeyFor("/tf");
  ASSERT_TRUE(f.edge->Eject(std::span<const std::string>(&key, 1)).ok());
  auto during = f.Get("/tf");
  EXPECT_EQ(during.body, "new");
  EXPECT_EQ(during.Header("x-cache"), "MISS");
  EXPECT_FALSE(f.edge->Contains(key));
  gate.Open();
  EXPECT_EQ(first.get().body, "old");
  EXPECT_FALSE(f.edge->Contains(key));
  // Once the tainted fill is done, the next request fills and stores again.
  EXPECT_EQ(f.Get("/tf").Header("x-cache"), "MISS");
  EXPECT_EQ(f.Get("/tf").Header("x-cache"), "HIT");
  EXPECT_EQ(f.origin.Count("/tf"), 3);
}

TEST(EdgeServer, EjectRemovesAndEjectAllFlushes) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); });
  f.Get("/k1");
  f.Get("/k2");
  std::string k1 = FakeRules::KeyFor("/k1");
  EXPECT_TRUE(f.edge->Contains(k1));
  ASSERT_TRUE(f.edge->Eject(std::span<const std::string>(&k1, 1)).ok());
  EXPECT_FALSE(f.edge->Contains(k1));
  EXPECT_EQ(f.Get("/k2").Header("x-cache"), "HIT");
  ASSERT_TRUE(f.edge->EjectAll().ok());
  EXPECT_EQ(f.Get("/k2").Header("x-cache"), "MISS");
  EXPECT_EQ(f.edge->Metrics().stored_objects, 1u);
}

TEST(EdgeServer, NotVouchedServesNoHits) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); });
  f.Get("/nv");
  EXPECT_EQ(f.Get("/nv").Header("x-cache"), "HIT");
  f.edge->SetVouched(false);
  EXPECT_EQ(f.Get("/nv").Header("x-cache"), "PASS");
  EXPECT_EQ(f.Get("/nv").Header("x-cache"), "PASS");
  f.edge->SetVouched(true);
  EXPECT_EQ(f.Get("/nv").Header("x-cache"), "HIT");
  EXPECT_EQ(f.edge->Metrics().Outcome("lookup/not_vouched"), 2u);
}

TEST(EdgeServer, RegistrarVerdictDecidesStorage) {
  FakeRegistrar reg;
  EdgeFixture f([](const OriginRequest&) { return Page("r"); },
                [&](EdgeOptions&, EdgeDeps& d) {
                  d.registrar = &reg;
                  d.store_without_registrar = false;
                });
  reg.verdict = RegisterVerdict::kTainted;
  EXPECT_EQ(f.Get("/r").Header("x-cache"), "MISS");
  EXPECT_EQ(f.Get("/r").Header("x-cache"), "MISS");
  EXPECT_EQ(f.edge->Metrics().Outcome("store/tainted"), 2u);
  reg.verdict = RegisterVerdict::kStore;
  f.Get("/r");
  EXPECT_EQ(f.Get("/r").Header("x-cache"), "HIT");
  // The request id handed over is the trace id the origin saw.
  auto reqs = f.origin.Requests();
  std::lock_guard lock(reg.mu);
  ASSERT_EQ(reg.completed.size(), 3u);
  EXPECT_EQ(reg.completed.back().cache_key, FakeRules::KeyFor("/r"));
  EXPECT_EQ(reg.completed.back().url, "/r");
  EXPECT_EQ(TraceParent::Parse(reqs.back().headers.at("traceparent"))->trace_id,
            reg.completed.back().request_id);
  // Passes are abandoned.
  reg.mu.unlock();
  f.Get("/pass/z");
  // Abandon runs on the registrar pool, after the answer.
  EXPECT_TRUE(WaitUntil([&] {
    std::lock_guard l(reg.mu);
    return reg.abandoned.size() == 1;
  }));
  reg.mu.lock();
}

TEST(EdgeServer, WithoutRegistrarNothingIsStored) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); },
                [](EdgeOptions&, EdgeDeps& d) { d.store_without_registrar = false; });
  EXPECT_EQ(f.Get("/x").Header("x-cache"), "PASS");
  EXPECT_EQ(f.Get("/x").Header("x-cache"), "PASS");
}

OriginResponse EsiOrigin(const OriginRequest& r) {
  if (r.Path() == "/page")
    return Page("<html><esi:include src=\"/frag/a\"/> and <esi:include src='/frag/b' /></html>",
                {{"Surrogate-Control", "content=\"ESI/1.0\""}});
  if (r.Path() == "/frag/a") return Page("[A]");
  if (r.Path() == "/frag/b") return Page("[B]");
  if (r.Path() == "/broken")
    return Page("x<esi:include/>y<esi:bogus/>z", {{"Surrogate-Control", "content=\"ESI/1.0\""}});
  return Page("?", {});
}

TEST(EdgeServer, EsiAssemblesIncludesInOrderAndCachesFragments) {
  EdgeFixture f(EsiOrigin);
  auto p = f.Get("/page");
  EXPECT_EQ(p.body, "<html>[A] and [B]</html>");
  EXPECT_EQ(p.Header("content-length"), std::to_string(p.body.size()));
  auto p2 = f.Get("/page");
  EXPECT_EQ(p2.Header("x-cache"), "HIT");
  EXPECT_EQ(p2.body, p.body);
  EXPECT_EQ(f.Get("/frag/a").Header("x-cache"), "HIT");
  EXPECT_EQ(f.origin.Count("/frag/a"), 1);
  EXPECT_EQ(f.origin.Count("/frag/b"), 1);
  std::string page = FakeRules::KeyFor("/page"), a = FakeRules::KeyFor("/frag/a"),
              b = FakeRules::KeyFor("/frag/b");
  auto children = f.edge->ChildrenOf(page);
  EXPECT_EQ(std::set<std::string>(children.begin(), children.end()), (std::set<std::string>{a, b}));
  // Ejecting a fragment ejects the fragment only: the page is stored as its
  // template, so the next delivery fetches the fresh fragment.
  ASSERT_TRUE(f.edge->Eject(std::span<const std::string>(&a, 1)).ok());
  EXPECT_FALSE(f.edge->Contains(a));
  EXPECT_TRUE(f.edge->Contains(b));
  EXPECT_TRUE(f.edge->Contains(page));
  auto p3 = f.Get("/page");
  EXPECT_EQ(p3.Header("x-cache"), "HIT");
  EXPECT_EQ(p3.body, p.body);
  EXPECT_EQ(f.origin.Count("/page"), 1);
  EXPECT_EQ(f.origin.Count("/frag/a"), 2);
  EXPECT_EQ(f.origin.Count("/frag/b"), 1);
  EXPECT_EQ(f.edge->Metrics().esi_errors, 0u);
}

OriginResponse NestedEsiOrigin(const OriginRequest& r) {
  const std::vector<std::pair<std::string, std::string>> esi = {
      {"Surrogate-Control", "content=\"ESI/1.0\""}};
  if (r.Path() == "/outer")
    return Page(
        "<o><esi:include src=\"/frag/a\"/>|<esi:include src=\"/frag/inner\"/>|"
        "<esi:include src=\"/frag/b\"/></o>",
        esi);
  if (r.Path() == "/frag/inner") return Page("<i><esi:include src=\"/frag/b\"/></i>", esi);
  if (r.Path() == "/frag/a") return Page("[A]");
  if (r.Path() == "/frag/b") return Page("[B]");
  return Page("?", {});
}

// Hit fragments are taken in place and the rest fetched concurrently: the
// assembled page, the origin traffic and every outcome counter must be the
// same whichever way each include went.
TEST(EdgeServer, EsiCountsEveryIncludeOnceWhetherTakenInPlaceOrFetched) {
  EdgeFixture f(NestedEsiOrigin);
  const std::string want = "<o>[A]|<i>[B]</i>|[B]</o>";
  EXPECT_EQ(f.Get("/outer").body, want);
  uint64_t hits0 = f.edge->Metrics().Outcome("lookup/hit");
  uint64_t keyed0 = f.edge->Metrics().Outcome("key/cache");
  // All hits: the page, /frag/a, /frag/inner (itself assembled: /frag/b) and /frag/b.
  auto p = f.Get("/outer");
  EXPECT_EQ(p.Header("x-cache"), "HIT");
  EXPECT_EQ(p.body, want);
  EXPECT_EQ(p.Header("content-length"), std::to_string(want.size()));
  EXPECT_EQ(f.edge->Metrics().Outcome("lookup/hit") - hits0, 5u);
  EXPECT_EQ(f.edge->Metrics().Outcome("key/cache") - keyed0, 5u);
  // One include missing: it alone goes to the origin, the others stay hits.
  std::string a = FakeRules::KeyFor("/frag/a");
  ASSERT_TRUE(f.edge->Eject(std::span<const std::string>(&a, 1)).ok());
  uint64_t hits1 = f.edge->Metrics().Outcome("lookup/hit");
  uint64_t misses1 = f.edge->Metrics().Outcome("lookup/miss");
  EXPECT_EQ(f.Get("/outer").body, want);
  EXPECT_EQ(f.edge->Metrics().Outcome("lookup/hit") - hits1, 4u);
  EXPECT_EQ(f.edge->Metrics().Outcome("lookup/miss") - misses1, 1u);
  // Two missing (the nested template's own include among them): fetched concurrently.
  std::string b = FakeRules::KeyFor("/frag/b");
  ASSERT_TRUE(f.edge->Eject(std::span<const std::string>(&a, 1)).ok());
  ASSERT_TRUE(f.edge->Eject(std::span<const std::string>(&b, 1)).ok());
  EXPECT_EQ(f.Get("/outer").body, want);
  EXPECT_EQ(f.origin.Count("/outer"), 1);
  EXPECT_EQ(f.origin.Count("/frag/inner"), 1);
  EXPECT_EQ(f.origin.Count("/frag/a"), 3);
  EXPECT_LE(f.origin.Count("/frag/b"), 4);  // two concurrent /frag/b misses may coalesce
  EXPECT_GE(f.origin.Count("/frag/b"), 2);
  EXPECT_EQ(f.edge->Metrics().esi_errors, 0u);
}

TEST(EdgeServer, FragmentEjectsParentsWhenConfigured) {
  EdgeFixture f(EsiOrigin, [](EdgeOptions&, EdgeDeps& d) { d.fragment_ejects_parents = true; });
  f.Get("/page");
  std::string page = FakeRules::KeyFor("/page"), a = FakeRules::KeyFor("/frag/a");
  ASSERT_TRUE(f.edge->Contains(page));
  ASSERT_TRUE(f.edge->Eject(std::span<const std::string>(&a, 1)).ok());
  EXPECT_FALSE(f.edge->Contains(a));
  EXPECT_FALSE(f.edge->Contains(page));
}

TEST(EdgeServer, TemplatesRegisterNoChildrenByDefault) {
  FakeRegistrar reg;
  EdgeFixture f(EsiOrigin, [&](EdgeOptions&, EdgeDeps& d) {
    d.registrar = &reg;
    d.store_without_registrar = false;
  });
  f.Get("/page");
  std::lock_guard lock(reg.mu);
  ASSERT_EQ(reg.completed.size(), 3u);
  EXPECT_TRUE(reg.completed.front().children.empty());
}

TEST(EdgeServer, EsiRegistersChildrenWithThePage) {
  FakeRegistrar reg;
  EdgeFixture f(EsiOrigin, [&](EdgeOptions&, EdgeDeps& d) {
    d.registrar = &reg;
    d.store_without_registrar = false;
    d.fragment_ejects_parents = true;
  });
  f.Get("/page");
  std::lock_guard lock(reg.mu);
  ASSERT_EQ(reg.completed.size(), 3u);  // the page, then its two fragments
  const auto& page = reg.completed.front();
  EXPECT_EQ(page.cache_key, FakeRules::KeyFor("/page"));
  EXPECT_EQ(std::set<std::string>(page.children.begin(), page.children.end()),
            (std::set<std::string>{FakeRules::KeyFor("/frag/a"), FakeRules::KeyFor("/frag/b")}));
}

TEST(EdgeServer, EsiFragmentKeyedPerUserIsNeverSharedThroughThePage) {
  // The page is keyed blind to the user; its /frag/user include is keyed by
  // the `user` cookie. Each delivery assembles anew, so bob never gets
  // alice's fragment even though the page template is a hit.
  EdgeFixture f([](const OriginRequest& r) {
    if (r.Path() == "/upage")
      return Page("<p><esi:include src=\"/frag/user\"/></p>",
                  {{"Surrogate-Control", "content=\"ESI/1.0\""}});
    auto it = r.headers.find("cookie");
    return Page("hello " + (it == r.headers.end() ? std::string("nobody") : it->second));
  });
  auto alice = f.Get("/upage", {{"Cookie", "user=alice"}});
  auto bob = f.Get("/upage", {{"Cookie", "user=bob"}});
  EXPECT_EQ(alice.body, "<p>hello user=alice</p>");
  EXPECT_EQ(bob.body, "<p>hello user=bob</p>");
  EXPECT_EQ(bob.Header("x-cache"), "HIT");  // the template
  auto alice2 = f.Get("/upage", {{"Cookie", "user=alice"}});
  EXPECT_EQ(alice2.body, "<p>hello user=alice</p>");
  EXPECT_EQ(f.origin.Count("/upage"), 1);
  EXPECT_EQ(f.origin.Count("/frag/user"), 2);  // one per user, then hits
  // Assembled pages carry their own validator and answer 304 on it.
  std::string etag = alice2.Header("etag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(f.Get("/upage", {{"Cookie", "user=alice"}, {"If-None-Match", etag}}).status, 304);
  EXPECT_EQ(f.Get("/upage", {{"Cookie", "user=bob"}, {"If-None-Match", etag}}).status, 200);
}

TEST(EdgeServer, EsiBadMarkupIsCountedNotFatal) {
  EdgeFixture f(EsiOrigin);
  auto r = f.Get("/broken");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "xy<esi:bogus/>z");
  EXPECT_EQ(f.edge->Metrics().esi_errors, 2u);
}

TEST(EdgeServer, BadGatewayWhenOriginIsDown) {
  uint16_t dead_port;
  {
    TinyOrigin tmp([](const OriginRequest&) { return Page("x"); });
    dead_port = tmp.port();
  }
  EdgeFixture f([](const OriginRequest&) { return Page("x"); },
                [&](EdgeOptions& o, EdgeDeps&) { o.origin_port = dead_port; });
  auto r = f.Get("/down");
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(f.Get("/pass/down").status, 502);
  EXPECT_EQ(f.edge->Metrics().Outcome("fetch/connect_failed"), 2u);
}

TEST(EdgeServer, GatewayTimeoutWhenOriginIsSlow) {
  Gate gate;
  EdgeFixture f(
      [&](const OriginRequest&) {
        gate.Wait();
        return Page("late");
      },
      [](EdgeOptions&, EdgeDeps& d) { d.origin_timeout = std::chrono::milliseconds(200); });
  auto r = f.Get("/slow");
  gate.Open();
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(f.edge->Metrics().Outcome("fetch/timeout"), 1u);
}

TEST(EdgeServer, OversizeHeadersGet431) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); },
                [](EdgeOptions& o, EdgeDeps&) { o.max_header_bytes = 1024; });
  auto r = f.Get("/big", {{"X-Big", std::string(4096, 'a')}});
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(f.origin.Total(), 0);
}

TEST(EdgeServer, ConnectionsBeyondTheCapGet503) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); },
                [](EdgeOptions&, EdgeDeps& d) { d.max_client_connections = 1; });
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket idle(ioc);
  idle.connect({boost::asio::ip::make_address("127.0.0.1"), f.edge->port()});
  ASSERT_TRUE(WaitUntil([&] { return f.edge->Metrics().open_connections == 1; }));
  EXPECT_EQ(f.Get("/x").status, 503);
  idle.close();
  ASSERT_TRUE(WaitUntil([&] { return f.edge->Metrics().open_connections == 0; }));
  EXPECT_EQ(f.Get("/x").status, 200);
}

TEST(EdgeServer, MalformedRequestGets400) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); });
  std::string out = testing::RawExchange(f.edge->port(), "GARBAGE\x01 / HTTP/9\r\n\r\n");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 400")) << out;
  EXPECT_EQ(f.origin.Total(), 0);
}

TEST(EdgeServer, LruEvictsUnderASmallBudget) {
  const std::string body(4096, 'z');
  EdgeFixture f([&](const OriginRequest&) { return Page(body); },
                [](EdgeOptions& o, EdgeDeps& d) {
                  o.memory_budget_bytes = 3 * 4096 + 3 * 700;  // room for three pages
                  d.store_shards = 1;
                });
  f.Get("/1");
  f.Get("/2");
  f.Get("/3");
  EXPECT_EQ(f.Get("/1").Header("x-cache"), "HIT");  // /2 is now least recently used
  f.Get("/4");
  EXPECT_EQ(f.edge->Metrics().evictions, 1u);
  EXPECT_EQ(f.Get("/1").Header("x-cache"), "HIT");
  EXPECT_EQ(f.Get("/3").Header("x-cache"), "HIT");
  EXPECT_EQ(f.Get("/4").Header("x-cache"), "HIT");
  EXPECT_EQ(f.Get("/2").Header("x-cache"), "MISS");
}

TEST(EdgeServer, ReadYourWritesBypassesTheCacheForTheWritingSession) {
  EdgeFixture f([](const OriginRequest& r) { return Page(r.method + " " + r.Path()); },
                [](EdgeOptions& o, EdgeDeps&) { o.read_your_writes_seconds = 3600; });
  f.Get("/cart");
  EXPECT_EQ(f.Get("/cart", {{"Cookie", "sid=alice"}}).Header("x-cache"), "HIT");
  auto post = Fetch(f.edge->port(), "POST", "/cart", {{"Cookie", "sid=alice"}}, "item=1");
  EXPECT_EQ(post.Header("x-cache"), "PASS");
  EXPECT_EQ(f.Get("/cart", {{"Cookie", "sid=alice"}}).Header("x-cache"), "PASS");
  EXPECT_EQ(f.Get("/cart", {{"Cookie", "sid=bob"}}).Header("x-cache"), "HIT");
  EXPECT_EQ(f.edge->Metrics().Outcome("key/read_your_writes"), 1u);
}

TEST(EdgeServer, AnonymousPostsDoNotBypassTheCacheForOthers) {
  EdgeFixture f([](const OriginRequest& r) { return Page(r.method + " " + r.Path()); },
                [](EdgeOptions& o, EdgeDeps&) { o.read_your_writes_seconds = 3600; });
  f.Get("/cart");
  EXPECT_EQ(f.Get("/cart").Header("x-cache"), "HIT");
  // Same client address, no session cookie: no read-your-writes window.
  auto post = Fetch(f.edge->port(), "POST", "/cart", {}, "item=1");
  EXPECT_EQ(post.Header("x-cache"), "PASS");
  EXPECT_EQ(f.Get("/cart").Header("x-cache"), "HIT");
  EXPECT_EQ(f.edge->Metrics().Outcome("key/read_your_writes"), 0u);
}

TEST(EdgeServer, CacheablePostIsForwardedWithItsBodyAndKeyedByIt) {
  EdgeFixture f([](const OriginRequest& r) { return Page(r.method + " " + r.body); });
  auto a = Fetch(f.edge->port(), "POST", "/search", {}, "q=fish");
  EXPECT_EQ(a.body, "POST q=fish");
  EXPECT_EQ(a.Header("x-cache"), "MISS");
  auto b = Fetch(f.edge->port(), "POST", "/search", {}, "q=fish");
  EXPECT_EQ(b.Header("x-cache"), "HIT");
  EXPECT_EQ(b.body, "POST q=fish");
  auto c = Fetch(f.edge->port(), "POST", "/search", {}, "q=dog");
  EXPECT_EQ(c.Header("x-cache"), "MISS");
  EXPECT_EQ(c.body, "POST q=dog");
  EXPECT_EQ(f.edge->Metrics().Outcome("key/read_your_writes"), 0u);
}

TEST(EdgeServer, PassedEsiPagesAreAssembledToo) {
  EdgeFixture f([](const OriginRequest& r) {
    if (r.Path() == "/pass/page")
      return Page("<esi:include src=\"/frag/x\"/>!",
                  {{"Surrogate-Control", "content=\"ESI/1.0\""}});
    return Page("X");
  });
  auto r = f.Get("/pass/page");
  EXPECT_EQ(r.Header("x-cache"), "PASS");
  EXPECT_EQ(r.body, "X!");
}

TEST(EdgeServer, ClientNoCacheRevalidatesWhenConfigured) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); },
                [](EdgeOptions& o, EdgeDeps&) { o.client_no_cache = "revalidate"; });
  f.Get("/nc");
  EXPECT_EQ(f.Get("/nc").Header("x-cache"), "HIT");
  EXPECT_EQ(f.Get("/nc", {{"Cache-Control", "no-cache"}}).Header("x-cache"), "MISS");
  EXPECT_EQ(f.origin.Count("/nc"), 2);
}

TEST(EdgeServer, ClientNoCacheIgnoredByDefault) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); });
  f.Get("/nc");
  EXPECT_EQ(f.Get("/nc", {{"Cache-Control", "no-cache"}}).Header("x-cache"), "HIT");
}

TEST(EdgeServer, ReloadedRulesReachEveryWorker) {
  std::mutex mu;
  std::shared_ptr<const differentiator::RuleSet> live = std::make_shared<FakeRules>();
  std::atomic<bool> reload{false};
  EdgeFixture f([](const OriginRequest&) { return Page("x"); },
                [&](EdgeOptions&, EdgeDeps& d) {
                  d.rules = nullptr;
                  d.rules_provider = [&] {
                    std::lock_guard lock(mu);
                    return live;
                  };
                  d.rules_check_interval = std::chrono::milliseconds(5);
                  d.check_rules = [&] {
                    return reload.exchange(false) ? RulesCheck::kReloaded : RulesCheck::kUnchanged;
                  };
                });
  f.Get("/a");
  EXPECT_EQ(f.Get("/a").Header("x-cache"), "HIT");
  {
    std::lock_guard lock(mu);
    live = std::make_shared<FakeRules>(std::chrono::seconds(0), /*pass_all=*/true);
  }
  reload = true;
  ASSERT_TRUE(WaitUntil([&] { return f.edge->Metrics().rule_reloads_ok == 1; }));
  // Each request is a new connection; connections alternate between workers.
  EXPECT_TRUE(WaitUntil([&] {
    for (int i = 0; i < 4; ++i)
      if (f.Get("/a").Header("x-cache") != "PASS") return false;
    return true;
  }));
}

TEST(EdgeServer, RulesCheckTimerCountsReloads) {
  std::atomic<int> calls{0};
  EdgeFixture f([](const OriginRequest&) { return Page("x"); },
                [&](EdgeOptions&, EdgeDeps& d) {
                  d.rules_check_interval = std::chrono::milliseconds(5);
                  d.check_rules = [&] {
                    int n = calls.fetch_add(1);
                    return n == 0   ? RulesCheck::kReloaded
                           : n == 1 ? RulesCheck::kFailed
                                    : RulesCheck::kUnchanged;
                  };
                });
  ASSERT_TRUE(WaitUntil([&] { return calls.load() >= 3; }));
  auto m = f.edge->Metrics();
  EXPECT_EQ(m.rule_reloads_ok, 1u);
  EXPECT_EQ(m.rule_reloads_failed, 1u);
}

// A blocking client socket with a receive timeout, for exchanges that need
// to read between writes (Expect: 100-continue).
struct RawClient {
  explicit RawClient(uint16_t port) : socket(ioc) {
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    timeval tv{10, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void Send(const std::string& bytes) { boost::asio::write(socket, boost::asio::buffer(bytes)); }
  // Reads up to and including the first blank line.
  std::string ReadHead() {
    boost::system::error_code ec;
    size_t n = boost::asio::read_until(socket, boost::asio::dynamic_buffer(buf), "\r\n\r\n", ec);
    if (ec) return {};
    std::string head = buf.substr(0, n);
    buf.erase(0, n);
    return head;
  }
  std::string ReadToClose() {
    boost::system::error_code ec;
    char tmp[4096];
    for (;;) {
      size_t n = socket.read_some(boost::asio::buffer(tmp), ec);
      buf.append(tmp, n);
      if (ec) break;
    }
    return std::exchange(buf, std::string());
  }
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket;
  std::string buf;
};

TEST(EdgeServer, ExpectContinueGetsA100ThenTheBodyIsForwarded) {
  EdgeFixture f([](const OriginRequest& r) { return Page("got " + r.body); });
  RawClient c(f.edge->port());
  c.Send(
      "POST /pass/form HTTP/1.1\r\nHost: shop\r\nContent-Type: "
      "application/x-www-form-urlencoded\r\nContent-Length: 7\r\nExpect: 100-continue\r\n"
      "Connection: close\r\n\r\n");
  std::string interim = c.ReadHead();
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(f.origin.Total(), 0);  // nothing forwarded before the body came
  c.Send("a=1&b=2");
  std::string final_answer = c.ReadToClose();
  EXPECT_TRUE(final_answer.starts_with("HTTP/1.1 200 OK\r\n")) << final_answer;
  EXPECT_TRUE(final_answer.ends_with("\r\n\r\ngot a=1&b=2")) << final_answer;
  ASSERT_EQ(f.origin.Total(), 1);
  auto req = f.origin.Requests().at(0);
  EXPECT_EQ(req.body, "a=1&b=2");
  EXPECT_EQ(req.headers.count("expect"), 0u);  // the edge answered it; the origin gets the body
}

TEST(EdgeServer, ExpectContinueOverTheBodyLimitGets413BeforeTheBody) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); },
                [](EdgeOptions& o, EdgeDeps&) { o.max_request_body_bytes = 16; });
  RawClient c(f.edge->port());
  c.Send(
      "POST /pass/upload HTTP/1.1\r\nHost: shop\r\nContent-Length: 100000\r\n"
      "Expect: 100-continue\r\n\r\n");
  std::string out = c.ReadToClose();
  EXPECT_TRUE(out.starts_with("HTTP/1.1 413 Content Too Large\r\n")) << out;
  EXPECT_NE(out.find("request body exceeds 16 bytes (edge.max_request_body_bytes)"),
            std::string::npos)
      << out;
  EXPECT_EQ(f.origin.Total(), 0);
}

TEST(EdgeServer, UnknownExpectationGets417) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); });
  std::string out = testing::RawExchange(
      f.edge->port(),
      "POST /pass/x HTTP/1.1\r\nHost: shop\r\nContent-Length: 2\r\nExpect: teapot\r\n\r\nhi");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 417 Expectation Failed\r\n")) << out;
  EXPECT_EQ(f.origin.Total(), 0);
}

TEST(EdgeServer, ChunkedBodyOverTheLimitGets413) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); },
                [](EdgeOptions& o, EdgeDeps&) { o.max_request_body_bytes = 16; });
  std::string out = testing::RawExchange(
      f.edge->port(), "POST /pass/x HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n" +
                          std::string("40\r\n") + std::string(64, 'b') + "\r\n0\r\n\r\n");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 413")) << out;
  EXPECT_EQ(f.origin.Total(), 0);
}

TEST(EdgeServer, OversizeHeadersSay431WithTheLimit) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); },
                [](EdgeOptions& o, EdgeDeps&) { o.max_header_bytes = 1024; });
  std::string out = testing::RawExchange(f.edge->port(), "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " +
                                                             std::string(8192, 'a') + "\r\n\r\n");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 431")) << out;
  EXPECT_NE(out.find("exceed 1024 bytes (edge.max_header_bytes)"), std::string::npos) << out;
}

TEST(EdgeServer, BadFramingGets400AndNeverReachesTheOrigin) {
  EdgeFixture f([](const OriginRequest&) { return Page("x"); });
  const std::string bad[] = {
      "POST /pass/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      "POST /pass/x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
      "POST /pass/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET /x HTTP/1.1\r\nHost a\r\n\r\n",
      "GET /x HTTP/1.1\r\nHo st: a\r\n\r\n",
      // Both framings at once: a smuggling attempt.
      "POST /pass/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n",
  };
  for (const auto& req : bad) {
    std::string out = testing::RawExchange(f.edge->port(), req);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 400 Bad Request\r\n")) << req << "\n→ " << out;
  }
  EXPECT_EQ(f.origin.Total(), 0);
  EXPECT_EQ(f.Get("/x").status, 200);  // still serving
}

TEST(EdgeServer, OriginInterim100IsSkippedForTheFinalAnswer) {
  // A raw origin that sends an interim 100 Continue before its answer.
  boost::asio::io_context oioc;
  boost::asio::ip::tcp::acceptor acceptor(
      oioc, {boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(0)});
  std::thread origin([&] {
    boost::system::error_code ec;
    auto sock = acceptor.accept(ec);
    if (ec) return;
    std::string in;
    boost::asio::read_until(sock, boost::asio::dynamic_buffer(in), "\r\n\r\n", ec);
    boost::asio::write(sock,
                       boost::asio::buffer(std::string(
                           "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: "
                           "text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfinal")),
                       ec);
    sock.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
    boost::asio::read(sock, boost::asio::dynamic_buffer(in), ec);  // until the edge closes
  });
  EdgeOptions o;
  o.listen_port = 0;
  o.admin_port = 0;
  o.origin_port = acceptor.local_endpoint().port();
  EdgeDeps d;
  d.rules = std::make_shared<FakeRules>();
  d.store_without_registrar = true;
  auto edge = EdgeServer::Start(o, std::move(d));
  ASSERT_TRUE(edge.ok()) << edge.status().ToString();
  auto r = Fetch(edge.value()->port(), "GET", "/interim");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "final");
  EXPECT_EQ(r.Header("x-cache"), "MISS");
  edge.value()->Stop();
  origin.join();
}

// An origin whose keep-alive connections can all be closed at once, as a
// server's idle timeout does: answers every request on a connection with
// "ok", holding the first `hold` requests until that many have arrived (so
// they arrive on as many connections).
class ClosingOrigin {
 public:
  explicit ClosingOrigin(int hold) : hold_(hold) {
    namespace asio = boost::asio;
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Accept(); });
  }
  ~ClosingOrigin() {
    // shutdown() wakes a thread blocked in accept(); close() alone does not.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    thread_.join();
    boost::system::error_code ec;
    acceptor_.close(ec);
    CloseAll();
    for (auto& t : conns_) t.join();
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  // Closes every connection (server side), without the client asking.
  void CloseAll() {
    std::lock_guard lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  void Accept() {
    for (;;) {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket sock(io_);
      acceptor_.accept(sock, ec);
      if (ec) return;
      ++accepted_;
      std::lock_guard lock(mu_);
      fds_.push_back(sock.native_handle());
      conns_.emplace_back([this, s = std::move(sock)]() mutable { Serve(std::move(s)); });
    }
  }
  void Serve(boost::asio::ip::tcp::socket sock) {
    std::string buf;
    for (;;) {
      boost::system::error_code ec;
      boost::asio::read_until(sock, boost::asio::dynamic_buffer(buf), "\r\n\r\n", ec);
      if (ec) return;
      buf.erase(0, buf.find("\r\n\r\n") + 4);
      if (served_.fetch_add(1) < hold_) WaitUntil([this] { return accepted_.load() >= hold_; });
      std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      boost::asio::write(sock, boost::asio::buffer(reply), ec);
      if (ec) return;
    }
  }

  int hold_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_{io_};
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0}, served_{0};
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> conns_;
  std::thread thread_;
};

// The origin closed every pooled connection while the edge was idle: the
// first reuse finds a dead one, and the retry must connect afresh instead of
// taking the next (just as dead) pooled connection.
TEST(EdgeServer, RetriesOnAFreshConnectionWhenTheOriginClosedItsIdleOnes) {
  ClosingOrigin origin(/*hold=*/2);
  EdgeFixture f([](const OriginRequest&) { return Page("unused"); },
                [&](EdgeOptions& o, EdgeDeps&) {
                  o.origin_port = origin.port();
                  o.threads = 1;  // one worker: one pool holds both connections
                });
  auto a = std::async(std::launch::async, [&] { return f.Get("/pass/a"); });
  auto b = std::async(std::launch::async, [&] { return f.Get("/pass/b"); });
  ASSERT_EQ(a.get().status, 200);
  ASSERT_EQ(b.get().status, 200);
  ASSERT_EQ(origin.accepted(), 2);
  origin.CloseAll();
  ClientResponse c = f.Get("/pass/c");
  EXPECT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(c.body, "ok");
  EXPECT_EQ(origin.accepted(), 3);
}

}  // namespace
}  // namespace cacheportal::edge
