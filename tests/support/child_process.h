// Runs a binary of the project as a child process for end-to-end tests:
// stdout/stderr go to a log file (shown when a test fails), the process is
// signalled and reaped on destruction.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace cacheportal::testing {

class ChildProcess {
 public:
  // argv[0] is the binary path. Environment is inherited.
  static Result<ChildProcess> Spawn(const std::vector<std::string>& argv,
                                    const std::string& log_path);
  ChildProcess(ChildProcess&& o) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ~ChildProcess();  // SIGTERM, then SIGKILL after 5 s, and reap

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // Waits for exit; returns the exit status (128+signal when killed), -1 on timeout.
  int Wait(int timeout_ms);
  std::string Log() const;  // contents of the log file

 private:
  ChildProcess(pid_t pid, std::string log) : pid_(pid), log_path_(std::move(log)) {}
  pid_t pid_ = -1;
  std::string log_path_;
  bool reaped_ = false;
  int exit_status_ = -1;
};

// Polls `port` on 127.0.0.1 until it accepts a TCP connection or timeout.
bool WaitForPort(uint16_t port, int timeout_ms);

}  // namespace cacheportal::testing
