// `cacheportal-sniffer`: the sniffer subcommand as its own small binary.
#include "cli/commands.h"

int main(int argc, char** argv) { return cacheportal::RunSnifferCommand(argc, argv); }
