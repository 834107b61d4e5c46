#include "sample-app/form.h"

#include <boost/json.hpp>

#include "sample-app/http_types.h"

namespace cacheportal::store {
namespace {

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (Lower(a[i]) != Lower(b[i])) return false;
  return true;
}

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (EqualsIgnoreCase(k, name)) return v;
  return {};
}

std::vector<std::string_view> HttpRequest::Headers(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : headers)
    if (EqualsIgnoreCase(k, name)) out.push_back(v);
  return out;
}

std::optional<std::string> Fields::Get(std::string_view name) const {
  for (const auto& [k, v] : fields_)
    if (k == name) return v;
  return std::nullopt;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int extra;
    uint32_t cp;
    if (c < 0x80) {
      if (c == 0) return false;  // libpq parameters end at NUL
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values beyond U+10FFFF.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += extra + 1;
  }
  return true;
}

std::optional<std::string> DecodeComponent(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = Hex(text[i + 1]), lo = Hex(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  if (!IsValidUtf8(out)) return std::nullopt;
  return out;
}

Result<Fields> ParseUrlEncoded(std::string_view text) {
  FieldList fields;
  size_t start = 0;
  while (start <= text.size()) {
    size_t amp = text.find('&', start);
    if (amp == std::string_view::npos) amp = text.size();
    std::string_view pair = text.substr(start, amp - start);
    start = amp + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view k = pair.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    auto dk = DecodeComponent(k, true);
    auto dv = DecodeComponent(v, true);
    if (!dk || !dv) return Status::InvalidArgument("malformed form field");
    fields.emplace_back(std::move(*dk), std::move(*dv));
  }
  return Fields(std::move(fields));
}

std::pair<std::string_view, std::string_view> SplitTarget(std::string_view target) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

FieldList ParseCookies(const std::vector<std::string_view>& header_values) {
  FieldList out;
  for (std::string_view h : header_values) {
    size_t start = 0;
    while (start < h.size()) {
      size_t semi = h.find(';', start);
      if (semi == std::string_view::npos) semi = h.size();
      std::string_view item = Trim(h.substr(start, semi - start));
      start = semi + 1;
      size_t eq = item.find('=');
      if (eq == std::string_view::npos || eq == 0) continue;
      std::string_view value = Trim(item.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      out.emplace_back(std::string(Trim(item.substr(0, eq))), std::string(value));
    }
  }
  return out;
}

}  // namespace cacheportal::store

namespace cacheportal::store {
namespace {

std::string_view TrimAll(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The value of parameter `name` in "type; a=b; name=\"v\"" (unquoted), if present.
std::optional<std::string> HeaderParam(std::string_view header, std::string_view name) {
  size_t pos = header.find(';');
  while (pos != std::string_view::npos) {
    std::string_view rest = header.substr(pos + 1);
    size_t next = std::string_view::npos;
    std::string_view item;
    // A quoted value may contain ';'.
    size_t eq = rest.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = TrimAll(rest.substr(0, eq));
    std::string_view after = rest.substr(eq + 1);
    size_t lead = after.find_first_not_of(" \t");
    if (lead == std::string_view::npos) return std::nullopt;
    after = after.substr(lead);
    std::string value;
    if (!after.empty() && after.front() == '"') {
      size_t i = 1;
      for (; i < after.size() && after[i] != '"'; ++i) {
        if (after[i] == '\\' && i + 1 < after.size()) ++i;
        value.push_back(after[i]);
      }
      if (i >= after.size()) return std::nullopt;
      size_t semi = after.find(';', i);
      next = semi == std::string_view::npos ? std::string_view::npos
                                            : (after.data() + semi) - header.data();
    } else {
      size_t semi = after.find(';');
      item = TrimAll(after.substr(0, semi));
      value = std::string(item);
      next = semi == std::string_view::npos ? std::string_view::npos
                                            : (after.data() + semi) - header.data();
    }
    if (EqualsIgnoreCase(key, name)) return value;
    pos = next;
  }
  return std::nullopt;
}

Result<Fields> ParseMultipart(std::string_view content_type, std::string_view body) {
  auto boundary = HeaderParam(content_type, "boundary");
  if (!boundary || boundary->empty() || boundary->size() > 70)
    return Status::InvalidArgument("multipart body without a valid boundary");
  const std::string delim = "--" + *boundary;
  // The first delimiter opens the body or follows a preamble line.
  size_t pos;
  if (body.substr(0, delim.size()) == delim) {
    pos = delim.size();
  } else {
    size_t at = body.find("\r\n" + delim);
    if (at == std::string_view::npos) return Status::InvalidArgument("multipart: no boundary line");
    pos = at + 2 + delim.size();
  }
  FieldList fields;
  const std::string next_delim = "\r\n" + delim;
  for (;;) {
    if (body.substr(pos, 2) == "--") return Fields(std::move(fields));  // closing delimiter
    if (body.substr(pos, 2) != "\r\n")
      return Status::InvalidArgument("multipart: bad boundary line");
    pos += 2;
    size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) return Status::InvalidArgument("multipart: truncated");
    std::optional<std::string> name;
    std::string_view headers = body.substr(pos, head_end - pos);
    size_t line_start = 0;
    while (line_start <= headers.size()) {
      size_t eol = headers.find("\r\n", line_start);
      if (eol == std::string_view::npos) eol = headers.size();
      std::string_view line = headers.substr(line_start, eol - line_start);
      line_start = eol + 2;
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        if (line.empty()) continue;
        return Status::InvalidArgument("multipart: malformed part header");
      }
      if (!EqualsIgnoreCase(TrimAll(line.substr(0, colon)), "Content-Disposition")) continue;
      std::string_view value = TrimAll(line.substr(colon + 1));
      std::string_view kind = TrimAll(value.substr(0, value.find(';')));
      if (!EqualsIgnoreCase(kind, "form-data"))
        return Status::InvalidArgument("multipart: part is not form-data");
      name = HeaderParam(value, "name");
    }
    if (!name || name->empty()) return Status::InvalidArgument("multipart: part without a name");
    size_t value_start = head_end + 4;
    size_t value_end = body.find(next_delim, value_start);
    if (value_end == std::string_view::npos) return Status::InvalidArgument("multipart: truncated");
    std::string_view value = body.substr(value_start, value_end - value_start);
    if (!IsValidUtf8(*name) || !IsValidUtf8(value))
      return Status::InvalidArgument("multipart: field is not UTF-8 text");
    fields.emplace_back(std::move(*name), std::string(value));
    pos = value_end + next_delim.size();
  }
}

Result<Fields> ParseJson(std::string_view body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec) return Status::InvalidArgument("unparsable JSON body");
  if (!v.is_object()) return Status::InvalidArgument("JSON body is not an object");
  FieldList fields;
  for (const auto& member : v.as_object()) {
    std::string value = member.value().is_string() ? std::string(member.value().as_string())
                                                   : boost::json::serialize(member.value());
    std::string key(member.key());
    if (!IsValidUtf8(key) || !IsValidUtf8(value))
      return Status::InvalidArgument("JSON field is not text");
    fields.emplace_back(std::move(key), std::move(value));
  }
  return Fields(std::move(fields));
}

}  // namespace

Result<Fields> ParseFormBody(std::string_view content_type, std::string_view body) {
  if (body.empty()) return Fields();
  std::string_view type = TrimAll(content_type.substr(0, content_type.find(';')));
  if (EqualsIgnoreCase(type, "application/x-www-form-urlencoded")) return ParseUrlEncoded(body);
  if (EqualsIgnoreCase(type, "multipart/form-data")) return ParseMultipart(content_type, body);
  if (EqualsIgnoreCase(type, "application/json") ||
      (type.size() > 5 && EqualsIgnoreCase(type.substr(type.size() - 5), "+json")))
    return ParseJson(body);
  return Status::InvalidArgument("unsupported form Content-Type");
}

}  // namespace cacheportal::store
