// `cacheportal invalidator`: the invalidator on its own. It opens the map at
// sqlmap.path (shared with the process that registers pages, or a copy kept
// by the same host) and ejects through a remote edge's admin API
// (--edge-admin) or, without one, just logs what it would eject.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "common/log.h"
#include "common/stop_signals.h"
#include "config/config_loader.h"
#include "invalidator/http_ejector.h"
#include "invalidator/replication.h"
#include "invalidator/sqlmap_source.h"
#include "sqlmap/sqlmap.h"

namespace cacheportal {
namespace {

constexpr const char* kUsage =
    "usage: cacheportal invalidator [--config FILE] [--database CONNINFO]\n"
    "                               [--edge-admin HOST:PORT] [--log-level LEVEL]\n"
    "\n"
    "Holds a logical replication slot (pgoutput) on the monitored tables and\n"
    "ejects every cached page or fragment a committed change makes stale. The\n"
    "replication position is confirmed only after the ejections are done.\n"
    "\n"
    "  --config FILE          configuration (sections common, sqlmap, invalidator, edge)\n"
    "  --database CONNINFO    libpq conninfo of the origin database (default: common.database)\n"
    "  --edge-admin HOST:PORT eject through that edge's admin API (POST /purge, bearer\n"
    "                         edge.admin_token); default: log the keys it would eject\n"
    "  --log-level LEVEL      debug | info | warn | error (default: common.log_level)\n"
    "\n"
    "Needs wal_level=logical and a role with REPLICATION. Metrics are logged every\n"
    "status interval. SIGINT or SIGTERM stops it (the position reached is confirmed).\n";

bool SplitHostPort(std::string_view s, std::string* host, uint16_t* port) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  char* end = nullptr;
  std::string p(s.substr(colon + 1));
  long v = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || v < 1 || v > 65535) return false;
  *host = std::string(s.substr(0, colon));
  *port = static_cast<uint16_t>(v);
  return true;
}

void LogMetrics(const invalidator::InvalidatorMetrics& m) {
  log::Info("invalidator", "metrics",
            {{"transactions", std::to_string(m.transactions)},
             {"changes", std::to_string(m.changes)},
             {"changes_per_s", std::to_string(m.changes_per_second)},
             {"candidates_per_change", std::to_string(m.CandidatesPerChange())},
             {"ejected_keys", std::to_string(m.ejected_keys)},
             {"polls", std::to_string(m.polling_queries)},
             {"instances_per_poll", std::to_string(m.InstancesPerPoll())},
             {"lag_s", std::to_string(m.lag_seconds)},
             {"lag_bytes", std::to_string(m.lag_bytes)},
             {"slot_retained_wal_bytes", std::to_string(m.slot_retained_wal_bytes)},
             {"latency_p50_us", std::to_string(m.latency.Percentile(50))},
             {"latency_p99_us", std::to_string(m.latency.Percentile(99))},
             {"connected", m.connected ? "true" : "false"},
             {"vouched", m.vouched ? "true" : "false"}});
}

}  // namespace

int RunInvalidatorCommand(int argc, char** argv) {
  std::string config_file, database, edge_admin, level;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    }
    std::string* target = nullptr;
    if (a == "--config")
      target = &config_file;
    else if (a == "--database")
      target = &database;
    else if (a == "--edge-admin")
      target = &edge_admin;
    else if (a == "--log-level")
      target = &level;
    if (!target) {
      std::fprintf(stderr, "cacheportal invalidator: unknown option '%s'\n\n%s", argv[i], kUsage);
      return kExitUsage;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "cacheportal invalidator: %s needs a value\n", argv[i]);
      return kExitUsage;
    }
    *target = argv[++i];
  }

  CachePortalConfig config;
  if (!config_file.empty()) {
    auto loaded = LoadConfigFile(config_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "cacheportal invalidator: %s\n", loaded.status().ToString().c_str());
      return kExitConfig;
    }
    config = std::move(loaded).value();
  }
  log::Level lvl;
  const std::string& level_text = level.empty() ? config.common.log_level : level;
  if (!log::ParseLevel(level_text, &lvl)) {
    std::fprintf(stderr, "cacheportal invalidator: bad log level '%s'\n", level_text.c_str());
    return level.empty() ? kExitConfig : kExitUsage;
  }
  log::SetLevel(lvl);

  std::unique_ptr<Ejector> ejector;
  if (!edge_admin.empty()) {
    std::string host;
    uint16_t port = 0;
    if (!SplitHostPort(edge_admin, &host, &port)) {
      std::fprintf(stderr, "cacheportal invalidator: --edge-admin wants HOST:PORT, got '%s'\n",
                   edge_admin.c_str());
      return kExitUsage;
    }
    ejector = std::make_unique<invalidator::HttpPurgeEjector>(host, port, config.edge.admin_token);
  } else {
    ejector = std::make_unique<invalidator::LoggingEjector>();
  }

  sqlmap::MapOptions mo;
  mo.path = config.sqlmap.path;
  mo.sync_writes = config.sqlmap.sync_writes;
  std::unique_ptr<sqlmap::SqlMap> map;
  if (Status s = sqlmap::SqlMap::Open(mo, &map); !s.ok()) {
    std::fprintf(stderr, "cacheportal invalidator: cannot open the map at %s: %s\n",
                 mo.path.c_str(), s.ToString().c_str());
    return kExitFailure;
  }
  auto source = invalidator::MakeSqlMapSource(map.get());

  const sigset_t stop_signals = BlockStopSignals();

  invalidator::InvalidatorDeps deps;
  deps.conninfo = database.empty() ? config.common.database : database;
  deps.options = config.invalidator;
  deps.exclude_tables = config.sqlmap.logging_tables;
  deps.source = source.get();
  deps.ejector = ejector.get();
  auto inv = invalidator::Invalidator::Start(std::move(deps));
  if (!inv.ok()) {
    std::fprintf(stderr, "cacheportal invalidator: %s\n", inv.status().ToString().c_str());
    return inv.status().IsInvalidArgument() ? kExitConfig : kExitFailure;
  }
  log::Info("invalidator", "running",
            {{"slot", config.invalidator.slot_name},
             {"tables", std::to_string((*inv)->monitored_tables().size())}});
  timespec interval{std::max(1, config.invalidator.status_interval_seconds), 0};
  int sig = 0;
  for (;;) {
    sig = sigtimedwait(&stop_signals, nullptr, &interval);
    if (sig == SIGINT || sig == SIGTERM) break;
    LogMetrics((*inv)->GetMetrics());
  }
  log::Info("invalidator", "stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  (*inv)->Stop();
  LogMetrics((*inv)->GetMetrics());
  return kExitOk;
}

}  // namespace cacheportal
