// `cacheportal map`: inspect the page ⇄ query ⇄ table map.
//   map stats | show KEY | explain 'SQL' | coverage   [--config FILE] [--path DIR]
// The map is opened read-only, so it can be inspected while a server runs it.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "config/config_loader.h"
#include "sqlmap/analyzer.h"
#include "sqlmap/sqlmap.h"

namespace cacheportal {

namespace {

constexpr const char* kMapUsage =
    "usage: cacheportal map <subcommand> [--config FILE] [--path DIR]\n"
    "\n"
    "subcommands:\n"
    "  stats          counts of pages, query instances, templates and index entries\n"
    "  show KEY       what the map holds for one cache key (queries, values, index)\n"
    "  explain 'SQL'  how the analyser sees a statement: tables, predicates,\n"
    "                 columns read, joins, flags, precision (needs no map)\n"
    "  coverage       per URL pattern: how many query instances are precise, coarse\n"
    "                 or unmappable, and why precision was lost\n"
    "\n"
    "options:\n"
    "  --config FILE  config file (sqlmap.path, sqlmap.logging_tables); default: built-in "
    "defaults\n"
    "  --path DIR     map directory (overrides sqlmap.path)\n"
    "  -h, --help     this help\n";

struct Args {
  std::string sub;
  std::vector<std::string> positional;
  std::string config;
  std::string path;
  bool help = false;
};

bool ParseArgs(int argc, char** argv, Args* a, std::string* err) {
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "-h" || s == "--help") {
      a->help = true;
    } else if (s == "--config" || s == "--path") {
      if (i + 1 >= argc) {
        *err = s + " needs a value";
        return false;
      }
      (s == "--config" ? a->config : a->path) = argv[++i];
    } else if (s.rfind("--config=", 0) == 0) {
      a->config = s.substr(9);
    } else if (s.rfind("--path=", 0) == 0) {
      a->path = s.substr(7);
    } else if (s.size() > 1 && s[0] == '-' && s[1] == '-') {
      *err = "unknown option " + s;
      return false;
    } else if (a->sub.empty()) {
      a->sub = s;
    } else {
      a->positional.push_back(s);
    }
  }
  return true;
}

