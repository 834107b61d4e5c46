// `cacheportal rules check FILE [--secret S]`: validates a rules file the way
// the edge would load it and prints every problem as file:line:col.
// `cacheportal rules explain FILE METHOD TARGET [...]`: shows the decision a
// request would get (verdict, rule, reason, key, hash, origin target), so an
// admin can see what a rule does before deploying it.
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "differentiator/differentiator.h"

namespace cacheportal {
namespace {

constexpr const char* kRulesUsage =
    "usage: cacheportal rules check FILE [--secret S]\n"
    "       cacheportal rules explain FILE [--secret S] [-H 'Name: value']... [--data BODY]\n"
    "                                 [--now UNIX_SECONDS] METHOD TARGET\n"
    "\n"
    "check    checks a differentiator rules file (see docs/rules.md) and prints\n"
    "           FILE: OK (N rules)\n"
    "         or every problem as FILE:LINE:COLUMN: message.\n"
    "explain  prints the decision for one request: verdict, rule, reason, cache\n"
    "         key and its hash, TTL and the URL forwarded to the origin.\n"
    "\n"
    "options:\n"
    "  --secret S   the session-cookie secret (common.session_secret); for check,\n"
    "               without it a placeholder is used, which is enough to check the\n"
    "               file's shape (explain needs the real one to verify `sid`)\n"
    "  -H HEADER    a request header, e.g. -H 'Cookie: lang=ja' (repeatable)\n"
    "  --data BODY  the request body\n"
    "  --now T      the clock for session expiry (default: now)\n"
    "  -h, --help   this text\n"
    "\n"
    "Exit codes: 0 valid, 2 usage error, 3 the file has problems (or cannot be read).\n";

constexpr const char* kPlaceholderSecret = "cacheportal-rules-check-placeholder";

int Usage(const char* fmt, std::string_view arg = {}) {
  std::fprintf(stderr, fmt, std::string(arg).c_str());
  std::fprintf(stderr, "\n\n%s", kRulesUsage);
  return kExitUsage;
}

struct Args {
  std::vector<std::string> positional;
  std::string secret = kPlaceholderSecret;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int64_t now = 0;
};

// Parses options shared by the subcommands; returns -1 on success or an exit code.
int ParseArgs(const std::vector<std::string_view>& args, bool explain, Args* out) {
  out->now = static_cast<int64_t>(std::time(nullptr));
  for (size_t i = 1; i < args.size(); ++i) {
    std::string_view a = args[i];
    auto value = [&](std::string* v) {
      if (i + 1 >= args.size()) return false;
      *v = std::string(args[++i]);
      return true;
    };
    std::string v;
    if (a == "--secret") {
      if (!value(&out->secret)) return Usage("cacheportal rules: --secret needs a value");
    } else if (a.rfind("--secret=", 0) == 0) {
      out->secret = std::string(a.substr(9));
    } else if (explain && a == "-H") {
      if (!value(&v)) return Usage("cacheportal rules: -H needs 'Name: value'");
      size_t colon = v.find(':');
      if (colon == std::string::npos || colon == 0) {
        return Usage("cacheportal rules: bad header '%s' (want 'Name: value')", v);
      }
      size_t start = colon + 1;
      while (start < v.size() && (v[start] == ' ' || v[start] == '\t')) ++start;
      out->headers.emplace_back(v.substr(0, colon), v.substr(start));
    } else if (explain && a == "--data") {
      if (!value(&out->body)) return Usage("cacheportal rules: --data needs a value");
    } else if (explain && a == "--now") {
      if (!value(&v)) return Usage("cacheportal rules: --now needs a value");
      char* end = nullptr;
      out->now = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') return Usage("cacheportal rules: bad --now '%s'", v);
    } else if (a.size() > 1 && a[0] == '-') {
      return Usage("cacheportal rules: unknown option '%s'", a);
    } else {
      out->positional.emplace_back(a);
    }
  }
  return -1;
}

int Check(const std::vector<std::string_view>& args) {
  Args a;
  if (int rc = ParseArgs(args, false, &a); rc >= 0) return rc;
  if (a.positional.empty()) return Usage("cacheportal rules check: missing FILE");
  if (a.positional.size() > 1) return Usage("cacheportal rules check: one FILE only");
  const std::string& file = a.positional[0];
  auto loaded = differentiator::RuleSet::LoadFile(file, a.secret);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().message().c_str());
    return kExitConfig;
  }
  std::printf("%s: OK (%zu rules)\n", file.c_str(), loaded.value()->RuleCount());
  return kExitOk;
}

int Explain(const std::vector<std::string_view>& args) {
  Args a;
  if (int rc = ParseArgs(args, true, &a); rc >= 0) return rc;
  if (a.positional.size() != 3) {
    return Usage("cacheportal rules explain: want FILE METHOD TARGET");
  }
  auto loaded = differentiator::RuleSet::LoadFile(a.positional[0], a.secret);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().message().c_str());
    return kExitConfig;
  }
  differentiator::RequestView req;
  req.method = a.positional[1];
  req.target = a.positional[2];
  for (const auto& [n, v] : a.headers) req.headers.emplace_back(n, v);
  req.body = a.body;
  differentiator::Decision d = loaded.value()->Decide(req, a.now);
  std::printf("verdict: %s\n", differentiator::VerdictName(d.verdict));
  std::printf("rule:    %s\n", d.rule.empty() ? "(none)" : d.rule.c_str());
  if (!d.reason.empty()) std::printf("reason:  %s\n", d.reason.c_str());
  if (d.verdict == differentiator::Verdict::kCache) {
    std::printf("key:     %s\n", d.key.ToString().c_str());
    std::printf("hash:    %016llx\n", static_cast<unsigned long long>(d.key.Hash()));
    std::printf("ttl:     %llds\n", static_cast<long long>(d.ttl.count()));
  }
  std::printf("origin:  %s\n", d.origin_target.c_str());
  return kExitOk;
}

}  // namespace

int RunRulesCommand(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (auto a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(kRulesUsage, stdout);
      return kExitOk;
    }
  }
  if (!args.empty() && args[0] == "check") return Check(args);
  if (!args.empty() && args[0] == "explain") return Explain(args);
  return Usage("cacheportal rules: expected 'check' or 'explain'");
}

}  // namespace cacheportal
