#include "differentiator/request_parsing.h"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>

namespace cacheportal::differentiator::internal {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// pchar minus '%' (handled separately) and minus ';' (split off as params
// before this is reached, so a literal ';' here can only be inside a param).
bool IsPathChar(unsigned char c) {
  if (IsUnreserved(c)) return true;
  switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
      return true;
    default:
      return false;
  }
}

constexpr char kHex[] = "0123456789ABCDEF";

void AppendEscaped(std::string* out, unsigned char c) {
  out->push_back('%');
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 15]);
}

// Appends the canonical percent-encoding of `in`; false on a malformed escape.
bool AppendCanonical(std::string_view in, std::string* out) {
  for (size_t i = 0; i < in.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      unsigned char d = static_cast<unsigned char>(hi * 16 + lo);
      if (IsUnreserved(d)) {
        out->push_back(static_cast<char>(d));
      } else {
        AppendEscaped(out, d);
      }
      i += 2;
    } else if (IsPathChar(c)) {
      out->push_back(static_cast<char>(c));
    } else {
      AppendEscaped(out, c);
    }
  }
  return true;
}

bool SegmentGlobMatch(std::string_view pat, std::string_view s) {
  // Iterative wildcard match with single-star backtracking: linear-ish, no
  // recursion, '*' never crosses '/' because segments contain none.
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pat.size() && pat[p] == '*') {
      star = p++;
      mark = i;
    } else if (p < pat.size() && pat[p] == s[i]) {
      ++p;
      ++i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

bool CaseInsensitiveGlob(std::string_view pat, std::string_view s) {
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pat.size() && pat[p] == '*') {
      star = p++;
      mark = i;
    } else if (p < pat.size() && Lower(pat[p]) == Lower(s[i])) {
      ++p;
      ++i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

// Path segment iteration: `pos` indexes the first byte of a segment;
// npos means "no more segments".
constexpr size_t kEnd = std::string_view::npos;

std::string_view SegmentAt(std::string_view path, size_t pos, size_t* next) {
  size_t slash = path.find('/', pos);
  if (slash == std::string_view::npos) {
    *next = kEnd;
    return path.substr(pos);
  }
  *next = slash + 1;
  return path.substr(pos, slash - pos);
}

bool GlobFrom(const std::vector<std::string>& pat, size_t pi, std::string_view path, size_t pos) {
  if (pi == pat.size()) return pos == kEnd;
  if (pat[pi] == "**") {
    for (;;) {
      if (GlobFrom(pat, pi + 1, path, pos)) return true;
      if (pos == kEnd) return false;
      size_t next;
      SegmentAt(path, pos, &next);
      pos = next;
    }
  }
  if (pos == kEnd) return false;
  size_t next;
  std::string_view seg = SegmentAt(path, pos, &next);
  if (!SegmentGlobMatch(pat[pi], seg)) return false;
  return GlobFrom(pat, pi + 1, path, next);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool Wanted(const std::vector<std::string>& wanted, std::string_view name) {
  for (const auto& w : wanted) {
    if (w == name) return true;
  }
  return false;
}

// Reads a token or quoted-string parameter value starting at s[*i].
std::string ReadParamValue(std::string_view s, size_t* i) {
  std::string v;
  if (*i < s.size() && s[*i] == '"') {
    ++*i;
    while (*i < s.size() && s[*i] != '"') {
      if (s[*i] == '\\' && *i + 1 < s.size()) ++*i;
      v.push_back(s[(*i)++]);
    }
    if (*i < s.size()) ++*i;  // closing quote
  } else {
    while (*i < s.size() && s[*i] != ';') v.push_back(s[(*i)++]);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
  }
  return v;
}

// Iterates "; name=value" parameters after a media type or disposition type.
template <typename F>
void ForEachParam(std::string_view s, F&& f) {
  size_t i = s.find(';');
  while (i != std::string_view::npos && i < s.size()) {
    ++i;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t eq = s.find('=', i);
    size_t semi = s.find(';', i);
    if (eq == std::string_view::npos || (semi != std::string_view::npos && semi < eq)) {
      i = semi;
      continue;
    }
    std::string_view name = Trim(s.substr(i, eq - i));
    size_t v = eq + 1;
    while (v < s.size() && (s[v] == ' ' || s[v] == '\t')) ++v;
    std::string value = ReadParamValue(s, &v);
    f(name, value);
    i = s.find(';', v);
  }
}

const char* ExtractForm(std::string_view body, const std::vector<std::string>& wanted,
                        FieldList* out) {
  std::string name;
  ForEachFormPiece(body, [&](std::string_view n, std::string_view v, std::string_view) {
    name.clear();
    FormDecodeAppend(n, &name);
    if (!Wanted(wanted, name)) return;
    std::string value;
    FormDecodeAppend(v, &value);
    out->emplace_back(name, std::move(value));
  });
  return nullptr;
}

const char* ExtractMultipart(std::string_view content_type, std::string_view body,
                             const std::vector<std::string>& wanted, FieldList* out) {
  std::string type, boundary;
  bool has_boundary = false;
  ParseContentType(content_type, &type, "boundary", &boundary, &has_boundary);
  if (!has_boundary || boundary.empty()) return "multipart body without boundary";
  if (boundary.size() > 70) return "multipart boundary longer than 70 characters";
  const std::string delim = "--" + boundary;
  const std::string crlf_delim = "\r\n" + delim;
  size_t pos;
  if (body.substr(0, delim.size()) == delim) {
    pos = delim.size();
  } else {
    size_t at = body.find(crlf_delim);  // after a preamble
    if (at == std::string_view::npos) return "multipart body has no boundary line";
    pos = at + crlf_delim.size();
  }
  for (;;) {
    if (body.substr(pos, 2) == "--") return nullptr;  // close delimiter
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) != "\r\n") {
      return pos >= body.size() ? "truncated multipart body" : "malformed multipart boundary line";
    }
    pos += 2;
    size_t content_start;
    std::string_view headers;
    if (body.substr(pos, 2) == "\r\n") {
      content_start = pos + 2;
    } else {
      size_t end = body.find("\r\n\r\n", pos);
      if (end == std::string_view::npos) return "truncated multipart body";
      headers = body.substr(pos, end - pos + 2);
      content_start = end + 4;
    }
    size_t content_end = body.find(crlf_delim, content_start);
    if (content_end == std::string_view::npos) return "truncated multipart body";
    std::string name;
    bool has_name = false;
    size_t line_start = 0;
    while (line_start < headers.size()) {
      size_t eol = headers.find("\r\n", line_start);
      if (eol == std::string_view::npos) eol = headers.size();
      std::string_view line = headers.substr(line_start, eol - line_start);
      line_start = eol + 2;
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) return "malformed multipart part header";
      if (!IEquals(Trim(line.substr(0, colon)), "content-disposition")) continue;
      std::string_view disp = Trim(line.substr(colon + 1));
      std::string_view disp_type = Trim(disp.substr(0, disp.find(';')));
      if (!IEquals(disp_type, "form-data")) return "multipart part is not form-data";
      ForEachParam(disp, [&](std::string_view pn, const std::string& pv) {
        if (IEquals(pn, "name")) {
          name = pv;
          has_name = true;
        }
      });
    }
    if (!has_name) return "multipart part without a field name";
    if (Wanted(wanted, name)) {
      out->emplace_back(std::move(name),
                        std::string(body.substr(content_start, content_end - content_start)));
    }
    pos = content_end + crlf_delim.size();
  }
}

