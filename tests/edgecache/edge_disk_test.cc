// The edge's RocksDB second tier over real sockets: a restarted edge answers
// hits from disk only for what the invalidator's resume position vouches for;
// purges and bans reach the disk copy before they return.
#include <gtest/gtest.h>

#include <atomic>

#include "common/session_cookie.h"
#include "edgecache/disk_tier.h"
#include "edgecache/edge_server.h"
#include "tests/edgecache/test_http.h"
#include "tests/support/temp_dir.h"

namespace cacheportal::edge {
namespace {

using testing::ClientResponse;
using testing::FakeRules;
using testing::Fetch;
using testing::OriginRequest;
using testing::OriginResponse;
using testing::TinyOrigin;

constexpr char kToken[] = "tok";

struct Replication {
  std::atomic<uint64_t> ejected_through{100};
  std::atomic<bool> known{true};  // false: ejected_through reports nullopt
};

class DiskEdge {
 public:
  DiskEdge(uint16_t origin_port, const std::string& path, Replication* repl,
           std::optional<EdgeResumePoint> resume, uint64_t memory_budget = 64 << 20) {
    EdgeOptions o;
    o.listen_port = 0;
    o.admin_port = 0;
    o.admin_token = kToken;
    o.origin_port = origin_port;
    o.disk_tier_path = path;
    o.memory_budget_bytes = memory_budget;
    EdgeDeps d;
    d.rules = std::make_shared<FakeRules>();
    d.store_without_registrar = true;
    d.store_shards = 1;
    if (resume) d.resume_point = [r = *resume] { return r; };
    d.ejected_through = [repl]() -> std::optional<uint64_t> {
      if (!repl->known.load()) return std::nullopt;
      return repl->ejected_through.load();
    };
    auto e = EdgeServer::Start(o, std::move(d));
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    if (e.ok()) edge = std::move(e.value());
  }
  ClientResponse Get(const std::string& target) { return Fetch(edge->port(), "GET", target); }
  ClientResponse Admin(const std::string& target) {
    return Fetch(edge->admin_port(), "POST", target,
                 {{"Authorization", std::string("Bearer ") + kToken}});
  }
  std::unique_ptr<EdgeServer> edge;
};

EdgeResumePoint At(uint64_t position, bool recreated = false) {
  return EdgeResumePoint{true, position, recreated};
}

OriginResponse PageFor(const OriginRequest& r) {
  OriginResponse res;
  res.body = "page " + r.Path() + std::string(3000, '.');
  res.headers = {{"Content-Type", "text/html"}};
  return res;
}

TEST(EdgeDiskTier, WarmRestartServesHitsFromDiskAndPurgesStayPurged) {
  cacheportal::testing::TempDir dir("cp-edge-disk-");
  const std::string path = (dir.root() / "tier").string();
  TinyOrigin origin(PageFor);
  Replication repl;
  {
    DiskEdge e(origin.port(), path, &repl, At(0));
    EXPECT_EQ(e.Get("/a").Header("x-cache"), "MISS");
    EXPECT_EQ(e.Get("/b").Header("x-cache"), "MISS");
    EXPECT_EQ(e.Get("/c").Header("x-cache"), "MISS");
    EXPECT_EQ(e.Get("/a").Header("x-cache"), "HIT");
    EXPECT_EQ(e.edge->Metrics().disk_objects, 3u);
    EXPECT_EQ(e.Admin("/purge?key=" + PercentEncode(FakeRules::KeyFor("/b"))).status, 200);
    std::string key_c = FakeRules::KeyFor("/c");
    ASSERT_TRUE(e.edge->Eject(std::span<const std::string>(&key_c, 1)).ok());
    EXPECT_EQ(e.edge->Metrics().disk_objects, 1u);  // gone from disk before returning
    repl.ejected_through = 120;                     // the clean marker vouches through 120
  }
  DiskEdge e(origin.port(), path, &repl, At(110));
  auto m0 = e.edge->Metrics();
  EXPECT_EQ(m0.disk_loaded, 1u);
  auto a = e.Get("/a");
  EXPECT_EQ(a.Header("x-cache"), "HIT");
  EXPECT_EQ(a.body, "page /a" + std::string(3000, '.'));
  EXPECT_EQ(origin.Count("/a"), 1);  // never fetched again
  EXPECT_EQ(e.Get("/b").Header("x-cache"), "MISS");
  EXPECT_EQ(e.Get("/c").Header("x-cache"), "MISS");
  EXPECT_EQ(origin.Count("/b"), 2);
  EXPECT_EQ(origin.Count("/c"), 2);
  auto m = e.edge->Metrics();
  EXPECT_EQ(m.disk_hits, 1u);
  EXPECT_EQ(m.Outcome("lookup/disk_hit"), 1u);
  EXPECT_EQ(e.Get("/a").Header("x-cache"), "HIT");  // promoted: now from memory
  EXPECT_EQ(e.edge->Metrics().Outcome("lookup/hit"), 1u);
}

TEST(EdgeDiskTier, RecreatedSlotDiscardsTheDiskTier) {
  cacheportal::testing::TempDir dir("cp-edge-disk-");
  const std::string path = (dir.root() / "tier").string();
  TinyOrigin origin(PageFor);
  Replication repl;
  {
    DiskEdge e(origin.port(), path, &repl, At(0));
    e.Get("/a");
    EXPECT_EQ(e.edge->Metrics().disk_objects, 1u);
  }
  DiskEdge e(origin.port(), path, &repl, At(50, /*recreated=*/true));
  EXPECT_EQ(e.edge->Metrics().disk_loaded, 0u);
  EXPECT_EQ(e.edge->Metrics().disk_discarded, 1u);
  EXPECT_EQ(e.Get("/a").Header("x-cache"), "MISS");
  EXPECT_EQ(origin.Count("/a"), 2);
}

TEST(EdgeDiskTier, UnknownResumePositionDiscardsTheDiskTier) {
  cacheportal::testing::TempDir dir("cp-edge-disk-");
  const std::string path = (dir.root() / "tier").string();
  TinyOrigin origin(PageFor);
  Replication repl;
  {
    DiskEdge e(origin.port(), path, &repl, At(0));
    e.Get("/a");
  }
  DiskEdge e(origin.port(), path, &repl, std::nullopt);
  EXPECT_EQ(e.edge->Metrics().disk_discarded, 1u);
  EXPECT_EQ(e.Get("/a").Header("x-cache"), "MISS");
}

// Without a clean shutdown (no marker: the position is unknown at Stop), a
// record survives only if stored at or after the resume position.
TEST(EdgeDiskTier, WithoutACleanMarkerOnlyRecordsStoredSinceTheResumePositionSurvive) {
  cacheportal::testing::TempDir dir("cp-edge-disk-");
  const std::string path = (dir.root() / "tier").string();
  TinyOrigin origin(PageFor);
  Replication repl;
  {
    DiskEdge e(origin.port(), path, &repl, At(0));
    repl.ejected_through = 50;
    e.Get("/old");
    repl.ejected_through = 150;
    e.Get("/new");
    repl.known = false;  // as after a crash: nothing re-stamps the records
  }
  repl.known = true;
  DiskEdge e(origin.port(), path, &repl, At(100));
  EXPECT_EQ(e.edge->Metrics().disk_loaded, 1u);
  EXPECT_EQ(e.Get("/new").Header("x-cache"), "HIT");
  EXPECT_EQ(e.Get("/old").Header("x-cache"), "MISS");
  EXPECT_EQ(origin.Count("/new"), 1);
  EXPECT_EQ(origin.Count("/old"), 2);
}

TEST(EdgeDiskTier, EvictedFromMemoryIsServedFromDiskAndBansReachTheDisk) {
  cacheportal::testing::TempDir dir("cp-edge-disk-");
  const std::string path = (dir.root() / "tier").string();
  TinyOrigin origin(PageFor);
  Replication repl;
  // Room for one 3 KB page in memory; the disk keeps both.
  DiskEdge e(origin.port(), path, &repl, At(0), /*memory_budget=*/5000);
  e.Get("/x/1");
  e.Get("/x/2");
  auto m = e.edge->Metrics();
  EXPECT_EQ(m.stored_objects, 1u);
  EXPECT_EQ(m.disk_objects, 2u);
  EXPECT_EQ(e.Get("/x/1").Header("x-cache"), "HIT");
  EXPECT_EQ(e.edge->Metrics().Outcome("lookup/disk_hit"), 1u);
  EXPECT_EQ(origin.Count("/x/1"), 1);
  EXPECT_EQ(e.Admin("/ban?prefix=/x/").status, 200);
  EXPECT_EQ(e.edge->Metrics().disk_objects, 0u);
  EXPECT_EQ(e.Get("/x/1").Header("x-cache"), "MISS");
  EXPECT_EQ(e.Get("/x/2").Header("x-cache"), "MISS");
}

TEST(EdgeDiskTier, EsiTemplatesSurviveAWarmRestartAndAreAssembledFromTheirFragments) {
  cacheportal::testing::TempDir dir("cp-edge-disk-");
  const std::string path = (dir.root() / "tier").string();
  TinyOrigin origin([](const OriginRequest& r) {
    OriginResponse res;
    if (r.Path() == "/page") {
      res.body = "<p><esi:include src=\"/frag/a\"/>|<esi:include src=\"/frag/b\"/></p>";
      res.headers = {{"Surrogate-Control", "content=\"ESI/1.0\""}};
    } else {
      res.body = r.Path().substr(6);
    }
    return res;
  });
  Replication repl;
  {
    DiskEdge e(origin.port(), path, &repl, At(0));
    auto first = e.Get("/page");
    EXPECT_EQ(first.body, "<p>a|b</p>");
    EXPECT_EQ(e.edge->Metrics().disk_objects, 3u);  // the template and both fragments
  }
  DiskEdge e(origin.port(), path, &repl, At(100));
  auto page = e.Get("/page");
  EXPECT_EQ(page.Header("x-cache"), "HIT");
  EXPECT_EQ(page.body, "<p>a|b</p>");
  EXPECT_EQ(origin.Count("/page"), 1);
  EXPECT_EQ(origin.Count("/frag/a"), 1);
  EXPECT_EQ(origin.Count("/frag/b"), 1);
  EXPECT_EQ(e.edge->Metrics().disk_hits, 3u);
}

TEST(EdgeDiskTier, RecordsRoundTripAndCorruptionIsRejected) {
  CachedObject o;
  o.status = 200;
  o.head = "HTTP/1.1 200 OK\r\nETag: \"x\"\r\n";
  o.etag_off = 23;
  o.etag_len = 3;
  o.body = std::make_shared<const Body>("hello");
  o.stored_at_unix = 1000;
  o.expires_at_unix = 2000;
  o.vary_names = {"accept-language"};
  o.vary_values = "ja";
  o.children = {"GET /frag/a"};
  o.url = "/p";
  o.body_hash = 42;
  std::string rec = EncodeRecord(o, 77);
  CachedObject back;
  uint64_t pos = 0;
  bool esi = true;
  ASSERT_TRUE(DecodeRecord(rec, &back, &pos, &esi));
  EXPECT_EQ(pos, 77u);
  EXPECT_FALSE(esi);
  EXPECT_EQ(back.head, o.head);
  EXPECT_EQ(back.etag(), "\"x\"");
  EXPECT_EQ(*back.body, "hello");
  EXPECT_EQ(back.vary_names, o.vary_names);
  EXPECT_EQ(back.vary_values, "ja");
  EXPECT_EQ(back.children, o.children);
  EXPECT_EQ(back.url, "/p");
  EXPECT_EQ(back.expires_at_unix, 2000);
  for (size_t cut : {size_t{0}, size_t{1}, size_t{20}, rec.size() - 1})
    EXPECT_FALSE(DecodeRecord(std::string_view(rec).substr(0, cut), &back, &pos, &esi)) << cut;
  std::string bad = rec;
  bad[0] = 9;  // unknown format
  EXPECT_FALSE(DecodeRecord(bad, &back, &pos, &esi));
}

}  // namespace
}  // namespace cacheportal::edge
