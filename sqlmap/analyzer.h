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
#include <vector>

#include "common/status.h"
#include "sqlmap/query_template.h"

namespace cacheportal::sqlmap {

struct AnalyzerOptions {
  // Tables to ignore both ways (reads and writes), schema-qualified lowercase.
  std::vector<std::string> logging_tables;
  // Templates kept in the shape cache. Default: 100000.
  size_t max_cached_templates = 100000;
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

}  // namespace cacheportal::sqlmap
