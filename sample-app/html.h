// HTML text helpers for the store's pages.
#pragma once

#include <string>
#include <string_view>

namespace cacheportal::store {

// Escapes & < > " ' for element text and quoted attribute values.
std::string Esc(std::string_view text);

// An id as a URL path segment or query value inside an attribute:
// percent-encoded (RFC 3986 unreserved kept), then HTML-escaped.
std::string EscUrl(std::string_view id);

}  // namespace cacheportal::store