const char* ExtractJson(std::string_view body, const std::vector<std::string>& wanted,
                        FieldList* out) {
  // Small bodies parse into a stack buffer; larger ones spill to the heap.
  unsigned char buffer[4096];
  boost::json::monotonic_resource mr(buffer, sizeof buffer);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec, &mr);
  if (ec) return "unparsable JSON body";
  if (!v.is_object()) return "JSON body is not an object";
  for (const auto& kv : v.as_object()) {
    std::string_view key(kv.key().data(), kv.key().size());
    if (!Wanted(wanted, key)) continue;
    if (kv.value().is_string()) {
      const auto& s = kv.value().as_string();
      out->emplace_back(std::string(key), std::string(s.data(), s.size()));
    } else {
      out->emplace_back(std::string(key), boost::json::serialize(kv.value()));
    }
  }
  return nullptr;
}

}  // namespace

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool NameGlobMatch(std::string_view pattern, std::string_view name) {
  return SegmentGlobMatch(pattern, name);
}

bool PathGlob::Matches(std::string_view path) const {
  if (path.empty() || path[0] != '/') return false;
  return GlobFrom(segments, 0, path, 1);
}

std::string CompilePathGlob(std::string_view text, PathGlob* out) {
  if (text.empty() || text[0] != '/') return "path glob must start with '/'";
  for (char c : text) {
    if (c == '?' || c == '#' || c == '[' || c == ']' || c == '{' || c == '}') {
      return std::string("'") + c +
             "' is not supported in path globs (only * and **); use path_regex";
    }
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return "path glob contains whitespace or a control character";
    }
  }
  out->segments.clear();
  size_t pos = 1;
  for (;;) {
    size_t next;
    std::string_view seg = SegmentAt(text, pos, &next);
    if (seg.find("**") != std::string_view::npos && seg != "**") {
      return "'**' must be a whole path segment (as in /a/**/b)";
    }
    if (seg.find(';') != std::string_view::npos) {
      return "path globs match the path without ;parameters; remove the ';'";
    }
    out->segments.emplace_back(seg);
    if (next == kEnd) break;
    pos = next;
  }
  return {};
}

