// The rules loader: every problem reported at once, each with its
// file:line:column, and nothing loaded unless the whole file is valid.
#include <gtest/gtest.h>

#include <fstream>

#include "differentiator/differentiator.h"

namespace cacheportal::differentiator {
namespace {

// Loads `text` as "t.yaml" and returns the error lines ("" if it loaded).
std::vector<std::string> Errors(const std::string& text, std::string secret = "s") {
  auto r = RuleSet::LoadText(text, "t.yaml", std::move(secret));
  std::vector<std::string> lines;
  if (r.ok()) return lines;
  EXPECT_TRUE(r.status().IsInvalidArgument());
  std::string msg = r.status().message();
  size_t pos = 0;
  while (pos <= msg.size()) {
    size_t nl = msg.find('\n', pos);
    if (nl == std::string::npos) nl = msg.size();
    lines.push_back(msg.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

struct ErrorCase {
  const char* what;
  const char* yaml;
  const char* expected;  // one full error line
};

TEST(RulesLoader, EachErrorHasItsFileLineAndColumn) {
  const ErrorCase cases[] = {
      {"unknown key at a nested level",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match:\n"
       "      path: /x\n"
       "      methds: [GET]\n"
       "    action: pass\n",
       "t.yaml:6:7: unknown key 'rules[0].match.methds'"},
      {"unknown key in key:",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match: {path: /x}\n"
       "    action: cache\n"
       "    key: {cookie: [lang]}\n",
       "t.yaml:6:11: unknown key 'rules[0].key.cookie'"},
      {"bad regex",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match: {path_regex: \"^/frag/([a-z\"}\n"
       "    action: pass\n",
       "t.yaml:4:25: 'rules[0].match.path_regex': bad regex \"^/frag/([a-z\": "},
      {"bad glob",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match:\n"
       "      path: /product/{id}\n"
       "    action: pass\n",
       "t.yaml:5:13: 'rules[0].match.path': bad glob \"/product/{id}\": '{' is not supported in "
       "path globs (only * and **); use path_regex"},
      {"wrong type",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match: {path: /x}\n"
       "    action: cache\n"
       "    ttl: soon\n",
       "t.yaml:6:10: 'rules[0].ttl' must be an integer"},
      {"list where a string is expected",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match: {path: /x}\n"
       "    action: [cache]\n",
       "t.yaml:5:13: 'rules[0].action' must be a string"},
      {"string where a list is expected",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match: {path: /x, methods: GET}\n"
       "    action: pass\n",
       "t.yaml:4:32: 'rules[0].match.methods' must be a list of strings"},
      {"missing action",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match: {path: /x}\n",
       "t.yaml:3:5: missing required key 'rules[0].action'"},
      {"action outside the set",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match: {path: /x}\n"
       "    action: store\n",
       "t.yaml:5:13: 'rules[0].action' must be cache or pass, not 'store'"},
      {"duplicate rule name",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match: {path: /x}\n"
       "    action: pass\n"
       "  - name: a\n"
       "    match: {path: /y}\n"
       "    action: pass\n",
       "t.yaml:6:11: duplicate rule name 'a'"},
      {"YAML syntax error",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match: {path: /x\n"
       "    action: pass\n",
       "t.yaml:5:11: YAML syntax error: "},
      {"unknown session attribute",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match: {path: /x}\n"
       "    action: cache\n"
       "    key:\n"
       "      session: [user, email]\n",
       "t.yaml:7:23: 'rules[0].key.session': unknown session attribute 'email' (known: user, "
       "locale)"},
      {"duplicate key in a mapping",
       "version: 1\n"
       "rules:\n"
       "  - name: a\n"
       "    match: {path: /x}\n"
       "    action: pass\n"
       "    action: cache\n",
       "t.yaml:6:5: duplicate key 'action'"},
      {"unsupported version",
       "version: 2\n"
       "rules: []\n",
       "t.yaml:1:10: unsupported rules file version 2 (this build reads version 1)"},
      {"unknown top-level key",
       "version: 1\n"
       "rulez: []\n"
       "rules: []\n",
       "t.yaml:2:1: unknown key 'rulez'"},
      {"unknown key in defaults.strip",
       "version: 1\n"
       "defaults:\n"
       "  strip: {paths: [jsessionid]}\n"
       "rules: []\n",
       "t.yaml:3:11: unknown key 'defaults.strip.paths'"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> errors = Errors(c.yaml);
    ASSERT_FALSE(errors.empty()) << c.what << ": loaded";
    bool found = false;
    for (const auto& e : errors) {
      if (e.rfind(c.expected, 0) == 0) found = true;
    }
    std::string all;
    for (const auto& e : errors) all += "\n  " + e;
    EXPECT_TRUE(found) << c.what << ": expected a line starting with\n  " << c.expected
                       << "\ngot:" << all;
  }
}

TEST(RulesLoader, ReportsEveryProblemAtOnce) {
  std::vector<std::string> errors = Errors(
      "version: 1\n"
      "rules:\n"
      "  - name: a\n"
      "    match: {path: /x, verbs: [GET]}\n"
      "    action: maybe\n"
      "  - name: b\n"
      "    match: {path_regex: \"(\"}\n"
      "    action: pass\n"
      "    ttl: -1\n"
      "  - match: {path: /z}\n"
      "    action: cache\n");
  ASSERT_EQ(errors.size(), 6u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "t.yaml:4:23: unknown key 'rules[0].match.verbs'");
  EXPECT_EQ(errors[1], "t.yaml:5:13: 'rules[0].action' must be cache or pass, not 'maybe'");
  EXPECT_EQ(errors[2].rfind("t.yaml:7:25: 'rules[1].match.path_regex': bad regex", 0), 0u);
  EXPECT_EQ(errors[3], "t.yaml:9:10: 'rules[1].ttl' must be >= 0 seconds");
  EXPECT_EQ(errors[4], "t.yaml:9:10: 'rules[1].ttl' has no effect with action: pass");
  EXPECT_EQ(errors[5], "t.yaml:10:5: missing required key 'rules[2].name'");
}

TEST(RulesLoader, RulesThatCannotMeanWhatTheySayAreErrors) {
  const ErrorCase cases[] = {
      {"cache POST without body fields",
       "version: 1\nrules:\n  - name: a\n    match: {methods: [POST], path: /s}\n    action: "
       "cache\n",
       "t.yaml:4:12: 'rules[0]': a cache rule matching POST must name the body fields of its key"},
      {"body fields without POST",
       "version: 1\nrules:\n  - name: a\n    match: {path: /s}\n    action: cache\n"
       "    key: {body: [q]}\n",
       "t.yaml:6:17: 'rules[0].key.body' needs POST in match.methods"},
      {"cache an unsafe method",
       "version: 1\nrules:\n  - name: a\n    match: {methods: [PUT], path: /s}\n    action: "
       "cache\n",
       "t.yaml:4:12: 'rules[0]': method PUT cannot be cached"},
      {"key on a pass rule",
       "version: 1\nrules:\n  - name: a\n    match: {path: /s}\n    action: pass\n"
       "    key: {cookies: [lang]}\n",
       "t.yaml:6:10: 'rules[0].key' has no effect with action: pass"},
      {"path and path_regex",
       "version: 1\nrules:\n  - name: a\n    match: {path: /s, path_regex: ^/s$}\n    action: "
       "pass\n",
       "t.yaml:4:35: 'rules[0].match': give either path or path_regex, not both"},
      {"no path at all",
       "version: 1\nrules:\n  - name: a\n    match: {methods: [GET]}\n    action: pass\n",
       "t.yaml:4:12: 'rules[0].match' needs path (a glob) or path_regex"},
      {"session keys without a secret", nullptr, nullptr},
  };
  for (const auto& c : cases) {
    if (c.yaml == nullptr) continue;
    std::vector<std::string> errors = Errors(c.yaml);
    bool found = false;
    for (const auto& e : errors) found |= e.rfind(c.expected, 0) == 0;
    EXPECT_TRUE(found) << c.what << ": " << ::testing::PrintToString(errors);
  }
  std::vector<std::string> errors = Errors(
      "version: 1\nrules:\n  - name: a\n    match: {path: /m}\n    action: cache\n"
      "    key: {session: [user]}\n",
      "");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0],
            "t.yaml: rules key on session attributes but no session secret is configured");
}

TEST(RulesLoader, OddDocumentsAreErrorsNotCrashes) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "t.yaml: the rules file must be a mapping with version, defaults and rules"},
      {"- a\n- b\n", "t.yaml:1:1: the rules file must be a mapping"},
      {"version: 1\nrules: 5\n", "t.yaml:2:8: 'rules' must be a list of rules"},
      {"version: 1\nrules: [5]\n", "t.yaml:2:9: 'rules[0]' must be a mapping"},
      {"version: 1\nrules:\n  - name: a\n    match: /x\n    action: pass\n",
       "t.yaml:4:12: 'rules[0].match' must be a mapping"},
      {"version: 1\nrules:\n\t- name: a\n", "t.yaml:3:"},
      {"version: 1\nrules: []\ndefaults: 7\n", "t.yaml:3:11: 'defaults' must be a mapping"},
  };
  for (const auto& [yaml, expected] : cases) {
    std::vector<std::string> errors = Errors(yaml);
    ASSERT_FALSE(errors.empty()) << yaml;
    bool found = false;
    for (const auto& e : errors) found |= e.rfind(expected, 0) == 0;
    EXPECT_TRUE(found) << yaml << "\n" << ::testing::PrintToString(errors);
  }
}

TEST(RulesLoader, AcceptsAMinimalFileAndCountsRules) {
  auto r = RuleSet::LoadText("version: 1\nrules: []\n", "t.yaml", "s");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value()->RuleCount(), 0u);
  RequestView req;
  req.method = "GET";
  req.target = "/";
  Decision d = r.value()->Decide(req, 0);
  EXPECT_EQ(d.verdict, Verdict::kPass);
  EXPECT_EQ(d.reason, "no rule matched");
  EXPECT_EQ(d.origin_target, "/");
}

TEST(RulesLoader, MaxBodyBytesIsTheLargestOfRulesThatReadBodies) {
  auto r = RuleSet::LoadText(
      "version: 1\n"
      "defaults: {max_body_bytes: 1000}\n"
      "rules:\n"
      "  - {name: a, match: {methods: [POST], path: /a}, action: cache, key: {body: [q]}}\n"
      "  - {name: b, match: {methods: [POST], path: /b}, action: cache, key: {body: [q]},\n"
      "     max_body_bytes: 5000}\n"
      "  - {name: c, match: {methods: [POST], path: /c}, action: pass}\n",
      "t.yaml", "s");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value()->MaxBodyBytes(), 5000u);
  EXPECT_EQ(r.value()->RuleCount(), 3u);
}

TEST(RulesLoader, MissingFileIsAnError) {
  auto r = RuleSet::LoadFile("/nonexistent/rules.yaml", "s");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "/nonexistent/rules.yaml: cannot open file");
}

