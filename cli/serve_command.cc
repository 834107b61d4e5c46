// `cacheportal serve`: edge, sniffer, sqlmap and invalidator in one process.
//
// Start order matters for freshness: the map and the in-flight registry come
// first, then the sniffer (so statements are registered from the first
// request on), then the edge — not vouched for, so it serves no hits — and
// last the invalidator, which vouches for the edge once it has caught up with
// the replication stream. Stop runs in reverse, after SIGINT/SIGTERM.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/stop_signals.h"
#include "config/config_loader.h"
#include "differentiator/rules_reloader.h"
#include "edgecache/edge_server.h"
#include "invalidator/replication.h"
#include "invalidator/sqlmap_source.h"
#include "sniffer/sniffer.h"
#include "sqlmap/analyzer.h"
#include "sqlmap/inflight_registry.h"
#include "sqlmap/sqlmap.h"

namespace cacheportal {
namespace {

constexpr const char* kServeUsage =
    "usage: cacheportal serve [--config FILE] [--admin-token TOKEN] [--log-level LEVEL]\n"
    "\n"
    "Runs the edge cache, the sniffer, the page/query map and the invalidator in\n"
    "one process, configured by one file (default config/cacheportal.yaml).\n"
    "SIGINT/SIGTERM drain and stop. Exit codes: 0 stopped cleanly, 1 runtime\n"
    "failure, 2 usage error, 3 configuration error.\n";

void Metric(std::string& out, const char* name, const char* type, const char* help, double v) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
         name + " ";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  out += buf;
  out += "\n";
}

// Where the invalidator will resume, read from its slot before it starts, so
// that the edge's disk tier keeps only records whose later changes will be
// replayed. A missing slot will be created (and everything ejected), so the
// tier must be discarded; an unreadable one is unknown, which discards too.
edge::EdgeResumePoint ReadResumePoint(const std::string& conninfo, const std::string& slot,
                                      uint64_t map_applied) {
  edge::EdgeResumePoint rp;
  auto conn = pg::Connect(conninfo);
  if (!conn.ok()) {
    log::Warn("serve", "cannot read the replication slot's position; the disk tier is discarded",
              {{"error", conn.status().ToString()}});
    return rp;
  }
  auto r = pg::ExecParams(conn->get(),
                          "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots "
                          "WHERE slot_name = $1 AND confirmed_flush_lsn IS NOT NULL",
                          {slot.c_str()});
  if (!r.ok()) {
    log::Warn("serve", "cannot read the replication slot's position; the disk tier is discarded",
              {{"error", r.status().ToString()}});
    return rp;
  }
  rp.known = true;
  if (PQntuples(r->get()) == 0) {
    rp.slot_recreated = true;
    return rp;
  }
  // The stream resumes at the later of the slot's and the map's positions.
  // A map without a position makes the invalidator eject everything.
  if (map_applied == 0) {
    rp.slot_recreated = true;
    return rp;
  }
  rp.position =
      std::max<uint64_t>(std::strtoull(PQgetvalue(r->get(), 0, 0), nullptr, 10), map_applied);
  return rp;
}

// The invalidator's applied position (every change at or before it has been
// ejected), which the edge's disk tier stamps records with; none before the
// invalidator runs or has applied anything.
std::optional<uint64_t> EjectedThrough(const invalidator::Invalidator* inv) {
  uint64_t lsn = inv ? inv->applied_lsn() : 0;
  if (lsn == 0) return std::nullopt;
  return lsn;
}

// The other parts' metrics, appended to the edge's /metrics.
std::string ServeMetrics(const invalidator::Invalidator* inv, const Sniffer& sniffer,
                         const sqlmap::InFlightRegistry& registry, const sqlmap::SqlMap& map,
                         bool disk_tier) {
  std::string out;
  SnifferStats s = sniffer.stats();
  Metric(out, "cacheportal_sniffer_connections_active", "gauge", "Client connections open.",
         static_cast<double>(s.connections_active));
  Metric(out, "cacheportal_sniffer_statements_registered_total", "counter",
         "Statements registered under a request id.", static_cast<double>(s.statements_registered));
  Metric(out, "cacheportal_sniffer_protocol_errors_total", "counter",
         "Connections closed for nonsense framing.", static_cast<double>(s.protocol_errors));
  auto r = registry.GetStats();
  Metric(out, "cacheportal_registry_in_flight", "gauge", "Requests with statements, not completed.",
         static_cast<double>(r.in_flight));
  Metric(out, "cacheportal_registry_stored_total", "counter", "Pages the map vouched for.",
         static_cast<double>(r.completed_stored));
  Metric(out, "cacheportal_registry_refused_total", "counter",
         "Pages refused (tainted, wrote, unanalysable, unknown).",
         static_cast<double>(r.completed_refused));
  Metric(out, "cacheportal_registry_tainted_total", "counter",
         "In-flight requests tainted by a committed change.", static_cast<double>(r.tainted));
  auto m = map.GetStats();
  Metric(out, "cacheportal_map_pages", "gauge", "Pages registered in the map.",
         static_cast<double>(m.pages));
  Metric(out, "cacheportal_map_instances", "gauge", "Query instances registered in the map.",
         static_cast<double>(m.instances));
  if (inv) {
    invalidator::InvalidatorMetrics m = inv->GetMetrics();
    out += m.ToPrometheus();
    Metric(out, "cacheportal_invalidator_applied_lsn", "gauge",
           "Replication position through which every change has been ejected.",
           static_cast<double>(m.applied_lsn));
    Metric(out, "cacheportal_invalidator_confirmed_lsn", "gauge",
           "Last flush position confirmed to the server.", static_cast<double>(m.confirmed_lsn));
  }
  if (disk_tier)
    Metric(out, "cacheportal_edge_disk_stamp_lsn", "gauge",
           "Position the edge's disk tier stamps new records with (0 = none yet).",
           static_cast<double>(EjectedThrough(inv).value_or(0)));
  return out;
}

}  // namespace

