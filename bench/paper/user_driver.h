// Closed-loop simulated users multiplexed over a few epoll loops, the way wrk
// drives its connections. A thread per user (a thousand blocking threads on
// two cores) spends the CPU it should leave to the system under test on
// context switches, which caps what the bench can show of the edge.
#pragma once

#include <chrono>
#include <vector>

#include "bench/paper/http_client.h"
#include "common/status.h"

namespace cacheportal::bench {

// One user's behaviour; the driver owns the connection. All calls for one
// user come from one driver thread.
class SimulatedUser {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~SimulatedUser() = default;

  // Whether the user sends another request at `now` (false ends the user).
  virtual bool WantsMore(Clock::time_point now) = 0;
  // The next request.
  virtual Request Next() = 0;
  // The answer to it, or why there is none (connect, send, receive, parse or
  // timeout), with the time the request was sent and the time it ended.
  // Returns the think time before the next request.
  virtual Clock::duration Done(const Result<Response>& answer, Clock::time_point sent,
                               Clock::time_point ended) = 0;
};

struct UserDriverOptions {
  BaseUrl target;
  int threads = 2;
  int timeout_ms = 10000;  // per request, connect included
};

// Runs every user until its WantsMore says no and its last request ended.
// Users are spread over `threads` event loops; each keeps one keep-alive
// connection, opened again when the server closes it (a request that fails
// on a kept connection before any answer byte is sent once more on a fresh
// one, as browsers do). Fails only when the target cannot be resolved or the
// loops cannot be created.
Status DriveUsers(const UserDriverOptions& options, const std::vector<SimulatedUser*>& users);

}  // namespace cacheportal::bench
