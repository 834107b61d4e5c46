// Subcommands of the `cacheportal` binary. Each part implements its own in
// its library; argv[0] is the subcommand name. Exit codes (README "Exit codes"):
//   0 success, 1 runtime failure, 2 usage error, 3 configuration error.
#pragma once

namespace cacheportal {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitConfig = 3;

int RunSnifferCommand(int argc, char** argv);      // sniffer/sniffer_command.cc
int RunMapCommand(int argc, char** argv);          // sqlmap/map_command.cc
int RunRulesCommand(int argc, char** argv);        // differentiator/rules_command.cc
int RunEdgeCommand(int argc, char** argv);         // edgecache/edge_command.cc
int RunInvalidatorCommand(int argc, char** argv);  // invalidator/invalidator_command.cc
int RunServeCommand(int argc, char** argv);        // cli/serve_command.cc
int RunBenchCommand(
    int argc, char** argv);  // bench/paper/bench_command.cc (declared in bench/bench_command.h too)

}  // namespace cacheportal