int RunServeCommand(int argc, char** argv) {
  std::string config_path = "config/cacheportal.yaml";
  std::string admin_token, log_level;
  bool have_token = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "cacheportal serve: %s needs a value\n", name);
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kServeUsage, stdout);
      return kExitOk;
    } else if (a == "--config") {
      const char* v = value("--config");
      if (!v) return kExitUsage;
      config_path = v;
    } else if (a == "--admin-token") {
      const char* v = value("--admin-token");
      if (!v) return kExitUsage;
      admin_token = v;
      have_token = true;
    } else if (a == "--log-level") {
      const char* v = value("--log-level");
      if (!v) return kExitUsage;
      log_level = v;
    } else {
      std::fprintf(stderr, "cacheportal serve: unknown option '%s'\n\n%s", argv[i], kServeUsage);
      return kExitUsage;
    }
  }

  auto config = LoadConfigFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "cacheportal serve: %s\n", config.status().message().c_str());
    return kExitConfig;
  }
  CachePortalConfig& c = *config;
  if (have_token) c.edge.admin_token = admin_token;
  if (!log_level.empty()) c.common.log_level = log_level;
  log::Level level;
  if (!log::ParseLevel(c.common.log_level, &level)) {
    std::fprintf(stderr, "cacheportal serve: unknown log level '%s'\n", c.common.log_level.c_str());
    return kExitUsage;
  }
  log::SetLevel(level);

  // Block the stop signals in every thread (threads inherit the mask) so that
  // only the sigwait below sees them.
  const sigset_t stop_signals = BlockStopSignals();
  signal(SIGPIPE, SIG_IGN);

  sqlmap::AnalyzerOptions analyzer_options;
  analyzer_options.logging_tables = c.sqlmap.logging_tables;
  sqlmap::Analyzer analyzer(analyzer_options);
  std::unique_ptr<sqlmap::SqlMap> map;
  sqlmap::MapOptions map_options;
  map_options.path = c.sqlmap.path;
  map_options.sync_writes = c.sqlmap.sync_writes;
  if (Status s = sqlmap::SqlMap::Open(map_options, &map); !s.ok()) {
    log::Error("serve", "cannot open the map", {{"path", c.sqlmap.path}, {"error", s.ToString()}});
    return kExitFailure;
  }
  sqlmap::InFlightRegistry registry(&analyzer, map.get(), sqlmap::InFlightOptions{});

  auto sniffer = Sniffer::Start(c.sniffer, &registry);
  if (!sniffer.ok()) {
    log::Error("serve", "sniffer did not start", {{"error", sniffer.status().ToString()}});
    return kExitFailure;
  }

  auto rules = differentiator::RulesReloader::Create(c.edge.rules_file, c.common.session_secret);
  if (!rules.ok()) {
    std::fprintf(stderr, "cacheportal serve: %s\n", rules.status().message().c_str());
    return kExitConfig;
  }
  differentiator::RulesReloader* reloader = rules->get();
  edge::EdgeDeps edge_deps;
  edge_deps.rules_provider = [reloader] { return reloader->Current(); };
  edge_deps.check_rules = [reloader] {
    switch (reloader->CheckNow()) {
      case differentiator::RulesReloader::CheckOutcome::kUnchanged:
        return edge::RulesCheck::kUnchanged;
      case differentiator::RulesReloader::CheckOutcome::kReloaded:
        return edge::RulesCheck::kReloaded;
      case differentiator::RulesReloader::CheckOutcome::kFailed:
        return edge::RulesCheck::kFailed;
    }
    return edge::RulesCheck::kFailed;
  };
  edge_deps.registrar = &registry;
  // The invalidator starts after the edge; the edge stops before it goes.
  std::atomic<invalidator::Invalidator*> live_invalidator{nullptr};
  Sniffer* live_sniffer = sniffer->get();
  const bool disk_tier = !c.edge.disk_tier_path.empty();
  if (disk_tier) {
    if (!c.sqlmap.sync_writes)
      log::Warn("serve",
                "edge.disk_tier_path is set without sqlmap.sync_writes: a process crash keeps "
                "both consistent, but after an operating-system crash a kept page could have "
                "lost its map entry; set sqlmap.sync_writes: true for that case");
    std::string conninfo = c.common.database, slot = c.invalidator.slot_name;
    sqlmap::SqlMap* the_map = map.get();
    edge_deps.resume_point = [conninfo, slot, the_map] {
      return ReadResumePoint(conninfo, slot, the_map->AppliedLsn());
    };
    edge_deps.ejected_through = [&live_invalidator] {
      return EjectedThrough(live_invalidator.load());
    };
  }
  edge_deps.extra_metrics = [&live_invalidator, live_sniffer, &registry, &map, disk_tier] {
    return ServeMetrics(live_invalidator.load(), *live_sniffer, registry, *map, disk_tier);
  };
  auto edge = edge::EdgeServer::Start(c.edge, std::move(edge_deps));
  if (!edge.ok()) {
    log::Error("serve", "edge did not start", {{"error", edge.status().ToString()}});
    return kExitFailure;
  }
  // Nothing is vouched for until the invalidator has caught up.
  (*edge)->SetVouched(false);

  auto source = invalidator::MakeSqlMapSource(map.get(), &registry);
  invalidator::InvalidatorDeps inv_deps;
  inv_deps.conninfo = c.common.database;
  inv_deps.options = c.invalidator;
  inv_deps.exclude_tables = c.sqlmap.logging_tables;
  inv_deps.source = source.get();
  inv_deps.ejector = edge->get();
  auto inv = invalidator::Invalidator::Start(std::move(inv_deps));
  if (!inv.ok()) {
    log::Error("serve", "invalidator did not start", {{"error", inv.status().ToString()}});
    (*edge)->Stop();
    (*sniffer)->Stop();
    return kExitFailure;
  }

  live_invalidator.store(inv->get());
  log::Info("serve", "CachePortal is up",
            {{"edge", c.edge.listen_address + ":" + std::to_string((*edge)->port())},
             {"admin", c.edge.admin_address + ":" + std::to_string((*edge)->admin_port())},
             {"sniffer", c.sniffer.listen_address + ":" + std::to_string((*sniffer)->port())},
             {"origin", c.edge.origin_host + ":" + std::to_string(c.edge.origin_port)}});

  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::Info("serve", "stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  // The edge first: no new fills. Then the sniffer, then the invalidator,
  // whose last status update confirms only what was ejected.
  (*edge)->Stop();
  (*sniffer)->Stop();
  (*inv)->Stop();
  live_invalidator.store(nullptr);  // the edge's hooks must not reach it once it goes
  log::Info("serve", "stopped");
  return kExitOk;
}

}  // namespace cacheportal
