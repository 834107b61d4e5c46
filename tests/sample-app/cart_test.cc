// Carts and orders live in the database: they survive a store restart.
#include <gtest/gtest.h>

#include "store_fixture.h"

namespace cacheportal::testing {
namespace {

bool Has(const std::string& body, const std::string& needle) {
  return body.find(needle) != std::string::npos;
}

using StoreCart = StoreTest;

TEST_F(StoreCart, CartAndCheckoutPersistAcrossRestarts) {
  std::string sid = SignIn("j2ee", "j2ee");
  Headers h = {{"Cookie", sid}};
  auto add = PostForm(port(), "/cart/add", "itemid=EST-1&quantity=2", h);
  ASSERT_EQ(add.status, 303) << add.body;
  EXPECT_EQ(add.Header("Location"), "/cart");
  ASSERT_EQ(PostForm(port(), "/cart/add", "itemid=EST-4", h).status, 303);
  ASSERT_EQ(PostForm(port(), "/cart/add", "itemid=EST-1", h).status, 303);  // adds up to 3

  // Stop and start the same server object: a new pool, a new port.
  server_->Stop();
  auto port2 = server_->Start();
  ASSERT_TRUE(port2.ok()) << port2.status().ToString();
  port_ = *port2;

  auto cart = Get(port(), "/cart", h);
  ASSERT_EQ(cart.status, 200);
  EXPECT_TRUE(Has(cart.body, "href=\"/item/EST-1\""));
  EXPECT_TRUE(Has(cart.body, "href=\"/item/EST-4\""));
  EXPECT_TRUE(Has(cart.body, "name=\"quantity\" size=\"3\" value=\"3\""));
  EXPECT_TRUE(Has(cart.body, "Total: $68.00"));  // 3 x 16.50 + 18.50
  EXPECT_EQ(cart.Header("Cache-Control"), "no-store");

  auto checkout = PostForm(port(), "/checkout", "", h);
  ASSERT_EQ(checkout.status, 303) << checkout.body;
  EXPECT_EQ(checkout.Header("Location"), "/account");
  EXPECT_EQ(Scalar("SELECT qty FROM inventory WHERE itemid = 'EST-1'"), "9997");
  EXPECT_EQ(Scalar("SELECT qty FROM inventory WHERE itemid = 'EST-4'"), "9999");
  EXPECT_EQ(Scalar("SELECT count(*) FROM cart"), "0");
  EXPECT_EQ(Scalar("SELECT count(*) FROM lineitem"), "2");
  EXPECT_EQ(Scalar("SELECT totalprice FROM orders WHERE userid = 'j2ee'"), "68.00");
  EXPECT_EQ(Scalar("SELECT count(*) FROM orderstatus"), "1");

  server_->Stop();
  port2 = server_->Start();
  ASSERT_TRUE(port2.ok());
  port_ = *port2;

  auto account = Get(port(), "/account", h);
  ASSERT_EQ(account.status, 200);
  std::string orderid = Scalar("SELECT orderid FROM orders");
  EXPECT_TRUE(Has(account.body, "<td>#" + orderid + "</td>"));
  EXPECT_TRUE(Has(account.body, "$68.00"));
  EXPECT_TRUE(Has(Get(port(), "/cart", h).body, "Your cart is empty."));
  // The personalised fragment now lists the purchase's category.
  auto mylist = Get(port(), "/frag/mylist", h);
  EXPECT_TRUE(Has(mylist.body, "href=\"/category/FISH\""));
  EXPECT_TRUE(Has(mylist.body, "Signed in as j2ee"));
  // The item page shows the decremented stock.
  EXPECT_TRUE(Has(Get(port(), "/item/EST-1").body, "In stock: 9997"));
}

TEST_F(StoreCart, UpdateChangesAndRemovesLines) {
  std::string sid = SignIn("user2", "password");
  Headers h = {{"Cookie", sid}};
  ASSERT_EQ(PostForm(port(), "/cart/add", "itemid=EST-20&quantity=5", h).status, 303);
  ASSERT_EQ(PostForm(port(), "/cart/update", "itemid=EST-20&quantity=2", h).status, 303);
  EXPECT_EQ(Scalar("SELECT quantity FROM cart WHERE userid = 'user2'"), "2");
  ASSERT_EQ(PostForm(port(), "/cart/update", "itemid=EST-20&quantity=0", h).status, 303);
  EXPECT_EQ(Scalar("SELECT count(*) FROM cart"), "0");
  EXPECT_EQ(PostForm(port(), "/cart/update", "itemid=EST-20&quantity=1", h).status, 404);
  EXPECT_EQ(PostForm(port(), "/cart/update", "itemid=EST-20&quantity=-1", h).status, 400);
  EXPECT_EQ(PostForm(port(), "/cart/update", "itemid=EST-20&quantity=abc", h).status, 400);
  EXPECT_EQ(PostForm(port(), "/cart/add", "itemid=EST-20&quantity=1000", h).status, 400);
  EXPECT_EQ(PostForm(port(), "/cart/add", "itemid=NOPE", h).status, 404);
}

TEST_F(StoreCart, AnonymousCartActionsGoToSignin) {
  for (const char* path : {"/cart/add", "/cart/update", "/checkout"}) {
    auto r = PostForm(port(), path, "itemid=EST-1&quantity=1");
    EXPECT_EQ(r.status, 303) << path;
    EXPECT_EQ(r.Header("Location"), "/signin") << path;
  }
  EXPECT_EQ(Get(port(), "/cart").Header("Location"), "/signin");
  EXPECT_EQ(Scalar("SELECT count(*) FROM cart"), "0");
}

TEST_F(StoreCart, CheckoutRefusesEmptyCartsAndShortStockAtomically) {
  std::string sid = SignIn("j2ee", "j2ee");
  Headers h = {{"Cookie", sid}};
  EXPECT_EQ(PostForm(port(), "/checkout", "", h).status, 409);

  ASSERT_EQ(PostForm(port(), "/cart/add", "itemid=EST-2&quantity=1", h).status, 303);
  ASSERT_EQ(PostForm(port(), "/cart/add", "itemid=EST-3&quantity=5", h).status, 303);
  {
    auto c = Db();
    ASSERT_TRUE(pg::Exec(c.get(), "UPDATE inventory SET qty = 4 WHERE itemid = 'EST-3'").ok());
  }
  auto r = PostForm(port(), "/checkout", "", h);
  EXPECT_EQ(r.status, 409);
  EXPECT_TRUE(Has(r.body, "EST-3"));
  // Nothing of the failed checkout remains: EST-2's decrement was rolled back.
  EXPECT_EQ(Scalar("SELECT qty FROM inventory WHERE itemid = 'EST-2'"), "10000");
  EXPECT_EQ(Scalar("SELECT qty FROM inventory WHERE itemid = 'EST-3'"), "4");
  EXPECT_EQ(Scalar("SELECT count(*) FROM orders"), "0");
  EXPECT_EQ(Scalar("SELECT count(*) FROM cart"), "2");
  // And the pooled connection is healthy afterwards.
  EXPECT_EQ(Get(port(), "/cart", h).status, 200);
  EXPECT_EQ(Get(port(), "/").status, 200);
}

TEST_F(StoreCart, WorksWithReplicaIdentityFullOnEveryTable) {
  {
    auto c = Db();
    auto r = pg::Exec(c.get(),
                      "DO $$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables WHERE "
                      "schemaname = 'public' LOOP EXECUTE format('ALTER TABLE %I REPLICA IDENTITY "
                      "FULL', t); END LOOP; END $$");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::string sid = SignIn("ACID", "ACID");
  Headers h = {{"Cookie", sid}};
  ASSERT_EQ(PostForm(port(), "/cart/add", "itemid=EST-16&quantity=2", h).status, 303);
  ASSERT_EQ(PostForm(port(), "/cart/update", "itemid=EST-16&quantity=1", h).status, 303);
  ASSERT_EQ(PostForm(port(), "/checkout", "", h).status, 303);
  EXPECT_EQ(Scalar("SELECT qty FROM inventory WHERE itemid = 'EST-16'"), "9999");
  // ACID shops in yen (profile ja_JP).
  EXPECT_EQ(Scalar("SELECT locale || ' ' || totalprice FROM orders"), "ja_JP 10285.00");
}

TEST_F(StoreCart, EveryCheckoutStatementCarriesTheTraceparent) {
  std::string sid = SignIn("j2ee", "j2ee");
  Headers h = {{"Cookie", sid}};
  ASSERT_EQ(PostForm(port(), "/cart/add", "itemid=EST-7", h).status, 303);
  TakeStatements();
  std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ASSERT_EQ(PostForm(port(), "/checkout", "", Headers{{"Cookie", sid}, {"traceparent", tp}}).status,
            303);
  auto stmts = TakeStatements();
  ASSERT_GE(stmts.size(), 8u);  // BEGIN … COMMIT, access_log
  EXPECT_EQ(stmts.front().rfind("BEGIN /*", 0), 0u) << stmts.front();
  bool saw_commit = false;
  for (const auto& sql : stmts) {
    EXPECT_NE(sql.find("4bf92f3577b34da6a3ce929d0e0e4736"), std::string::npos) << sql;
    if (sql.rfind("COMMIT /*", 0) == 0) saw_commit = true;
  }
  EXPECT_TRUE(saw_commit);
}

}  // namespace
}  // namespace cacheportal::testing
