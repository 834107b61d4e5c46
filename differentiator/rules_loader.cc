// The rules file → an immutable RuleSetImpl. Every problem is collected with
// its file:line:column (YamlDiagnostics) and nothing is returned unless the
// whole file is valid: a rules object is checked before it goes live.
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "config/yaml_reader.h"
#include "differentiator/rule_set_impl.h"

namespace cacheportal::differentiator {
namespace {

using internal::CompiledRule;
using internal::StripSpec;

constexpr uint64_t kDefaultMaxBodyBytes = 64 * 1024;
constexpr uint64_t kMaxMaxBodyBytes = 16ull << 20;

bool IsTokenChar(char c) {
  // RFC 9110 tchar.
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

// yaml-cpp silently keeps one of two equal keys; an admin who wrote `action`
// twice meant something, so say so.
void CheckDuplicateKeys(const YAML::Node& map, YamlDiagnostics& diag) {
  if (!map.IsDefined() || !map.IsMap()) return;
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) continue;
    if (!seen.insert(kv.first.Scalar()).second) {
      diag.Add(kv.first, "duplicate key '" + kv.first.Scalar() + "'");
    }
  }
}

// A list of strings, each item checked by `check` (returns "" or an error),
// with the item's own position in errors.
template <typename Check>
bool ReadList(MapReader& r, std::string_view key, YamlDiagnostics& diag,
              std::vector<std::string>* out, Check check) {
  YAML::Node n = r.Child(key);
  if (!n.IsDefined()) return false;
  std::string where = r.path().empty() ? std::string(key) : r.path() + "." + std::string(key);
  if (n.IsNull()) {
    out->clear();
    return true;
  }
  if (!n.IsSequence()) {
    diag.Add(n, "'" + where + "' must be a list of strings");
    return false;
  }
  out->clear();
  for (const auto& item : n) {
    if (!item.IsScalar()) {
      diag.Add(item, "'" + where + "' items must be strings");
      continue;
    }
    std::string v = item.Scalar();
    std::string err = check(v);
    if (!err.empty()) {
      diag.Add(item, "'" + where + "': " + err);
      continue;
    }
    if (std::find(out->begin(), out->end(), v) != out->end()) {
      diag.Add(item, "'" + where + "': '" + v + "' listed twice");
      continue;
    }
    out->push_back(std::move(v));
  }
  return true;
}

std::string NonEmpty(const std::string& v) { return v.empty() ? "empty name" : ""; }

void ReadStrip(const YAML::Node& node, const std::string& path, YamlDiagnostics& diag,
               StripSpec* out) {
  CheckDuplicateKeys(node, diag);
  MapReader r(node, path, diag);
  ReadList(r, "path_params", diag, &out->path_params, [](std::string& v) {
    if (v.empty()) return std::string("empty name");
    if (v.find_first_of(";=/?") != std::string::npos) {
      return std::string("a path parameter name cannot contain ; = / or ?");
    }
    return std::string();
  });
  ReadList(r, "query", diag, &out->query, [](std::string& v) {
    if (v.empty()) return std::string("empty name");
    if (v.find_first_of("&=") != std::string::npos) {
      return std::string("a query parameter name cannot contain & or =");
    }
    return std::string();
  });
  r.Finish();
}

void Append(std::vector<std::string>* to, const std::vector<std::string>& from) {
  for (const auto& s : from) {
    if (std::find(to->begin(), to->end(), s) == to->end()) to->push_back(s);
  }
}

struct Defaults {
  int64_t ttl = 0;
  uint64_t max_body_bytes = kDefaultMaxBodyBytes;
  StripSpec strip;
  std::string session_cookie = "sid";
};

void ReadDefaults(const YAML::Node& node, YamlDiagnostics& diag, Defaults* d) {
  CheckDuplicateKeys(node, diag);
  MapReader r(node, "defaults", diag);
  r.Get("ttl", &d->ttl);
  if (d->ttl < 0) diag.Add(node["ttl"], "'defaults.ttl' must be >= 0 seconds");
  r.Get("max_body_bytes", &d->max_body_bytes);
  if (d->max_body_bytes == 0 || d->max_body_bytes > kMaxMaxBodyBytes) {
    diag.Add(node["max_body_bytes"], "'defaults.max_body_bytes' must be 1..16777216");
  }
  r.Get("session_cookie", &d->session_cookie);
  if (!IsToken(d->session_cookie)) {
    diag.Add(node["session_cookie"], "'defaults.session_cookie' must be a cookie name");
  }
  YAML::Node strip = r.Child("strip");
  if (strip.IsDefined()) ReadStrip(strip, "defaults.strip", diag, &d->strip);
  r.Finish();
}

void ReadMatch(const YAML::Node& node, const std::string& path, YamlDiagnostics& diag,
               CompiledRule* rule) {
  CheckDuplicateKeys(node, diag);
  MapReader r(node, path, diag);
  std::vector<std::string> methods = {"GET", "HEAD"};
  ReadList(r, "methods", diag, &methods, [](std::string& v) {
    if (v == "*") return std::string();
    std::string upper = v;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!IsToken(v)) return "'" + v + "' is not an HTTP method";
    v = upper;
    return std::string();
  });
  if (std::find(methods.begin(), methods.end(), "*") != methods.end()) {
    if (methods.size() > 1)
      diag.Add(node["methods"], "'" + path + ".methods': '*' must stand alone");
    rule->any_method = true;
  } else {
    if (methods.empty()) diag.Add(node["methods"], "'" + path + ".methods' must not be empty");
    rule->methods = methods;
  }
  bool has_glob = r.Has("path"), has_regex = r.Has("path_regex");
  if (has_glob && has_regex) {
    diag.Add(node["path_regex"], "'" + path + "': give either path or path_regex, not both");
  } else if (!has_glob && !has_regex && node.IsMap()) {
    diag.Add(node, "'" + path + "' needs path (a glob) or path_regex");
  }
  std::string glob, re;
  r.Get("path", &glob);
  r.Get("path_regex", &re);
  if (has_glob && node["path"].IsScalar()) {
    internal::PathGlob g;
    std::string err = internal::CompilePathGlob(glob, &g);
    if (!err.empty()) {
      diag.Add(node["path"], "'" + path + ".path': bad glob \"" + glob + "\": " + err);
    } else {
      rule->glob = std::move(g);
    }
  }
  if (has_regex && node["path_regex"].IsScalar()) {
    try {
      if (re.empty()) throw std::regex_error(std::regex_constants::error_collate);
      rule->regex.emplace(re, std::regex::ECMAScript | std::regex::optimize);
      rule->regex_prefix = internal::RegexLiteralPrefix(re, &rule->regex_exact);
    } catch (const std::regex_error& e) {
      diag.Add(node["path_regex"],
               "'" + path + ".path_regex': bad regex \"" + re + "\": " + e.what());
    }
  }
  r.Finish();
}

