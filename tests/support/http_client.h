// A small blocking HTTP/1.1 client over a real socket, for tests that talk to
// the edge, the store or an admin API. One request per connection unless a
// Connection is kept. Not for production use: no TLS, no chunked uploads.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cacheportal::testing {

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names as received
  std::string body;
  // First value of a header (case-insensitive name), "" when absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Sends one request on a new connection (Connection: close) and reads the
// whole response (Content-Length, chunked, or until close). Times out after
// `timeout_ms` with TimedOut.
Result<HttpResponse> HttpFetch(const std::string& host, uint16_t port, const HttpRequest& req,
                               int timeout_ms = 10000);

inline Result<HttpResponse> HttpGet(uint16_t port, const std::string& target,
                                    std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpRequest r;
  r.target = target;
  r.headers = std::move(headers);
  return HttpFetch("127.0.0.1", port, r);
}

// application/x-www-form-urlencoded POST.
Result<HttpResponse> HttpPostForm(uint16_t port, const std::string& target,
                                  const std::vector<std::pair<std::string, std::string>>& fields,
                                  std::vector<std::pair<std::string, std::string>> headers = {});

// Extracts "name=value" of a Set-Cookie header for `name` ("" when absent).
std::string SetCookieValue(const HttpResponse& r, std::string_view name);

// A port that was free a moment ago (bind to 0, read, close). For child
// processes that must be told their port up front.
uint16_t PickFreePort();

}  // namespace cacheportal::testing
