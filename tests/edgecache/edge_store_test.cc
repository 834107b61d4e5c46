// The edge in front of the real store (sample-app) with the shipped rules:
// ESI pages assembled by the edge are byte-identical to the store's own
// assembly (a request without Surrogate-Capability), hits repeat the bytes,
// and per-shopper pages pass.
#include <gtest/gtest.h>

#include "edgecache/edge_server.h"
#include "sample-app/loader.h"
#include "sample-app/store_server.h"
#include "tests/edgecache/test_http.h"
#include "tests/support/pg_test_db.h"
#include "tests/support/test_env.h"

namespace cacheportal::edge {
namespace {

using testing::Fetch;

constexpr char kSecret[] = "edge-store-test-secret";

class EdgeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = cacheportal::testing::TestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_.emplace(std::move(db).value());
    auto stats = store::LoadStore(db_->Conninfo(), 1);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    store::StoreServerOptions so;
    so.store.listen_address = "127.0.0.1";
    so.store.listen_port = 0;
    so.store.threads = 2;
    so.store.pool_size = 4;
    so.conninfo = db_->Conninfo();
    so.session_secret = kSecret;
    store_ = std::make_unique<store::StoreServer>(so);
    auto port = store_->Start();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    store_port_ = *port;

    auto rules = differentiator::RuleSet::LoadFile(
        std::string(cacheportal::testing::kSourceDir) + "/config/rules.yaml", kSecret);
    ASSERT_TRUE(rules.ok()) << rules.status().ToString();
    EdgeOptions o;
    o.listen_port = 0;
    o.admin_port = 0;
    o.origin_port = store_port_;
    EdgeDeps d;
    d.rules = rules.value();
    d.store_without_registrar = true;
    auto edge = EdgeServer::Start(o, std::move(d));
    ASSERT_TRUE(edge.ok()) << edge.status().ToString();
    edge_ = std::move(edge).value();
  }
  void TearDown() override {
    edge_.reset();
    store_.reset();
  }

  std::optional<cacheportal::testing::TestDatabase> db_;
  std::unique_ptr<store::StoreServer> store_;
  std::unique_ptr<EdgeServer> edge_;
  uint16_t store_port_ = 0;
};

TEST_F(EdgeStoreTest, EsiAssemblyIsByteIdenticalToTheStoresOwn) {
  for (std::string page : {"/", "/category/REPTILES", "/product/FI-SW-01", "/item/EST-11"}) {
    auto direct = Fetch(store_port_, "GET", page);
    ASSERT_EQ(direct.status, 200) << page;
    ASSERT_EQ(direct.body.find("<esi:"), std::string::npos) << page;
    auto first = Fetch(edge_->port(), "GET", page);
    EXPECT_EQ(first.status, 200) << page;
    EXPECT_EQ(first.Header("x-cache"), "MISS") << page;
    EXPECT_EQ(first.body, direct.body) << page;
    auto second = Fetch(edge_->port(), "GET", page);
    EXPECT_EQ(second.Header("x-cache"), "HIT") << page;
    EXPECT_EQ(second.body, direct.body) << page;
  }
  EXPECT_EQ(edge_->Metrics().esi_errors, 0u);
  EXPECT_GE(edge_->Metrics().Outcome("esi/assembled"), 4u);
}

TEST_F(EdgeStoreTest, PersonalFragmentIsKeyedByTheSignedInUser) {
  auto signin = [&](const std::string& user, const std::string& password) {
    auto r = Fetch(store_port_, "POST", "/signin",
                   {{"Content-Type", "application/x-www-form-urlencoded"}},
                   "username=" + user + "&password=" + password);
    EXPECT_EQ(r.status, 303) << r.body;
    std::string c = r.Header("set-cookie");
    return c.substr(0, c.find(';'));
  };
  std::string j2ee = signin("j2ee", "j2ee");
  // Same locale (en_US), different favourite category: the page key is the
  // same for both, only the mylist fragment differs.
  std::string user1 = signin("user1", "password");
  ASSERT_TRUE(j2ee.starts_with("sid=")) << j2ee;
  const std::string page = "/product/FI-SW-01";
  auto direct_j2ee = Fetch(store_port_, "GET", page, {{"Cookie", j2ee}});
  auto direct_user1 = Fetch(store_port_, "GET", page, {{"Cookie", user1}});
  ASSERT_EQ(direct_j2ee.status, 200);
  ASSERT_NE(direct_j2ee.body, direct_user1.body);  // the mylist fragment differs
  for (int round = 0; round < 2; ++round) {
    auto e1 = Fetch(edge_->port(), "GET", page, {{"Cookie", j2ee}});
    auto e2 = Fetch(edge_->port(), "GET", page, {{"Cookie", user1}});
    EXPECT_EQ(e1.body, direct_j2ee.body) << "round " << round;
    EXPECT_EQ(e2.body, direct_user1.body) << "round " << round;
    if (round == 1) {
      EXPECT_EQ(e1.Header("x-cache"), "HIT");
      EXPECT_EQ(e2.Header("x-cache"), "HIT");
    }
  }
}

TEST_F(EdgeStoreTest, ShopperPagesPass) {
  EXPECT_EQ(Fetch(edge_->port(), "GET", "/cart").Header("x-cache"), "PASS");
  EXPECT_EQ(Fetch(edge_->port(), "GET", "/signin").Header("x-cache"), "PASS");
}

}  // namespace
}  // namespace cacheportal::edge
