#include "bench/paper/cpu_account.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace cacheportal::bench {

namespace {

const char* const kGroups[kCpuGroups] = {"CachePortal", "client", "store", "PostgreSQL", "other"};

bool ReadFirstLine(const std::string& path, std::string* line) {
  std::ifstream in(path);
  return static_cast<bool>(std::getline(in, *line));
}

}  // namespace

double CpuUsage::TotalSeconds() const {
  double t = 0;
  for (const auto& s : shares) t += s.seconds;
  return t;
}

double CpuUsage::UsPerRequest(uint64_t requests) const {
  return requests ? 1e6 * TotalSeconds() / static_cast<double>(requests) : 0;
}

std::string CpuGroup(std::string_view comm) {
  if (comm == "cacheportal") return kGroups[0];
  if (comm.starts_with("cacheportal-ben")) return kGroups[1];
  if (comm.starts_with("cacheportal-sto")) return kGroups[2];
  if (comm == "postgres" || comm == "postmaster") return kGroups[3];
  return kGroups[4];
}

bool ParseProcStat(std::string_view line, std::string* comm, uint64_t* ticks) {
  // "pid (comm) state ppid ..." — comm may hold spaces and parentheses, so
  // it ends at the last ')'. utime and stime are fields 14 and 15.
  size_t open = line.find('(');
  size_t close = line.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return false;
  *comm = std::string(line.substr(open + 1, close - open - 1));
  std::istringstream rest{std::string(line.substr(close + 1))};
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15; ++i) {
    if (!(rest >> field)) return false;
    if (i == 14 || i == 15) {
      char* end = nullptr;
      uint64_t v = std::strtoull(field.c_str(), &end, 10);
      if (end == field.c_str() || *end != '\0') return false;
      (i == 14 ? utime : stime) = v;
    }
  }
  *ticks = utime + stime;
  return true;
}

CpuSnapshot TakeCpuSnapshot() {
  CpuSnapshot s;
  std::string line;
  if (ReadFirstLine("/proc/stat", &line) && line.starts_with("cpu ")) {
    std::istringstream in(line.substr(4));
    uint64_t v[8] = {};  // user nice system idle iowait irq softirq steal
    for (auto& x : v) in >> x;
    s.machine_busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    s.machine_total = s.machine_busy + v[3] + v[4];
    s.machine_steal = v[7];
    s.ok = true;
  }
  DIR* d = opendir("/proc");
  if (!d) return s;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    std::string comm;
    uint64_t ticks = 0;
    if (ReadFirstLine("/proc/" + std::string(e->d_name) + "/stat", &line) &&
        ParseProcStat(line, &comm, &ticks))
      s.by_pid[static_cast<int>(pid)] = {std::move(comm), ticks};
  }
  closedir(d);
  return s;
}

CpuUsage CpuBetween(const CpuSnapshot& a, const CpuSnapshot& b, long ticks_per_second) {
  CpuUsage u;
  std::map<std::string, uint64_t> ticks;
  for (const auto& [pid, v] : b.by_pid) {
    auto it = a.by_pid.find(pid);
    // A reused pid with another comm is a new process.
    uint64_t before = it != a.by_pid.end() && it->second.first == v.first ? it->second.second : 0;
    if (v.second >= before) ticks[CpuGroup(v.first)] += v.second - before;
  }
  const double hz = ticks_per_second > 0 ? static_cast<double>(ticks_per_second) : 100.0;
  for (const char* g : kGroups) u.shares.push_back({g, static_cast<double>(ticks[g]) / hz});
  if (a.ok && b.ok && b.machine_total > a.machine_total) {
    const double total = static_cast<double>(b.machine_total - a.machine_total);
    u.machine_busy = static_cast<double>(b.machine_busy - a.machine_busy) / total;
    u.machine_steal = static_cast<double>(b.machine_steal - a.machine_steal) / total;
  }
  return u;
}

}  // namespace cacheportal::bench
