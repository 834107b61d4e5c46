// Parsing of what a browser sends the store: the request target (path and
// query), application/x-www-form-urlencoded bodies and Cookie headers.
// Strict: malformed percent-escapes, invalid UTF-8 and NUL bytes are errors
// (the store answers 400) rather than being passed on to SQL.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cacheportal::store {

using FieldList = std::vector<std::pair<std::string, std::string>>;

class Fields {
 public:
  Fields() = default;
  explicit Fields(FieldList f) : fields_(std::move(f)) {}
  // The first value of `name`, if present.
  std::optional<std::string> Get(std::string_view name) const;
  const FieldList& all() const { return fields_; }

 private:
  FieldList fields_;
};

// "a=1&b=x%20y" (with '+' as space). InvalidArgument on a bad escape, invalid
// UTF-8 or a NUL byte. An empty string gives no fields.
Result<Fields> ParseUrlEncoded(std::string_view text);

// A POST body by its Content-Type, with the same field semantics as the
// differentiator's `body:` keys (docs/rules.md), so that requests the edge
// keys alike get the same page:
//  * application/x-www-form-urlencoded (as ParseUrlEncoded);
//  * multipart/form-data: `boundary` required, CRLF delimiters, the field
//    name from Content-Disposition: form-data; name="…", the part body
//    verbatim, closing delimiter required;
//  * application/json or */*+json: an object whose top-level members are
//    the fields (strings by value, other values as compact JSON; a repeated
//    member counts once, with its last value).
// An empty body gives no fields whatever the type. InvalidArgument for
// another type, malformed syntax, invalid UTF-8 or a NUL byte.
Result<Fields> ParseFormBody(std::string_view content_type, std::string_view body);

// Strict percent-decoding ('+' is a space when `plus_is_space`).
std::optional<std::string> DecodeComponent(std::string_view text, bool plus_is_space);

bool IsValidUtf8(std::string_view text);

// Splits "/path?query" at the first '?'.
std::pair<std::string_view, std::string_view> SplitTarget(std::string_view target);

// Cookie header values ("a=1; b=2") → name/value pairs, raw (not decoded).
FieldList ParseCookies(const std::vector<std::string_view>& header_values);

}  // namespace cacheportal::store
