#include "tests/support/pg_test_db.h"

#include <cstdio>
#include <cstdlib>
#include <random>

#include "tests/support/test_env.h"

namespace cacheportal::testing {

std::string ServerConninfo() { return kTestPgConninfo; }

Result<TestDatabase> TestDatabase::Create() {
  auto admin = pg::Connect(ServerConninfo());
  if (!admin.ok()) {
    return Status::Unavailable(admin.status().message() +
                               " — the test server is started by ctest's pg fixture, or by hand: "
                               "scripts/pg start /tmp/cp-pgtest-" +
                               std::string(kTestPgPort) + " " + kTestPgPort);
  }
  std::random_device rd;
  char name[32];
  std::snprintf(name, sizeof name, "cpt_%08x%08x", rd(), rd());
  auto r = pg::Exec(admin->get(), std::string("CREATE DATABASE ") + name);
  if (!r.ok()) return r.status();
  return TestDatabase(name);
}

TestDatabase::TestDatabase(TestDatabase&& other) noexcept : name_(std::move(other.name_)) {
  other.name_.clear();
}

TestDatabase::~TestDatabase() {
  if (name_.empty()) return;
  auto admin = pg::Connect(ServerConninfo());
  if (!admin.ok()) return;
  // Replication slots pin a database; tests drop their own, this is the backstop.
  pg::Exec(admin->get(),
           "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
           "WHERE database = '" +
               name_ + "' AND NOT active");
  pg::Exec(admin->get(), "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

std::string TestDatabase::Conninfo() const {
  std::string base = ServerConninfo();
  auto pos = base.find("dbname=");
  if (pos != std::string::npos) base = base.substr(0, pos);
  return base + "dbname=" + name_;
}

pg::ConnPtr TestDatabase::Connect() const {
  auto c = pg::Connect(Conninfo());
  if (!c.ok()) {
    std::fprintf(stderr, "TestDatabase: %s\n", c.status().ToString().c_str());
    std::abort();
  }
  return std::move(c).value();
}

}  // namespace cacheportal::testing
