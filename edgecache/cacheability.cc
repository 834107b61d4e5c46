#include "edgecache/cacheability.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

namespace cacheportal::edge {

namespace {
char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(token) for each comma-separated token, trimmed, empty ones skipped.
template <typename F>
void ForEachToken(std::string_view list, F&& f) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view tok = Trim(list.substr(0, comma));
    if (!tok.empty()) f(tok);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}
}  // namespace

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (Lower(a[i]) != Lower(b[i])) return false;
  return true;
}

std::optional<std::string_view> FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers)
    if (IEquals(n, name)) return v;
  return std::nullopt;
}

bool IsCacheableStatus(int status) {
  switch (status) {
    case 200:
    case 203:
    case 204:
    case 300:
    case 301:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
      return true;
    default:
      return false;
  }
}

bool HasCacheControlDirective(std::string_view cc, std::string_view directive) {
  bool found = false;
  ForEachToken(cc, [&](std::string_view tok) {
    std::string_view name = Trim(tok.substr(0, tok.find('=')));
    if (IEquals(name, directive)) found = true;
  });
  return found;
}

std::vector<std::string> ParseVary(std::string_view vary, bool* star) {
  std::vector<std::string> out;
  *star = false;
  ForEachToken(vary, [&](std::string_view tok) {
    if (tok == "*") *star = true;
    std::string s(tok);
    for (char& c : s) c = Lower(c);
    out.push_back(std::move(s));
  });
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

StoreOutcome ResponseStorability(int status, const HeaderList& h,
                                 const differentiator::StoreDespite& despite) {
  bool status_ok = IsCacheableStatus(status) || (despite.status && status >= 200 && status < 500 &&
                                                 status != 206 && status != 304);
  if (!status_ok) return StoreOutcome::kUncacheableStatus;
  bool has_cookie = false, priv = false, no_store = false, star = false;
  for (const auto& [n, v] : h) {
    if (IEquals(n, "set-cookie")) has_cookie = true;
    if (IEquals(n, "cache-control")) {
      priv |= HasCacheControlDirective(v, "private");
      no_store |= HasCacheControlDirective(v, "no-store");
    }
    if (IEquals(n, "vary")) {
      bool s = false;
      ParseVary(v, &s);
      star |= s;
    }
  }
  if (no_store && !despite.no_store) return StoreOutcome::kNoStore;
  if (priv && !despite.private_) return StoreOutcome::kPrivate;
  if (has_cookie && !despite.set_cookie) return StoreOutcome::kSetCookie;
  if (star) return StoreOutcome::kVaryStar;
  return StoreOutcome::kStored;
}

uint64_t Fnv1a64(std::string_view bytes, uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string StrongEtagFor(std::string_view body) {
  // FNV-1a 64 plus the length: a validator, not a security property.
  uint64_t h = Fnv1a64(body);
  char buf[48];
  std::snprintf(buf, sizeof buf, "\"cp-%016llx-%zx\"", static_cast<unsigned long long>(h),
                body.size());
  return buf;
}

bool IfNoneMatchMatches(std::string_view inm, std::string_view etag) {
  auto opaque = [](std::string_view t) {
    t = Trim(t);
    if (t.size() >= 2 && t[0] == 'W' && t[1] == '/') t.remove_prefix(2);
    return t;
  };
  if (etag.empty()) return false;
  std::string_view want = opaque(etag);
  bool match = false;
  ForEachToken(inm, [&](std::string_view tok) {
    if (tok == "*" || opaque(tok) == want) match = true;
  });
  return match;
}

std::optional<int64_t> ParseHttpDate(std::string_view date) {
  std::string s(Trim(date));
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

std::string FormatHttpDate(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

bool NotModifiedSince(std::string_view ims, std::string_view last_modified) {
  auto since = ParseHttpDate(ims);
  auto lm = ParseHttpDate(last_modified);
  return since && lm && *lm <= *since;
}

std::optional<std::string_view> CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = Trim(header.substr(0, semi));
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && Trim(pair.substr(0, eq)) == name)
      return Trim(pair.substr(eq + 1));
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

bool IsHopByHop(std::string_view n) {
  static constexpr std::string_view kHop[] = {"connection",
                                              "keep-alive",
                                              "proxy-connection",
                                              "te",
                                              "trailer",
                                              "transfer-encoding",
                                              "upgrade",
                                              "proxy-authenticate",
                                              "proxy-authorization"};
  for (auto h : kHop)
    if (IEquals(n, h)) return true;
  return false;
}

}  // namespace cacheportal::edge
