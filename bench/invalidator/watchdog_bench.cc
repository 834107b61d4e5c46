// How promptly the staleness watchdog withdraws the vouch when the stream
// thread is stuck (an Eject() that blocks), and how soon it vouches again
// after the block is released.
//
//   bench_invalidator_watchdog CONNINFO [ROUNDS] [MAX_STALENESS_S]
//
// Each round: close the ejector's gate, commit one update of a cached row
// (client-side time taken just before COMMIT, an upper bound on how early the
// commit could be), await SetVouched(false), open the gate, await
// SetVouched(true). Prints the withdrawal delay past the bound
// (withdrawal - (commit start + max_staleness)) and the re-vouch delay after
// the gate opened.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/log.h"
#include "common/pg.h"
#include "invalidator/replication.h"
#include "tests/invalidator/fakes.h"
#include "tests/invalidator/template_builders.h"

using namespace cacheportal;                     // NOLINT
using namespace cacheportal::invalidator;        // NOLINT
using namespace cacheportal::invalidator::test;  // NOLINT
using SteadyClock = std::chrono::steady_clock;

namespace {

class TimedEjector : public RecordingEjector {
 public:
  void SetVouched(bool v) override {
    {
      std::lock_guard lock(mu_);
      (v ? last_true_ : last_false_) = SteadyClock::now();
    }
    RecordingEjector::SetVouched(v);
  }
  SteadyClock::time_point last(bool v) {
    std::lock_guard lock(mu_);
    return v ? last_true_ : last_false_;
  }

 private:
  std::mutex mu_;
  SteadyClock::time_point last_true_{}, last_false_{};
};

bool Exec(PGconn* c, const std::string& sql) {
  auto r = pg::Exec(c, sql);
  if (!r.ok()) std::fprintf(stderr, "%s: %s\n", sql.c_str(), r.status().ToString().c_str());
  return r.ok();
}

double Ms(SteadyClock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_invalidator_watchdog CONNINFO [ROUNDS] [MAX_STALENESS_S]\n");
    return 2;
  }
  std::string admin_conninfo = argv[1];
  int rounds = argc > 2 ? std::atoi(argv[2]) : 10;
  double bound = argc > 3 ? std::atof(argv[3]) : 0.5;
  log::SetLevel(log::Level::kError);
  auto admin = pg::Connect(admin_conninfo);
  if (!admin.ok()) return std::fprintf(stderr, "%s\n", admin.status().ToString().c_str()), 1;
  Exec(admin->get(),
       "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = "
       "'cp_watchdog'");
  Exec(admin->get(), "DROP DATABASE IF EXISTS cp_watchdog");
  if (!Exec(admin->get(), "CREATE DATABASE cp_watchdog")) return 1;
  std::string conninfo = admin_conninfo + " dbname=cp_watchdog";
  auto conn = pg::Connect(conninfo);
  if (!conn.ok()) return 1;
  PGconn* c = conn->get();
  Exec(c, "CREATE TABLE item (itemid int PRIMARY KEY, price int)");
  Exec(c, "INSERT INTO item SELECT g, 0 FROM generate_series(1, 1000) g");
  auto by_id = Single("public.item", Cmp("itemid", sqlmap::CompareOp::kEq, 0), {"itemid", "price"});

  FakeSource source;
  TimedEjector ejector;
  InvalidatorDeps deps;
  deps.conninfo = conninfo;
  deps.options.slot_name = "cp_watchdog";
  deps.options.publication_name = "cp_watchdog";
  deps.options.status_interval_seconds = 1;
  deps.options.max_staleness_seconds = bound;
  deps.source = &source;
  deps.ejector = &ejector;
  auto inv_r = Invalidator::Start(deps);
  if (!inv_r.ok()) return std::fprintf(stderr, "%s\n", inv_r.status().ToString().c_str()), 1;
  auto inv = std::move(inv_r).value();
  if (!ejector.WaitVouched(true, 60)) return std::fprintf(stderr, "never caught up\n"), 1;

  std::vector<double> late, revouch;
  for (int r = 1; r <= rounds; ++r) {
    std::string key = "/item/" + std::to_string(r);
    source.AddPage(key, {Inst(by_id, {std::to_string(r)})});
    ejector.Close();
    Exec(c, "BEGIN");
    Exec(c, "UPDATE item SET price = price + 1 WHERE itemid = " + std::to_string(r));
    auto commit_start = SteadyClock::now();
    Exec(c, "COMMIT");
    if (!ejector.WaitVouched(false, 30)) return std::fprintf(stderr, "never withdrawn\n"), 1;
    late.push_back(Ms(ejector.last(false) - commit_start) - bound * 1000);
    auto opened = SteadyClock::now();
    ejector.Open();
    if (!ejector.WaitVouched(true, 30)) return std::fprintf(stderr, "never re-vouched\n"), 1;
    revouch.push_back(Ms(ejector.last(true) - opened));
  }
  InvalidatorMetrics m = inv->GetMetrics();
  inv->Stop();
  auto report = [](const char* what, std::vector<double> v) {
    std::sort(v.begin(), v.end());
    std::printf("%s: min %.1f ms, median %.1f ms, max %.1f ms\n", what, v.front(), v[v.size() / 2],
                v.back());
  };
  std::printf("watchdog: %d rounds, max_staleness %.2f s, withdrawals lag=%llu silence=%llu\n",
              rounds, bound, (unsigned long long)m.vouch_withdrawals_lag,
              (unsigned long long)m.vouch_withdrawals_silence);
  report("  withdrawn after commit + max_staleness", late);
  report("  vouched again after the ejection was released", revouch);
  return 0;
}
