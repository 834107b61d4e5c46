// StalenessWatchdog decision logic with a hand-driven clock (pure logic; the
// end-to-end behaviour with a blocked stream is in invalidator_test).
#include "invalidator/staleness_watchdog.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace cacheportal::invalidator {
namespace {

class VouchRecorder : public Ejector {
 public:
  Status Eject(std::span<const std::string>) override { return Status::OK(); }
  Status EjectAll() override { return Status::OK(); }
  void SetVouched(bool v) override {
    std::lock_guard lock(mu);
    calls.push_back(v);
  }
  bool last() {
    std::lock_guard lock(mu);
    return !calls.empty() && calls.back();
  }
  std::mutex mu;
  std::vector<bool> calls;
};

class WatchdogTest : public ::testing::Test {
 protected:
  // Far in the future so that the real-time thread never sees a deadline pass
  // on its own: only Check() with the fake clock decides.
  void SetUp() override {
    now_ = 1'000'000'000'000;
    WatchdogOptions o;
    o.max_staleness_seconds = 1;
    o.max_silence_seconds = 3;
    dog_ = std::make_unique<StalenessWatchdog>(&rec_, o, [this] { return now_.load(); });
  }
  void Up() {
    dog_->OnConnected();
    dog_->SetCaughtUp(true);
  }
  std::atomic<int64_t> now_;
  VouchRecorder rec_;
  std::unique_ptr<StalenessWatchdog> dog_;
};

TEST_F(WatchdogTest, StartsWithdrawnAndVouchesOnceConnectedAndCaughtUp) {
  ASSERT_EQ(rec_.calls, std::vector<bool>{false});
  dog_->OnConnected();
  EXPECT_FALSE(rec_.last());
  dog_->SetCaughtUp(true);
  EXPECT_TRUE(rec_.last());
  EXPECT_TRUE(dog_->State().vouched);
}

TEST_F(WatchdogTest, PendingChangeOlderThanTheBoundWithdrawsWithoutStreamProgress) {
  Up();
  dog_->OnReceived(100, now_);
  now_ += 900'000;
  dog_->Check();
  EXPECT_TRUE(rec_.last());  // within the bound
  now_ += 200'000;
  dog_->Check();  // what the watchdog thread does; the stream reported nothing
  EXPECT_FALSE(rec_.last());
  EXPECT_EQ(dog_->State().withdrawals_lag, 1u);
  EXPECT_EQ(dog_->State().oldest_pending_lsn, 100u);
}

TEST_F(WatchdogTest, VouchReturnsOnlyAfterAppliedAndDrained) {
  Up();
  int64_t t0 = now_;
  dog_->OnReceived(100, t0);
  dog_->OnReceived(200, t0 + 10);
  now_ += 1'500'000;
  dog_->OnHeard(now_);
  EXPECT_FALSE(rec_.last());
  dog_->OnApplied(150);  // the first one done, the second still pending and too old
  EXPECT_FALSE(rec_.last());
  dog_->OnApplied(250);
  EXPECT_FALSE(rec_.last());  // nothing pending, but not yet known to be drained
  dog_->OnIdle(t0 + 20);      // a keepalive sent before the withdrawal proves nothing
  EXPECT_FALSE(rec_.last());
  now_ += 10;
  dog_->OnIdle(now_);
  EXPECT_TRUE(rec_.last());
}

TEST_F(WatchdogTest, SilentServerWithdraws) {
  Up();
  now_ += 3'100'000;
  dog_->Check();
  EXPECT_FALSE(rec_.last());
  EXPECT_EQ(dog_->State().withdrawals_silence, 1u);
  now_ += 10;  // a keepalive sent after the withdrawal
  dog_->OnHeard(now_);
  dog_->OnIdle(now_);
  EXPECT_TRUE(rec_.last());
}

TEST_F(WatchdogTest, HeardUsesTheServerSendTimeWhenEarlier) {
  Up();
  now_ += 2'000'000;
  dog_->OnHeard(now_ - 2'000'000);  // read late: sat in the socket for 2 s
  now_ += 1'100'000;
  dog_->Check();
  EXPECT_FALSE(rec_.last());
}

TEST_F(WatchdogTest, DisconnectAndStopWithdraw) {
  Up();
  dog_->OnDisconnected();
  EXPECT_FALSE(rec_.last());
  Up();
  EXPECT_TRUE(rec_.last());
  dog_->Stop();
  EXPECT_FALSE(rec_.last());
  Up();  // after Stop nothing vouches again
  EXPECT_FALSE(rec_.last());
}

TEST_F(WatchdogTest, ClearPendingForgetsUnreplayableTransactions) {
  Up();
  dog_->OnReceived(100, now_);
  now_ += 2'000'000;
  dog_->OnHeard(now_);
  EXPECT_FALSE(rec_.last());
  dog_->ClearPending();
  now_ += 10;
  dog_->OnIdle(now_);
  EXPECT_TRUE(rec_.last());
  EXPECT_EQ(dog_->State().pending_transactions, 0u);
}

}  // namespace
}  // namespace cacheportal::invalidator
