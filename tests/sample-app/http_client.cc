#include "http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cacheportal::testing {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::string ClientResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (IEquals(k, name)) return v;
  return "";
}

std::vector<std::string> ClientResponse::All(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers)
    if (IEquals(k, name)) out.push_back(v);
  return out;
}

ClientResponse HttpCall(uint16_t port, std::string_view method, std::string_view target,
                        const Headers& headers, std::string_view body) {
  ClientResponse resp;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    resp.error = "socket failed";
    return resp;
  }
  timeval tv{10, 0};  // a bound so that a broken server fails the test instead of hanging it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    resp.error = std::string("connect failed: ") + std::strerror(errno);
    ::close(fd);
    return resp;
  }
  std::string req = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\n";
  req += "Host: 127.0.0.1:" + std::to_string(port) + "\r\nConnection: close\r\n";
  bool has_length = false;
  for (const auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
    if (IEquals(k, "Content-Length")) has_length = true;
  }
  if (!has_length && (!body.empty() || method == "POST"))
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req += body;
  // The server may answer (413) and stop reading before everything is sent:
  // send errors are not failures, the response decides.
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);

  size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) {
    resp.error = "no HTTP response (" + std::to_string(raw.size()) + " bytes)";
    return resp;
  }
  size_t line_end = raw.find("\r\n");
  std::string status_line = raw.substr(0, line_end);
  size_t sp = status_line.find(' ');
  resp.status = std::atoi(status_line.c_str() + sp + 1);
  size_t pos = line_end + 2;
  while (pos < end) {
    size_t eol = raw.find("\r\n", pos);
    std::string line = raw.substr(pos, eol - pos);
    pos = eol + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    resp.headers.emplace_back(line.substr(0, colon), value);
  }
  resp.body = raw.substr(end + 4);
  std::string cl = resp.Header("Content-Length");
  if (!cl.empty()) {
    size_t len = std::stoul(cl);
    if (resp.body.size() > len) resp.body.resize(len);
    if (resp.body.size() < len) resp.error = "short body";
  }
  return resp;
}

ClientResponse PostForm(uint16_t port, std::string_view target, std::string_view body,
                        Headers headers) {
  headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  return HttpCall(port, "POST", target, headers, body);
}

}  // namespace cacheportal::testing