TEST(RulesLoader, RuleStripExtendsDefaultsAndMethodsAreUpperCased) {
  auto r = RuleSet::LoadText(
      "version: 1\n"
      "defaults: {strip: {query: [utm_*]}}\n"
      "rules:\n"
      "  - name: a\n"
      "    match: {methods: [get], path: /a}\n"
      "    action: cache\n"
      "    key: {query: [\"*\"]}\n"
      "    strip: {query: [ref]}\n",
      "t.yaml", "s");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  RequestView req;
  req.method = "GET";
  req.target = "/a?ref=x&utm_source=y&k=1";
  Decision d = r.value()->Decide(req, 0);
  ASSERT_EQ(d.verdict, Verdict::kCache) << d.reason;
  EXPECT_EQ(d.key.ToString(), "GET /a?k=1");
  EXPECT_EQ(d.origin_target, "/a?k=1");
}

TEST(RulesLoader, StoreDespiteIsReadIntoTheDecision) {
  auto r = RuleSet::LoadText(
      "version: 1\n"
      "rules:\n"
      "  - name: a\n"
      "    match: {path: /a}\n"
      "    action: cache\n"
      "    key: {cookies: [sid]}\n"
      "    store_despite: [set-cookie, private, no-store, status]\n"
      "  - {name: b, match: {path: /b}, action: cache}\n",
      "t.yaml", "s");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  RequestView req;
  req.method = "GET";
  req.target = "/a";
  Decision a = r.value()->Decide(req, 0);
  ASSERT_EQ(a.verdict, Verdict::kCache);
  EXPECT_TRUE(a.store_despite.set_cookie);
  EXPECT_TRUE(a.store_despite.private_);
  EXPECT_TRUE(a.store_despite.no_store);
  EXPECT_TRUE(a.store_despite.status);
  req.target = "/b";
  Decision b = r.value()->Decide(req, 0);
  ASSERT_EQ(b.verdict, Verdict::kCache);
  EXPECT_FALSE(b.store_despite.any());
}

TEST(RulesLoader, StoreDespiteMistakesAreErrorsWithTheirPosition) {
  std::vector<std::string> errors = Errors(
      "version: 1\n"
      "rules:\n"
      "  - name: a\n"
      "    match: {path: /a}\n"
      "    action: cache\n"
      "    store_despite: [set-cookie, cookies]\n"
      "  - name: b\n"
      "    match: {path: /b}\n"
      "    action: pass\n"
      "    store_despite: [set-cookie]\n"
      "  - name: c\n"
      "    match: {path: /c}\n"
      "    action: cache\n"
      "    store_despite: [private]\n");
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_NE(all.find("t.yaml:6:33: 'rules[0].store_despite': unknown 'cookies' (known: "
                     "set-cookie, private, no-store, status)"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("t.yaml:10:20: 'rules[1].store_despite' has no effect with action: pass"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("t.yaml:14:20: 'rules[2].store_despite: private' needs a per-user key"),
            std::string::npos)
      << all;
}

}  // namespace
}  // namespace cacheportal::differentiator
