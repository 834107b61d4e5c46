// Where the machine's CPU went during a run. Here the client, the cache, the
// store and PostgreSQL share the cores, so what a cache can gain is bounded
// by what one request costs all of them together (Amdahl): the report shows
// that cost per request, split by process, next to the throughput.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace cacheportal::bench {

// CPU time (clock ticks, user + system, all threads) of every process, and
// the machine's busy and total ticks, at one moment.
struct CpuSnapshot {
  std::map<int, std::pair<std::string, uint64_t>> by_pid;  // pid → (comm, ticks)
  uint64_t machine_busy = 0, machine_total = 0, machine_steal = 0;
  bool ok = false;  // false where /proc is not readable
};

// One group of processes and the CPU seconds it used between two snapshots.
struct CpuShare {
  std::string group;
  double seconds = 0;
};

// The groups, in the order of CpuUsage::shares.
inline constexpr size_t kCpuGroups = 5;

struct CpuUsage {
  std::vector<CpuShare> shares;  // fixed order: CachePortal, client, store, PostgreSQL, other
  double machine_busy = 0;       // fraction of all cores' time, 0..1
  double machine_steal = 0;      // fraction stolen by the hypervisor
  double TotalSeconds() const;
  // Group g's seconds (0 when not measured).
  double SecondsOf(size_t g) const { return g < shares.size() ? shares[g].seconds : 0; }
  // Microseconds of CPU (all groups) per request; 0 without requests.
  double UsPerRequest(uint64_t requests) const;
};

CpuSnapshot TakeCpuSnapshot();

// The group a process belongs to, by its comm (Linux truncates it to 15
// characters): "cacheportal" → CachePortal, "cacheportal-ben…" → client, …
std::string CpuGroup(std::string_view comm);

// Parses one /proc/PID/stat line into (comm, utime + stime); false if malformed.
bool ParseProcStat(std::string_view line, std::string* comm, uint64_t* ticks);

// Per-group CPU seconds between `a` and `b`; a process that started after
// `a` counts from zero (a PostgreSQL backend forked during the run).
CpuUsage CpuBetween(const CpuSnapshot& a, const CpuSnapshot& b, long ticks_per_second);

}  // namespace cacheportal::bench
