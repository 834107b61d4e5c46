#include "bench/bench_command.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "bench/paper/report.h"
#include "bench/paper/runner.h"

namespace cacheportal {
namespace {

constexpr int kExitOk = 0, kExitFailure = 1, kExitUsage = 2;

constexpr const char* kUsage =
    "usage: cacheportal bench [options]\n"
    "\n"
    "Closed-loop PetStore workload (the CachePortal paper's mix) against the store\n"
    "directly and through the edge, with a background writer changing prices,\n"
    "inventory and products in PostgreSQL. Reports throughput, p50/p95/p99,\n"
    "hit ratio, invalidation latency, ejections and a staleness audit; writes CSV\n"
    "files and report.html (SVG plots) into --out.\n"
    "\n"
    "targets:\n"
    "  --origin URL          the store directly (default http://127.0.0.1:8081)\n"
    "  --edge URL            the store through the edge (default http://127.0.0.1:8080)\n"
    "  --admin URL           edge admin API for /metrics (default: none)\n"
    "  --admin-token TOKEN   its bearer token\n"
    "  --database CONNINFO   PostgreSQL of the store, direct (required: catalogue, writer)\n"
    "  --mode MODE           both | origin | edge (default both)\n"
    "workload:\n"
    "  --users N             concurrent simulated users (default 16)\n"
    "  --duration S          measured seconds per run (default 30)\n"
    "  --warmup S            unmeasured seconds before each run (default 5)\n"
    "  --think-ms MS         mean think time between a user's requests (default 0)\n"
    "  --buyers F            fraction of users who sign in and shop (default 0.05)\n"
    "  --ja F                fraction of users browsing in Japanese (default 0.1)\n"
    "  --zipf S              Zipf exponent of product/item popularity (default 1.0)\n"
    "  --mix-browse SPEC     e.g. home=8,category=17,product=30,item=36,search=7,lang=2\n"
    "  --mix-buy SPEC        e.g. ...,signin=1,cart_add=12,cart_view=7,checkout=5\n"
    "  --seed N              random seed (default 1)\n"
    "  --client-threads N    event loops driving the users (default 2)\n"
    "writer and audit:\n"
    "  --write-rate R        background changes per second (default 1; 0 = none)\n"
    "  --audit-window S      ejection window before a write's audit (default 1)\n"
    "  --audit-unaffected N  unaffected pages compared per write (default 4)\n"
    "  --stale-after S       a page differing from the store for this long is stale\n"
    "                        (default 5 = invalidator.max_staleness_seconds)\n"
    "sweep (the paper's scalability experiment):\n"
    "  --sweep LIST          user counts, e.g. 1,2,4,8,16,32,64\n"
    "  --sweep-duration S    measured seconds per point and target (default 10)\n"
    "  --bound-ms MS         p95 response-time bound (default 100)\n"
    "output:\n"
    "  --out DIR             report directory (default bench-out)\n"
    "  --setup TEXT          free text shown in the report (scale, machine)\n"
    "  --quiet               no per-second progress lines\n";

bool ParseDouble(const char* s, double* out) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (!*s || *end || !(v >= 0)) return false;
  *out = v;
  return true;
}

bool ParseInt(std::string_view s, int* out) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) return false;
  *out = v;
  return true;
}

std::string Now() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return buf;
}

}  // namespace

