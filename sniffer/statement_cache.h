// Per-connection prepared-statement memory: name → SQL, bounded (least
// recently used named statement evicted first). The unnamed statement ("")
// has its own slot and is never evicted; each unnamed Parse replaces it.
// Not thread-safe: one per connection, used from its I/O thread.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sniffer/sql_scan.h"

namespace cacheportal::sniffer {

struct PreparedStatement {
  std::string sql;
  // Session commands the statement performs when executed (usually none).
  std::vector<SessionCommand> commands;
};
// Shared so that a portal bound from a statement outlives its Close.
using StatementPtr = std::shared_ptr<const PreparedStatement>;

class StatementCache {
 public:
  explicit StatementCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  void Put(std::string_view name, StatementPtr statement);
  // nullptr when unknown (never prepared, closed, or evicted).
  StatementPtr Get(std::string_view name);
  void Erase(std::string_view name);
  void Clear();

  size_t size() const { return named_.size() + (unnamed_ ? 1 : 0); }
  uint64_t evictions() const { return evictions_; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Entry {
    StatementPtr statement;
    std::list<std::string>::iterator order;
  };
  size_t capacity_;
  uint64_t evictions_ = 0;
  StatementPtr unnamed_;
  std::list<std::string> order_;  // front = most recently used
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> named_;
};

}  // namespace cacheportal::sniffer
