// A small blocking HTTP/1.1 client for the benchmark: one keep-alive
// connection per simulated user, Content-Length and chunked bodies, a
// deadline on every connect, send and receive. Not thread-safe: one client
// per thread. No TLS.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cacheportal::bench {

// "http://host:port" (path ignored); the port defaults to 80.
struct BaseUrl {
  std::string host;
  uint16_t port = 80;
  std::string ToString() const { return "http://" + host + ":" + std::to_string(port); }
};
Result<BaseUrl> ParseBaseUrl(std::string_view url);

struct Request {
  std::string method = "GET";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent with Content-Length when non-empty or for POST
};

struct Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // First value of a header (case-insensitive), "" when absent.
  std::string_view Header(std::string_view name) const;
};

// Parses a complete response head ("HTTP/1.1 200 OK\r\n...\r\n\r\n", without
// the body) into `out`. Pure; exposed for tests.
Status ParseResponseHead(std::string_view head, Response* out);

// The bytes of `req` on the wire to `base` (Host, and Content-Length for a
// body or any POST).
std::string SerializeRequest(const Request& req, const BaseUrl& base);

// What ParseResponse found at the front of a receive buffer.
struct ParsedResponse {
  size_t consumed = 0;       // bytes of the buffer the response used; 0 = incomplete
  bool close = false;        // the server closes the connection after it
  bool until_close = false;  // no length: the body runs to the connection's end
  size_t body_offset = 0;    // with until_close: where the body starts in the buffer
};
// Parses one response at the front of `buf` (a reply to a HEAD request when
// `head_request`). Incomplete input gives consumed == 0 (and, for a body
// delimited by the connection's end, until_close: the caller takes what
// arrived once the peer closes). Pure; shared by the blocking client and the
// event-driven users.
Result<ParsedResponse> ParseResponse(std::string_view buf, bool head_request, Response* out);

class HttpClient {
 public:
  HttpClient(BaseUrl base, int timeout_ms = 10000)
      : base_(std::move(base)), timeout_ms_(timeout_ms) {}
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on the kept connection (reconnecting once if the server
  // closed an idle one) and reads the whole response.
  Result<Response> Send(const Request& req);
  Result<Response> Get(const std::string& target,
                       std::vector<std::pair<std::string, std::string>> headers = {});
  void Close();

 private:
  Status Connect();
  Result<Response> SendOnce(const Request& req, bool* retryable);
  Status ReadMore();

  BaseUrl base_;
  int timeout_ms_;
  int fd_ = -1;
  std::string buf_;  // bytes received and not yet consumed
};

}  // namespace cacheportal::bench
