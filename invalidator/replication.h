// Invalidator: holds the logical replication slot (pgoutput) on the monitored
// tables, streams committed changes into a ChangeProcessor, and confirms a
// position to PostgreSQL only after every ejection up to it is done.
//
//   auto inv = Invalidator::Start({conninfo, options, source, ejector});
//   ...
//   inv->Stop();
//
// Start() checks the server synchronously and fails with a clear message when
// wal_level is not logical or the role lacks REPLICATION; it creates the
// publication (FOR TABLE …) and the slot when absent and sets REPLICA
// IDENTITY FULL when configured. Creating the slot, finding it lost, or
// finding the map's position unusable ejects everything (an invalidation-only
// system never needs a resnapshot).
//
// The stream runs on its own thread: it answers keepalives, sends a standby
// status update after each applied transaction and every
// status_interval_seconds, reconnects with backoff (100 ms .. 5 s) when the
// server goes away. Vouching (Ejector::SetVouched) is decided by a
// StalenessWatchdog on its own thread from what the stream reports, so it
// withdraws while disconnected, not yet caught up, or when a received change
// outlives max_staleness_seconds even if the stream thread is blocked.
//
// Thread-safety: Start/Stop/Kill from one owner thread; GetMetrics and applied_lsn from any.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/ejector.h"
#include "common/status.h"
#include "config/options.h"
#include "invalidator/dependency_source.h"
#include "invalidator/metrics.h"

namespace cacheportal::invalidator {

struct InvalidatorDeps {
  // Plain libpq conninfo (key=value or URI) of the origin database; the
  // replication connection adds replication=database itself.
  std::string conninfo;
  InvalidatorOptions options;
  // When options.tables is empty: every table of schema public except these.
  std::vector<std::string> exclude_tables;
  DependencySource* source = nullptr;  // required; outlives the Invalidator
  Ejector* ejector = nullptr;          // required; outlives the Invalidator
};

class Invalidator {
 public:
  static Result<std::unique_ptr<Invalidator>> Start(InvalidatorDeps deps);
  ~Invalidator();

  // Graceful: finishes the transaction being ejected, sends a last status
  // update, closes the stream, withdraws the vouch. Idempotent.
  void Stop();
  // Crash simulation for tests: closes the stream without any further status
  // update (what the server sees when the process dies).
  void Kill();

  // True once Stop() or Kill() has been called.
  bool stop_requested() const;

  InvalidatorMetrics GetMetrics() const;
  // Any thread, cheap (an atomic load): the position through which every
  // change has been ejected; 0 before the first one.
  uint64_t applied_lsn() const;
  // The tables in the publication (schema-qualified), as resolved by Start().
  const std::vector<std::string>& monitored_tables() const;

  struct Impl;

 private:
  explicit Invalidator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cacheportal::invalidator
