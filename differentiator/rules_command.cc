// `cacheportal rules check FILE [--secret S]`: validates a rules file the way
// the edge would load it and prints every problem as file:line:col.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "differentiator/differentiator.h"

namespace cacheportal {
namespace {

constexpr const char* kRulesUsage =
    "usage: cacheportal rules check FILE [--secret S]\n"
    "\n"
    "Checks a differentiator rules file (see docs/rules.md) and prints\n"
    "  FILE: OK (N rules)\n"
    "or every problem as FILE:LINE:COLUMN: message.\n"
    "\n"
    "options:\n"
    "  --secret S   the session-cookie secret (common.session_secret); without it a\n"
    "               placeholder is used, which is enough to check the file's shape\n"
    "  -h, --help   this text\n"
    "\n"
    "Exit codes: 0 valid, 2 usage error, 3 the file has problems (or cannot be read).\n";

}  // namespace

int RunRulesCommand(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (auto a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(kRulesUsage, stdout);
      return kExitOk;
    }
  }
  if (args.empty() || args[0] != "check") {
    std::fprintf(stderr, "cacheportal rules: expected 'check'\n\n%s", kRulesUsage);
    return kExitUsage;
  }
  std::string file;
  std::string secret = "cacheportal-rules-check-placeholder";
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--secret") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "cacheportal rules check: --secret needs a value\n");
        return kExitUsage;
      }
      secret = std::string(args[++i]);
    } else if (args[i].rfind("--secret=", 0) == 0) {
      secret = std::string(args[i].substr(9));
    } else if (!args[i].empty() && args[i][0] == '-') {
      std::fprintf(stderr, "cacheportal rules check: unknown option '%s'\n\n%s",
                   std::string(args[i]).c_str(), kRulesUsage);
      return kExitUsage;
    } else if (file.empty()) {
      file = std::string(args[i]);
    } else {
      std::fprintf(stderr, "cacheportal rules check: one FILE only\n");
      return kExitUsage;
    }
  }
  if (file.empty()) {
    std::fprintf(stderr, "cacheportal rules check: missing FILE\n\n%s", kRulesUsage);
    return kExitUsage;
  }
  auto loaded = differentiator::RuleSet::LoadFile(file, secret);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().message().c_str());
    return kExitConfig;
  }
  std::printf("%s: OK (%zu rules)\n", file.c_str(), loaded.value()->RuleCount());
  return kExitOk;
}

}  // namespace cacheportal
