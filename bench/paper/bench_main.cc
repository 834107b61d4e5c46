// Standalone `cacheportal-bench` (the same tool as `cacheportal bench`).
#include "bench/bench_command.h"

int main(int argc, char** argv) { return cacheportal::RunBenchCommand(argc, argv); }
