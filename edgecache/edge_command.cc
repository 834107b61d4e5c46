// `cacheportal edge`: the edge cache as its own process.
//
// Standalone, no sqlmap runs in this process, so nothing can vouch for the
// freshness of a page: by default the edge then passes everything (it still
// forwards, keys, counts and serves ESI). `--ttl-only` lets it store with the
// rules' TTL backstops instead, which is what the benchmark and demos without
// the invalidator use.
#include <pthread.h>
#include <signal.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "common/log.h"
#include "common/stop_signals.h"
#include "config/config_loader.h"
#include "differentiator/rules_reloader.h"
#include "edgecache/edge_server.h"

namespace cacheportal {
namespace {

constexpr const char* kEdgeUsage =
    "usage: cacheportal edge [options]\n"
    "\n"
    "Runs the edge cache (reverse proxy) in front of the origin.\n"
    "\n"
    "options:\n"
    "  --config FILE       configuration file (default: built-in defaults)\n"
    "  --listen HOST:PORT  public listener (edge.listen_address/listen_port)\n"
    "  --admin HOST:PORT   admin listener (edge.admin_address/admin_port)\n"
    "  --origin HOST:PORT  the origin (edge.origin_host/origin_port)\n"
    "  --rules FILE        rules file (edge.rules_file)\n"
    "  --threads N         worker threads (edge.threads)\n"
    "  --memory BYTES      store byte budget (edge.memory_budget_bytes)\n"
    "  --ttl-only          store pages with the rules' TTLs although no sqlmap can\n"
    "                      vouch for them (standalone default: pass everything)\n"
    "  --no-registrar-store  same as --ttl-only\n"
    "  -h, --help          this text\n"
    "\n"
    "SIGINT/SIGTERM stop it cleanly.\n"
    "Exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage error, 3 configuration error.\n";

bool SplitHostPort(std::string_view s, std::string* host, uint16_t* port) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  unsigned v = 0;
  auto digits = s.substr(colon + 1);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || p != digits.data() + digits.size() || v > 65535) return false;
  *host = std::string(s.substr(0, colon));
  *port = static_cast<uint16_t>(v);
  return true;
}

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

int RunEdgeCommand(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  std::string config_file, listen, admin, origin, rules_file, threads, memory;
  bool ttl_only = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = std::string(args[++i]);
      return true;
    };
    bool ok = true;
    if (a == "-h" || a == "--help") {
      std::fputs(kEdgeUsage, stdout);
      return kExitOk;
    } else if (a == "--config") {
      ok = value(&config_file);
    } else if (a == "--listen") {
      ok = value(&listen);
    } else if (a == "--admin") {
      ok = value(&admin);
    } else if (a == "--origin") {
      ok = value(&origin);
    } else if (a == "--rules") {
      ok = value(&rules_file);
    } else if (a == "--threads") {
      ok = value(&threads);
    } else if (a == "--memory") {
      ok = value(&memory);
    } else if (a == "--ttl-only" || a == "--no-registrar-store") {
      ttl_only = true;
    } else {
      std::fprintf(stderr, "cacheportal edge: unknown option '%.*s'\n\n%s",
                   static_cast<int>(a.size()), a.data(), kEdgeUsage);
      return kExitUsage;
    }
    if (!ok) {
      std::fprintf(stderr, "cacheportal edge: %.*s needs a value\n", static_cast<int>(a.size()),
                   a.data());
      return kExitUsage;
    }
  }

  CachePortalConfig cfg;
  if (!config_file.empty()) {
    auto loaded = LoadConfigFile(config_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "cacheportal edge: %s\n", loaded.status().ToString().c_str());
      return kExitConfig;
    }
    cfg = std::move(loaded.value());
  }
  log::Level level;
  if (log::ParseLevel(cfg.common.log_level, &level)) log::SetLevel(level);
  EdgeOptions& o = cfg.edge;
  if (!listen.empty() && !SplitHostPort(listen, &o.listen_address, &o.listen_port)) {
    std::fprintf(stderr, "cacheportal edge: --listen wants HOST:PORT, got '%s'\n", listen.c_str());
    return kExitUsage;
  }
  if (!admin.empty() && !SplitHostPort(admin, &o.admin_address, &o.admin_port)) {
    std::fprintf(stderr, "cacheportal edge: --admin wants HOST:PORT, got '%s'\n", admin.c_str());
    return kExitUsage;
  }
  if (!origin.empty() && !SplitHostPort(origin, &o.origin_host, &o.origin_port)) {
    std::fprintf(stderr, "cacheportal edge: --origin wants HOST:PORT, got '%s'\n", origin.c_str());
    return kExitUsage;
  }
  if (!threads.empty() && (!ParseNumber(threads, &o.threads) || o.threads < 1)) {
    std::fprintf(stderr, "cacheportal edge: --threads wants a positive number\n");
    return kExitUsage;
  }
  if (!memory.empty() && !ParseNumber(memory, &o.memory_budget_bytes)) {
    std::fprintf(stderr, "cacheportal edge: --memory wants a number of bytes\n");
    return kExitUsage;
  }
  if (!rules_file.empty()) o.rules_file = rules_file;

  auto reloader = differentiator::RulesReloader::Create(o.rules_file, cfg.common.session_secret);
  if (!reloader.ok()) {
    std::fprintf(stderr, "cacheportal edge: %s\n", reloader.status().ToString().c_str());
    return kExitConfig;
  }
  differentiator::RulesReloader* rules = reloader.value().get();

  // Block the stop signals before any thread starts, so every worker inherits
  // the mask and only sigwait below receives them.
  const sigset_t stop_signals = BlockStopSignals();
  signal(SIGPIPE, SIG_IGN);

  edge::EdgeDeps deps;
  deps.rules_provider = [rules] { return rules->Current(); };
  deps.check_rules = [rules] {
    switch (rules->CheckNow()) {
      case differentiator::RulesReloader::CheckOutcome::kReloaded:
        return edge::RulesCheck::kReloaded;
      case differentiator::RulesReloader::CheckOutcome::kFailed:
        return edge::RulesCheck::kFailed;
      default:
        return edge::RulesCheck::kUnchanged;
    }
  };
  deps.store_without_registrar = ttl_only;
  // TTL-only: no invalidator, freshness is the rules' TTL backstop, which the
  // disk records carry; an unexpired record is as good after a restart as
  // before it (purges and bans were durable). With sqlmap absent and not
  // TTL-only nothing is stored, so the disk tier has nothing to keep.
  if (ttl_only) deps.resume_point = [] { return edge::EdgeResumePoint{true, 0, false}; };
  auto server = edge::EdgeServer::Start(o, std::move(deps));
  if (!server.ok()) {
    std::fprintf(stderr, "cacheportal edge: %s\n", server.status().ToString().c_str());
    return server.status().IsInvalidArgument() ? kExitConfig : kExitFailure;
  }
  if (!ttl_only)
    log::Warn("edge",
              "standalone without sqlmap: nothing can be vouched for, passing everything "
              "(use --ttl-only to store with rule TTLs)");
  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::Info("edge", "stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  server.value()->Stop();
  return kExitOk;
}

}  // namespace cacheportal
