// A minimal blocking HTTP/1.1 client over a real socket for the store's
// tests: one request per connection (Connection: close).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cacheportal::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct ClientResponse {
  int status = 0;  // 0: no parsable response
  Headers headers;
  std::string body;
  std::string error;  // why status is 0

  std::string Header(std::string_view name) const;  // first, "" if absent
  std::vector<std::string> All(std::string_view name) const;
};

ClientResponse HttpCall(uint16_t port, std::string_view method, std::string_view target,
                        const Headers& headers = {}, std::string_view body = {});

inline ClientResponse Get(uint16_t port, std::string_view target, const Headers& headers = {}) {
  return HttpCall(port, "GET", target, headers);
}

// POST with an application/x-www-form-urlencoded body.
ClientResponse PostForm(uint16_t port, std::string_view target, std::string_view body,
                        Headers headers = {});

}  // namespace cacheportal::testing