std::string RegexLiteralPrefix(std::string_view re, bool* exact) {
  if (exact) *exact = false;
  if (re.empty() || re[0] != '^' || re.find('|') != std::string_view::npos) return {};
  constexpr std::string_view kMeta = ".^$|?*+()[]{}\\";
  std::string out;
  size_t i = 1;
  while (i < re.size()) {
    char literal;
    size_t next;
    if (re[i] == '\\') {
      // Escaped punctuation is a literal; \d, \w, \b... are not.
      if (i + 1 >= re.size() ||
          std::string_view(".^$|?*+()[]{}/\\-").find(re[i + 1]) == std::string_view::npos) {
        break;
      }
      literal = re[i + 1];
      next = i + 2;
    } else if (kMeta.find(re[i]) != std::string_view::npos) {
      if (exact && re[i] == '$' && i + 1 == re.size()) *exact = true;
      break;
    } else {
      literal = re[i];
      next = i + 1;
    }
    if (next < re.size() && (re[next] == '?' || re[next] == '*' || re[next] == '{')) break;
    out.push_back(literal);
    if (next < re.size() && re[next] == '+') break;
    i = next;
  }
  return out;
}

bool PathParamStrip::Drops(std::string_view name) const {
  if (all) return true;
  if (names == nullptr) return false;
  for (const auto& n : *names) {
    if (CaseInsensitiveGlob(n, name)) return true;
  }
  return false;
}

