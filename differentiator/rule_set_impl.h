// Private to the differentiator: the compiled, immutable form of a rules
// file. Everything Decide() needs is precomputed here at load (regexes
// compiled, lists sorted and lower-cased) so a decision compiles nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "common/session_cookie.h"
#include "differentiator/differentiator.h"
#include "differentiator/request_parsing.h"
#include "differentiator/session_cache.h"

namespace cacheportal::differentiator::internal {

struct StripSpec {
  std::vector<std::string> path_params;  // globs, case-insensitive
  std::vector<std::string> query;        // globs, case-sensitive
};

struct CompiledRule {
  std::string name;
  // Methods matched; empty with any_method = "*".
  std::vector<std::string> methods;
  bool any_method = false;
  std::optional<PathGlob> glob;
  std::optional<std::regex> regex;
  // Literal text every match of `regex` starts with ("^/frag/items$" →
  // "/frag/items"): a prefilter that spares most std::regex runs.
  std::string regex_prefix;
  bool regex_exact = false;  // the regex matches regex_prefix only
  bool cache = false;
  // Key parts, each sorted by name.
  std::vector<std::string> key_query;
  bool key_query_all = false;  // "*": every parameter not stripped
  std::vector<std::string> key_cookies;
  std::vector<std::string> key_session;  // subset of {locale, user}
  std::vector<std::string> key_headers;  // lower-case
  std::vector<std::string> key_body;
  StripSpec strip;  // defaults.strip plus the rule's own
  std::chrono::seconds ttl{0};
  uint64_t max_body_bytes = 0;
  StoreDespite store_despite;

  bool MatchesMethod(std::string_view method) const;
  bool MatchesPath(std::string_view canonical_path) const;
};

class RuleSetImpl final : public RuleSet {
 public:
  RuleSetImpl(std::vector<CompiledRule> rules, StripSpec default_strip, std::string session_cookie,
              std::string session_secret)
      : rules_(std::move(rules)),
        default_strip_(std::move(default_strip)),
        session_cookie_(std::move(session_cookie)),
        sessions_(std::move(session_secret)) {}

  Decision Decide(const RequestView& request, int64_t now_unix) const override;
  size_t RuleCount() const override { return rules_.size(); }
  uint64_t MaxBodyBytes() const override;

 private:
  void DecideInto(const RequestView& request, int64_t now_unix, Decision* d) const;
  // Builds the key of a cacheable rule; false (with d->reason) to pass.
  bool BuildKey(const CompiledRule& rule, const RequestView& request, int64_t now_unix,
                std::string_view raw_query, Decision* d) const;

  std::vector<CompiledRule> rules_;
  StripSpec default_strip_;
  std::string session_cookie_;
  // A cache, not state: Decide() stays a pure function of its arguments.
  VerifiedSessionCache sessions_;
};

}  // namespace cacheportal::differentiator::internal
