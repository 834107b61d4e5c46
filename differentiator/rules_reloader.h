// Keeps the live RuleSet in step with the rules file. The edge calls
// CheckNow() periodically (there are no threads in here, so tests drive it
// deterministically); request threads call Current().
//
// A file that fails to load never replaces the live rules: the old RuleSet
// stays current, the error is logged once per distinct file content, counted
// in reloads_failed() and kept in last_error() for /metrics and /stats.
//
// Thread-safety: Current(), the counters and last_error() may be called from
// any thread, concurrently with one CheckNow() at a time (CheckNow itself is
// serialised by a mutex).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "differentiator/differentiator.h"

namespace cacheportal::differentiator {

class RulesReloader {
 public:
  enum class CheckOutcome {
    kUnchanged,  // same content as the last attempt (loaded or failed)
    kReloaded,   // new content loaded and now current
    kFailed,     // new content did not load; the previous rules stay current
  };

  // Loads `path` once; a broken or missing file is an error (the edge must
  // not start without rules).
  static Result<std::unique_ptr<RulesReloader>> Create(std::string path,
                                                       std::string session_secret);

  // The live rules; never null. Cheap: a mutex-protected shared_ptr copy.
  std::shared_ptr<const RuleSet> Current() const;

  // Re-reads the file; reloads when its content changed (size/mtime are not
  // trusted alone: an edit within one mtime tick keeps both).
  CheckOutcome CheckNow();

  uint64_t reloads_ok() const { return reloads_ok_.load(std::memory_order_relaxed); }
  uint64_t reloads_failed() const { return reloads_failed_.load(std::memory_order_relaxed); }
  // True while the file on disk is broken (the live rules are older than it).
  bool last_failed() const { return last_failed_.load(std::memory_order_relaxed); }
  // The error of the last failed attempt; "" after a successful one.
  std::string last_error() const;
  const std::string& path() const { return path_; }

 private:
  RulesReloader(std::string path, std::string secret)
      : path_(std::move(path)), secret_(std::move(secret)) {}

  const std::string path_;
  const std::string secret_;
  std::mutex check_mu_;  // one CheckNow() at a time
  uint64_t last_content_hash_ = 0;
  bool have_content_hash_ = false;

  mutable std::mutex mu_;  // guards current_ and last_error_
  std::shared_ptr<const RuleSet> current_;
  std::string last_error_;
  std::atomic<uint64_t> reloads_ok_{0};
  std::atomic<uint64_t> reloads_failed_{0};
  std::atomic<bool> last_failed_{false};
};

const char* CheckOutcomeName(RulesReloader::CheckOutcome o);

}  // namespace cacheportal::differentiator