void ReadKey(const YAML::Node& node, const std::string& path, YamlDiagnostics& diag,
             CompiledRule* rule) {
  CheckDuplicateKeys(node, diag);
  MapReader r(node, path, diag);
  ReadList(r, "query", diag, &rule->key_query, [](std::string& v) {
    if (v.empty()) return std::string("empty name");
    if (v.find_first_of("&=") != std::string::npos)
      return std::string("name cannot contain & or =");
    return std::string();
  });
  auto star = std::find(rule->key_query.begin(), rule->key_query.end(), "*");
  if (star != rule->key_query.end()) {
    if (rule->key_query.size() > 1) {
      diag.Add(node["query"], "'" + path + ".query': '*' (every parameter) must stand alone");
    }
    rule->key_query_all = true;
    rule->key_query.clear();
  }
  ReadList(r, "cookies", diag, &rule->key_cookies, [](std::string& v) {
    return IsToken(v) ? std::string() : "'" + v + "' is not a cookie name";
  });
  ReadList(r, "session", diag, &rule->key_session, [](std::string& v) {
    return (v == "user" || v == "locale")
               ? std::string()
               : "unknown session attribute '" + v + "' (known: user, locale)";
  });
  ReadList(r, "headers", diag, &rule->key_headers, [](std::string& v) {
    if (!IsToken(v)) return "'" + v + "' is not a header name";
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (v == "cookie") return std::string("key on cookies with 'cookies:', not the Cookie header");
    return std::string();
  });
  ReadList(r, "body", diag, &rule->key_body, NonEmpty);
  r.Finish();
  for (auto* v : {&rule->key_query, &rule->key_cookies, &rule->key_session, &rule->key_headers,
                  &rule->key_body}) {
    std::sort(v->begin(), v->end());
  }
}

