// StoreServer: the store's HTTP listener (Boost.Beast, kept out of this
// header), its worker threads, connection pool and StoreApp.
//
//   StoreServer server(options);
//   auto port = server.Start();   // binds; port 0 picks an ephemeral port
//   ...
//   server.Stop();                // closes the listener and connections, joins threads
//
// Start() after Stop() starts afresh (new pool, new listener): tests use it
// to show that carts and orders survive a restart. Start/Stop are not
// thread-safe with each other; the served requests run on `store.threads`
// worker threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "config/options.h"

namespace cacheportal::store {

struct StoreServerOptions {
  // listen_address/listen_port, pool_size, threads, max_body_bytes,
  // session_ttl_seconds. (store.database is ignored: see conninfo.)
  StoreOptions store;
  // libpq conninfo the pool connects with.
  std::string conninfo;
  // common.session_secret.
  std::string session_secret;
  // Seconds a connection may sit idle waiting for (the rest of) a request.
  // Default: 30.
  int idle_timeout_seconds = 30;
  // Test hook: sees the text of every statement the store sends. Thread-safe.
  std::function<void(std::string_view sql)> on_statement;
};

class StoreServer {
 public:
  explicit StoreServer(StoreServerOptions options);
  ~StoreServer();  // Stop()s
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  // Binds and starts serving; returns the bound port. IOError when the
  // address cannot be bound; InvalidArgument for a bad address. The database
  // is not contacted here: an unreachable one gives 503 pages, not a failed start.
  Result<uint16_t> Start();
  // Idempotent.
  void Stop();

 private:
  struct Impl;
  StoreServerOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cacheportal::store
