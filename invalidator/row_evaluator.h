// Row-change evaluation: does one committed row change affect one query
// instance? Pure functions over decoded rows and sqlmap templates — no I/O,
// no clock, no map. Byte layouts live in pgoutput.h; this file only sees
// decoded values.
//
// Three kinds of "don't know" are kept apart:
//   * a value we were not sent (identity-key-only old tuple, unchanged TOAST
//     without an old row): Cell::State::kUnknown;
//   * SQL NULL: Cell::State::kNull, with SQL's three-valued logic;
//   * a comparison we cannot decide (a type we do not parse, an ordering on a
//     collation-dependent type): the outcome "maybe".
// Every "don't know" errs towards "affected": precision drops, freshness never.
//
// Thread-safety: RelationCache is not synchronised (one per stream); the
// functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "invalidator/pgoutput.h"
#include "sqlmap/query_template.h"

namespace cacheportal::invalidator {

// Built-in type OIDs the evaluator parses (pg_type.dat).
namespace oid {
inline constexpr uint32_t kBool = 16, kName = 19, kInt8 = 20, kInt2 = 21, kInt4 = 23, kText = 25,
                          kOid = 26, kFloat4 = 700, kFloat8 = 701, kBpchar = 1042, kVarchar = 1043,
                          kDate = 1082, kTimestamp = 1114, kTimestamptz = 1184, kNumeric = 1700,
                          kUuid = 2950;
}

// A table as the stream describes it (from a Relation message).
struct Relation {
  uint32_t relid = 0;
  std::string table;  // "schema.name", the form sqlmap::TableRef::table uses
  char replica_identity = 'd';
  std::vector<RelationColumn> columns;
  std::unordered_map<std::string, int> by_name;
  // Column position, -1 when the relation has no such column.
  int Find(std::string_view name) const;
};

std::shared_ptr<const Relation> MakeRelation(const RelationMessage& m);

// Relations by relid. A later Relation message for the same relid replaces the
// entry (schema change); changes already decoded keep their own snapshot.
class RelationCache {
 public:
  void Put(const RelationMessage& m) { by_id_[m.relid] = MakeRelation(m); }
  std::shared_ptr<const Relation> Get(uint32_t relid) const {
    auto it = by_id_.find(relid);
    return it == by_id_.end() ? nullptr : it->second;
  }
  void Clear() { by_id_.clear(); }
  size_t size() const { return by_id_.size(); }

 private:
  std::unordered_map<uint32_t, std::shared_ptr<const Relation>> by_id_;
};

struct Cell {
  enum class State : uint8_t { kUnknown, kNull, kValue };
  State state = State::kUnknown;
  std::string text;
};
using Row = std::vector<Cell>;

enum class Tri : uint8_t { kNo, kYes, kMaybe };

struct RowChange {
  enum class Kind : uint8_t { kInsert, kUpdate, kDelete, kTruncate };
  Kind kind = Kind::kInsert;
  std::shared_ptr<const Relation> rel;
  std::optional<Row> old_row;  // UPDATE/DELETE: what we know of the row before
  std::optional<Row> new_row;  // INSERT/UPDATE
  std::vector<Tri> changed;    // UPDATE: per column, did its value change?
  // True when every cell of the old row is known (REPLICA IDENTITY FULL).
  bool old_row_complete() const;
};

// Builders from decoded messages. Corruption when the tuple's column count
// does not match the relation.
Result<RowChange> MakeInsert(std::shared_ptr<const Relation> rel, const TupleData& new_tuple);
Result<RowChange> MakeUpdate(std::shared_ptr<const Relation> rel, char old_kind,
                             const TupleData& old_tuple, const TupleData& new_tuple);
Result<RowChange> MakeDelete(std::shared_ptr<const Relation> rel, char old_kind,
                             const TupleData& old_tuple);
RowChange MakeTruncate(std::shared_ptr<const Relation> rel);

struct EvalOptions {
  // Text ordering (<, >, BETWEEN on text/varchar/bpchar) is decided bytewise
  // only when the database collation is C/POSIX/C.UTF-8; otherwise "maybe".
  bool text_order_bytewise = false;
};

// Typed comparison of a row value with an instance value, both in text form.
// Returns <0, 0, >0, or nullopt when it cannot be decided for this type.
std::optional<int> CompareValues(uint32_t type_oid, std::string_view row_value,
                                 std::string_view instance_value, const EvalOptions& options);
// Equality; kMaybe when undecidable.
Tri EqualValues(uint32_t type_oid, std::string_view row_value, std::string_view instance_value);

// SQL LIKE / ILIKE with the default escape '\'; kMaybe when the answer depends
// on multibyte or locale rules this matcher does not model.
Tri LikeMatch(std::string_view text, std::string_view pattern, bool case_insensitive);

// Can the predicate be TRUE for this row? kYes = certainly, kNo = certainly
// not (FALSE or NULL), kMaybe = depends on what we do not know.
Tri EvaluatePredicate(const sqlmap::Predicate& p, const Relation& rel, const Row& row,
                      const std::vector<std::optional<std::string>>& values,
                      const EvalOptions& options);

// For an UPDATE: did any column that `ref` reads change?
Tri ReadColumnsChanged(const sqlmap::TableRef& ref, const RowChange& change);

enum class Impact : uint8_t {
  kNone,       // the instance's result cannot have changed
  kAffected,   // eject
  kJoinCheck,  // the row passes its own table's predicates and the query joins other
               // tables: poll the database or eject conservatively
};

struct Evaluation {
  Impact impact = Impact::kNone;
  // kJoinCheck: indexes into tmpl->tables of the references the row matched.
  std::vector<int> join_tables;
};

// True when `tmpl` is only ever evaluated at table level.
bool IsCoarse(const sqlmap::QueryTemplate& tmpl);

Evaluation EvaluateChange(const RowChange& change, const sqlmap::QueryInstance& instance,
                          const EvalOptions& options);

}  // namespace cacheportal::invalidator
