// W3C Trace Context `traceparent` (version 00) and the sqlcommenter comment
// that carries it into SQL. The trace id is CachePortal's request id: the edge
// mints one per origin fetch, the app copies it onto every statement, the
// sniffer reads it back. See ../shared/reference/sqlcommenter.md.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cacheportal {

struct TraceParent {
  std::string trace_id;   // 32 lowercase hex, not all zero: the request id
  std::string parent_id;  // 16 lowercase hex, not all zero
  unsigned flags = 1;     // bit 0x01 = sampled

  // "00-<trace_id>-<parent_id>-<flags>", exactly 55 characters.
  std::string ToHeader() const;

  // Parses a header value; an invalid one is absent (never "fixed up").
  // Versions above 00 are read by their first four fields, per the spec.
  static std::optional<TraceParent> Parse(std::string_view header);

  // A fresh random trace id and parent id (thread-safe, no global lock).
  static TraceParent Generate();

  // Same trace id, new parent id: what an app does when it calls on.
  TraceParent Child() const;
};

// sqlcommenter: "key='value',…" pairs, keys sorted, percent-encoded, inside
// "/*…*/", appended after the statement with one space.
std::string SqlCommentFor(const TraceParent& tp);

// Finds the request id of a statement: the trace id of a valid `traceparent`
// in the statement's last block comment, or the value of a
// `cacheportal_request` key (32 hex). Tolerates a trailing ';', spaces inside
// the comment, '+' for space, and comments before or after the ';'.
// Returns nullopt when the statement carries no valid request id.
std::optional<std::string> RequestIdFromSql(std::string_view sql);

}  // namespace cacheportal
