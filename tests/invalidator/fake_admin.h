// A minimal HTTP/1.1 edge admin endpoint on an ephemeral port that answers
// every request with a fixed status and records "request-line | bearer".
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cacheportal::invalidator::test {

class FakeAdmin {
 public:
  explicit FakeAdmin(int status) : status_(status) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 8);
    thread_ = std::thread([this] { Serve(); });
  }
  // Requests after the first `n` get no answer until Release(): lets a test
  // kill a client while it waits for an ejection to be confirmed.
  void BlockAfter(size_t n) {
    std::lock_guard lock(mu_);
    block_after_ = n;
    released_ = false;
  }
  bool WaitBlocked(double seconds = 30) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return blocked_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  ~FakeAdmin() {
    Release();
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string buf;
      char tmp[2048];
      for (;;) {
        size_t end;
        while ((end = buf.find("\r\n\r\n")) != std::string::npos) {
          std::string head = buf.substr(0, end);
          buf.erase(0, end + 4);
          std::string line = head.substr(0, head.find("\r\n"));
          auto auth = head.find("Authorization: ");
          if (auth != std::string::npos)
            line += " | " + head.substr(auth + 15, head.find("\r\n", auth) - auth - 15);
          {
            std::unique_lock lock(mu_);
            requests_.push_back(line);
            if (requests_.size() > block_after_) {
              blocked_ = true;
              cv_.notify_all();
              cv_.wait(lock, [this] { return released_; });
            }
          }
          std::string body = status_ == 200 ? "{\"purged\":1}\n" : "no\n";
          std::string resp =
              "HTTP/1.1 " + std::to_string(status_) + (status_ == 200 ? " OK" : " Unauthorized") +
              "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
          ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
        }
        ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
        if (n <= 0) break;
        buf.append(tmp, static_cast<size_t>(n));
      }
      ::close(c);
    }
  }
  int status_;
  int fd_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> requests_;
  size_t block_after_ = SIZE_MAX;
  bool blocked_ = false;
  bool released_ = true;
};

}  // namespace cacheportal::invalidator::test
