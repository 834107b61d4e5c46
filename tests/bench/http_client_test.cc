#include "bench/paper/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_client.h"

namespace cacheportal::bench {
namespace {

TEST(ParseBaseUrl, HostAndPort) {
  auto u = ParseBaseUrl("http://127.0.0.1:8080/ignored");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  auto d = ParseBaseUrl("http://localhost");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 80);
  EXPECT_FALSE(ParseBaseUrl("https://x").ok());
  EXPECT_FALSE(ParseBaseUrl("http://x:0").ok());
  EXPECT_FALSE(ParseBaseUrl("http://x:99999").ok());
  EXPECT_FALSE(ParseBaseUrl("http://:80").ok());
}

TEST(ParseResponseHead, StatusAndHeaders) {
  Response r;
  ASSERT_TRUE(
      ParseResponseHead("HTTP/1.1 303 See Other\r\nX-Cache: HIT\r\nSet-Cookie:  sid=a \r\n", &r)
          .ok());
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.Header("x-cache"), "HIT");
  EXPECT_EQ(r.Header("Set-Cookie"), "sid=a");
  EXPECT_EQ(r.Header("Missing"), "");
  EXPECT_FALSE(ParseResponseHead("garbage\r\n", &r).ok());
  EXPECT_FALSE(ParseResponseHead("HTTP/1.1 abc OK\r\n", &r).ok());
  EXPECT_FALSE(ParseResponseHead("HTTP/1.1 200 OK\r\nno colon\r\n", &r).ok());
}

// A one-connection server on an ephemeral port that answers each request
// with the next canned response, then closes.
class CannedServer {
 public:
  explicit CannedServer(std::vector<std::string> replies) : replies_(std::move(replies)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 4);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CannedServer() {
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_; }
  const std::vector<std::string>& requests() const { return requests_; }

 private:
  void Serve() {
    size_t next = 0;
    while (next < replies_.size()) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++connections_;
      std::string in;
      char buf[4096];
      while (next < replies_.size()) {
        size_t end;
        while ((end = in.find("\r\n\r\n")) == std::string::npos) {
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
        }
        if (end == std::string::npos) break;
        size_t body = 0;
        if (auto p = in.find("Content-Length: "); p != std::string::npos && p < end)
          body = std::stoul(in.substr(p + 16));
        while (in.size() < end + 4 + body) {
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
        }
        requests_.push_back(in.substr(0, end + 4 + body));
        in.erase(0, end + 4 + body);
        const std::string& r = replies_[next++];
        ::send(c, r.data(), r.size(), MSG_NOSIGNAL);
        if (r.find("Connection: close") != std::string::npos) break;
      }
      ::close(c);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<std::string> replies_;
  std::vector<std::string> requests_;
  int connections_ = 0;
  std::thread thread_;
};

TEST(HttpClient, KeepsTheConnectionAndReadsLengthAndChunkedBodies) {
  CannedServer server(
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Cache: MISS\r\n\r\nhello",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
       "HTTP/1.1 303 See Other\r\nLocation: /cart\r\nContent-Length: 0\r\nConnection: "
       "close\r\n\r\n"});
  HttpClient c(BaseUrl{"127.0.0.1", server.port()}, 5000);
  auto r1 = c.Get("/item/EST-1", {{"Cookie", "lang=ja"}});
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(r1->status, 200);
  EXPECT_EQ(r1->body, "hello");
  EXPECT_EQ(r1->Header("X-Cache"), "MISS");
  auto r2 = c.Get("/");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->body, "abcde");
  Request post;
  post.method = "POST";
  post.target = "/cart/add";
  post.body = "itemid=EST-1";
  auto r3 = c.Send(post);
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_EQ(r3->status, 303);
  EXPECT_EQ(r3->Header("Location"), "/cart");
  EXPECT_EQ(server.connections(), 1);
  ASSERT_EQ(server.requests().size(), 3u);
  EXPECT_NE(server.requests()[0].find("GET /item/EST-1 HTTP/1.1\r\n"), std::string::npos);
  EXPECT_NE(server.requests()[0].find("Cookie: lang=ja\r\n"), std::string::npos);
  EXPECT_NE(server.requests()[2].find("Content-Length: 12\r\n\r\nitemid=EST-1"), std::string::npos);
}

TEST(HttpClient, ReconnectsWhenTheServerClosedAKeptConnection) {
  // The first reply closes without saying so; the second request must go out
  // on a fresh connection.
  CannedServer server({"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\na",
                       "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"});
  HttpClient c(BaseUrl{"127.0.0.1", server.port()}, 5000);
  auto r1 = c.Get("/");
  ASSERT_TRUE(r1.ok());
  auto r2 = c.Get("/");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->body, "b");
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClient, ConnectionRefusedIsAnError) {
  uint16_t port = cacheportal::testing::PickFreePort();  // nothing listens there
  HttpClient c(BaseUrl{"127.0.0.1", port}, 1000);
  auto r = c.Get("/");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
}

}  // namespace
}  // namespace cacheportal::bench
