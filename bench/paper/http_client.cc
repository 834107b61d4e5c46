#include "bench/paper/http_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

namespace cacheportal::bench {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

Result<BaseUrl> ParseBaseUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme)
    return Status::InvalidArgument("URL must start with http:// : " + std::string(url));
  url.remove_prefix(kScheme.size());
  url = url.substr(0, url.find('/'));
  BaseUrl b;
  size_t colon = url.rfind(':');
  if (colon == std::string_view::npos) {
    b.host = std::string(url);
  } else {
    b.host = std::string(url.substr(0, colon));
    std::string_view p = url.substr(colon + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || end != p.data() + p.size() || v == 0 || v > 65535)
      return Status::InvalidArgument("bad port in URL: " + std::string(p));
    b.port = static_cast<uint16_t>(v);
  }
  if (b.host.empty()) return Status::InvalidArgument("URL has no host");
  return b;
}

std::string_view Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (IEquals(k, name)) return v;
  return {};
}

Status ParseResponseHead(std::string_view head, Response* out) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  if (line.substr(0, 5) != "HTTP/" || line.size() < 12)
    return Status::InvalidArgument("bad status line");
  std::string_view code = line.substr(9, 3);
  int status = 0;
  auto [end, ec] = std::from_chars(code.data(), code.data() + 3, status);
  if (ec != std::errc() || end != code.data() + 3 || status < 100)
    return Status::InvalidArgument("bad status code");
  out->status = status;
  out->headers.clear();
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string_view::npos) e = head.size();
    std::string_view h = head.substr(pos, e - pos);
    pos = e + 2;
    if (h.empty()) break;
    size_t colon = h.find(':');
    if (colon == std::string_view::npos) return Status::InvalidArgument("bad header line");
    out->headers.emplace_back(std::string(Trim(h.substr(0, colon))),
                              std::string(Trim(h.substr(colon + 1))));
  }
  return Status::OK();
}

HttpClient::~HttpClient() { Close(); }

void HttpClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buf_.clear();
}

Status HttpClient::Connect() {
  Close();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(base_.port);
  if (int rc = ::getaddrinfo(base_.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return Status::Unavailable(std::string("resolve ") + base_.host + ": " + gai_strerror(rc));
  Status st = Status::Unavailable("connect " + base_.ToString() + " failed");
  for (addrinfo* a = res; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      fd_ = fd;
      st = Status::OK();
      break;
    }
    st = Status::Unavailable("connect " + base_.ToString() + ": " + std::strerror(errno));
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return st;
}

Status HttpClient::ReadMore() {
  char tmp[16384];
  for (;;) {
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
      return Status::OK();
    }
    if (n == 0) return Status::IOError("connection closed by peer");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::TimedOut("read timed out");
    return Status::IOError(std::string("recv: ") + std::strerror(errno));
  }
}

Result<Response> HttpClient::Send(const Request& req) {
  bool retryable = false;
  auto r = SendOnce(req, &retryable);
  // A kept connection the server closed while idle fails before any response
  // byte arrives; one fresh connection is then safe to try.
  if (!r.ok() && retryable) {
    Close();
    r = SendOnce(req, &retryable);
  }
  if (!r.ok()) Close();
  return r;
}

Result<Response> HttpClient::Get(const std::string& target,
                                 std::vector<std::pair<std::string, std::string>> headers) {
  Request r;
  r.target = target;
  r.headers = std::move(headers);
  return Send(r);
}

Result<Response> HttpClient::SendOnce(const Request& req, bool* retryable) {
  bool reused = fd_ >= 0;
  *retryable = false;
  if (!reused) {
    if (Status s = Connect(); !s.ok()) return s;
  }
  std::string out = req.method + " " + req.target + " HTTP/1.1\r\nHost: " + base_.host + ":" +
                    std::to_string(base_.port) + "\r\n";
  for (const auto& [k, v] : req.headers) out += k + ": " + v + "\r\n";
  if (!req.body.empty() || req.method == "POST")
    out += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  out += "\r\n";
  out += req.body;
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      *retryable = reused;
      return Status::IOError(std::string("send: ") + std::strerror(errno));
    }
    sent += static_cast<size_t>(n);
  }
  // Head.
  size_t head_end;
  while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (buf_.size() > 1 << 20) return Status::IOError("response head too large");
    Status s = ReadMore();
    if (!s.ok()) {
      *retryable = reused && buf_.empty() && !s.IsTimedOut();
      return s;
    }
  }
  Response resp;
  if (Status s = ParseResponseHead(std::string_view(buf_).substr(0, head_end + 2), &resp); !s.ok())
    return s;
  buf_.erase(0, head_end + 4);
  bool head_only =
      req.method == "HEAD" || resp.status == 204 || resp.status == 304 || resp.status < 200;
  bool close = IEquals(resp.Header("Connection"), "close");
  std::string_view te = resp.Header("Transfer-Encoding");
  std::string_view cl = resp.Header("Content-Length");
  if (head_only) {
  } else if (!te.empty() && te.find("chunked") != std::string_view::npos) {
    for (;;) {
      size_t e;
      while ((e = buf_.find("\r\n")) == std::string::npos)
        if (Status s = ReadMore(); !s.ok()) return s;
      size_t size = 0;
      auto [p, ec] = std::from_chars(buf_.data(), buf_.data() + e, size, 16);
      if (ec != std::errc()) return Status::IOError("bad chunk size");
      (void)p;
      buf_.erase(0, e + 2);
      while (buf_.size() < size + 2)
        if (Status s = ReadMore(); !s.ok()) return s;
      resp.body.append(buf_, 0, size);
      buf_.erase(0, size + 2);
      if (size == 0) break;  // no trailers expected from our servers
    }
  } else if (!cl.empty()) {
    size_t len = 0;
    auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), len);
    if (ec != std::errc() || p != cl.data() + cl.size())
      return Status::IOError("bad Content-Length");
    while (buf_.size() < len)
      if (Status s = ReadMore(); !s.ok()) return s;
    resp.body.assign(buf_, 0, len);
    buf_.erase(0, len);
  } else {
    for (;;) {
      Status s = ReadMore();
      if (!s.ok()) break;
    }
    resp.body = std::move(buf_);
    buf_.clear();
    close = true;
  }
  if (close) Close();
  return resp;
}

}  // namespace cacheportal::bench
