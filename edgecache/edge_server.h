// The edge cache: a reverse proxy that answers from memory what the rules
// (differentiator) call cacheable and the freshness machinery (sqlmap via
// PageRegistrar, invalidator via Ejector) vouches for.
//
// Request path, one stage per step, each counting a named outcome
// (edgecache/outcomes.h): key → lookup → coalesce → fetch → ESI → store.
// Every response carries X-Cache: HIT | MISS | PASS; hits carry Age.
//
// Ownership: EdgeServer owns its threads, sockets and store. The RuleSet and
// the PageRegistrar are borrowed and must outlive the server (Stop() first).
// Thread-safety: Eject/EjectAll/SetVouched/Metrics/Stop may be called from any
// thread. Stop() is idempotent and also run by the destructor.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/ejector.h"
#include "common/page_registrar.h"
#include "common/status.h"
#include "config/options.h"
#include "differentiator/differentiator.h"

namespace cacheportal::edge {

// Where the invalidator will resume replaying changes (for the disk tier).
struct EdgeResumePoint {
  bool known = false;           // false: the disk tier is discarded at start
  uint64_t position = 0;        // LSN: every change after it will be replayed
  bool slot_recreated = false;  // true: changes may have been skipped; discard
};

// What a rules check reported (RulesReloader::CheckNow() adapted by the caller).
enum class RulesCheck { kUnchanged, kReloaded, kFailed };

struct EdgeDeps {
  // Rules: either a fixed set or a provider returning the live set (called per
  // request; must be cheap and thread-safe). One of them is required.
  std::shared_ptr<const differentiator::RuleSet> rules;
  std::function<std::shared_ptr<const differentiator::RuleSet>()> rules_provider;
  // Called every rules_check_interval on the edge's timer when set.
  std::function<RulesCheck()> check_rules;
  std::chrono::milliseconds rules_check_interval{1000};

  // Freshness hand-off. Null: nothing can be vouched for, so nothing is stored
  // unless store_without_registrar (standalone TTL-only mode, tests, benchmarks).
  PageRegistrar* registrar = nullptr;
  bool store_without_registrar = false;
  // The edge stores an ESI page as its template (parsed once, fragments
  // fetched from their own keys at every delivery), never as an assembly, so
  // a fragment's ejection cannot leave a stale copy inside a page: pages are
  // not ejected with their fragments and the registrar is told no children.
  // Set this for a store that caches assemblies, where the DESIGN's rule
  // "ejecting a fragment ejects every page that includes it" applies.
  // Default: false (the precise choice for this edge).
  bool fragment_ejects_parents = false;
  // Appended to GET /metrics (Prometheus text) when set: the all-in-one
  // process exports the sniffer's, the map's and the invalidator's metrics on
  // the edge's admin listener. Called on an admin thread; must be thread-safe.
  std::function<std::string()> extra_metrics;

  // Finer-grained knobs than EdgeOptions offers (0 = use EdgeOptions' seconds).
  std::chrono::milliseconds origin_timeout{0};
  std::chrono::milliseconds idle_timeout{0};
  // Coalescing: how long a waiter waits for the leader, how many may wait.
  std::chrono::milliseconds coalesce_timeout{5000};
  size_t coalesce_max_waiters = 4096;
  // Store shards (1 makes LRU order global, for tests). Default 64.
  size_t store_shards = 64;
  // ESI bounds.
  int esi_max_depth = 3;
  int esi_max_fragments = 32;
  // Cookie naming the session for read-your-writes (else the client address).
  std::string session_cookie = "sid";
  // Idle keep-alive origin connections kept per worker thread.
  size_t origin_pool_per_thread = 64;
  // Client connections open at once; beyond it new ones get a 503 and are
  // closed, so a flood of idle or slow clients cannot exhaust descriptors.
  size_t max_client_connections = 16384;

  // Disk tier (EdgeOptions::disk_tier_path non-empty). Without these hooks
  // the tier still stores, but a restart discards it (nothing vouches for it).
  // Called once by Start(): where the invalidator will resume, and whether
  // its slot was recreated. Records survive only if stored at or after that
  // position (or re-stamped at a clean Stop() at or after it).
  std::function<EdgeResumePoint()> resume_point;
  // The position P such that every change at or before P has already been
  // ejected from this edge (the invalidator's ejected-through LSN); nullopt
  // when unknown. Stamps each stored record and the clean-shutdown marker.
  // Called on I/O threads under a fill's lock: must be cheap (an atomic load).
  std::function<std::optional<uint64_t>()> ejected_through;
};

// A snapshot of the counters (also exported by GET /metrics and /stats).
struct EdgeMetrics {
  uint64_t requests = 0, hits = 0, misses = 0, passes = 0, coalesced = 0;
  uint64_t stored_bytes = 0, stored_objects = 0, evictions = 0, ejections = 0;
  uint64_t rule_reloads_ok = 0, rule_reloads_failed = 0;
  uint64_t errors = 0, esi_errors = 0, not_modified = 0, origin_requests = 0;
  uint64_t coalesce_waiting = 0;  // gauge: requests waiting for another's fetch now
  uint64_t open_connections = 0;  // gauge: client connections open now
  // Disk tier (0 when off): records and bytes now, hits served from it, and
  // what the last start kept and discarded.
  uint64_t disk_objects = 0, disk_bytes = 0, disk_hits = 0, disk_loaded = 0, disk_discarded = 0;
  uint64_t disk_errors = 0;
  // "stage/outcome" → count, for every named outcome.
  std::vector<std::pair<std::string, uint64_t>> outcomes;
  uint64_t Outcome(const std::string& stage_outcome) const;
};

class EdgeServer : public Ejector {
 public:
  static Result<std::unique_ptr<EdgeServer>> Start(const EdgeOptions& options, EdgeDeps deps);
  ~EdgeServer() override;

  uint16_t port() const;
  uint16_t admin_port() const;
  void Stop();

  EdgeMetrics Metrics() const;
  std::string PrometheusText() const;
  std::string StatsJson() const;

  // Children (ESI fragment keys, as keyed for the request that filled it) of
  // the stored page `key`; the same list went to PageRegistrar::Complete.
  // ESI pages are stored as templates and assembled per delivery from their
  // fragments (each cached under its own key), so a fragment keyed per user
  // is never shared through a page keyed for many.
  std::vector<std::string> ChildrenOf(const std::string& key) const;
  bool Contains(const std::string& key) const;

  // Ejector.
  Status Eject(std::span<const std::string> keys) override;
  Status EjectAll() override;
  void SetVouched(bool vouched) override;

  class Impl;

 private:
  explicit EdgeServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cacheportal::edge
