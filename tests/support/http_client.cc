#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strings.h>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/session_cookie.h"

namespace cacheportal::testing {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (IEquals(k, name)) return v;
  return "";
}

bool HttpResponse::HasHeader(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (IEquals(k, name)) return true;
  return false;
}

Result<HttpResponse> HttpFetch(const std::string& host, uint16_t port, const HttpRequest& req,
                               int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  Fd s;
  s.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (s.fd < 0) return Status::IOError(std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Status::Unavailable("connect " + host + ":" + std::to_string(port) + ": " +
                               std::strerror(errno));
  int one = 1;
  ::setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  std::string out = req.method + " " + req.target + " HTTP/1.1\r\nHost: " + host + ":" +
                    std::to_string(port) + "\r\nConnection: close\r\n";
  bool has_length = false;
  for (const auto& [k, v] : req.headers) {
    out += k + ": " + v + "\r\n";
    if (IEquals(k, "content-length")) has_length = true;
  }
  if (!req.body.empty() && !has_length)
    out += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  out += "\r\n" + req.body;
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(s.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return Status::IOError(std::string("send: ") + std::strerror(errno));
    sent += static_cast<size_t>(n);
  }

  std::string in;
  char buf[16384];
  HttpResponse resp;
  size_t header_end = std::string::npos;
  size_t content_length = std::string::npos;
  bool chunked = false;
  bool head = req.method == "HEAD";
  for (;;) {
    if (header_end != std::string::npos) {
      size_t have = in.size() - header_end;
      if (head || resp.status == 304 || resp.status == 204 ||
          (resp.status >= 100 && resp.status < 200))
        break;
      if (content_length != std::string::npos && have >= content_length) break;
      if (chunked && in.find("\r\n0\r\n\r\n", header_end - 2) != std::string::npos) break;
    }
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0) return Status::TimedOut("HTTP response not complete in time");
    pollfd p{s.fd, POLLIN, 0};
    int pr = ::poll(&p, 1, left);
    if (pr == 0) return Status::TimedOut("HTTP response not complete in time");
    ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n < 0) return Status::IOError(std::string("recv: ") + std::strerror(errno));
    if (n == 0) break;
    in.append(buf, static_cast<size_t>(n));
    if (header_end == std::string::npos) {
      size_t e = in.find("\r\n\r\n");
      if (e == std::string::npos) continue;
      header_end = e + 4;
      std::string_view head_text(in.data(), e);
      size_t line_end = head_text.find("\r\n");
      std::string_view status_line = head_text.substr(0, line_end);
      if (status_line.size() < 12) return Status::Corruption("bad status line");
      resp.status = std::atoi(std::string(status_line.substr(9, 3)).c_str());
      while (line_end != std::string_view::npos) {
        size_t next = head_text.find("\r\n", line_end + 2);
        std::string_view line =
            head_text.substr(line_end + 2, next == std::string_view::npos ? std::string_view::npos
                                                                          : next - line_end - 2);
        size_t colon = line.find(':');
        if (colon != std::string_view::npos) {
          std::string_view v = line.substr(colon + 1);
          while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
          resp.headers.emplace_back(std::string(line.substr(0, colon)), std::string(v));
        }
        line_end = next;
      }
      std::string cl = resp.Header("content-length");
      if (!cl.empty()) content_length = std::stoull(cl);
      chunked = IEquals(resp.Header("transfer-encoding"), "chunked");
    }
  }
  if (header_end == std::string::npos)
    return Status::Corruption("connection closed before headers");
  std::string raw = in.substr(header_end);
  if (chunked) {
    size_t pos = 0;
    while (pos < raw.size()) {
      size_t eol = raw.find("\r\n", pos);
      if (eol == std::string::npos) break;
      size_t len = std::stoul(raw.substr(pos, eol - pos), nullptr, 16);
      if (len == 0) break;
      resp.body.append(raw, eol + 2, len);
      pos = eol + 2 + len + 2;
    }
  } else {
    resp.body = content_length == std::string::npos ? raw : raw.substr(0, content_length);
  }
  return resp;
}

Result<HttpResponse> HttpPostForm(uint16_t port, const std::string& target,
                                  const std::vector<std::pair<std::string, std::string>>& fields,
                                  std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest r;
  r.method = "POST";
  r.target = target;
  r.headers = std::move(headers);
  r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  for (const auto& [k, v] : fields) {
    if (!r.body.empty()) r.body += "&";
    r.body += PercentEncode(k) + "=" + PercentEncode(v);
  }
  return HttpFetch("127.0.0.1", port, r);
}

std::string SetCookieValue(const HttpResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (!IEquals(k, "set-cookie")) continue;
    std::string_view sv = v;
    sv = sv.substr(0, sv.find(';'));
    if (sv.substr(0, name.size()) == name && sv.size() > name.size() && sv[name.size()] == '=')
      return std::string(sv);
  }
  return "";
}

uint16_t PickFreePort() {
  Fd s;
  s.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

}  // namespace cacheportal::testing
