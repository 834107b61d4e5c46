#include "bench/paper/user_driver.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_client.h"

namespace cacheportal::bench {
namespace {

// Answers every request with its own target as the body, on any number of
// connections (a thread each). A target containing "close" is answered with
// Connection: close; one containing "silent" is never answered; one
// containing "chunked" comes back in chunks.
class EchoServer {
 public:
  EchoServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 512), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~EchoServer() {
    ::shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (int c : conns_) ::shutdown(c, SHUT_RDWR);
    for (auto& t : workers_) t.join();
    for (int c : conns_) ::close(c);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int connections() const { return accepted_.load(); }

 private:
  void Accept() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++accepted_;
      std::lock_guard lock(mu_);
      conns_.push_back(c);
      workers_.emplace_back([c] { Serve(c); });
    }
  }
  static void Serve(int c) {
    std::string in;
    char buf[4096];
    for (;;) {
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) return;
        in.append(buf, static_cast<size_t>(n));
      }
      std::string line = in.substr(0, in.find("\r\n"));
      in.erase(0, end + 4);
      std::string target = line.substr(line.find(' ') + 1);
      target = target.substr(0, target.find(' '));
      if (target.find("silent") != std::string::npos) continue;
      std::string reply;
      if (target.find("chunked") != std::string::npos) {
        reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (char ch : target) reply += std::string("1\r\n") + ch + "\r\n";
        reply += "0\r\n\r\n";
      } else {
        bool close = target.find("close") != std::string::npos;
        reply = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(target.size()) +
                (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + target;
        ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
        if (close) {
          ::shutdown(c, SHUT_RDWR);
          return;
        }
        continue;
      }
      ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

// Sends `count` requests for /u<id>/<n>[suffix] and keeps what came back.
class CountingUser : public SimulatedUser {
 public:
  CountingUser(int id, int count, std::string suffix = "")
      : id_(id), count_(count), suffix_(std::move(suffix)) {}
  bool WantsMore(Clock::time_point) override { return sent_ < count_; }
  Request Next() override {
    Request r;
    r.target = "/u" + std::to_string(id_) + "/" + std::to_string(sent_++) + suffix_;
    expected_.push_back(r.target);
    return r;
  }
  Clock::duration Done(const Result<Response>& answer, Clock::time_point sent,
                       Clock::time_point ended) override {
    EXPECT_LE(sent, ended);
    if (answer.ok())
      bodies_.push_back(answer->body);
    else
      errors_.push_back(answer.status());
    return Clock::duration::zero();
  }
  const std::vector<std::string>& expected() const { return expected_; }
  const std::vector<std::string>& bodies() const { return bodies_; }
  const std::vector<Status>& errors() const { return errors_; }

 private:
  int id_, count_, sent_ = 0;
  std::string suffix_;
  std::vector<std::string> expected_, bodies_;
  std::vector<Status> errors_;
};

UserDriverOptions OptionsFor(uint16_t port, int threads, int timeout_ms = 10000) {
  UserDriverOptions o;
  o.target = BaseUrl{"127.0.0.1", port};
  o.threads = threads;
  o.timeout_ms = timeout_ms;
  return o;
}

TEST(DriveUsers, EveryUserGetsItsOwnAnswersOnOneKeptConnection) {
  EchoServer server;
  std::vector<std::unique_ptr<CountingUser>> users;
  std::vector<SimulatedUser*> ptrs;
  for (int i = 0; i < 64; ++i) {
    users.push_back(std::make_unique<CountingUser>(i, 25, i % 3 == 0 ? "/chunked" : ""));
    ptrs.push_back(users.back().get());
  }
  ASSERT_TRUE(DriveUsers(OptionsFor(server.port(), 2), ptrs).ok());
  for (auto& u : users) {
    EXPECT_TRUE(u->errors().empty());
    EXPECT_EQ(u->bodies(), u->expected());
  }
  EXPECT_EQ(server.connections(), 64);  // keep-alive: one connection per user
}

TEST(DriveUsers, ReconnectsWhenTheServerClosesAfterAnAnswer) {
  EchoServer server;
  CountingUser user(7, 5, "/close");
  ASSERT_TRUE(DriveUsers(OptionsFor(server.port(), 1), {&user}).ok());
  EXPECT_TRUE(user.errors().empty());
  EXPECT_EQ(user.bodies(), user.expected());
  EXPECT_EQ(server.connections(), 5);
}

TEST(DriveUsers, AnUnansweredRequestTimesOutAndTheOthersGoOn) {
  EchoServer server;
  CountingUser silent(1, 1, "/silent");
  CountingUser talker(2, 10);
  ASSERT_TRUE(DriveUsers(OptionsFor(server.port(), 1, 300), {&silent, &talker}).ok());
  ASSERT_EQ(silent.errors().size(), 1u);
  EXPECT_TRUE(silent.errors()[0].IsTimedOut()) << silent.errors()[0].ToString();
  EXPECT_EQ(talker.bodies(), talker.expected());
}

TEST(DriveUsers, ARefusedConnectionIsAnErrorPerRequest) {
  uint16_t port = cacheportal::testing::PickFreePort();  // nothing listens there
  CountingUser user(1, 3);
  ASSERT_TRUE(DriveUsers(OptionsFor(port, 1), {&user}).ok());
  EXPECT_TRUE(user.bodies().empty());
  EXPECT_EQ(user.errors().size(), 3u);
}

TEST(DriveUsers, AnUnknownHostFailsTheRun) {
  CountingUser user(1, 1);
  UserDriverOptions o;
  o.target = BaseUrl{"no-such-host.invalid", 80};
  EXPECT_FALSE(DriveUsers(o, {&user}).ok());
}

TEST(ParseResponse, IncompleteThenCompleteAndChunked) {
  Response r;
  std::string full = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  for (size_t cut = 0; cut < full.size(); ++cut) {
    auto p = ParseResponse(std::string_view(full).substr(0, cut), false, &r);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->consumed, 0u) << cut;
  }
  auto p = ParseResponse(full + "HTTP/1.1", false, &r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->consumed, full.size());
  EXPECT_EQ(r.body, "hello");
  auto c = ParseResponse(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", false, &r);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(r.body, "ab");
  auto h = ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, &r);
  ASSERT_TRUE(h.ok());
  EXPECT_GT(h->consumed, 0u);  // a HEAD answer has no body whatever its length says
  auto u = ParseResponse("HTTP/1.1 200 OK\r\n\r\nrest", false, &r);
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->until_close);
  EXPECT_FALSE(ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false, &r).ok());
}

}  // namespace
}  // namespace cacheportal::bench
