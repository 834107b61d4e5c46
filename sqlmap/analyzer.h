// SQL analysis: libpg_query parses each statement shape once into a
// QueryTemplate (cached), and each execution into a QueryInstance.
//
// Never fails silently: SQL it cannot reason about precisely still yields a
// template, flagged and at Precision::kCoarse (or kNone when even the tables
// read are unknown), with a human-readable reason. Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "sqlmap/query_template.h"

namespace cacheportal::sqlmap {

struct AnalyzerOptions {
  // Tables to ignore both ways (reads and writes), schema-qualified lowercase.
  std::vector<std::string> logging_tables;
  // Templates kept in the shape cache. Default: 100000.
  size_t max_cached_templates = 100000;
  // Optional catalog: table (schema-qualified) → its column names. Only used
  // to attribute unqualified columns in multi-table queries (without it they
  // are attributed to no table and their predicates become kUnknown).
  // Default: empty.
  std::unordered_map<std::string, std::vector<std::string>> table_columns;
};

class Analyzer {
 public:
  explicit Analyzer(AnalyzerOptions options);
  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  // The template of a statement's shape (comment and constants ignored).
  // InvalidArgument only for an empty statement; everything else gives a template.
  Result<std::shared_ptr<const QueryTemplate>> Analyze(std::string_view sql);

  // Template + slot values: literals lifted from the SQL text and $n taken from
  // `params` (text form; nullopt = NULL). A $n with no value → InvalidArgument.
  Result<QueryInstance> Instantiate(std::string_view sql,
                                    const std::vector<std::optional<std::string>>& params);

  // For tests and `cacheportal map explain`: multi-line, human-readable.
  static std::string Explain(const QueryTemplate& t);

  struct Stats {
    uint64_t parses = 0;      // libpg_query calls
    uint64_t cache_hits = 0;  // shapes served from the cache
  };
  Stats GetStats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Display helpers (Explain, `cacheportal map`): "price BETWEEN $2 AND $3",
// "aggregate, limit", "coarse".
std::string PredicateToString(const QueryTemplate& t, const Predicate& p);
std::string FlagsToString(uint32_t flags);
const char* PrecisionName(Precision p);

}  // namespace cacheportal::sqlmap
