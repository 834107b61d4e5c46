#include "common/traceparent.h"

#include "common/session_cookie.h"  // PercentDecode

#include <array>
#include <random>

namespace cacheportal {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

std::string RandomHex(size_t n) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n, '0');
  for (;;) {
    for (size_t i = 0; i < n; i += 16) {
      uint64_t v = rng();
      for (size_t j = i; j < n && j < i + 16; ++j) {
        out[j] = kHex[v & 0xf];
        v >>= 4;
      }
    }
    if (!AllZero(out)) return out;
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The body of the statement's last block comment (between "/*" and "*/"),
// when the statement ends with one (ignoring whitespace and one ';').
std::optional<std::string_view> TrailingComment(std::string_view sql) {
  auto trim_end = [](std::string_view s) {
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r'))
      s.remove_suffix(1);
    return s;
  };
  std::string_view s = trim_end(sql);
  if (!s.empty() && s.back() == ';') s = trim_end(s.substr(0, s.size() - 1));
  if (s.size() < 4 || s.substr(s.size() - 2) != "*/") return std::nullopt;
  size_t open = s.rfind("/*", s.size() - 3);
  if (open == std::string_view::npos) return std::nullopt;
  std::string_view body = s.substr(open + 2, s.size() - 2 - (open + 2));
  // A nested comment would make the backward scan ambiguous: refuse it.
  if (body.find("/*") != std::string_view::npos) return std::nullopt;
  return body;
}

}  // namespace

std::string TraceParent::ToHeader() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "00-" + trace_id + "-" + parent_id + "-";
  out.push_back(kHex[(flags >> 4) & 0xf]);
  out.push_back(kHex[flags & 0xf]);
  return out;
}

std::optional<TraceParent> TraceParent::Parse(std::string_view h) {
  while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  if (h.size() < 55) return std::nullopt;
  std::string_view version = h.substr(0, 2);
  if (!IsLowerHex(version) || version == "ff") return std::nullopt;
  if (version == "00" && h.size() != 55) return std::nullopt;
  if (h.size() > 55 && h[55] != '-') return std::nullopt;
  if (h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  std::string_view trace = h.substr(3, 32), parent = h.substr(36, 16), flags = h.substr(53, 2);
  if (!IsLowerHex(trace) || !IsLowerHex(parent) || !IsLowerHex(flags)) return std::nullopt;
  if (AllZero(trace) || AllZero(parent)) return std::nullopt;
  TraceParent tp;
  tp.trace_id = std::string(trace);
  tp.parent_id = std::string(parent);
  tp.flags = static_cast<unsigned>(HexValue(flags[0]) * 16 + HexValue(flags[1]));
  return tp;
}

TraceParent TraceParent::Generate() {
  TraceParent tp;
  tp.trace_id = RandomHex(32);
  tp.parent_id = RandomHex(16);
  tp.flags = 1;
  return tp;
}

TraceParent TraceParent::Child() const {
  TraceParent tp = *this;
  tp.parent_id = RandomHex(16);
  return tp;
}

std::string SqlCommentFor(const TraceParent& tp) {
  // Hex and '-' need no percent-encoding and contain no quote.
  return "/*traceparent='" + tp.ToHeader() + "'*/";
}

std::optional<std::string> RequestIdFromSql(std::string_view sql) {
  auto body = TrailingComment(sql);
  if (!body) return std::nullopt;
  std::string_view rest = *body;
  std::optional<std::string> from_key;
  while (!rest.empty()) {
    // Split on ',' outside quotes; a value's quote is escaped as \'.
    size_t i = 0;
    bool in_quote = false;
    for (; i < rest.size(); ++i) {
      char c = rest[i];
      if (c == '\\' && i + 1 < rest.size()) {
        ++i;
        continue;
      }
      if (c == '\'') in_quote = !in_quote;
      if (c == ',' && !in_quote) break;
    }
    std::string_view item = rest.substr(0, i);
    rest = i < rest.size() ? rest.substr(i + 1) : std::string_view{};
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key = PercentDecode(item.substr(0, eq));
    std::string_view raw = item.substr(eq + 1);
    if (raw.size() < 2 || raw.front() != '\'' || raw.back() != '\'') continue;
    raw = raw.substr(1, raw.size() - 2);
    std::string unescaped;
    for (size_t j = 0; j < raw.size(); ++j) {
      if (raw[j] == '\\' && j + 1 < raw.size() && raw[j + 1] == '\'') ++j;
      unescaped.push_back(raw[j]);
    }
    std::string value = PercentDecode(unescaped);
    if (key == "traceparent") {
      if (auto tp = TraceParent::Parse(value)) return tp->trace_id;
    } else if (key == "cacheportal_request") {
      if (value.size() == 32 && IsLowerHex(value) && !AllZero(value)) from_key = value;
    }
  }
  return from_key;
}

}  // namespace cacheportal
