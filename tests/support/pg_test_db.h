// A fresh database per test on the throwaway server that ctest's `pg`
// fixture starts (scripts/pg). Dropped (connections terminated) on
// destruction, so tests never see each other's tables.
#pragma once

#include <string>

#include "common/pg.h"
#include "common/status.h"

namespace cacheportal::testing {

// conninfo of the server's `postgres` database.
std::string ServerConninfo();

class TestDatabase {
 public:
  // Creates "cpt_<random>"; fails with a message that says how to start the
  // server when it is not running.
  static Result<TestDatabase> Create();
  TestDatabase(TestDatabase&& other) noexcept;
  TestDatabase& operator=(TestDatabase&&) = delete;
  ~TestDatabase();

  const std::string& name() const { return name_; }
  // conninfo of this database (host/port/user of the test server).
  std::string Conninfo() const;
  pg::ConnPtr Connect() const;  // aborts the test binary if it cannot connect

 private:
  explicit TestDatabase(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

}  // namespace cacheportal::testing