int RunBenchCommand(int argc, char** argv) {
  using namespace bench;
  std::string origin_url = "http://127.0.0.1:8081", edge_url = "http://127.0.0.1:8080";
  std::string admin_url, mode = "both", out_dir = "bench-out", sweep_spec;
  RunOptions base;
  double sweep_duration = 10, bound_ms = 100;
  std::string command = "cacheportal bench";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];

  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "cacheportal bench: %s needs a value\n", argv[i]);
        return nullptr;
      }
      return argv[++i];
    };
    auto num = [&](double* out) {
      const char* v = value();
      if (!v) return false;
      if (!ParseDouble(v, out)) {
        std::fprintf(stderr, "cacheportal bench: bad number for %s: %s\n", argv[i - 1], v);
        return false;
      }
      return true;
    };
    auto integer = [&](int* out) {
      const char* v = value();
      if (!v) return false;
      if (!ParseInt(v, out)) {
        std::fprintf(stderr, "cacheportal bench: bad integer for %s: %s\n", argv[i - 1], v);
        return false;
      }
      return true;
    };
    auto str = [&](std::string* out) {
      const char* v = value();
      if (!v) return false;
      *out = v;
      return true;
    };
    bool ok = true;
    double d = 0;
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    } else if (a == "--origin") {
      ok = str(&origin_url);
    } else if (a == "--edge") {
      ok = str(&edge_url);
    } else if (a == "--admin") {
      ok = str(&admin_url);
    } else if (a == "--admin-token") {
      ok = str(&base.admin_token);
    } else if (a == "--database") {
      ok = str(&base.database);
    } else if (a == "--mode") {
      ok = str(&mode);
      if (ok && mode != "both" && mode != "origin" && mode != "edge") {
        std::fprintf(stderr, "cacheportal bench: --mode is both, origin or edge\n");
        ok = false;
      }
    } else if (a == "--users") {
      ok = integer(&base.users);
    } else if (a == "--duration") {
      ok = num(&base.duration_s);
    } else if (a == "--warmup") {
      ok = num(&base.warmup_s);
    } else if (a == "--think-ms") {
      ok = num(&base.think_ms);
    } else if (a == "--buyers") {
      ok = num(&base.buyer_fraction) && base.buyer_fraction <= 1;
    } else if (a == "--ja") {
      ok = num(&base.ja_fraction) && base.ja_fraction <= 1;
    } else if (a == "--zipf") {
      ok = num(&base.workload.zipf_s);
    } else if (a == "--mix-browse" || a == "--mix-buy") {
      std::string spec;
      ok = str(&spec);
      if (ok) {
        Mix& m = a == "--mix-browse" ? base.workload.browse : base.workload.buy;
        if (Status s = m.Apply(spec); !s.ok()) {
          std::fprintf(stderr, "cacheportal bench: %s: %s\n", argv[i - 1], s.message().c_str());
          ok = false;
        }
      }
    } else if (a == "--client-threads") {
      ok = integer(&base.client_threads) && base.client_threads >= 1 && base.client_threads <= 64;
    } else if (a == "--seed") {
      ok = num(&d);
      base.seed = static_cast<uint64_t>(d);
    } else if (a == "--write-rate") {
      ok = num(&base.write_rate);
    } else if (a == "--audit-window") {
      ok = num(&base.audit_window_s);
    } else if (a == "--stale-after") {
      ok = num(&base.stale_after_s);
    } else if (a == "--audit-unaffected") {
      ok = integer(&base.audit_unaffected);
    } else if (a == "--sweep") {
      ok = str(&sweep_spec);
    } else if (a == "--sweep-duration") {
      ok = num(&sweep_duration);
    } else if (a == "--bound-ms") {
      ok = num(&bound_ms);
    } else if (a == "--out") {
      ok = str(&out_dir);
    } else if (a == "--setup") {
      ok = str(&base.label);  // borrowed below
    } else if (a == "--quiet") {
      base.progress = false;
    } else {
      std::fprintf(stderr, "cacheportal bench: unknown option '%s'\n\n%s", argv[i], kUsage);
      return kExitUsage;
    }
    if (!ok) {
      std::fprintf(stderr, "cacheportal bench: bad value for %s (see --help)\n",
                   std::string(a).c_str());
      return kExitUsage;
    }
  }
  std::string setup = std::move(base.label);
  base.label.clear();
  if (base.database.empty()) {
    std::fprintf(stderr, "cacheportal bench: --database is required (see --help)\n");
    return kExitUsage;
  }
  if (base.users < 1 || base.duration_s <= 0) {
    std::fprintf(stderr, "cacheportal bench: --users and --duration must be positive\n");
    return kExitUsage;
  }
  std::vector<int> sweep;
  for (std::string_view s = sweep_spec; !s.empty();) {
    size_t comma = s.find(',');
    int n = 0;
    if (!ParseInt(s.substr(0, comma), &n) || n < 1) {
      std::fprintf(stderr, "cacheportal bench: --sweep takes positive integers: %s\n",
                   sweep_spec.c_str());
      return kExitUsage;
    }
    sweep.push_back(n);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
  }
  std::sort(sweep.begin(), sweep.end());
  sweep.erase(std::unique(sweep.begin(), sweep.end()), sweep.end());

  auto origin = ParseBaseUrl(origin_url);
  auto edge = ParseBaseUrl(edge_url);
  if (!origin.ok() || !edge.ok()) {
    std::fprintf(stderr, "cacheportal bench: %s\n",
                 (!origin.ok() ? origin.status() : edge.status()).message().c_str());
    return kExitUsage;
  }
  base.origin = *origin;
  if (!admin_url.empty()) {
    auto admin = ParseBaseUrl(admin_url);
    if (!admin.ok()) {
      std::fprintf(stderr, "cacheportal bench: %s\n", admin.status().message().c_str());
      return kExitUsage;
    }
    base.admin = *admin;
  }

  auto catalog = LoadCatalog(base.database);
  if (!catalog.ok()) {
    std::fprintf(stderr, "cacheportal bench: %s\n", catalog.status().message().c_str());
    return kExitFailure;
  }
  catalog->ShuffleForPopularity(base.seed);
  std::fprintf(stderr,
               "bench: catalogue of %zu categories, %zu products, %zu items, %zu search words\n",
               catalog->categories.size(), catalog->products.size(), catalog->items.size(),
               catalog->search_terms.size());

  Report rep;
  rep.command = command;
  rep.started_at = Now();
  rep.setup = setup;
  auto origin_opts = [&](int users, double duration, double warmup) {
    RunOptions o = base;
    o.label = "origin";
    o.target = base.origin;
    o.through_edge = false;
    o.admin.reset();
    o.users = users;
    o.duration_s = duration;
    o.warmup_s = warmup;
    return o;
  };
  auto edge_opts = [&](int users, double duration, double warmup, bool probe) {
    RunOptions o = base;
    o.label = "edge";
    o.target = *edge;
    o.through_edge = probe;
    o.users = users;
    o.duration_s = duration;
    o.warmup_s = warmup;
    return o;
  };

  if (mode == "both" || mode == "origin") {
    std::fprintf(stderr, "bench: without the cache: %d users against %s for %.0f s\n", base.users,
                 base.origin.ToString().c_str(), base.duration_s);
    auto r = RunOnce(origin_opts(base.users, base.duration_s, base.warmup_s), *catalog);
    if (!r.ok()) {
      std::fprintf(stderr, "cacheportal bench: %s\n", r.status().message().c_str());
      return kExitFailure;
    }
    rep.runs.push_back(std::move(r).value());
  }
  if (mode == "both" || mode == "edge") {
    std::fprintf(stderr, "bench: with the cache: %d users against %s for %.0f s\n", base.users,
                 edge->ToString().c_str(), base.duration_s);
    auto r = RunOnce(edge_opts(base.users, base.duration_s, base.warmup_s, true), *catalog);
    if (!r.ok()) {
      std::fprintf(stderr, "cacheportal bench: %s\n", r.status().message().c_str());
      return kExitFailure;
    }
    rep.runs.push_back(std::move(r).value());
  }
  if (!sweep.empty()) {
    SweepResult sr;
    sr.bound_ms = bound_ms;
    // A side that missed the bound at two counts in a row, under both
    // criteria, is not run at larger counts (it only gets slower, and it
    // costs minutes).
    int origin_misses = 0, edge_misses = 0;
    auto miss = [&](const RunSummary& r) {
      return r.errors > 0 || (r.p95_ms > bound_ms && r.mean_ms > bound_ms);
    };
    for (int n : sweep) {
      SweepPoint p;
      p.users = n;
      bool run_origin = mode != "edge" && origin_misses < 2;
      bool run_edge = mode != "origin" && edge_misses < 2;
      if (!run_origin && !run_edge) break;
      std::fprintf(stderr, "bench: sweep %d users\n", n);
      if (run_origin) {
        auto r = RunOnce(origin_opts(n, sweep_duration, 2), *catalog);
        if (r.ok()) {
          p.origin = r->summary;
          p.origin_cpu = r->cpu;
          p.has_origin = true;
          origin_misses = miss(p.origin) ? origin_misses + 1 : 0;
        }
      }
      if (run_edge) {
        auto r = RunOnce(edge_opts(n, sweep_duration, 2, false), *catalog);
        if (r.ok()) {
          p.edge = r->summary;
          p.edge_cpu = r->cpu;
          p.has_edge = true;
          edge_misses = miss(p.edge) ? edge_misses + 1 : 0;
        }
      }
      std::fprintf(stderr,
                   "bench: sweep %d users: store p95 %.2f ms (%.0f req/s, %.0f us CPU/req), edge "
                   "p95 %.2f ms (%.0f req/s, hit %.1f%%, %.0f us CPU/req)\n",
                   n, p.origin.p95_ms, p.origin.throughput,
                   p.origin_cpu.UsPerRequest(p.origin.requests), p.edge.p95_ms, p.edge.throughput,
                   100 * p.edge.HitRatio(), p.edge_cpu.UsPerRequest(p.edge.requests));
      sr.points.push_back(p);
    }
    sr.ran_origin = mode != "edge";
    sr.ran_edge = mode != "origin";
    // (users, statistic) of one side's points; a point with errors misses.
    auto series = [&sr](bool edge, double RunSummary::*stat) {
      std::vector<std::pair<int, double>> v;
      for (const auto& p : sr.points) {
        if (!(edge ? p.has_edge : p.has_origin)) continue;
        const RunSummary& r = edge ? p.edge : p.origin;
        v.push_back({p.users, r.errors ? 1e18 : r.*stat});
      }
      return v;
    };
    auto max_users = [&](bool edge, double RunSummary::*stat) {
      return (edge ? sr.ran_edge : sr.ran_origin) ? MaxUsersUnderBound(series(edge, stat), bound_ms)
                                                  : 0;
    };
    sr.max_users_origin = max_users(false, &RunSummary::p95_ms);
    sr.max_users_edge = max_users(true, &RunSummary::p95_ms);
    sr.edge_capped = sr.ran_edge && sr.max_users_edge == sweep.back();
    sr.max_users_origin_mean = max_users(false, &RunSummary::mean_ms);
    sr.max_users_edge_mean = max_users(true, &RunSummary::mean_ms);
    sr.edge_capped_mean = sr.ran_edge && sr.max_users_edge_mean == sweep.back();
    rep.sweep = sr;
  }

  if (Status s = WriteReport(out_dir, rep); !s.ok()) {
    std::fprintf(stderr, "cacheportal bench: %s\n", s.message().c_str());
    return kExitFailure;
  }
  std::fputs(ReportText(rep).c_str(), stdout);
  std::printf("report: %s/report.html\n", out_dir.c_str());
  for (const auto& r : rep.runs)
    if (r.audit.stale > 0) {
      std::fprintf(stderr, "cacheportal bench: the staleness audit found %llu stale pages\n",
                   static_cast<unsigned long long>(r.audit.stale));
      return kExitFailure;
    }
  return kExitOk;
}

}  // namespace cacheportal
