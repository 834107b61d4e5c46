// Decide(): request → (verdict, explicit key, origin target). Pure: no I/O,
// no clock but the `now_unix` argument, nothing compiled per call.
#include <algorithm>

#include "differentiator/rule_set_impl.h"

namespace cacheportal::differentiator {

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kCache:
      return "cache";
    case Verdict::kPass:
      return "pass";
  }
  return "unknown";
}

uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

namespace {

// Keeps RFC 3986 unreserved characters and a few harmless sub-delims; every
// byte that could act as a separator in ToString() ('%', ' ', '?', '&', '=',
// ',', '[', ']', ';', '#') is escaped, which makes the encoding injective.
void AppendKeyEscaped(std::string_view in, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : in) {
    bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == ':' || c == '@' ||
                c == '!' || c == '$' || c == '\'' || c == '(' || c == ')' || c == '*' || c == '+';
    if (keep) {
      out->push_back(static_cast<char>(c));
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
}

void AppendPairs(const std::vector<std::pair<std::string, std::string>>& pairs, std::string* out) {
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i > 0) out->push_back('&');
    AppendKeyEscaped(pairs[i].first, out);
    out->push_back('=');
    AppendKeyEscaped(pairs[i].second, out);
  }
}

void AppendSection(std::string_view label,
                   const std::vector<std::pair<std::string, std::string>>& pairs,
                   std::string* out) {
  if (pairs.empty()) return;
  out->push_back(' ');
  out->append(label);
  out->push_back('[');
  AppendPairs(pairs, out);
  out->push_back(']');
}

