// StalenessWatchdog: the one place that decides whether the invalidator
// vouches for cached pages (Ejector::SetVouched). It runs its own thread so
// that the decision does not depend on the stream thread making progress: a
// stream thread blocked in a join poll, in Ejector::Eject, or behind a
// backlog cannot keep the edge serving hits it no longer vouches for.
//
// The stream thread reports facts, never verdicts:
//   OnConnected / OnDisconnected      the replication stream is up / down
//   OnHeard(server_send_us)           a message from the server was read
//   OnReceived(final_lsn, commit_us)  a transaction's Begin was read
//   OnApplied(end_lsn)                every ejection of that transaction is done
//   OnIdle(server_send_us)            a keepalive was read outside a
//                                     transaction: everything the server sent
//                                     before it is applied
//   SetCaughtUp(bool)                 the stream reached the position the
//                                     server had when it connected
// and the watchdog withdraws the vouch at the first instant that
//   now - commit time of the oldest received, unapplied transaction
//         > max_staleness_seconds, or
//   now - the last time the server was heard from > silence bound
//         (the stream asks for a reply every status interval, so a live
//         server is never silent that long; a stream thread that stops
//         reading looks the same and is treated the same), or
//   the stream is disconnected or not caught up.
// After withdrawing for lag or silence it vouches again only once the stream
// has drained: OnIdle with nothing pending, for a keepalive the server sent
// after the withdrawal (an older keepalive read late says nothing about the
// changes queued behind it). So it does not flap through a backlog.
//
// Clock assumption: commit times come from PostgreSQL's clock, `now` from
// ours. The bound is exact when both clocks agree (same host here); a skew of
// d seconds makes the effective bound max_staleness - d (server ahead) or
// max_staleness + d (server behind). Keep the hosts NTP-synchronised, or
// lower max_staleness by the worst expected skew.
//
// Unapplied transactions whose Begin has not been read yet (still in the
// socket) are covered by the silence bound: they were sent after the last
// message read, whose server send time is what OnHeard records.
//
// Thread-safety: every method may be called from any thread. SetVouched is
// called with the watchdog's mutex held, so decisions reach the ejector in
// the order they were made; the ejector must not call back into the watchdog.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "common/ejector.h"
#include "invalidator/pgoutput.h"

namespace cacheportal::invalidator {

struct WatchdogOptions {
  double max_staleness_seconds = 5.0;
  // Longest silence from a server that is asked for a reply every status
  // interval. Default: max_staleness_seconds.
  double max_silence_seconds = 5.0;
};

struct WatchdogState {
  bool vouched = false;
  uint64_t withdrawals_lag = 0;          // vouch withdrawn: oldest pending commit too old
  uint64_t withdrawals_silence = 0;      // vouch withdrawn: server (or stream thread) silent
  int64_t oldest_pending_commit_us = 0;  // 0 = nothing pending
  Lsn oldest_pending_lsn = 0;
  uint64_t pending_transactions = 0;
};

class StalenessWatchdog {
 public:
  using Clock = std::function<int64_t()>;  // Unix µs

  // `ejector` must outlive the watchdog. Starts vouch-withdrawn (fail closed)
  // and calls SetVouched(false) once. `now` defaults to the system clock.
  StalenessWatchdog(Ejector* ejector, WatchdogOptions options, Clock now = nullptr);
  ~StalenessWatchdog();  // Stop()

  StalenessWatchdog(const StalenessWatchdog&) = delete;
  StalenessWatchdog& operator=(const StalenessWatchdog&) = delete;

  void OnConnected();
  void OnDisconnected();
  void OnHeard(int64_t server_send_unix_us);
  void OnReceived(Lsn final_lsn, int64_t commit_unix_us);
  // Received transactions that will be replayed after a reconnect stay
  // pending (their commit time keeps counting) until applied.
  void OnApplied(Lsn end_lsn);
  void OnIdle(int64_t server_send_unix_us);
  // Everything committed so far was ejected (EjectAll): nothing is pending,
  // including transactions of a lost slot that will never be replayed.
  void ClearPending();
  void SetCaughtUp(bool caught_up);

  // Re-evaluates now (the thread does this on its own at every deadline).
  void Check();
  // Stops the thread and withdraws the vouch for good. Idempotent.
  void Stop();

  WatchdogState State() const;

 private:
  enum class Reason { kNone, kDown, kLag, kSilence };
  Reason Decide(int64_t now, int64_t* next_deadline) const;
  void ApplyLocked(int64_t now, int64_t* next_deadline);
  void Loop();

  Ejector* ejector_;
  WatchdogOptions options_;
  Clock now_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  bool connected_ = false;
  bool caught_up_ = false;
  bool drained_since_withdrawal_ = true;
  int64_t withdrawn_at_us_ = 0;
  int64_t last_heard_us_ = 0;
  // final_lsn → commit time of transactions received but not applied.
  std::map<Lsn, int64_t> pending_;
  WatchdogState state_;
  std::thread thread_;
};

}  // namespace cacheportal::invalidator
