#include "store_fixture.h"

#include "sample-app/loader.h"

namespace cacheportal::testing {

void StoreTest::SetUp() {
  auto db = TestDatabase::Create();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  db_.emplace(std::move(db).value());
  auto stats = store::LoadStore(db_->Conninfo(), 1);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  StartServer();
}

void StoreTest::TearDown() { server_.reset(); }

void StoreTest::StartServer(const std::string& conninfo) {
  server_.reset();
  store::StoreServerOptions o;
  o.store.listen_address = "127.0.0.1";
  o.store.listen_port = 0;
  o.store.threads = 2;
  o.store.pool_size = 4;
  o.store.max_body_bytes = kTestBodyLimit;
  o.conninfo = conninfo.empty() ? db_->Conninfo() : conninfo;
  o.session_secret = kTestSecret;
  o.on_statement = [this](std::string_view sql) {
    std::lock_guard lock(mu_);
    statements_.emplace_back(sql);
  };
  server_ = std::make_unique<store::StoreServer>(o);
  auto port = server_->Start();
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  port_ = *port;
}

std::string StoreTest::Scalar(const std::string& sql) const {
  auto conn = Db();
  auto r = pg::Exec(conn.get(), sql);
  if (!r.ok()) {
    ADD_FAILURE() << sql << ": " << r.status().ToString();
    return "";
  }
  if (PQntuples(r->get()) != 1) {
    ADD_FAILURE() << sql << ": " << PQntuples(r->get()) << " rows";
    return "";
  }
  return PQgetvalue(r->get(), 0, 0);
}

std::string StoreTest::SignIn(const std::string& user, const std::string& password) {
  auto r = PostForm(port_, "/signin", "username=" + user + "&password=" + password);
  EXPECT_EQ(r.status, 303) << r.error << r.body;
  auto sid = SetCookieValue(r, "sid");
  EXPECT_TRUE(sid.has_value());
  return "sid=" + sid.value_or("");
}

std::vector<std::string> StoreTest::TakeStatements() {
  std::lock_guard lock(mu_);
  return std::exchange(statements_, {});
}

std::optional<std::string> SetCookieValue(const ClientResponse& r, const std::string& name) {
  for (const auto& v : r.All("Set-Cookie")) {
    if (v.compare(0, name.size() + 1, name + "=") != 0) continue;
    size_t end = v.find(';');
    return v.substr(name.size() + 1,
                    end == std::string::npos ? std::string::npos : end - name.size() - 1);
  }
  return std::nullopt;
}

}  // namespace cacheportal::testing