void StableSortByName(std::vector<std::pair<std::string, std::string>>* v) {
  std::stable_sort(v->begin(), v->end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

bool Contains(const std::vector<std::string>& sorted, std::string_view name) {
  return std::binary_search(sorted.begin(), sorted.end(), name, std::less<>());
}

// Decodes a form-encoded name into *buf, skipping the copy when the raw
// bytes need no decoding (the common case).
std::string_view DecodeName(std::string_view raw, std::string* buf) {
  if (raw.find_first_of("%+") == std::string_view::npos) return raw;
  buf->clear();
  internal::FormDecodeAppend(raw, buf);
  return *buf;
}

bool QueryStripped(const internal::StripSpec& strip, std::string_view name) {
  for (const auto& g : strip.query) {
    if (internal::NameGlobMatch(g, name)) return true;
  }
  return false;
}

}  // namespace

std::string CacheKey::ToString() const {
  std::string out;
  out.reserve(method.size() + path.size() + 64);
  AppendKeyEscaped(method, &out);
  out.push_back(' ');
  out.append(path);  // canonical: cannot contain ' ' or '?' (they are %-escaped)
  if (!query.empty()) {
    out.push_back('?');
    AppendPairs(query, &out);
  }
  AppendSection("cookies", cookies, &out);
  AppendSection("session", session, &out);
  AppendSection("headers", headers, &out);
  AppendSection("body", body, &out);
  if (!absent.empty()) {
    out.append(" absent[");
    for (size_t i = 0; i < absent.size(); ++i) {
      if (i > 0) out.push_back(',');
      AppendKeyEscaped(absent[i], &out);
    }
    out.push_back(']');
  }
  return out;
}

uint64_t CacheKey::Hash() const { return Fnv1a64(ToString()); }

namespace internal {

bool CompiledRule::MatchesMethod(std::string_view method) const {
  if (any_method) return true;
  for (const auto& m : methods) {
    if (m == method) return true;
  }
  return false;
}

bool CompiledRule::MatchesPath(std::string_view path) const {
  if (glob) return glob->Matches(path);
  if (regex) {
    if (regex_exact) return path == regex_prefix;
    if (path.substr(0, regex_prefix.size()) != regex_prefix) return false;
    return std::regex_search(path.begin(), path.end(), *regex);
  }
  return false;
}

uint64_t RuleSetImpl::MaxBodyBytes() const {
  uint64_t m = 0;
  for (const auto& r : rules_) {
    if (r.cache && !r.key_body.empty()) m = std::max(m, r.max_body_bytes);
  }
  return m;
}

Decision RuleSetImpl::Decide(const RequestView& request, int64_t now_unix) const {
  Decision d;
  try {
    DecideInto(request, now_unix, &d);
  } catch (const std::exception& e) {
    // std::regex can throw on pathological input (error_complexity/stack);
    // an allocation can fail. Either way: don't cache.
    d = Decision{};
    d.verdict = Verdict::kPass;
    d.reason = std::string("internal error: ") + e.what();
    d.origin_target = std::string(request.target);
  }
  return d;
}

void RuleSetImpl::DecideInto(const RequestView& req, int64_t now_unix, Decision* d) const {
  d->verdict = Verdict::kPass;
  std::string_view target = req.target;
  if (target.find('#') != std::string_view::npos) {
    d->reason = "fragment in request target";
    d->origin_target = std::string(target);
    return;
  }
  size_t qmark = target.find('?');
  std::string_view raw_path = target.substr(0, qmark);
  std::string_view raw_query =
      qmark == std::string_view::npos ? std::string_view{} : target.substr(qmark + 1);

  // Rules match the path without ;parameters, so noise never changes which
  // rule applies; the key path keeps the parameters the rule does not strip.
  std::string path;
  if (const char* why = CanonicalisePath(raw_path, PathParamStrip{true, nullptr}, &path)) {
    d->reason = why;
    d->origin_target = std::string(target);
    return;
  }
  const CompiledRule* rule = nullptr;
  for (const auto& r : rules_) {
    if (r.MatchesMethod(req.method) && r.MatchesPath(path)) {
      rule = &r;
      break;
    }
  }
  const StripSpec& strip = rule ? rule->strip : default_strip_;
  if (raw_path.find(';') != std::string_view::npos) {
    // Kept parameters are canonicalised only now, so this pass can still
    // find a malformed escape the matching pass skipped.
    if (const char* why =
            CanonicalisePath(raw_path, PathParamStrip{false, &strip.path_params}, &path)) {
      d->reason = why;
      d->rule = rule ? rule->name : std::string();
      d->origin_target = std::string(target);
      return;
    }
  }

  d->origin_target.reserve(path.size() + raw_query.size() + 1);
  d->origin_target = path;
  if (!raw_query.empty()) {
    std::string name_buf;
    bool first = true;
    ForEachFormPiece(raw_query,
                     [&](std::string_view name, std::string_view, std::string_view piece) {
                       if (QueryStripped(strip, DecodeName(name, &name_buf))) return;
                       d->origin_target.push_back(first ? '?' : '&');
                       d->origin_target.append(piece);
                       first = false;
                     });
  }

  if (rule == nullptr) {
    d->reason = "no rule matched";
    return;
  }
  d->rule = rule->name;
  if (!rule->cache) {
    d->reason = "rule '" + rule->name + "' says pass";
    return;
  }
  d->key.path = std::move(path);
  if (!BuildKey(*rule, req, now_unix, raw_query, d)) {
    d->key = CacheKey{};
    return;
  }
  d->verdict = Verdict::kCache;
  d->ttl = rule->ttl;
  d->store_despite = rule->store_despite;
}

bool RuleSetImpl::BuildKey(const CompiledRule& rule, const RequestView& req, int64_t now_unix,
                           std::string_view raw_query, Decision* d) const {
  CacheKey& key = d->key;
  key.method = req.method == "HEAD" ? std::string("GET") : std::string(req.method);

  // Query parameters.
  if (rule.key_query_all || !rule.key_query.empty()) {
    std::string name_buf;
    ForEachFormPiece(raw_query,
                     [&](std::string_view name, std::string_view value, std::string_view) {
                       std::string_view n = DecodeName(name, &name_buf);
                       if (QueryStripped(rule.strip, n)) return;
                       if (!rule.key_query_all && !Contains(rule.key_query, n)) return;
                       std::string v;
                       FormDecodeAppend(value, &v);
                       key.query.emplace_back(std::string(n), std::move(v));
                     });
    StableSortByName(&key.query);
    for (const auto& name : rule.key_query) {
      bool seen = std::any_of(key.query.begin(), key.query.end(),
                              [&](const auto& p) { return p.first == name; });
      if (!seen) key.absent.push_back("query." + name);
    }
  }

  // Cookies.
  for (const auto& name : rule.key_cookies) {
    std::string_view v;
    switch (FindCookie(req, name, &v)) {
      case 0:
        key.absent.push_back("cookie." + name);
        break;
      case 1:
        key.cookies.emplace_back(name, std::string(v));
        break;
      default:
        d->reason = "ambiguous cookie '" + name + "' (several different values)";
        return false;
    }
  }

  // Verified session attributes. Only consulted when the rule names some:
  // a rule blind to the session ignores `sid` entirely.
  if (!rule.key_session.empty()) {
    std::string_view sid;
    switch (FindCookie(req, session_cookie_, &sid)) {
      case 0:
        for (const auto& a : rule.key_session) key.absent.push_back("session." + a);
        break;
      case 1: {
        auto data = sessions_.Decode(sid, now_unix);
        if (!data) {
          d->reason = "invalid session cookie";
          return false;
        }
        for (const auto& a : rule.key_session) {
          key.session.emplace_back(a, a == "user" ? data->user_id : data->locale);
        }
        break;
      }
      default:
        d->reason = "invalid session cookie";  // several different sids: whose?
        return false;
    }
  }

  // Request headers.
  for (const auto& name : rule.key_headers) {
    std::string v;
    if (JoinedHeader(req, name, &v)) {
      key.headers.emplace_back(name, std::move(v));
    } else {
      key.absent.push_back("header." + name);
    }
  }

  // POST body fields.
  if (!rule.key_body.empty()) {
    if (req.method == "POST") {
      if (req.body.size() > rule.max_body_bytes) {
        d->reason = "POST body over max_body_bytes (" + std::to_string(rule.max_body_bytes) + ")";
        return false;
      }
      std::string_view content_type;
      int n = 0;
      for (const auto& [hname, hvalue] : req.headers) {
        if (!IEquals(hname, "content-type")) continue;
        if (n > 0 && hvalue != content_type) {
          d->reason = "several different Content-Type headers";
          return false;
        }
        content_type = hvalue;
        ++n;
      }
      if (const char* why = ExtractBodyFields(content_type, req.body, rule.key_body, &key.body)) {
        d->reason = why;
        return false;
      }
      StableSortByName(&key.body);
    }
    for (const auto& name : rule.key_body) {
      bool seen = std::any_of(key.body.begin(), key.body.end(),
                              [&](const auto& p) { return p.first == name; });
      if (!seen) key.absent.push_back("body." + name);
    }
  }
  return true;
}

}  // namespace internal
}  // namespace cacheportal::differentiator