// "/product/FI-SW-01?x=1" → "/product/{id}": segments holding a digit (or a
// long hex run) are ids; the query string is dropped.
std::string UrlPattern(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  if (path.empty()) return "/";
  std::string out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    std::string seg = path.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    bool id = std::any_of(seg.begin(), seg.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (pos > 0) out += "/";
    out += id ? "{id}" : seg;
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return out;
}

int OpenMap(const SqlMapOptions& o, std::unique_ptr<sqlmap::SqlMap>* out) {
  sqlmap::MapOptions mo;
  mo.path = o.path;
  mo.read_only = true;
  mo.create_if_missing = false;
  Status s = sqlmap::SqlMap::Open(mo, out);
  if (!s.ok()) {
    std::fprintf(stderr, "cacheportal map: cannot open map at %s: %s\n", o.path.c_str(),
                 s.ToString().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

int Stats(const sqlmap::SqlMap& map, const std::string& path) {
  sqlmap::MapStats st = map.GetStats();
  std::printf("map:                 %s\n", path.c_str());
  std::printf("pages:               %llu\n", static_cast<unsigned long long>(st.pages));
  std::printf("query instances:     %llu\n", static_cast<unsigned long long>(st.instances));
  std::printf("templates:           %llu\n", static_cast<unsigned long long>(st.templates));
  std::printf("index entries:       %llu\n", static_cast<unsigned long long>(st.index_entries));
  std::printf("unindexed instances: %llu\n",
              static_cast<unsigned long long>(st.unindexed_instances));
  uint64_t lsn = map.AppliedLsn();
  std::printf("applied lsn:         %X/%X\n", static_cast<unsigned>(lsn >> 32),
              static_cast<unsigned>(lsn & 0xFFFFFFFFu));
  std::vector<std::string> tables = map.TablesRead();
  std::printf("tables read:         %zu\n", tables.size());
  for (const auto& t : tables) {
    std::vector<sqlmap::InstanceId> all, un;
    std::vector<std::string> cols;
    map.InstancesReading(t, &all);
    map.UnindexedInstances(t, &un);
    map.IndexedColumns(t, &cols);
    std::sort(cols.begin(), cols.end());
    std::string c;
    for (const auto& x : cols) c += (c.empty() ? "" : ",") + x;
    std::printf("  %-30s instances %-8zu unindexed %-8zu indexed on [%s]\n", t.c_str(), all.size(),
                un.size(), c.c_str());
  }
  return kExitOk;
}

int Coverage(const sqlmap::SqlMap& map) {
  struct Row {
    size_t pages = 0, precise = 0, coarse = 0, none = 0;
    std::map<std::string, size_t> reasons;
  };
  std::map<std::string, Row> rows;
  std::vector<sqlmap::PageInfo> pages;
  map.ForEachPage([&](const sqlmap::PageInfo& p) { pages.push_back(p); });
  for (const auto& p : pages) {
    Row& r = rows[UrlPattern(p.url.empty() ? p.key : p.url)];
    r.pages++;
    for (auto id : p.instances) {
      auto qi = map.GetInstance(id);
      if (!qi) continue;
      switch (qi->tmpl->precision) {
        case sqlmap::Precision::kPrecise:
          r.precise++;
          break;
        case sqlmap::Precision::kCoarse:
          r.coarse++;
          r.reasons[qi->tmpl->coarse_reason]++;
          break;
        case sqlmap::Precision::kNone:
          r.none++;
          r.reasons[qi->tmpl->coarse_reason]++;
          break;
      }
    }
  }
  if (rows.empty()) {
    std::printf("no pages registered\n");
    return kExitOk;
  }
  std::printf("%-40s %7s %9s %8s %6s  %s\n", "url pattern", "pages", "precise", "coarse", "none",
              "precise%");
  for (const auto& [pattern, r] : rows) {
    size_t total = r.precise + r.coarse + r.none;
    double pct =
        total ? 100.0 * static_cast<double>(r.precise) / static_cast<double>(total) : 100.0;
    std::printf("%-40s %7zu %9zu %8zu %6zu  %5.1f%%\n", pattern.c_str(), r.pages, r.precise,
                r.coarse, r.none, pct);
    for (const auto& [why, n] : r.reasons) {
      std::printf("    %6zu x %s\n", n, why.empty() ? "(no reason recorded)" : why.c_str());
    }
  }
  return kExitOk;
}

}  // namespace

int RunMapCommand(int argc, char** argv) {
  Args a;
  std::string err;
  if (!ParseArgs(argc, argv, &a, &err)) {
    std::fprintf(stderr, "cacheportal map: %s\n\n%s", err.c_str(), kMapUsage);
    return kExitUsage;
  }
  if (a.help) {
    std::fputs(kMapUsage, stdout);
    return kExitOk;
  }
  if (a.sub.empty()) {
    std::fputs(kMapUsage, stderr);
    return kExitUsage;
  }
  SqlMapOptions options;
  if (!a.config.empty()) {
    auto cfg = LoadConfigFile(a.config);
    if (!cfg.ok()) {
      std::fprintf(stderr, "cacheportal map: %s\n", cfg.status().ToString().c_str());
      return kExitConfig;
    }
    options = cfg->sqlmap;
  }
  if (!a.path.empty()) options.path = a.path;

  if (a.sub == "explain") {
    if (a.positional.size() != 1) {
      std::fprintf(stderr, "cacheportal map explain: expected one SQL statement\n\n%s", kMapUsage);
      return kExitUsage;
    }
    sqlmap::AnalyzerOptions ao;
    ao.logging_tables = options.logging_tables;
    sqlmap::Analyzer analyzer(ao);
    auto t = analyzer.Analyze(a.positional[0]);
    if (!t.ok()) {
      std::fprintf(stderr, "cacheportal map explain: %s\n", t.status().ToString().c_str());
      return kExitUsage;
    }
    std::fputs(sqlmap::Analyzer::Explain(**t).c_str(), stdout);
    bool has_params =
        std::any_of((*t)->slot_param.begin(), (*t)->slot_param.end(), [](int p) { return p > 0; });
    if (!has_params) {
      auto qi = analyzer.Instantiate(a.positional[0], {});
      if (qi.ok()) {
        std::printf("values:     ");
        for (size_t i = 0; i < qi->values.size(); ++i) {
          std::printf(" $%zu=%s", i + 1,
                      qi->values[i] ? ("'" + *qi->values[i] + "'").c_str() : "NULL");
        }
        std::printf("\ninstance:    %s\n", qi->Id().c_str());
      }
    }
    return kExitOk;
  }
  if (a.sub != "stats" && a.sub != "show" && a.sub != "coverage") {
    std::fprintf(stderr, "cacheportal map: unknown subcommand '%s'\n\n%s", a.sub.c_str(),
                 kMapUsage);
    return kExitUsage;
  }
  if (a.sub == "show" && a.positional.size() != 1) {
    std::fprintf(stderr, "cacheportal map show: expected one cache key\n\n%s", kMapUsage);
    return kExitUsage;
  }
  if (a.sub != "show" && !a.positional.empty()) {
    std::fprintf(stderr, "cacheportal map %s: unexpected argument '%s'\n", a.sub.c_str(),
                 a.positional[0].c_str());
    return kExitUsage;
  }
  std::unique_ptr<sqlmap::SqlMap> map;
  if (int rc = OpenMap(options, &map); rc != kExitOk) return rc;
  if (a.sub == "stats") return Stats(*map, options.path);
  if (a.sub == "coverage") return Coverage(*map);
  std::string out;
  Status s = map->DescribePage(a.positional[0], &out);
  if (s.IsNotFound()) {
    std::fprintf(stderr, "cacheportal map show: %s\n", s.message().c_str());
    return kExitFailure;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "cacheportal map show: %s\n", s.ToString().c_str());
    return kExitFailure;
  }
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

}  // namespace cacheportal
