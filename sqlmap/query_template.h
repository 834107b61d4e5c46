// What sqlmap knows about one SQL statement shape (a QueryTemplate) and one
// execution of it (a QueryInstance). Produced by analysis (libpg_query),
// stored in the map, evaluated by the invalidator against changed rows.
//
// Values are kept in PostgreSQL's text form, the form pgoutput sends by
// default, so a predicate compares like with like. A template never refers to
// the instance's values directly: each constant or $n in the SQL becomes a
// *slot*, and an instance carries one value per slot.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cacheportal::sqlmap {

enum class CompareOp {
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kNotIn,  // slots = the list
  kBetween,
  kNotBetween,  // slots = {low, high}
  kLike,
  kNotLike,
  kILike,
  kNotILike,
  kIsNull,
  kIsNotNull,  // no slots
};

// A boolean expression over ONE table's columns that a single row can be
// tested against. kUnknown stands for any sub-expression the analyser cannot
// evaluate on a row (a function call, a comparison between two columns of
// different tables, a subquery): it evaluates to "maybe", i.e. true for
// invalidation purposes, so precision drops but no ejection is missed.
struct Predicate {
  enum class Kind { kTrue, kUnknown, kAnd, kOr, kNot, kCompare };
  Kind kind = Kind::kTrue;
  std::vector<Predicate> children;  // kAnd / kOr / kNot
  std::string column;               // kCompare: column of this table
  CompareOp op = CompareOp::kEq;    // kCompare
  std::vector<int> slots;           // kCompare: indexes into QueryInstance::values
};

// A table the statement reads, with the part of the WHERE/ON clauses that
// concerns only this table.
struct TableRef {
  std::string table;  // schema-qualified, lowercase: "public.item"
  std::string alias;  // as written ("i"), or the table name when none
  Predicate predicate;
  // Columns of this table the query reads anywhere (select list, predicates,
  // join keys, ORDER BY, GROUP BY). An UPDATE touching none of them cannot
  // change the result. Empty with reads_all_columns=true for SELECT * / t.*.
  std::vector<std::string> columns_read;
  bool reads_all_columns = false;
};

// left_table.left_column = right_table.right_column, from ON or WHERE.
struct JoinEquality {
  int left_table = 0;  // index into QueryTemplate::tables
  std::string left_column;
  int right_table = 0;
  std::string right_column;
};

// Reasons a template is less precise than its predicates suggest. Any flag
// in kCoarseFlags makes the invalidator treat every change to the template's
// tables as affecting it.
enum TemplateFlag : uint32_t {
  kFlagSubquery = 1u << 0,
  kFlagCte = 1u << 1,
  kFlagSetOperation = 1u << 2,
  kFlagVolatileFunction = 1u << 3,
  kFlagUnknownFunction = 1u << 4,
  kFlagAggregate = 1u << 5,
  kFlagLimit = 1u << 6,
  kFlagWindow = 1u << 7,
  kFlagUnparsable = 1u << 8,  // libpg_query rejected it: see tables_by_name_guess
  kFlagWrite = 1u << 9,       // INSERT/UPDATE/DELETE/MERGE/DDL/locking read/unprovable call
  kFlagOuterJoin = 1u << 10,
  kFlagNonMonitoredSource = 1u << 11,  // reads a function, VALUES or catalog it cannot watch
  kFlagMultiStatement = 1u << 12,
  kFlagUtility = 1u << 13,  // SET, SHOW, BEGIN...: reads nothing the map tracks
};
inline constexpr uint32_t kCoarseFlags =
    kFlagSubquery | kFlagCte | kFlagSetOperation | kFlagUnparsable | kFlagWindow;

enum class Precision {
  kPrecise,  // row predicates decide; joins by polling or conservatively
  kCoarse,   // any change to any of `tables` affects it (see coarse_reason)
  kNone,     // cannot be mapped at all (e.g. reads a non-monitored source): page uncacheable
};

struct QueryTemplate {
  uint64_t fingerprint = 0;    // pg_query_fingerprint: the shape id
  std::string normalized_sql;  // constants as $n, comment stripped (for display and polling)
  std::vector<TableRef> tables;
  std::vector<JoinEquality> joins;
  uint32_t flags = 0;
  Precision precision = Precision::kPrecise;
  std::string coarse_reason;  // human-readable, for `cacheportal map coverage`
  int num_slots = 0;
  // For each slot: $n it came from (1-based), or 0 for a literal lifted out of the SQL.
  std::vector<int> slot_param;
  // For each slot that is a literal: its text value (so instances of the
  // same shape with different literals differ in values, not in template).
  //
  // Slots are numbered in text order: every constant token and every $n of
  // the statement, then the keyword literals (TRUE/FALSE/NULL), whose value is
  // fixed by the shape and listed here (nullopt = NULL).
  std::vector<std::pair<int, std::optional<std::string>>> fixed_slots;
  // Stable id of the exact shape (token stream with constants replaced, case
  // and comments ignored). Unlike `fingerprint` it distinguishes IN-list
  // lengths and literal vs $n, so (shape_id, values) identifies an instance.
  uint64_t shape_id = 0;
  bool read_only = true;                    // false when kFlagWrite
  std::vector<std::string> written_tables;  // when !read_only and known
};

// One execution: the template plus one text value per slot (nullopt = NULL).
struct QueryInstance {
  std::shared_ptr<const QueryTemplate> tmpl;
  std::vector<std::optional<std::string>> values;
  // Stable id: hash of fingerprint and values, hex. Same SQL + same values
  // from two pages share one instance.
  std::string Id() const;
  // The same id as a number (sqlmap::InstanceId).
  uint64_t IdValue() const;
};

// Hash of (shape_id, values): stable across processes and restarts.
uint64_t HashInstance(uint64_t shape_id, const std::vector<std::optional<std::string>>& values);

}  // namespace cacheportal::sqlmap
