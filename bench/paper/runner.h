// One measured run of the closed-loop PetStore workload against one target
// (the store directly, or the edge in front of it), with the background
// writer, the client-side invalidation-latency probe and the staleness audit.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/paper/cpu_account.h"
#include "bench/paper/http_client.h"
#include "bench/paper/stats.h"
#include "bench/paper/workload.h"
#include "common/status.h"

namespace cacheportal::bench {

// Reads the catalogue (categories, products, items, search words) the store
// was loaded with.
Result<Catalog> LoadCatalog(const std::string& conninfo);

struct RunOptions {
  std::string label;             // "origin" | "edge"
  BaseUrl target;                // where the users go
  BaseUrl origin;                // the store directly (audit reference)
  bool through_edge = false;     // probe + audit only make sense through the edge
  std::optional<BaseUrl> admin;  // edge admin API (metrics), optional
  std::string admin_token;
  std::string database;  // conninfo of the writer (direct, not the sniffer)
  int users = 16;
  double warmup_s = 0;
  double duration_s = 30;
  double think_ms = 0;  // mean of an exponential think time; 0 = none
  double buyer_fraction = 0.05;
  double ja_fraction = 0.1;
  double write_rate = 1;      // changes per second; 0 = no writer
  double audit_window_s = 1;  // a write's ejection window before its audit
  double stale_after_s = 5;   // staleness bound (invalidator.max_staleness_seconds)
  int audit_unaffected = 4;   // unaffected pages re-fetched per audit
  double probe_timeout_s = 10;
  int timeout_ms = 10000;
  int client_threads = 2;  // event loops driving the users (user_driver.h)
  uint64_t seed = 1;
  bool progress = true;
  WorkloadOptions workload;
};

enum class WriteKind : uint8_t { kPrice, kInventory, kNewProduct };
std::string_view WriteKindName(WriteKind k);

struct WriteRecord {
  int seq = 0;
  WriteKind kind = WriteKind::kPrice;
  std::string row;                 // "item_details EST-7 en_US"
  std::vector<std::string> pages;  // pages whose bytes change (e.g. "/item/EST-7 en")
  double commit_s = 0;             // seconds since the run started
  bool cached_before = false;      // the probed page was a HIT just before
  double latency_ms = -1;          // first fresh edge fetch - commit; -1 = not measured
  bool timed_out = false;
};

struct AuditResult {
  uint64_t affected_checked = 0, unaffected_checked = 0;
  uint64_t late = 0;                 // differed at the audit, agreed within the staleness bound
  double late_max_s = 0;             // longest such delay after the write (s)
  double window_s = 0, bound_s = 0;  // the options it ran with
  uint64_t stale = 0;                // served different bytes than the store after two windows
  uint64_t errors = 0;               // fetch failures (not counted as stale)
  std::vector<std::string> stale_pages;
};

struct RunResult {
  RunSummary summary;
  std::vector<SecondStats> timeline;  // including warm-up
  std::vector<WriteRecord> writes;
  AuditResult audit;
  uint64_t checkouts = 0;  // successful checkouts (they change inventory too)
  CpuUsage cpu;            // every process's CPU over the measured seconds
  std::map<std::string, double> metrics_before, metrics_after;  // admin /metrics scrape
  double MetricDelta(const std::string& name) const;
};

// Parses Prometheus text exposition into name{labels} → value. Pure.
std::map<std::string, double> ParsePrometheus(std::string_view text);

Result<RunResult> RunOnce(const RunOptions& options, const Catalog& catalog);

}  // namespace cacheportal::bench
