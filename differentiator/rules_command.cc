// Placeholder until the part lands; replaced by the part's real command.
#include <cstdio>

#include "cli/commands.h"

namespace cacheportal {

int RunRulesCommand(int, char**) {
  std::fprintf(stderr, "cacheportal rules: not built yet\n");
  return kExitFailure;
}

}  // namespace cacheportal
