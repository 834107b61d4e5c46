#include "common/pg.h"

#include <gtest/gtest.h>

#include "tests/support/pg_test_db.h"

namespace cacheportal {
namespace {

TEST(Pg, ServerHasLogicalWalLevel) {
  auto db = testing::TestDatabase::Create();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto conn = db->Connect();
  auto r = pg::Exec(conn.get(), "SHOW wal_level");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_STREQ(PQgetvalue(r->get(), 0, 0), "logical");
}

TEST(Pg, ErrorsCarrySqlState) {
  auto db = testing::TestDatabase::Create();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto conn = db->Connect();
  auto r = pg::Exec(conn.get(), "SELECT * FROM no_such_table");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("[42P01]"), std::string::npos) << r.status().ToString();
}

TEST(Pg, UnreachableServerIsUnavailable) {
  auto c = pg::Connect("host=127.0.0.1 port=1 connect_timeout=2");
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().IsUnavailable());
}

}  // namespace
}  // namespace cacheportal
