// HTTP caching decisions (RFC 9111 subset) as pure functions over header
// values: no socket, no clock, no store. The fetch and lookup stages call them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "differentiator/differentiator.h"
#include "edgecache/outcomes.h"

namespace cacheportal::edge {

using HeaderList = std::vector<std::pair<std::string_view, std::string_view>>;

// First value of a header (case-insensitive name), or nullopt.
std::optional<std::string_view> FindHeader(const HeaderList& headers, std::string_view name);
bool IEquals(std::string_view a, std::string_view b);

// Heuristically cacheable status codes (RFC 9110 §15.1): 200 203 204 300 301 404 405 410 414 501.
bool IsCacheableStatus(int status);

// Whether an origin response may be stored. kStored means "storable".
// Set-Cookie, Cache-Control private/no-store and Vary: * are refused, unless
// the rule's `despite` allows them (Vary: * never). A response storable only
// thanks to despite.set_cookie must be stored without its Set-Cookie headers.
StoreOutcome ResponseStorability(int status, const HeaderList& response_headers,
                                 const differentiator::StoreDespite& despite = {});

// True when a Cache-Control value lists `directive` (case-insensitive, with or
// without an argument).
bool HasCacheControlDirective(std::string_view cache_control, std::string_view directive);

// Vary header → lowercase field names, sorted and unique. Sets *star on "*".
std::vector<std::string> ParseVary(std::string_view vary, bool* star);

// FNV-1a 64 of bytes (a content fingerprint, not a security property).
uint64_t Fnv1a64(std::string_view bytes, uint64_t seed = 1469598103934665603ull);

// A strong validator for a body the origin sent without an ETag.
std::string StrongEtagFor(std::string_view body);

// If-None-Match against an ETag, weak comparison (RFC 9110 §13.1.2); "*" matches.
bool IfNoneMatchMatches(std::string_view if_none_match, std::string_view etag);

// Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"); nullopt if invalid.
std::optional<int64_t> ParseHttpDate(std::string_view date);
std::string FormatHttpDate(int64_t unix_seconds);

// If-Modified-Since: true when the resource was not modified after the date.
bool NotModifiedSince(std::string_view if_modified_since, std::string_view last_modified);

// The value of cookie `name` in a Cookie header, or nullopt.
std::optional<std::string_view> CookieValue(std::string_view cookie_header, std::string_view name);

// Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded or stored.
bool IsHopByHop(std::string_view name);

}  // namespace cacheportal::edge