void ReadRule(const YAML::Node& node, size_t index, const Defaults& defaults, YamlDiagnostics& diag,
              std::set<std::string>* names, CompiledRule* rule) {
  std::string path = "rules[" + std::to_string(index) + "]";
  if (!node.IsMap()) {
    diag.Add(node, "'" + path + "' must be a mapping (name, match, action, ...)");
    return;
  }
  CheckDuplicateKeys(node, diag);
  MapReader r(node, path, diag);
  r.Require("name");
  r.Require("match");
  r.Require("action");
  r.Get("name", &rule->name);
  if (r.Has("name") && node["name"].IsScalar()) {
    if (rule->name.empty()) {
      diag.Add(node["name"], "'" + path + ".name' must not be empty");
    } else if (!names->insert(rule->name).second) {
      diag.Add(node["name"], "duplicate rule name '" + rule->name + "'");
    }
  }
  const YAML::Node match = r.Child("match");
  if (match.IsDefined()) {
    if (!match.IsMap()) {
      diag.Add(match, "'" + path + ".match' must be a mapping (methods, path or path_regex)");
    } else {
      ReadMatch(match, path + ".match", diag, rule);
    }
  }
  std::string action;
  r.Get("action", &action);
  if (r.Has("action") && node["action"].IsScalar()) {
    if (action == "cache") {
      rule->cache = true;
    } else if (action != "pass") {
      diag.Add(node["action"], "'" + path + ".action' must be cache or pass, not '" + action + "'");
    }
  }
  const YAML::Node key = r.Child("key");
  if (key.IsDefined()) ReadKey(key, path + ".key", diag, rule);
  rule->strip = defaults.strip;
  YAML::Node strip = r.Child("strip");
  if (strip.IsDefined()) {
    StripSpec own;
    ReadStrip(strip, path + ".strip", diag, &own);
    Append(&rule->strip.path_params, own.path_params);
    Append(&rule->strip.query, own.query);
  }
  int64_t ttl = defaults.ttl;
  r.Get("ttl", &ttl);
  if (ttl < 0) diag.Add(node["ttl"], "'" + path + ".ttl' must be >= 0 seconds");
  rule->ttl = std::chrono::seconds(ttl);
  std::vector<std::string> despite;
  ReadList(r, "store_despite", diag, &despite, [rule](std::string& v) {
    StoreDespite& s = rule->store_despite;
    if (v == "set-cookie")
      s.set_cookie = true;
    else if (v == "private")
      s.private_ = true;
    else if (v == "no-store")
      s.no_store = true;
    else if (v == "status")
      s.status = true;
    else
      return "unknown '" + v + "' (known: set-cookie, private, no-store, status)";
    return std::string();
  });
  rule->max_body_bytes = defaults.max_body_bytes;
  r.Get("max_body_bytes", &rule->max_body_bytes);
  if (rule->max_body_bytes == 0 || rule->max_body_bytes > kMaxMaxBodyBytes) {
    diag.Add(node["max_body_bytes"], "'" + path + ".max_body_bytes' must be 1..16777216");
  }
  r.Finish();

  // Cross-field checks: catch rules that cannot mean what the admin thinks.
  bool matches_post = rule->any_method || std::find(rule->methods.begin(), rule->methods.end(),
                                                    "POST") != rule->methods.end();
  if (!rule->cache) {
    if (key.IsDefined()) diag.Add(key, "'" + path + ".key' has no effect with action: pass");
    if (r.Has("ttl")) diag.Add(node["ttl"], "'" + path + ".ttl' has no effect with action: pass");
    if (r.Has("store_despite"))
      diag.Add(node["store_despite"],
               "'" + path + ".store_despite' has no effect with action: pass");
  } else {
    // A response the origin marked private is one user's: shared under a key
    // that names no user, it would be served to everyone.
    if (rule->store_despite.private_ && rule->key_session.empty() && rule->key_cookies.empty() &&
        rule->key_headers.empty()) {
      diag.Add(node["store_despite"],
               "'" + path +
                   ".store_despite: private' needs a per-user key (key.session, key.cookies or "
                   "key.headers): a private response must not be shared");
    }
    if (rule->any_method) {
      diag.Add(node["match"], "'" + path +
                                  "': a cache rule must list its methods (GET, HEAD, POST), "
                                  "not '*'");
    }
    for (const auto& m : rule->methods) {
      if (m != "GET" && m != "HEAD" && m != "POST") {
        diag.Add(node["match"],
                 "'" + path + "': method " + m + " cannot be cached (only GET, HEAD and POST)");
      }
    }
    if (matches_post && rule->key_body.empty() && match.IsMap()) {
      diag.Add(node["match"], "'" + path +
                                  "': a cache rule matching POST must name the body fields of "
                                  "its key (key.body)");
    }
    if (!matches_post && !rule->key_body.empty()) {
      diag.Add(key["body"], "'" + path + ".key.body' needs POST in match.methods");
    }
  }
}

}  // namespace

