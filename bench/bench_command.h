// `cacheportal bench`: the researcher's benchmark (bench/paper/README.md).
// argv[0] is the subcommand name. Exit codes as in cli/commands.h; 1 also
// when the staleness audit found a stale page.
#pragma once

namespace cacheportal {

int RunBenchCommand(int argc, char** argv);

}  // namespace cacheportal
