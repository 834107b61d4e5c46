// Private to the differentiator: the byte-level parsers behind Decide().
// Each is a pure function over string_views; none allocates unless it has to
// produce a decoded value. Failures come back as a short reason string (a
// string literal) that ends up in Decision::reason, never as an exception.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "differentiator/differentiator.h"

namespace cacheportal::differentiator::internal {

// ASCII case-insensitive equality (header names, media types, path params).
bool IEquals(std::string_view a, std::string_view b);

// Glob over a name: '*' matches any run of characters (possibly empty);
// everything else is literal. Used for strip lists ("utm_*").
bool NameGlobMatch(std::string_view pattern, std::string_view name);

// Path glob compiled at load: segments of the pattern after the leading '/'.
// "**" (a whole segment) matches zero or more path segments; '*' inside a
// segment matches any run of characters except '/'.
struct PathGlob {
  std::vector<std::string> segments;
  bool Matches(std::string_view canonical_path) const;
};
// Checks a glob's syntax; on error returns a message (else empty).
std::string CompilePathGlob(std::string_view text, PathGlob* out);

// The literal text every match of an ECMAScript regex must start with, when
// it is anchored with '^' and has no alternation; "" when unknown. *exact
// (optional) is set when the regex matches that text and nothing else
// ("^/frag/items$"), so the regex need not run at all.
std::string RegexLiteralPrefix(std::string_view re, bool* exact = nullptr);

// Which ";name=value" path parameters to drop.
struct PathParamStrip {
  bool all = false;                                 // drop every parameter (used for matching)
  const std::vector<std::string>* names = nullptr;  // globs, case-insensitive
  bool Drops(std::string_view decoded_name) const;
};

// Canonical form of an origin-form path (no query): percent-encoding
// normalised (unreserved decoded, other escapes upper-case, bytes outside
// pchar escaped), path parameters filtered, duplicate slashes collapsed, dot
// segments resolved. Returns nullptr on success, else the reason.
const char* CanonicalisePath(std::string_view raw_path, const PathParamStrip& strip,
                             std::string* out);

// Percent-decoding with '+' as space (form and query encoding), appended to *out.
void FormDecodeAppend(std::string_view in, std::string* out);

// Calls f(name_raw, value_raw, piece_raw, has_equals) for every non-empty
// '&'-separated piece of a query or form body.
template <typename F>
void ForEachFormPiece(std::string_view s, F&& f) {
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t amp = s.find('&', pos);
    if (amp == std::string_view::npos) amp = s.size();
    std::string_view piece = s.substr(pos, amp - pos);
    if (!piece.empty()) {
      size_t eq = piece.find('=');
      if (eq == std::string_view::npos) {
        f(piece, std::string_view{}, piece);
      } else {
        f(piece.substr(0, eq), piece.substr(eq + 1), piece);
      }
    }
    pos = amp + 1;
  }
}

// Finds cookie `name` across every Cookie header. Returns 0 if absent, 1 if
// present (value in *value), 2 if present more than once with different
// values (ambiguous: the origin might read either).
int FindCookie(const RequestView& req, std::string_view name, std::string_view* value);

// Values of every header `lname` (lower-case), joined with ", " in arrival
// order. False when absent.
bool JoinedHeader(const RequestView& req, std::string_view lname, std::string* out);

// The media type of a Content-Type value, lower-cased into *type, and the
// value of one parameter (unquoted) into *param_value when present.
void ParseContentType(std::string_view value, std::string* type, std::string_view param_name,
                      std::string* param_value, bool* has_param);

// Extracts the fields named in `wanted` from a POST body. On success appends
// (name, value) pairs in body order and returns nullptr; otherwise returns
// the reason the request must pass.
using FieldList = std::vector<std::pair<std::string, std::string>>;
const char* ExtractBodyFields(std::string_view content_type, std::string_view body,
                              const std::vector<std::string>& wanted, FieldList* out);

}  // namespace cacheportal::differentiator::internal
