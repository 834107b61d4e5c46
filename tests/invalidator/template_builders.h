// Small builders for sqlmap templates and instances, shared by the
// invalidator's tests and benchmarks (what the analyser would produce for
// simple SQL, written by hand).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sqlmap/query_template.h"

namespace cacheportal::invalidator::test {

inline sqlmap::Predicate Cmp(std::string column, sqlmap::CompareOp op,
                             std::vector<int> slots = {}) {
  sqlmap::Predicate p;
  p.kind = sqlmap::Predicate::Kind::kCompare;
  p.column = std::move(column);
  p.op = op;
  p.slots = std::move(slots);
  return p;
}
inline sqlmap::Predicate Cmp(std::string column, sqlmap::CompareOp op, int slot) {
  return Cmp(std::move(column), op, std::vector<int>{slot});
}
inline sqlmap::Predicate Cmp(std::string column, sqlmap::CompareOp op, int a, int b) {
  return Cmp(std::move(column), op, std::vector<int>{a, b});
}
inline sqlmap::Predicate Group(sqlmap::Predicate::Kind k, std::vector<sqlmap::Predicate> ch) {
  sqlmap::Predicate p;
  p.kind = k;
  p.children = std::move(ch);
  return p;
}
inline sqlmap::Predicate And(std::vector<sqlmap::Predicate> ch) {
  return Group(sqlmap::Predicate::Kind::kAnd, std::move(ch));
}
inline sqlmap::Predicate Or(std::vector<sqlmap::Predicate> ch) {
  return Group(sqlmap::Predicate::Kind::kOr, std::move(ch));
}
inline sqlmap::Predicate Not(sqlmap::Predicate ch) {
  return Group(sqlmap::Predicate::Kind::kNot, {std::move(ch)});
}
inline sqlmap::Predicate Unknown() {
  sqlmap::Predicate p;
  p.kind = sqlmap::Predicate::Kind::kUnknown;
  return p;
}

inline int CountSlots(const sqlmap::Predicate& p) {
  int n = 0;
  for (int s : p.slots) n = std::max(n, s + 1);
  for (const auto& c : p.children) n = std::max(n, CountSlots(c));
  return n;
}

// A stable text form of a predicate's shape: templates with different shapes
// get different fingerprints and shape ids (the map keys templates by shape_id).
inline std::string Signature(const sqlmap::Predicate& p) {
  std::string s = std::to_string(static_cast<int>(p.kind)) + ":" + p.column + ":" +
                  std::to_string(static_cast<int>(p.op)) + ":";
  for (int slot : p.slots) s += std::to_string(slot) + ",";
  s += "(";
  for (const auto& c : p.children) s += Signature(c) + ";";
  return s + ")";
}

inline std::shared_ptr<sqlmap::QueryTemplate> Single(std::string table, sqlmap::Predicate pred,
                                                     std::vector<std::string> columns_read,
                                                     bool all_columns = false) {
  auto t = std::make_shared<sqlmap::QueryTemplate>();
  sqlmap::TableRef ref;
  ref.table = std::move(table);
  ref.alias = ref.table.substr(ref.table.find('.') + 1);
  ref.predicate = std::move(pred);
  ref.columns_read = std::move(columns_read);
  ref.reads_all_columns = all_columns;
  t->num_slots = CountSlots(ref.predicate);
  t->tables.push_back(std::move(ref));
  t->fingerprint =
      std::hash<std::string>()(t->tables[0].table + "|" + Signature(t->tables[0].predicate));
  t->shape_id = t->fingerprint;  // the map identifies a shape by shape_id
  return t;
}

// left JOIN right ON left.left_col = right.right_col; slots of both predicates share one space.
inline std::shared_ptr<sqlmap::QueryTemplate> Join(std::string left, sqlmap::Predicate left_pred,
                                                   std::vector<std::string> left_cols,
                                                   std::string right, sqlmap::Predicate right_pred,
                                                   std::vector<std::string> right_cols,
                                                   std::string left_col, std::string right_col) {
  auto t = Single(std::move(left), std::move(left_pred), std::move(left_cols));
  sqlmap::TableRef ref;
  ref.table = std::move(right);
  ref.alias = ref.table.substr(ref.table.find('.') + 1);
  ref.predicate = std::move(right_pred);
  ref.columns_read = std::move(right_cols);
  t->num_slots = std::max(t->num_slots, CountSlots(ref.predicate));
  t->tables.push_back(std::move(ref));
  t->joins.push_back({0, std::move(left_col), 1, std::move(right_col)});
  t->fingerprint =
      std::hash<std::string>()(std::to_string(t->fingerprint) + "|" + t->tables[1].table + "|" +
                               Signature(t->tables[1].predicate) + "|" + t->joins[0].left_column +
                               "=" + t->joins[0].right_column);
  t->shape_id = t->fingerprint;
  return t;
}

inline sqlmap::QueryInstance Inst(std::shared_ptr<const sqlmap::QueryTemplate> t,
                                  std::vector<std::optional<std::string>> values) {
  sqlmap::QueryInstance i;
  i.tmpl = std::move(t);
  i.values = std::move(values);
  return i;
}

}  // namespace cacheportal::invalidator::test
