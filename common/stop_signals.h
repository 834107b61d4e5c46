// The daemons stop on SIGINT or SIGTERM received by one sigwait() in main.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace cacheportal {

// Blocks SIGINT and SIGTERM in the calling thread and returns that set for
// sigwait(). Call it before any thread starts: threads inherit the mask, so
// no worker is interrupted and only the waiting thread sees the signals.
inline sigset_t BlockStopSignals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return stop_signals;
}

}  // namespace cacheportal
