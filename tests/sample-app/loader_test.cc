// cacheportal-store load: schema and deterministic data at two scales.
#include "sample-app/loader.h"

#include <gtest/gtest.h>

#include "common/pg.h"
#include "sample-app/password.h"
#include "tests/support/pg_test_db.h"

namespace cacheportal::store {
namespace {

using cacheportal::testing::TestDatabase;

std::string Scalar(PGconn* c, const std::string& sql) {
  auto r = pg::Exec(c, sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  if (!r.ok() || PQntuples(r->get()) != 1) return "";
  return PQgetvalue(r->get(), 0, 0);
}

int64_t Count(PGconn* c, const std::string& table) {
  return std::stoll(Scalar(c, "SELECT count(*) FROM " + table));
}

TEST(StoreLoader, ScaleOneIsTheClassicCatalogue) {
  auto db = TestDatabase::Create();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto stats = LoadStore(db->Conninfo(), 1);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->categories, 5);
  EXPECT_EQ(stats->products, 16);
  EXPECT_EQ(stats->items, 28);
  auto c = db->Connect();
  EXPECT_EQ(Count(c.get(), "category"), 5);
  EXPECT_EQ(Count(c.get(), "category_details"), 10);
  EXPECT_EQ(Count(c.get(), "product"), 16);
  EXPECT_EQ(Count(c.get(), "product_details"), 32);
  EXPECT_EQ(Count(c.get(), "item"), 28);
  EXPECT_EQ(Count(c.get(), "item_details"), 56);
  EXPECT_EQ(Count(c.get(), "inventory"), 28);
  EXPECT_EQ(Count(c.get(), "signon"), stats->users);
  EXPECT_EQ(Count(c.get(), "account"), stats->users);
  EXPECT_EQ(Count(c.get(), "profile"), stats->users);
  EXPECT_EQ(Count(c.get(), "orders"), 0);
  EXPECT_EQ(Count(c.get(), "cart"), 0);
  EXPECT_EQ(Count(c.get(), "access_log"), 0);
  EXPECT_EQ(Scalar(c.get(), "SELECT string_agg(catid, ',' ORDER BY catid) FROM category"),
            "BIRDS,CATS,DOGS,FISH,REPTILES");
  EXPECT_EQ(Scalar(c.get(),
                   "SELECT name FROM product_details WHERE productid = 'FI-SW-01' AND "
                   "locale = 'ja_JP'"),
            "エンゼルフィッシュ");
  EXPECT_EQ(Scalar(c.get(),
                   "SELECT listprice FROM item_details WHERE itemid = 'EST-1' AND "
                   "locale = 'en_US'"),
            "16.50");
  EXPECT_EQ(Scalar(c.get(), "SELECT productid FROM item WHERE itemid = 'EST-28'"), "K9-RT-01");
  // Passwords are stored hashed, and the seeded ones verify.
  std::string stored = Scalar(c.get(), "SELECT password FROM signon WHERE username = 'j2ee'");
  EXPECT_NE(stored, "j2ee");
  EXPECT_TRUE(VerifyPassword("j2ee", stored));
  EXPECT_FALSE(VerifyPassword("j2eE", stored));
  EXPECT_TRUE(VerifyPassword(
      "ACID", Scalar(c.get(), "SELECT password FROM signon WHERE username = 'ACID'")));
}

TEST(StoreLoader, ScaleTwentyMultipliesProductsAndItems) {
  auto db = TestDatabase::Create();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto stats = LoadStore(db->Conninfo(), 20);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  auto c = db->Connect();
  EXPECT_EQ(Count(c.get(), "category"), 5);
  EXPECT_EQ(Count(c.get(), "product"), 320);
  EXPECT_EQ(Count(c.get(), "product_details"), 640);
  EXPECT_EQ(Count(c.get(), "item"), 560);
  EXPECT_EQ(Count(c.get(), "item_details"), 1120);
  EXPECT_EQ(Count(c.get(), "inventory"), 560);
  EXPECT_EQ(stats->products, 320);
  EXPECT_EQ(stats->items, 560);
  // Every item belongs to a product of a known category, in both locales.
  EXPECT_EQ(Scalar(c.get(),
                   "SELECT count(*) FROM item i JOIN product p USING (productid) JOIN "
                   "category USING (catid)"),
            "560");
  EXPECT_EQ(Scalar(c.get(), "SELECT count(DISTINCT locale) FROM item_details"), "2");
  EXPECT_EQ(Scalar(c.get(), "SELECT productid FROM item WHERE itemid = 'EST-29'"), "FI-SW-01-2");
}

TEST(StoreLoader, ReloadIsDeterministicAndReplacesEverything) {
  auto db = TestDatabase::Create();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto c = db->Connect();
  const std::string digest =
      "SELECT md5(string_agg(itemid || locale || listprice || descn, '|' ORDER BY itemid, "
      "locale)) FROM item_details";
  ASSERT_TRUE(LoadStore(db->Conninfo(), 3).ok());
  std::string first = Scalar(c.get(), digest);
  ASSERT_TRUE(pg::Exec(c.get(), "INSERT INTO cart VALUES ('j2ee', 'EST-1', 1)").ok());
  ASSERT_TRUE(LoadStore(db->Conninfo(), 3).ok());
  EXPECT_EQ(Scalar(c.get(), digest), first);
  EXPECT_EQ(Count(c.get(), "cart"), 0);
  ASSERT_TRUE(LoadStore(db->Conninfo(), 1).ok());
  EXPECT_EQ(Count(c.get(), "item"), 28);
}

TEST(StoreLoader, EveryTableHasAPrimaryKey) {
  auto db = TestDatabase::Create();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE(LoadStore(db->Conninfo(), 1).ok());
  auto c = db->Connect();
  EXPECT_EQ(Scalar(c.get(),
                   "SELECT count(*) FROM pg_tables t WHERE schemaname = 'public' AND NOT "
                   "EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = "
                   "('public.' || quote_ident(t.tablename))::regclass AND contype = 'p')"),
            "0");
  EXPECT_EQ(Scalar(c.get(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "15");
}

TEST(StoreLoader, RejectsBadScaleAndUnreachableDatabase) {
  auto db = TestDatabase::Create();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_TRUE(LoadStore(db->Conninfo(), 0).status().IsInvalidArgument());
  EXPECT_TRUE(LoadStore(db->Conninfo(), kMaxScale + 1).status().IsInvalidArgument());
  auto down = LoadStore("host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=2", 1);
  EXPECT_TRUE(down.status().IsUnavailable()) << down.status().ToString();
}

}  // namespace
}  // namespace cacheportal::store
