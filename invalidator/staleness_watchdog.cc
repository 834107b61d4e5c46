#include "invalidator/staleness_watchdog.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "common/log.h"

namespace cacheportal::invalidator {
namespace {

constexpr const char* kPart = "invalidator";
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// Even with no deadline pending the thread looks again this often, so a
// clock jump or a missed notification costs at most this much.
constexpr int64_t kMaxWaitUs = 1'000'000;

int64_t SystemNowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t Micros(double seconds) { return static_cast<int64_t>(seconds * 1e6); }

}  // namespace

StalenessWatchdog::StalenessWatchdog(Ejector* ejector, WatchdogOptions options, Clock now)
    : ejector_(ejector), options_(options), now_(now ? std::move(now) : Clock(SystemNowMicros)) {
  ejector_->SetVouched(false);  // fail closed until the stream has caught up
  thread_ = std::thread([this] { Loop(); });
}

StalenessWatchdog::~StalenessWatchdog() { Stop(); }

void StalenessWatchdog::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    int64_t unused;
    ApplyLocked(now_(), &unused);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StalenessWatchdog::OnConnected() {
  std::lock_guard lock(mu_);
  connected_ = true;
  caught_up_ = false;
  last_heard_us_ = now_();
  int64_t unused;
  ApplyLocked(last_heard_us_, &unused);
  cv_.notify_all();
}

void StalenessWatchdog::OnDisconnected() {
  std::lock_guard lock(mu_);
  connected_ = false;
  caught_up_ = false;
  int64_t unused;
  ApplyLocked(now_(), &unused);
}

void StalenessWatchdog::OnHeard(int64_t server_send_unix_us) {
  std::lock_guard lock(mu_);
  int64_t now = now_();
  // The earlier of the two: a message that sat in our socket buffer says the
  // server was heard from when it sent it, not when we got round to reading.
  int64_t heard = server_send_unix_us > 0 ? std::min(now, server_send_unix_us) : now;
  last_heard_us_ = std::max(last_heard_us_, heard);
  int64_t unused;
  ApplyLocked(now, &unused);
}

void StalenessWatchdog::OnReceived(Lsn final_lsn, int64_t commit_unix_us) {
  std::lock_guard lock(mu_);
  bool was_empty = pending_.empty();
  auto [it, inserted] = pending_.emplace(final_lsn, commit_unix_us);
  if (!inserted) it->second = std::min(it->second, commit_unix_us);
  int64_t unused;
  ApplyLocked(now_(), &unused);
  // A new earliest deadline: the thread may be sleeping towards a later one.
  if (was_empty) cv_.notify_all();
}

void StalenessWatchdog::OnApplied(Lsn end_lsn) {
  std::lock_guard lock(mu_);
  pending_.erase(pending_.begin(), pending_.upper_bound(end_lsn));
  int64_t unused;
  ApplyLocked(now_(), &unused);
}

void StalenessWatchdog::OnIdle(int64_t server_send_unix_us) {
  std::lock_guard lock(mu_);
  int64_t now = now_();
  int64_t sent = server_send_unix_us > 0 ? std::min(now, server_send_unix_us) : now;
  if (pending_.empty() && sent > withdrawn_at_us_) drained_since_withdrawal_ = true;
  int64_t unused;
  ApplyLocked(now, &unused);
}

void StalenessWatchdog::ClearPending() {
  std::lock_guard lock(mu_);
  pending_.clear();
  int64_t unused;
  ApplyLocked(now_(), &unused);
}

void StalenessWatchdog::SetCaughtUp(bool caught_up) {
  std::lock_guard lock(mu_);
  if (caught_up_ == caught_up) return;
  caught_up_ = caught_up;
  int64_t unused;
  ApplyLocked(now_(), &unused);
}

void StalenessWatchdog::Check() {
  std::lock_guard lock(mu_);
  int64_t unused;
  ApplyLocked(now_(), &unused);
}

WatchdogState StalenessWatchdog::State() const {
  std::lock_guard lock(mu_);
  WatchdogState s = state_;
  s.pending_transactions = pending_.size();
  if (!pending_.empty()) {
    auto oldest =
        std::min_element(pending_.begin(), pending_.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    s.oldest_pending_commit_us = oldest->second;
    s.oldest_pending_lsn = oldest->first;
  }
  return s;
}

StalenessWatchdog::Reason StalenessWatchdog::Decide(int64_t now, int64_t* next_deadline) const {
  *next_deadline = kNever;
  if (stopped_ || !connected_ || !caught_up_) return Reason::kDown;
  // Commit times are not monotonic in LSN order only across a reset history;
  // the map is small (the stream applies in order), so scan it.
  int64_t oldest = kNever;
  for (const auto& [lsn, commit_us] : pending_) oldest = std::min(oldest, commit_us);
  if (oldest != kNever) {
    int64_t deadline = oldest + Micros(options_.max_staleness_seconds);
    if (now > deadline) return Reason::kLag;
    *next_deadline = std::min(*next_deadline, deadline);
  }
  int64_t silence_deadline = last_heard_us_ + Micros(options_.max_silence_seconds);
  if (now > silence_deadline) return Reason::kSilence;
  *next_deadline = std::min(*next_deadline, silence_deadline);
  return Reason::kNone;
}

void StalenessWatchdog::ApplyLocked(int64_t now, int64_t* next_deadline) {
  Reason r = Decide(now, next_deadline);
  if (r == Reason::kLag || r == Reason::kSilence) {
    if (state_.vouched) {
      if (r == Reason::kLag)
        ++state_.withdrawals_lag;
      else
        ++state_.withdrawals_silence;
    }
    drained_since_withdrawal_ = false;
    withdrawn_at_us_ = now;
  }
  bool vouch = r == Reason::kNone && drained_since_withdrawal_;
  if (vouch == state_.vouched) return;
  state_.vouched = vouch;
  ejector_->SetVouched(vouch);
  if (vouch) {
    log::Info(kPart, "vouching for cached pages");
  } else {
    const char* why = r == Reason::kLag       ? "a received change is older than max_staleness"
                      : r == Reason::kSilence ? "the server has not been heard from in time"
                                              : "stream down or not caught up";
    log::Warn(kPart, "not vouching: edge stops serving hits", {{"reason", why}});
  }
}

void StalenessWatchdog::Loop() {
  std::unique_lock lock(mu_);
  while (!stopped_) {
    int64_t now = now_();
    int64_t deadline;
    ApplyLocked(now, &deadline);
    int64_t wait_us = std::min(kMaxWaitUs, deadline == kNever ? kMaxWaitUs : deadline - now);
    // One microsecond past the deadline: Decide withdraws only when now > deadline.
    wait_us = std::max<int64_t>(wait_us + 1, 1);
    cv_.wait_for(lock, std::chrono::microseconds(wait_us));
  }
}

}  // namespace cacheportal::invalidator
