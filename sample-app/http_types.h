// Plain HTTP request/response values exchanged between the store's I/O layer
// (store_server.cc, Boost.Beast) and its answer layer (StoreApp). Keeping them
// free of Beast lets the pages be built and tested without sockets.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cacheportal::store {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form: "/product/FI-SW-01?x=1"
  HeaderList headers;  // as received; names compared case-insensitively
  std::string body;

  // The first header with this name ("" when absent).
  std::string_view Header(std::string_view name) const;
  // Every value of a header (Cookie may be split over several lines).
  std::vector<std::string_view> Headers(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  HeaderList headers;  // Content-Type etc.; Content-Length is added by the I/O layer
  std::string body;

  void Set(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace cacheportal::store
