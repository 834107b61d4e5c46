#include "tests/edgecache/test_http.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "edgecache/cacheability.h"

namespace cacheportal::edge::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

struct TinyOrigin::State {
  Handler handler;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  mutable std::mutex mu;
  std::vector<OriginRequest> requests;
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  std::vector<std::thread> threads;
  std::thread accept_thread;
  std::atomic<bool> stopping{false};

  void Serve(std::shared_ptr<tcp::socket> sock) {
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      beast::error_code ec;
      http::read(*sock, buf, req, ec);
      if (ec) return;
      OriginRequest r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      r.body = req.body();
      for (const auto& f : req) {
        std::string n(f.name_string());
        for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[n] = std::string(f.value());
      }
      {
        std::lock_guard lock(mu);
        requests.push_back(r);
      }
      OriginResponse out = handler(r);
      if (stopping) return;
      http::response<http::string_body> res;
      res.version(11);
      res.result(out.status);
      for (const auto& [n, v] : out.headers) res.insert(n, v);
      res.body() = out.body;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      http::write(*sock, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }
};

TinyOrigin::TinyOrigin(Handler handler) : state_(std::make_shared<State>()) {
  state_->handler = std::move(handler);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  state_->acceptor.open(ep.protocol());
  state_->acceptor.set_option(asio::socket_base::reuse_address(true));
  state_->acceptor.bind(ep);
  state_->acceptor.listen();
  port_ = state_->acceptor.local_endpoint().port();
  auto st = state_;
  state_->accept_thread = std::thread([st] {
    for (;;) {
      auto sock = std::make_shared<tcp::socket>(st->ioc);
      beast::error_code ec;
      st->acceptor.accept(*sock, ec);
      if (ec || st->stopping) return;
      std::lock_guard lock(st->mu);
      st->sockets.push_back(sock);
      st->threads.emplace_back([st, sock] { st->Serve(sock); });
    }
  });
}

TinyOrigin::~TinyOrigin() {
  state_->stopping = true;
  beast::error_code ec;
  state_->acceptor.cancel(ec);
  // Unblock accept() by connecting once.
  {
    tcp::socket s(state_->ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
  }
  state_->accept_thread.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(state_->mu);
    for (auto& s : state_->sockets) s->shutdown(tcp::socket::shutdown_both, ec);
    threads.swap(state_->threads);
  }
  for (auto& t : threads) t.join();
}

int TinyOrigin::Count(const std::string& path) const {
  std::lock_guard lock(state_->mu);
  int n = 0;
  for (const auto& r : state_->requests)
    if (r.Path() == path) ++n;
  return n;
}

int TinyOrigin::Total() const {
  std::lock_guard lock(state_->mu);
  return static_cast<int>(state_->requests.size());
}

std::vector<OriginRequest> TinyOrigin::Requests() const {
  std::lock_guard lock(state_->mu);
  return state_->requests;
}

ClientResponse Fetch(uint16_t port, const std::string& method, const std::string& target,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     const std::string& body) {
  ClientResponse out;
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.expires_after(std::chrono::seconds(30));
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return out;
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "edge.test");
  for (const auto& [n, v] : headers) req.insert(n, v);
  if (!body.empty() || method == "POST") {
    req.body() = body;
    req.prepare_payload();
  }
  http::write(stream, req, ec);
  if (ec) return out;
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  if (method == "HEAD") parser.skip(true);
  http::read(stream, buf, parser, ec);
  if (ec) return out;
  auto& res = parser.get();
  out.status = res.result_int();
  for (const auto& f : res) {
    std::string n(f.name_string());
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[n] = std::string(f.value());
  }
  out.body = res.body();
  return out;
}

std::string RawExchange(uint16_t port, const std::string& bytes) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.expires_after(std::chrono::seconds(30));
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return {};
  asio::write(stream, asio::buffer(bytes), ec);
  std::string out;
  char buf[4096];
  for (;;) {
    size_t n = stream.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

differentiator::Decision FakeRules::Decide(const differentiator::RequestView& r, int64_t) const {
  differentiator::Decision d;
  std::string target(r.target);
  d.origin_target = target;
  std::string path = target.substr(0, target.find('?'));
  bool search = path == "/search";
  if (pass_all_ || path.starts_with("/pass") || (r.method == "POST" && !search) ||
      (r.method != "GET" && r.method != "HEAD" && r.method != "POST")) {
    d.verdict = differentiator::Verdict::kPass;
    d.reason = "pass rule";
    return d;
  }
  d.verdict = differentiator::Verdict::kCache;
  d.rule = "fake";
  d.ttl = ttl_;
  d.key.method = r.method == "POST" ? "POST" : "GET";
  if (r.method == "POST") d.key.body.emplace_back("body", std::string(r.body));
  d.key.path = path;
  if (auto q = target.find('?'); q != std::string::npos)
    d.key.query.emplace_back("q", target.substr(q + 1));
  for (const auto& [n, v] : r.headers) {
    if (IEquals(n, "cookie")) {
      if (auto lang = CookieValue(v, "lang"))
        d.key.cookies.emplace_back("lang", std::string(*lang));
      if (auto user = CookieValue(v, "user"); user && path.starts_with("/frag/user"))
        d.key.cookies.emplace_back("user", std::string(*user));
    }
  }
  return d;
}

std::string FakeRules::KeyFor(const std::string& target, const std::string& lang) {
  FakeRules rules;
  std::string cookie = lang.empty() ? "" : "lang=" + lang;
  differentiator::RequestView v{"GET", target, {}, {}};
  if (!cookie.empty()) v.headers.emplace_back("Cookie", cookie);
  return rules.Decide(v, 0).key.ToString();
}

}  // namespace cacheportal::edge::testing
