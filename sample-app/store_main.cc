// cacheportal-store: the bundled PetStore-like shop.
//   cacheportal-store [serve] [--config FILE] [--listen HOST:PORT] [--database CONNINFO] [--threads
//   N] cacheportal-store load --scale N [--config FILE] [--database CONNINFO]
#include <sys/stat.h>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "common/log.h"
#include "common/stop_signals.h"
#include "config/config_loader.h"
#include "sample-app/loader.h"
#include "sample-app/store_server.h"

namespace {

using namespace cacheportal;

constexpr const char* kUsage =
    "usage: cacheportal-store [serve] [options]\n"
    "       cacheportal-store load --scale N [options]\n"
    "\n"
    "commands:\n"
    "  serve   serve the shop over HTTP (the default)\n"
    "  load    drop and create the store's tables and load deterministic data\n"
    "\n"
    "options:\n"
    "  --config FILE        YAML config (default config/cacheportal.yaml; built-in\n"
    "                       defaults when that default file does not exist)\n"
    "  --database CONNINFO  libpq conninfo (default: store.database, else common.database)\n"
    "  --listen HOST:PORT   serve: where to listen (default: store.listen_address:listen_port,\n"
    "                       127.0.0.1:8081)\n"
    "  --threads N          serve: HTTP worker threads (default: store.threads)\n"
    "  --scale N            load: 1 = 5 categories, 16 products, 28 items; N multiplies\n"
    "                       products and items\n"
    "  -h, --help           this text\n"
    "\n"
    "Exit codes: 0 success, 1 runtime failure, 2 usage error, 3 configuration error.\n";

int Usage(const std::string& msg) {
  std::fprintf(stderr, "cacheportal-store: %s\n\n%s", msg.c_str(), kUsage);
  return kExitUsage;
}

bool ParseInt(std::string_view s, long lo, long hi, long* out) {
  if (s.empty() || s.size() > 9) return false;
  long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string command = "serve";
  int i = 1;
  if (argc > 1 && argv[1][0] != '-') {
    command = argv[1];
    i = 2;
  }
  if (command != "serve" && command != "load") return Usage("unknown command '" + command + "'");

  std::string config_path = "config/cacheportal.yaml";
  bool config_explicit = false;
  std::string database, listen;
  long threads = 0, scale = 0;
  for (; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    } else if (a == "--config") {
      if (!value(&config_path)) return Usage("--config needs a file");
      config_explicit = true;
    } else if (a == "--database") {
      if (!value(&database)) return Usage("--database needs a conninfo");
    } else if (a == "--listen" && command == "serve") {
      if (!value(&listen)) return Usage("--listen needs HOST:PORT");
    } else if (a == "--threads" && command == "serve") {
      if (!value(&v) || !ParseInt(v, 1, 256, &threads))
        return Usage("--threads needs a number between 1 and 256");
    } else if (a == "--scale" && command == "load") {
      if (!value(&v) || !ParseInt(v, 1, store::kMaxScale, &scale))
        return Usage("--scale needs a number between 1 and " + std::to_string(store::kMaxScale));
    } else {
      return Usage("unknown option '" + std::string(a) + "' for " + command);
    }
  }

  CachePortalConfig config;
  if (config_explicit || FileExists(config_path)) {
    auto loaded = LoadConfigFile(config_path);
    if (!loaded.ok()) {
      std::fprintf(stderr, "cacheportal-store: %s\n", loaded.status().ToString().c_str());
      return kExitConfig;
    }
    config = std::move(loaded).value();
  } else {
    config.store.database = config.common.database;
  }
  log::Level level;
  if (log::ParseLevel(config.common.log_level, &level)) log::SetLevel(level);
  if (!database.empty()) config.store.database = database;
  if (config.store.database.empty()) config.store.database = config.common.database;

  if (command == "load") {
    if (scale == 0) return Usage("load needs --scale N");
    auto stats = store::LoadStore(config.store.database, static_cast<int>(scale));
    if (!stats.ok()) {
      std::fprintf(stderr, "cacheportal-store: load failed: %s\n",
                   stats.status().ToString().c_str());
      return kExitFailure;
    }
    std::printf("loaded scale %ld: %lld categories, %lld products, %lld items, %lld users\n", scale,
                static_cast<long long>(stats->categories), static_cast<long long>(stats->products),
                static_cast<long long>(stats->items), static_cast<long long>(stats->users));
    return kExitOk;
  }

  if (!listen.empty()) {
    size_t colon = listen.rfind(':');
    long port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !ParseInt(std::string_view(listen).substr(colon + 1), 0, 65535, &port))
      return Usage("--listen needs HOST:PORT");
    config.store.listen_address = listen.substr(0, colon);
    config.store.listen_port = static_cast<uint16_t>(port);
  }
  if (threads > 0) config.store.threads = static_cast<int>(threads);

  // Block the stop signals before any thread starts so that every worker
  // inherits the mask and only sigwait below sees them.
  const sigset_t stop_signals = BlockStopSignals();
  std::signal(SIGPIPE, SIG_IGN);

  store::StoreServerOptions options;
  options.store = config.store;
  options.conninfo = config.store.database;
  options.session_secret = config.common.session_secret;
  store::StoreServer server(options);
  auto port = server.Start();
  if (!port.ok()) {
    std::fprintf(stderr, "cacheportal-store: %s\n", port.status().ToString().c_str());
    return kExitFailure;
  }
  log::Info("store", "listening",
            {{"address", config.store.listen_address},
             {"port", std::to_string(*port)},
             {"threads", std::to_string(config.store.threads)}});
  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::Info("store", "stopping", {{"signal", std::to_string(sig)}});
  server.Stop();
  return kExitOk;
}
