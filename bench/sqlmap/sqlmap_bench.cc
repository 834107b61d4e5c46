// sqlmap_bench: map registration throughput and index lookup cost.
//
//   sqlmap_bench [--max N] [--path DIR] [--sync] [--repeat N]
//   sqlmap_bench --memory-curve
//
// 1. Analysis: Instantiate() of PetStore-like statements (shape cache warm).
// 2. Registration: PutPage of product pages, each with 1 shared and 4 unique
//    query instances (RocksDB WriteBatch per page), reported as instances/s.
// 3. Lookup: CandidatesByValue (+ GetInstance of each hit) for random values
//    of an indexed column, at 10k, 100k, 1M (--max) stored instances.
// Lookup figures are thread CPU time per lookup (the machine is shared);
// registration is wall time (RocksDB works in background threads too).
// Fairness: at every size the lookups are 200k keys drawn uniformly from the
// whole population, so a bigger map means a bigger working set. To tell the
// index's own growth from the memory hierarchy's, each step also prints the
// latency of one dependent random read in a buffer as big as the index's
// slot table ("mem ns", the floor any hash index pays once per lookup) and
// the lookup minus that floor ("own ns", which should stay flat).
// Batched lookups ("batch4/batch16 ns/val"): the same hit values through
// CandidatesByValues, 4 or 16 per call, as thread CPU time per value; the
// map requests every probe's slot before reading any, so the misses overlap.
// The last line is the largest/smallest size ratio of the single and batched
// figures (the target: within 2x from 10k to 1M).
// --repeat N measures every lookup figure N times at each size and prints
// the median (the machine is shared: one pass can be slowed by a neighbour).
// --memory-curve prints only the dependent random read latency in buffers of
// 2 to 128 MiB: where it jumps is the last-level cache this machine really
// gives a thread, which decides at which map size a lone probe starts to
// cost a DRAM miss.
// Prints one line per figure; exits 1 if a map call fails.
#include <sys/mman.h>
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "sqlmap/analyzer.h"
#include "sqlmap/sqlmap.h"

namespace sm = cacheportal::sqlmap;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU time of this thread: on a shared machine, wall time of an in-memory
// loop mostly measures how often we were descheduled.
double CpuSeconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
double ThreadCpuSeconds() { return CpuSeconds(CLOCK_THREAD_CPUTIME_ID); }
double ProcessCpuSeconds() { return CpuSeconds(CLOCK_PROCESS_CPUTIME_ID); }

std::string ItemId(uint64_t i) { return "EST-" + std::to_string(i); }

// Nanoseconds per dependent random read (one 64-byte line each) in a buffer
// of `bytes`, on huge pages like the index's table.
double RandomReadNs(size_t bytes, int reads) {
  constexpr size_t kLine = 64, kHuge = 2u << 20;
  bytes = std::max<size_t>((bytes + kHuge - 1) / kHuge * kHuge, kHuge);
  auto* mem = static_cast<char*>(std::aligned_alloc(kHuge, bytes));
  if (mem == nullptr) return 0;
  ::madvise(mem, bytes, MADV_HUGEPAGE);
  size_t lines = bytes / kLine;
  // One random cycle through every line (Sattolo), so each read depends on
  // the previous one and no prefetcher can guess the next.
  std::vector<uint32_t> order(lines);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937_64 rng(7);
  for (size_t i = lines - 1; i > 0; --i) std::swap(order[i], order[rng() % i]);
  for (size_t i = 0; i < lines; ++i) {
    *reinterpret_cast<uint64_t*>(mem + order[i] * kLine) = order[(i + 1) % lines] * kLine;
  }
  uint64_t at = 0;
  for (int i = 0; i < reads / 4; ++i) at = *reinterpret_cast<uint64_t*>(mem + at);  // warm
  double t0 = ThreadCpuSeconds();
  for (int i = 0; i < reads; ++i) at = *reinterpret_cast<uint64_t*>(mem + at);
  double ns = 1e9 * (ThreadCpuSeconds() - t0) / reads;
  std::free(mem);
  return at == 1 ? -1 : ns;  // `at` used, so the chase is not optimised away
}

