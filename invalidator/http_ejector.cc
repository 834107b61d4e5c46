#include "invalidator/http_ejector.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/log.h"

namespace cacheportal::invalidator {
namespace {

std::string PercentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

bool WaitFd(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  return r > 0;
}

}  // namespace

HttpPurgeEjector::HttpPurgeEjector(std::string host, uint16_t port, std::string token,
                                   int timeout_ms)
    : host_(std::move(host)), port_(port), token_(std::move(token)), timeout_ms_(timeout_ms) {}

HttpPurgeEjector::~HttpPurgeEjector() { Close(); }

void HttpPurgeEjector::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status HttpPurgeEjector::Connect() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(port_);
  if (int rc = ::getaddrinfo(host_.c_str(), port.c_str(), &hints, &res); rc != 0)
    return Status::Unavailable("edge admin " + host_ + ": " + gai_strerror(rc));
  Status last = Status::Unavailable("edge admin " + host_ + ":" + port + ": no address");
  for (addrinfo* a = res; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS && WaitFd(fd, POLLOUT, timeout_ms_)) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc == 0) {
      fd_ = fd;
      ::freeaddrinfo(res);
      return Status::OK();
    }
    last = Status::Unavailable("edge admin " + host_ + ":" + port + ": " + std::strerror(errno));
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return last;
}

Status HttpPurgeEjector::Post(const std::string& target) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (fd_ < 0) {
      if (Status s = Connect(); !s.ok()) return s;
    }
    std::string req = "POST " + target + " HTTP/1.1\r\nHost: " + host_ +
                      "\r\nContent-Length: 0\r\nConnection: keep-alive\r\n";
    if (!token_.empty()) req += "Authorization: Bearer " + token_ + "\r\n";
    req += "\r\n";
    size_t sent = 0;
    bool io_ok = true;
    while (sent < req.size()) {
      ssize_t n = ::send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!WaitFd(fd_, POLLOUT, timeout_ms_)) {
          io_ok = false;
          break;
        }
      } else {
        io_ok = false;
        break;
      }
    }
    // Read the head, then Content-Length bytes of body.
    std::string in;
    size_t head_end = std::string::npos, need = 0;
    while (io_ok) {
      if (head_end != std::string::npos && in.size() >= head_end + 4 + need) break;
      if (!WaitFd(fd_, POLLIN, timeout_ms_)) {
        Close();
        return Status::TimedOut("edge admin did not answer " + target);
      }
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        io_ok = false;
        break;
      }
      in.append(buf, static_cast<size_t>(n));
      if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
        std::string head = in.substr(0, head_end);
        for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto p = head.find("content-length:");
        need = p == std::string::npos ? 0 : std::strtoul(head.c_str() + p + 15, nullptr, 10);
      }
    }
    if (!io_ok) {
      Close();
      if (attempt == 0 && in.empty()) continue;  // a kept-alive connection the edge had closed
      return Status::Unavailable("edge admin connection failed during " + target);
    }
    int code = 0;
    if (in.rfind("HTTP/1.", 0) == 0 && in.size() > 12) code = std::atoi(in.c_str() + 9);
    if (code >= 200 && code < 300) return Status::OK();
    Close();
    std::string line = in.substr(0, in.find("\r\n"));
    if (code == 401 || code == 403)
      return Status::InvalidArgument("edge admin refused " + target + ": " + line +
                                     " (check edge.admin_token)");
    return Status::Unavailable("edge admin answered " + line + " to " + target);
  }
  return Status::Unavailable("edge admin unreachable");
}

Status HttpPurgeEjector::Eject(std::span<const std::string> keys) {
  std::lock_guard lock(mu_);
  for (const auto& k : keys)
    if (Status s = Post("/purge?key=" + PercentEncode(k)); !s.ok()) return s;
  return Status::OK();
}

Status HttpPurgeEjector::EjectAll() {
  std::lock_guard lock(mu_);
  return Post("/ban?prefix=");
}

void HttpPurgeEjector::SetVouched(bool vouched) {
  log::Info("invalidator", vouched ? "caught up (remote edge)"
                                   : "cannot vouch (remote edge keeps serving: "
                                     "its admin API has no vouch switch)");
}

Status LoggingEjector::Eject(std::span<const std::string> keys) {
  for (const auto& k : keys) log::Info("invalidator", "eject", {{"key", k}});
  return Status::OK();
}

Status LoggingEjector::EjectAll() {
  log::Info("invalidator", "eject all");
  return Status::OK();
}

void LoggingEjector::SetVouched(bool vouched) {
  log::Info("invalidator", vouched ? "vouched" : "not vouched");
}

}  // namespace cacheportal::invalidator
