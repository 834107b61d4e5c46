// InFlightRegistry: the statements of requests still being served, and the
// bridge that turns a finished request into map entries.
//
// It is the sniffer's StatementSink (statements arrive tagged with request
// ids) and the edge's PageRegistrar (Complete/Abandon). The invalidator calls
// TaintMatching() for every changed row BEFORE looking in the map, so that a
// change committed while a request is in flight either taints the request or
// finds its page in the map — never neither (see common/page_registrar.h).
//
// Per request it records: the query instances read, whether it wrote anything
// (INSERT/UPDATE/DELETE/MERGE/DDL, SELECT … FOR UPDATE/SHARE, calls it cannot
// prove read-only), whether statements ran inside an explicit transaction,
// and whether any statement was unanalysable. Logging tables are ignored.
// Requests never completed are dropped after `max_age_seconds`.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/page_registrar.h"
#include "common/statement_sink.h"
#include "sqlmap/analyzer.h"
#include "sqlmap/sqlmap.h"

namespace cacheportal::sqlmap {

struct InFlightOptions {
  double max_age_seconds = 60;               // forget requests never completed
  size_t max_requests = 100000;              // bound memory; oldest dropped first
  size_t max_statements_per_request = 1000;  // above: the request becomes uncacheable
};

class InFlightRegistry : public StatementSink, public PageRegistrar {
 public:
  InFlightRegistry(Analyzer* analyzer, SqlMap* map, InFlightOptions options);
  ~InFlightRegistry() override;

  void OnStatement(std::string_view request_id, CapturedStatement statement) override;
  RegisterVerdict Complete(const PageRegistration& page) override;
  void Abandon(std::string_view request_id) override;

  // Calls `affects` for every in-flight instance that reads `table`; when it
  // returns true the owning request is tainted (its page will not be stored).
  // Returns the number of requests newly tainted.
  size_t TaintMatching(std::string_view table,
                       const std::function<bool(const QueryInstance&)>& affects);
  // Taints every in-flight request (EjectAll, lost slot).
  size_t TaintAll();

  struct Stats {
    uint64_t in_flight = 0;
    uint64_t statements = 0;
    uint64_t completed_stored = 0;
    uint64_t completed_refused = 0;
    uint64_t tainted = 0;
  };
  Stats GetStats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cacheportal::sqlmap
