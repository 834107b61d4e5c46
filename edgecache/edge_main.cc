// `cacheportal-edge`: the edge subcommand as its own small binary, so the
// benchmark can build it without the whole `cacheportal` tree.
#include "cli/commands.h"

int main(int argc, char** argv) { return cacheportal::RunEdgeCommand(argc, argv); }