Result<std::shared_ptr<const RuleSet>> RuleSet::LoadText(std::string_view yaml,
                                                         const std::string& name,
                                                         std::string session_secret) {
  YamlDiagnostics diag(name);
  std::vector<CompiledRule> rules;
  Defaults defaults;
  try {
    const YAML::Node root = LoadYamlText(yaml, diag);
    if (diag.empty()) {
      if (!root.IsMap()) {
        diag.Add(root, "the rules file must be a mapping with version, defaults and rules");
      } else {
        CheckDuplicateKeys(root, diag);
        MapReader top(root, "", diag);
        top.Require("version");
        top.Require("rules");
        int version = 1;
        top.Get("version", &version);
        if (version != 1 && root["version"].IsScalar()) {
          diag.Add(root["version"], "unsupported rules file version " + std::to_string(version) +
                                        " (this build reads version 1)");
        }
        YAML::Node dn = top.Child("defaults");
        if (dn.IsDefined()) ReadDefaults(dn, diag, &defaults);
        YAML::Node rn = top.Child("rules");
        if (rn.IsDefined() && !rn.IsSequence()) {
          diag.Add(rn, "'rules' must be a list of rules");
        } else if (rn.IsDefined()) {
          std::set<std::string> names;
          size_t i = 0;
          for (const auto& item : rn) {
            CompiledRule rule;
            ReadRule(item, i++, defaults, diag, &names, &rule);
            rules.push_back(std::move(rule));
          }
        }
        top.Finish();
        bool uses_session = std::any_of(rules.begin(), rules.end(), [](const CompiledRule& r) {
          return !r.key_session.empty();
        });
        if (uses_session && session_secret.empty()) {
          diag.AddGlobal("rules key on session attributes but no session secret is configured");
        }
      }
    }
  } catch (const std::exception& e) {
    // yaml-cpp throws on some conversions of malformed nodes; report, never crash.
    diag.AddGlobal(std::string("cannot read rules: ") + e.what());
  }
  if (!diag.empty()) return Status::InvalidArgument(diag.Joined());
  std::shared_ptr<const RuleSet> set = std::make_shared<internal::RuleSetImpl>(
      std::move(rules), std::move(defaults.strip), std::move(defaults.session_cookie),
      std::move(session_secret));
  return set;
}

Result<std::shared_ptr<const RuleSet>> RuleSet::LoadFile(const std::string& path,
                                                         std::string session_secret) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument(path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  return LoadText(ss.str(), path, std::move(session_secret));
}

}  // namespace cacheportal::differentiator
