// Sniffer: a transparent PostgreSQL wire-protocol proxy that reports every
// statement carrying a request id (sqlcommenter traceparent) to a
// StatementSink *before* relaying it upstream. Clients (psql, libpq, pgbench,
// drivers) connect to it as if it were the server; authentication (trust,
// md5, SCRAM) passes through untouched; SSLRequest/GSSENCRequest are answered
// 'N' (the sniffer must see plaintext); CancelRequest is routed upstream.
//
// What is registered (StatementSink::OnStatement, before the bytes that
// complete the message are relayed): a simple Query once with its whole text;
// an extended-protocol statement on each Execute, with the SQL of the
// prepared statement its portal was bound from and the Bind's parameters.
// The request id is per connection: set by every Query/Parse carrying one,
// cleared by one that does not; Bind/Execute inherit it. A statement the
// sniffer cannot name — a fast-path FunctionCall, or a prepared statement
// evicted beyond max_prepared_per_connection — is registered with an EMPTY
// `sql`, which a sink must treat as "ran something unknown" (fail closed).
//
// Ownership and threads: Start() binds the listener and runs its own threads:
// one Asio thread accepting connections and taking each through its startup
// (SSL/GSS refusal, cancel routing, upstream connect), and
// SnifferOptions::threads relay threads (plain epoll) that own a connection
// from the upstream connect on. The sink is not owned, must outlive the
// Sniffer, and is called from the relay threads concurrently (see
// common/statement_sink.h). Stop() (or the
// destructor) closes the listener and every connection and joins the threads.
#pragma once

#include <cstdint>
#include <memory>

#include "common/statement_sink.h"
#include "common/status.h"
#include "config/options.h"

namespace cacheportal {

struct SnifferStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_active = 0;
  uint64_t statements_registered = 0;  // OnStatement calls
  uint64_t bytes_client_to_server = 0;
  uint64_t bytes_server_to_client = 0;
  uint64_t protocol_errors = 0;    // nonsense framing or a malformed inspected message
  uint64_t cancels_forwarded = 0;  // CancelRequests relayed (client's or on disconnect)
  uint64_t upstream_connect_failures = 0;
};

class Sniffer {
 public:
  // Listens on options.listen_address:listen_port (port 0 = ephemeral; read
  // it back with port()). `sink` may be null: statements are then relayed and
  // forgotten. Fails (IOError / InvalidArgument) when it cannot listen or an
  // option is out of range.
  static Result<std::unique_ptr<Sniffer>> Start(const SnifferOptions& options, StatementSink* sink);

  ~Sniffer();
  Sniffer(const Sniffer&) = delete;
  Sniffer& operator=(const Sniffer&) = delete;

  uint16_t port() const;
  // Idempotent; safe from any thread except the sniffer's own.
  void Stop();
  SnifferStats stats() const;

  class Impl;

 private:
  explicit Sniffer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cacheportal
