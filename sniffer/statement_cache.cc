#include "sniffer/statement_cache.h"

namespace cacheportal::sniffer {

void StatementCache::Put(std::string_view name, StatementPtr statement) {
  if (name.empty()) {
    unnamed_ = std::move(statement);
    return;
  }
  if (auto it = named_.find(name); it != named_.end()) {
    // PostgreSQL rejects a Parse of an existing name; keep our view in step
    // with what the client sent anyway (the server's error follows).
    it->second.statement = std::move(statement);
    order_.splice(order_.begin(), order_, it->second.order);
    return;
  }
  if (named_.size() >= capacity_) {
    named_.erase(order_.back());
    order_.pop_back();
    ++evictions_;
  }
  order_.emplace_front(name);
  named_.emplace(std::string(name), Entry{std::move(statement), order_.begin()});
}

StatementPtr StatementCache::Get(std::string_view name) {
  if (name.empty()) return unnamed_;
  auto it = named_.find(name);
  if (it == named_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second.order);
  return it->second.statement;
}

void StatementCache::Erase(std::string_view name) {
  if (name.empty()) {
    unnamed_.reset();
    return;
  }
  auto it = named_.find(name);
  if (it == named_.end()) return;
  order_.erase(it->second.order);
  named_.erase(it);
}

void StatementCache::Clear() {
  unnamed_.reset();
  named_.clear();
  order_.clear();
}

}  // namespace cacheportal::sniffer
