// `cacheportal sniffer`: the wire-protocol proxy on its own. Standalone it
// has no map to feed, so captured statements are logged at debug level; the
// all-in-one `cacheportal serve` passes the sqlmap's sink instead.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "common/log.h"
#include "common/stop_signals.h"
#include "config/config_loader.h"
#include "sniffer/sniffer.h"

namespace cacheportal {
namespace {

constexpr const char* kUsage =
    "usage: cacheportal sniffer [--config FILE] [--listen HOST:PORT] [--upstream HOST:PORT]\n"
    "                           [--threads N] [--poll-us N] [--log-level LEVEL]\n"
    "\n"
    "Transparent PostgreSQL wire-protocol proxy. Point the application at it\n"
    "instead of the database; every statement carrying a sqlcommenter\n"
    "traceparent is captured before it is relayed. Standalone, captured\n"
    "statements are logged at debug level.\n"
    "\n"
    "  --config FILE        configuration (section `sniffer`); default: built-in defaults\n"
    "  --listen HOST:PORT   listen address (default 127.0.0.1:6433)\n"
    "  --upstream HOST:PORT PostgreSQL server (default 127.0.0.1:55432)\n"
    "  --threads N          I/O threads (default 1)\n"
    "  --poll-us N          keep polling N microseconds after relaying before sleeping\n"
    "                       (sniffer.poll_microseconds, default 50; 0 = sleep at once)\n"
    "  --log-level LEVEL    debug | info | warn | error (default: common.log_level)\n"
    "\n"
    "SIGINT or SIGTERM stops it (open connections are closed).\n";

class LoggingSink : public StatementSink {
 public:
  void OnStatement(std::string_view request_id, CapturedStatement st) override {
    if (log::GetLevel() > log::Level::kDebug) return;
    std::string params;
    for (size_t i = 0; i < st.params.size(); ++i) {
      if (i) params += ",";
      if (!st.params[i]) {
        params += "NULL";
      } else if (i < st.param_is_binary.size() && st.param_is_binary[i]) {
        params += "<binary " + std::to_string(st.params[i]->size()) + " bytes>";
      } else {
        params += *st.params[i];
      }
    }
    log::Debug("sniffer", "statement",
               {{"request", std::string(request_id)},
                {"conn", std::to_string(st.connection_id)},
                {"in_tx", st.in_transaction_block ? "true" : "false"},
                {"sql", st.sql},
                {"params", params}});
  }
};

bool SplitHostPort(std::string_view s, std::string* host, uint16_t* port) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view p = s.substr(colon + 1);
  if (p.empty() || p.size() > 5) return false;
  unsigned long v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned long>(c - '0');
  }
  if (v > 65535) return false;
  std::string_view h = s.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  *host = std::string(h);
  *port = static_cast<uint16_t>(v);
  return true;
}

}  // namespace

int RunSnifferCommand(int argc, char** argv) {
  std::string config_file, listen, upstream, threads, poll_us, level;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    }
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    bool ok;
    if (a == "--config") {
      ok = value(&config_file);
    } else if (a == "--listen") {
      ok = value(&listen);
    } else if (a == "--upstream") {
      ok = value(&upstream);
    } else if (a == "--threads") {
      ok = value(&threads);
    } else if (a == "--poll-us") {
      ok = value(&poll_us);
    } else if (a == "--log-level") {
      ok = value(&level);
    } else {
      std::fprintf(stderr, "cacheportal sniffer: unknown option '%s'\n\n%s", argv[i], kUsage);
      return kExitUsage;
    }
    if (!ok) {
      std::fprintf(stderr, "cacheportal sniffer: %s needs a value\n", argv[i]);
      return kExitUsage;
    }
  }

  CachePortalConfig config;
  if (!config_file.empty()) {
    auto loaded = LoadConfigFile(config_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "cacheportal sniffer: %s\n", loaded.status().ToString().c_str());
      return kExitConfig;
    }
    config = std::move(loaded).value();
  }
  SnifferOptions& o = config.sniffer;
  if (!listen.empty() && !SplitHostPort(listen, &o.listen_address, &o.listen_port)) {
    std::fprintf(stderr, "cacheportal sniffer: --listen wants HOST:PORT, got '%s'\n",
                 listen.c_str());
    return kExitUsage;
  }
  if (!upstream.empty() && !SplitHostPort(upstream, &o.upstream_host, &o.upstream_port)) {
    std::fprintf(stderr, "cacheportal sniffer: --upstream wants HOST:PORT, got '%s'\n",
                 upstream.c_str());
    return kExitUsage;
  }
  // A whole decimal number within [lo, hi] for flag `name`, or a usage error.
  auto int_flag = [](const char* name, const std::string& text, long lo, long hi, int* out) {
    char* end = nullptr;
    long n = std::strtol(text.c_str(), &end, 10);
    if (*end != '\0' || n < lo || n > hi) {
      std::fprintf(stderr, "cacheportal sniffer: %s wants %ld..%ld, got '%s'\n", name, lo, hi,
                   text.c_str());
      return false;
    }
    *out = static_cast<int>(n);
    return true;
  };
  if (!threads.empty() && !int_flag("--threads", threads, 1, 64, &o.threads)) return kExitUsage;
  if (!poll_us.empty() &&
      !int_flag("--poll-us", poll_us, 0, kMaxPollMicroseconds, &o.poll_microseconds))
    return kExitUsage;
  log::Level lvl;
  const std::string& level_text = level.empty() ? config.common.log_level : level;
  if (!log::ParseLevel(level_text, &lvl)) {
    std::fprintf(stderr, "cacheportal sniffer: bad log level '%s'\n", level_text.c_str());
    return level.empty() ? kExitConfig : kExitUsage;
  }
  log::SetLevel(lvl);

  // Block the stop signals before any thread starts so that only sigwait()
  // below receives them.
  const sigset_t stop_signals = BlockStopSignals();

  LoggingSink sink;
  auto sniffer = Sniffer::Start(o, &sink);
  if (!sniffer.ok()) {
    std::fprintf(stderr, "cacheportal sniffer: %s\n", sniffer.status().ToString().c_str());
    return sniffer.status().IsInvalidArgument() ? kExitConfig : kExitFailure;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::Info("sniffer", "stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  SnifferStats st = (*sniffer)->stats();
  (*sniffer)->Stop();
  log::Info("sniffer", "stopped",
            {{"connections_accepted", std::to_string(st.connections_accepted)},
             {"statements_registered", std::to_string(st.statements_registered)},
             {"bytes_client_to_server", std::to_string(st.bytes_client_to_server)},
             {"bytes_server_to_client", std::to_string(st.bytes_server_to_client)},
             {"protocol_errors", std::to_string(st.protocol_errors)}});
  return kExitOk;
}

}  // namespace cacheportal
