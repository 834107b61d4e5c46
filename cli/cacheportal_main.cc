// `cacheportal`: one binary, one subcommand per part (and `serve` for all of
// them in one process).
#include <cstdio>
#include <cstring>
#include <string_view>

#include "cli/commands.h"

namespace {

constexpr const char* kUsage =
    "usage: cacheportal <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve         run edge, sniffer, map and invalidator in one process\n"
    "  edge          run the edge cache (reverse proxy)\n"
    "  sniffer       run the PostgreSQL wire-protocol sniffer\n"
    "  invalidator   run the invalidator (logical replication consumer)\n"
    "  map           inspect the page/query/table map (stats, show, explain, coverage)\n"
    "  rules         check or explain a differentiator rules file (rules check FILE)\n"
    "  bench         the researcher's benchmark: workload with and without the cache, report\n"
    "\n"
    "Run 'cacheportal <command> --help' for a command's options.\n"
    "Exit codes: 0 success, 1 runtime failure, 2 usage error, 3 configuration error.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? cacheportal::kExitUsage : cacheportal::kExitOk;
  }
  std::string_view cmd = argv[1];
  int sub_argc = argc - 1;
  char** sub_argv = argv + 1;
  if (cmd == "serve") return cacheportal::RunServeCommand(sub_argc, sub_argv);
  if (cmd == "edge") return cacheportal::RunEdgeCommand(sub_argc, sub_argv);
  if (cmd == "sniffer") return cacheportal::RunSnifferCommand(sub_argc, sub_argv);
  if (cmd == "invalidator") return cacheportal::RunInvalidatorCommand(sub_argc, sub_argv);
  if (cmd == "map") return cacheportal::RunMapCommand(sub_argc, sub_argv);
  if (cmd == "bench") return cacheportal::RunBenchCommand(sub_argc, sub_argv);
  if (cmd == "rules") return cacheportal::RunRulesCommand(sub_argc, sub_argv);
  std::fprintf(stderr, "cacheportal: unknown command '%s'\n\n%s", argv[1], kUsage);
  return cacheportal::kExitUsage;
}