const char* CanonicalisePath(std::string_view raw, const PathParamStrip& strip, std::string* out) {
  out->clear();
  if (raw.empty() || raw[0] != '/') return "target is not in origin-form";
  bool trailing_slash = false;
  size_t pos = 1;
  std::string decoded_name;
  for (;;) {
    size_t next;
    std::string_view seg = SegmentAt(raw, pos, &next);
    bool last = next == kEnd;
    size_t semi = seg.find(';');
    std::string_view base = seg.substr(0, semi);
    size_t seg_start = out->size();
    out->push_back('/');
    if (!AppendCanonical(base, out)) return "malformed percent-encoding in path";
    std::string_view canon_base = std::string_view(*out).substr(seg_start + 1);
    bool dot = canon_base == ".";
    bool dotdot = canon_base == "..";
    if (!dot && !dotdot && semi != std::string_view::npos) {
      std::string_view params = seg.substr(semi + 1);
      size_t p = 0;
      while (p <= params.size()) {
        size_t e = params.find(';', p);
        if (e == std::string_view::npos) e = params.size();
        std::string_view param = params.substr(p, e - p);
        p = e + 1;
        if (param.empty()) continue;
        std::string_view pname = param.substr(0, param.find('='));
        decoded_name.clear();
        FormDecodeAppend(pname, &decoded_name);
        if (strip.Drops(decoded_name)) continue;
        out->push_back(';');
        if (!AppendCanonical(param, out)) return "malformed percent-encoding in path";
      }
    }
    if (dot || dotdot) {
      out->resize(seg_start);
      if (dotdot) {
        size_t prev = out->rfind('/');
        out->resize(prev == std::string::npos ? 0 : prev);
      }
      trailing_slash = last;
    } else if (out->size() == seg_start + 1) {
      // Empty segment: a duplicate slash (collapsed) or the trailing slash.
      out->resize(seg_start);
      trailing_slash = last;
    } else {
      trailing_slash = false;
    }
    if (last) break;
    pos = next;
  }
  if (out->empty() || trailing_slash) out->push_back('/');
  return nullptr;
}

void FormDecodeAppend(std::string_view in, std::string* out) {
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 && HexValue(in[i + 2]) >= 0) {
      out->push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else if (c == '+') {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
}

int FindCookie(const RequestView& req, std::string_view name, std::string_view* value) {
  int found = 0;
  for (const auto& [hname, hvalue] : req.headers) {
    if (!IEquals(hname, "cookie")) continue;
    size_t pos = 0;
    while (pos <= hvalue.size()) {
      size_t semi = hvalue.find(';', pos);
      if (semi == std::string_view::npos) semi = hvalue.size();
      std::string_view pair = Trim(hvalue.substr(pos, semi - pos));
      pos = semi + 1;
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (Trim(pair.substr(0, eq)) != name) continue;
      std::string_view v = Trim(pair.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      if (found == 0) {
        *value = v;
        found = 1;
      } else if (*value != v) {
        return 2;
      }
    }
  }
  return found;
}

bool JoinedHeader(const RequestView& req, std::string_view lname, std::string* out) {
  bool found = false;
  for (const auto& [hname, hvalue] : req.headers) {
    if (!IEquals(hname, lname)) continue;
    if (found) out->append(", ");
    out->append(Trim(hvalue));
    found = true;
  }
  return found;
}

void ParseContentType(std::string_view value, std::string* type, std::string_view param_name,
                      std::string* param_value, bool* has_param) {
  std::string_view t = Trim(value.substr(0, value.find(';')));
  type->clear();
  for (char c : t) type->push_back(Lower(c));
  *has_param = false;
  ForEachParam(value, [&](std::string_view n, const std::string& v) {
    if (!*has_param && IEquals(n, param_name)) {
      *param_value = v;
      *has_param = true;
    }
  });
}

const char* ExtractBodyFields(std::string_view content_type, std::string_view body,
                              const std::vector<std::string>& wanted, FieldList* out) {
  std::string type, unused;
  bool has = false;
  ParseContentType(content_type, &type, "", &unused, &has);
  if (type.empty()) {
    if (body.empty()) return nullptr;  // no fields: all absent
    return "POST body without Content-Type";
  }
  try {
    if (type == "application/x-www-form-urlencoded") return ExtractForm(body, wanted, out);
    if (type == "multipart/form-data") return ExtractMultipart(content_type, body, wanted, out);
    if (type == "application/json" ||
        (type.size() > 5 && type.compare(type.size() - 5, 5, "+json") == 0)) {
      return ExtractJson(body, wanted, out);
    }
  } catch (const std::exception&) {
    return "unparsable POST body";
  }
  return "unsupported POST body Content-Type";
}

}  // namespace cacheportal::differentiator::internal