// Bytes of the index's slot table for `keys` distinct keys (16-byte slots,
// power of two, at most half full: see EqIndex in sqlmap.cc).
size_t IndexTableBytes(uint64_t keys) {
  size_t slots = 1024;
  while ((keys + 1) * 2 > slots) slots *= 2;
  return slots * 16;
}

struct Workload {
  sm::Analyzer analyzer{[] {
    sm::AnalyzerOptions o;
    o.logging_tables = {"public.access_log"};
    return o;
  }()};
  sm::QueryInstance menu;

  Workload() {
    menu = analyzer
               .Instantiate(
                   "SELECT a.catid, b.name, b.descn FROM category a, category_details b WHERE "
                   "a.catid = b.catid AND b.locale = 'en_US' ORDER BY b.name",
                   {})
               .value();
  }

  // Four instances unique to page `p` (productid P-p, itemid EST-p).
  std::vector<sm::QueryInstance> Page(uint64_t p) {
    std::string pid = "P-" + std::to_string(p);
    std::string iid = ItemId(p);
    std::vector<sm::QueryInstance> v;
    v.reserve(5);
    v.push_back(menu);
    v.push_back(analyzer
                    .Instantiate("SELECT i.itemid, d.listprice FROM item i JOIN item_details d ON "
                                 "d.itemid = i.itemid WHERE i.productid = $1 AND d.locale = $2",
                                 {pid, std::string("en_US")})
                    .value());
    v.push_back(analyzer.Instantiate("SELECT qty FROM inventory WHERE itemid = $1", {iid}).value());
    v.push_back(analyzer
                    .Instantiate("SELECT name, descn FROM product_details WHERE productid = '" +
                                     pid + "' AND locale = 'en_US'",
                                 {})
                    .value());
    v.push_back(
        analyzer
            .Instantiate("SELECT count(*) FROM lineitem WHERE itemid = $1 AND quantity > 0", {iid})
            .value());
    return v;
  }
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t max_instances = 1000000;
  std::string path;
  bool sync = false;
  int repeat = 1;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--max") && i + 1 < argc) {
      max_instances = std::stoull(argv[++i]);
    } else if (!std::strcmp(argv[i], "--path") && i + 1 < argc) {
      path = argv[++i];
    } else if (!std::strcmp(argv[i], "--sync")) {
      sync = true;
    } else if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--memory-curve")) {
      for (size_t mib = 2; mib <= 128; mib *= 2)
        std::printf("dependent random read, %3zu MiB buffer: %.0f ns\n", mib,
                    RandomReadNs(mib << 20, 2000000));
      return 0;
    } else {
      std::fprintf(stderr,
                   "usage: sqlmap_bench [--max N] [--path DIR] [--sync] [--repeat N] | "
                   "--memory-curve\n");
      return 2;
    }
  }
  bool temp = path.empty();
  if (temp) {
    path = (std::filesystem::temp_directory_path() /
            ("sqlmap-bench-" + std::to_string(std::random_device{}())))
               .string();
  }
  std::unique_ptr<sm::SqlMap> map;
  sm::MapOptions mo;
  mo.path = path;
  mo.sync_writes = sync;
  if (auto s = sm::SqlMap::Open(mo, &map); !s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.ToString().c_str());
    return 1;
  }
  Workload w;

  // 1. Analysis with a warm shape cache.
  {
    const int n = 200000;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
      auto r = w.analyzer.Instantiate(
          "SELECT qty FROM inventory WHERE itemid = $1 "
          "/*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/",
          {ItemId(i)});
      if (!r.ok()) return 1;
    }
    double s = Seconds(t0, Clock::now());
    std::printf("analysis: Instantiate (cached shape, scan + values): %.2f us/statement\n",
                1e6 * s / n);
  }

  // 2 + 3. Fill in steps; measure registration on the way and lookups at each step.
  const uint64_t per_page = 4;  // unique instances per page (the menu is shared)
  std::vector<uint64_t> steps;
  for (uint64_t s : {10000ull, 100000ull, 1000000ull}) {
    if (s <= max_instances) steps.push_back(s);
  }
  if (steps.empty() || steps.back() != max_instances) steps.push_back(max_instances);
  uint64_t pages = 0;
  double put_seconds = 0;
  double put_cpu_seconds = 0;
  uint64_t put_instances = 0;
  std::mt19937_64 rng(42);
  std::printf("%-10s %-16s %-14s %-9s %-9s %-20s %-14s %-15s %-15s\n", "instances",
              "register inst/s", "lookup hit ns", "mem ns", "own ns", "hit+GetInstance ns",
              "lookup miss ns", "batch4 ns/val", "batch16 ns/val");
  // Per step: single hit, batch of 4, batch of 16 (ns per value), for the ratio line.
  std::vector<std::array<double, 3>> per_value;
  for (uint64_t target : steps) {
    // Pre-build this step's instances (analysis is not part of the map figure).
    uint64_t first = pages;
    uint64_t last = target / per_page;
    std::vector<std::vector<sm::QueryInstance>> batch;
    batch.reserve(last - first);
    for (uint64_t p = first; p < last; ++p) batch.push_back(w.Page(p));
    auto t0 = Clock::now();
    double c0 = ProcessCpuSeconds();
    for (uint64_t p = first; p < last; ++p) {
      std::string key = "GET /product/P-" + std::to_string(p);
      auto s = map->PutPage(key, batch[p - first], {}, "/product/P-" + std::to_string(p));
      if (!s.ok()) {
        std::fprintf(stderr, "put: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    double dt = Seconds(t0, Clock::now());
    put_cpu_seconds += ProcessCpuSeconds() - c0;
    uint64_t step_instances = (last - first) * (per_page + 1);
    put_seconds += dt;
    put_instances += step_instances;
    pages = last;
    batch.clear();

    // Lookups: random existing itemids (hits) and absent ones (misses).
    const int n = 200000;
    std::vector<std::string> hits, misses;
    hits.reserve(n);
    misses.reserve(n);
    for (int i = 0; i < n; ++i) {
      hits.push_back(ItemId(rng() % pages));
      misses.push_back(ItemId(pages + 1 + rng() % 1000000));
    }
    std::vector<sm::ValueProbe> probes;
    probes.reserve(n);
    for (const auto& v : hits) probes.push_back({"public.inventory", "itemid", v});
    std::vector<sm::InstanceId> out;
    // One pass over every lookup figure (ns per value); false if a count is wrong.
    enum { kIndex, kHit, kMiss, kBatch4, kBatch16, kMem, kFigures };
    auto pass = [&](std::array<double, kFigures>* f) {
      size_t found = 0, candidates = 0;
      double i0 = ThreadCpuSeconds();
      for (const auto& v : hits) {
        out.clear();
        map->CandidatesByValue("public.inventory", "itemid", v, &out);
        candidates += out.size();
      }
      (*f)[kIndex] = 1e9 * (ThreadCpuSeconds() - i0) / n;
      double l0 = ThreadCpuSeconds();
      for (const auto& v : hits) {
        out.clear();
        map->CandidatesByValue("public.inventory", "itemid", v, &out);
        for (auto id : out) found += map->GetInstance(id) != nullptr;
      }
      (*f)[kHit] = 1e9 * (ThreadCpuSeconds() - l0) / n;
      double m0 = ThreadCpuSeconds();
      for (const auto& v : misses) {
        out.clear();
        map->CandidatesByValue("public.inventory", "itemid", v, &out);
        found += out.size();
      }
      (*f)[kMiss] = 1e9 * (ThreadCpuSeconds() - m0) / n;
      if (found != static_cast<size_t>(n) || candidates != static_cast<size_t>(n)) {
        std::fprintf(stderr, "lookup found %zu of %d\n", found, n);
        return false;
      }
      // Batched: the same values, `b` per CandidatesByValues call.
      for (int k : {kBatch4, kBatch16}) {
        const size_t b = k == kBatch4 ? 4 : 16;
        size_t batch_found = 0;
        double b0 = ThreadCpuSeconds();
        for (size_t i = 0; i + b <= probes.size(); i += b) {
          out.clear();
          map->CandidatesByValues(std::span<const sm::ValueProbe>(probes.data() + i, b), &out,
                                  nullptr);
          batch_found += out.size();
        }
        (*f)[k] = 1e9 * (ThreadCpuSeconds() - b0) / n;
        if (batch_found != static_cast<size_t>(n)) {
          std::fprintf(stderr, "batch lookup found %zu of %d\n", batch_found, n);
          return false;
        }
      }
      // Distinct index keys: 4 per page (productid twice, itemid twice) plus
      // the few shared ones.
      (*f)[kMem] = RandomReadNs(IndexTableBytes(pages * 4 + 8), n);
      return true;
    };
    // Each figure is the median over the passes (--repeat; default one).
    std::vector<std::array<double, kFigures>> passes(repeat);
    for (auto& f : passes) {
      if (!pass(&f)) return 1;
    }
    std::array<double, kFigures> fig{};
    for (int k = 0; k < kFigures; ++k) {
      std::vector<double> v;
      for (const auto& f : passes) v.push_back(f[k]);
      std::sort(v.begin(), v.end());
      fig[k] = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    }
    const double index_ns = fig[kIndex], hit_ns = fig[kHit], miss_ns = fig[kMiss];
    const double mem_ns = fig[kMem];
    const double batch_ns[2] = {fig[kBatch4], fig[kBatch16]};
    per_value.push_back({index_ns, batch_ns[0], batch_ns[1]});
    sm::MapStats st = map->GetStats();
    char reg[64];
    std::snprintf(reg, sizeof reg, "%.0f", static_cast<double>(step_instances) / dt);
    std::printf("%-10llu %-16s %-14.0f %-9.0f %-9.0f %-20.0f %-14.0f %-15.0f %-15.0f\n",
                static_cast<unsigned long long>(st.instances), reg, index_ns, mem_ns,
                index_ns - mem_ns, hit_ns, miss_ns, batch_ns[0], batch_ns[1]);
  }
  if (per_value.size() > 1) {
    const auto& lo = per_value.front();
    const auto& hi = per_value.back();
    std::printf(
        "lookup ratio largest/smallest size (target <= 2.00): single %.2f, batch4 %.2f, "
        "batch16 %.2f\n",
        hi[0] / lo[0], hi[1] / lo[1], hi[2] / lo[2]);
  }
  std::printf(
      "registration overall: %.0f instances/s wall, %.0f instances per CPU-second (all threads) "
      "(%llu instance refs in %llu pages, %.2f s wall, %.2f s CPU)\n",
      static_cast<double>(put_instances) / put_seconds,
      static_cast<double>(put_instances) / put_cpu_seconds,
      static_cast<unsigned long long>(put_instances), static_cast<unsigned long long>(pages),
      put_seconds, put_cpu_seconds);

  // Reopen: load time of the full map.
  {
    map.reset();
    auto t0 = Clock::now();
    if (auto s = sm::SqlMap::Open(mo, &map); !s.ok()) return 1;
    std::printf("reopen (load %llu instances into memory): %.2f s\n",
                static_cast<unsigned long long>(map->GetStats().instances),
                Seconds(t0, Clock::now()));
  }
  map.reset();
  if (temp) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  return 0;
}
