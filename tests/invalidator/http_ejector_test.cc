// HttpPurgeEjector against a real socket: a minimal HTTP/1.1 admin endpoint
// on an ephemeral port that records each request line and Authorization.
#include "invalidator/http_ejector.h"

#include <gtest/gtest.h>

#include "tests/invalidator/fake_admin.h"

namespace cacheportal::invalidator {
namespace {

TEST(HttpPurgeEjector, PurgesEachKeyWithTheBearerTokenOverOneConnection) {
  test::FakeAdmin admin(200);
  HttpPurgeEjector ej("127.0.0.1", admin.port(), "s3cret");
  std::vector<std::string> keys = {"GET /item/EST-1", "GET /frag/products?cat=FISH&x=a b"};
  ASSERT_TRUE(ej.Eject(keys).ok());
  ASSERT_TRUE(ej.EjectAll().ok());
  auto reqs = admin.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0], "POST /purge?key=GET%20%2Fitem%2FEST-1 HTTP/1.1 | Bearer s3cret");
  EXPECT_EQ(
      reqs[1],
      "POST /purge?key=GET%20%2Ffrag%2Fproducts%3Fcat%3DFISH%26x%3Da%20b HTTP/1.1 | Bearer s3cret");
  EXPECT_EQ(reqs[2], "POST /ban?prefix= HTTP/1.1 | Bearer s3cret");
}

TEST(HttpPurgeEjector, RefusedTokenIsAClearError) {
  test::FakeAdmin admin(401);
  HttpPurgeEjector ej("127.0.0.1", admin.port(), "wrong");
  std::vector<std::string> keys = {"k"};
  Status s = ej.Eject(keys);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("admin_token"), std::string::npos) << s.ToString();
}

TEST(HttpPurgeEjector, UnreachableEdgeIsUnavailableSoThePositionIsNotConfirmed) {
  uint16_t port;
  {
    test::FakeAdmin gone(200);
    port = gone.port();
  }
  HttpPurgeEjector ej("127.0.0.1", port, "");
  std::vector<std::string> keys = {"k"};
  Status s = ej.Eject(keys);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
}

}  // namespace
}  // namespace cacheportal::invalidator
