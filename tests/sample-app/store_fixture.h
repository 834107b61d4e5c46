// Shared fixture for the store's integration tests: a fresh database loaded
// at scale 1 and a StoreServer serving it in-process on an ephemeral port.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "http_client.h"
#include "sample-app/store_server.h"
#include "tests/support/pg_test_db.h"

namespace cacheportal::testing {

inline constexpr const char* kTestSecret = "store-test-secret";
inline constexpr uint64_t kTestBodyLimit = 4096;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // (Re)creates the server object (stopping any previous one).
  void StartServer(const std::string& conninfo = "");
  uint16_t port() const { return port_; }

  pg::ConnPtr Db() const { return db_->Connect(); }
  // Runs a single-value query on the test database.
  std::string Scalar(const std::string& sql) const;

  // Signs in and returns the Cookie header value carrying `sid`.
  std::string SignIn(const std::string& user, const std::string& password);

  std::vector<std::string> TakeStatements();

  std::optional<TestDatabase> db_;
  std::unique_ptr<store::StoreServer> server_;
  uint16_t port_ = 0;

 private:
  std::mutex mu_;
  std::vector<std::string> statements_;
};

// Value of a cookie set by a response ("name=value; Path=/…" → "value").
std::optional<std::string> SetCookieValue(const ClientResponse& r, const std::string& name);

}  // namespace cacheportal::testing
