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

std::string SerializeRequest(const Request& req, const BaseUrl& base) {
  std::string out;
  out.reserve(128 + req.target.size() + req.body.size());
  out.append(req.method).append(" ").append(req.target).append(" HTTP/1.1\r\nHost: ");
  out.append(base.host).append(":").append(std::to_string(base.port)).append("\r\n");
  for (const auto& [k, v] : req.headers) out.append(k).append(": ").append(v).append("\r\n");
  if (!req.body.empty() || req.method == "POST")
    out.append("Content-Length: ").append(std::to_string(req.body.size())).append("\r\n");
  out.append("\r\n").append(req.body);
  return out;
}

Result<ParsedResponse> ParseResponse(std::string_view buf, bool head_request, Response* out) {
  ParsedResponse p;
  size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (buf.size() > 1 << 20) return Status::IOError("response head too large");
    return p;
  }
  if (Status s = ParseResponseHead(buf.substr(0, head_end + 2), out); !s.ok()) return s;
  size_t pos = head_end + 4;
  bool head_only = head_request || out->status == 204 || out->status == 304 || out->status < 200;
  p.close = IEquals(out->Header("Connection"), "close");
  std::string_view te = out->Header("Transfer-Encoding");
  std::string_view cl = out->Header("Content-Length");
  out->body.clear();
  if (head_only) {
  } else if (!te.empty() && te.find("chunked") != std::string_view::npos) {
    for (;;) {
      size_t e = buf.find("\r\n", pos);
      if (e == std::string_view::npos) return ParsedResponse{};
      size_t size = 0;
      auto [ptr, ec] = std::from_chars(buf.data() + pos, buf.data() + e, size, 16);
      if (ec != std::errc()) return Status::IOError("bad chunk size");
      (void)ptr;
      pos = e + 2;
      if (buf.size() < pos + size + 2) return ParsedResponse{};
      out->body.append(buf.substr(pos, size));
      pos += size + 2;
      if (size == 0) break;  // no trailers expected from our servers
    }
  } else if (!cl.empty()) {
    size_t len = 0;
    auto [ptr, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), len);
    if (ec != std::errc() || ptr != cl.data() + cl.size())
      return Status::IOError("bad Content-Length");
    if (buf.size() < pos + len) return ParsedResponse{};
    out->body.assign(buf.substr(pos, len));
    pos += len;
  } else {
    ParsedResponse more;
    more.until_close = true;
    more.body_offset = pos;
    return more;
  }
  p.consumed = pos;
  return p;
}

Result<Response> HttpClient::SendOnce(const Request& req, bool* retryable) {
  bool reused = fd_ >= 0;
  *retryable = false;
  if (!reused) {
    if (Status s = Connect(); !s.ok()) return s;
  }
  std::string out = SerializeRequest(req, base_);
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
  Response resp;
  for (;;) {
    auto parsed = ParseResponse(buf_, req.method == "HEAD", &resp);
    if (!parsed.ok()) return parsed.status();
    if (parsed->consumed > 0) {
      buf_.erase(0, parsed->consumed);
      if (parsed->close) Close();
      return resp;
    }
    Status s = ReadMore();
    if (!s.ok()) {
      if (parsed->until_close && !s.IsTimedOut()) {
        // The body ran to the connection's end; the head is in front of it.
        resp.body = buf_.substr(parsed->body_offset);
        Close();
        return resp;
      }
      *retryable = reused && buf_.empty() && !s.IsTimedOut();
      return s;
    }
  }
}

}  // namespace cacheportal::bench
