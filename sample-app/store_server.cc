// The store's I/O layer, in Boost.Beast's session shape: one object per
// connection kept alive by its own pending operation, one flat_buffer reused
// across requests, a parser re-created per message with body and header
// limits, a deadline before every read and write, and one failure path.
// Requests on a connection are answered one at a time (the next read starts
// after the write), so pipelined requests wait in the buffer: the pipeline is
// bounded by construction.
#include "sample-app/store_server.h"

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "common/log.h"
#include "sample-app/pg_pool.h"
#include "sample-app/store_app.h"

namespace cacheportal::store {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr uint32_t kHeaderLimit = 16 * 1024;
// After refusing a request, read (and discard) at most this much of what the
// client is still sending before closing, so that the refusal is not lost to
// a TCP reset.
constexpr size_t kDrainLimit = 1 << 20;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, StoreApp* app, uint64_t body_limit, std::chrono::seconds idle)
      : stream_(std::move(socket)), app_(app), body_limit_(body_limit), idle_(idle) {}

  void Run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::DoRead, shared_from_this()));
  }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->body_limit(body_limit_);
    parser_->header_limit(kHeaderLimit);
    stream_.expires_after(idle_);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  // Headers are in: a client waiting for `100 Continue` gets it (unless the
  // declared body is already too large), then the body is read.
  void OnHeader(beast::error_code ec, std::size_t) {
    if (ec) return OnRead(ec, 0);
    const auto& h = parser_->get();
    auto expect = h[http::field::expect];
    bool wants_continue = beast::iequals(expect, "100-continue") && h.version() >= 11;
    auto length = parser_->content_length();
    if (length && *length > body_limit_) return Refuse(413);
    if (!wants_continue || parser_->is_done()) return ReadBody();
    auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
    stream_.expires_after(idle_);
    http::async_write(stream_, *cont,
                      [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
                        if (ec) return self->Fail(ec, "write");
                        self->ReadBody();
                      });
  }

  void ReadBody() {
    stream_.expires_after(idle_);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return DoClose();
    if (ec == http::error::body_limit) return Refuse(413);
    if (ec == http::error::header_limit) return Refuse(431);
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category())
      return Refuse(400);
    if (ec) return Fail(ec, "read");

    auto& msg = parser_->get();
    HttpRequest req = Convert(msg);
    req.body = std::move(msg.body());
    HttpResponse resp = app_->Handle(req);
    Write(std::move(resp), !msg.keep_alive(), msg.version(), /*drain=*/false,
          msg.method() == http::verb::head);
  }

  static HttpRequest Convert(const http::request<http::string_body>& msg) {
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& f : msg) req.headers.emplace_back(f.name_string(), f.value());
    return req;
  }

  // The request broke a limit or the protocol: answer, then close.
  void Refuse(int status) {
    HttpRequest req = Convert(parser_->get());
    if (req.method.empty()) req.method = "?";
    Write(app_->Reject(req, status), /*close=*/true, 11, /*drain=*/true);
  }

  void Write(HttpResponse r, bool close, unsigned version, bool drain = false, bool head = false) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version);
    res->set(http::field::server, "cacheportal-store");
    for (auto& [name, value] : r.headers) res->insert(name, value);
    res->body() = std::move(r.body);
    res->keep_alive(!close);
    res->prepare_payload();
    if (head) {
      // Same headers as GET, Content-Length included, and no body.
      size_t length = res->body().size();
      res->body().clear();
      res->content_length(length);
    }
    stream_.expires_after(idle_);
    http::async_write(
        stream_, *res,
        [self = shared_from_this(), res, close, drain](beast::error_code ec, std::size_t) {
          if (ec) return self->Fail(ec, "write");
          if (drain) return self->DoDrain();
          if (close) return self->DoClose();
          self->DoRead();
        });
  }

  void DoClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  void DoDrain() {
    DoClose();
    stream_.expires_after(std::chrono::seconds(2));
    stream_.async_read_some(net::buffer(drain_buf_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kDrainLimit) return;
                              self->DoDrain();
                            });
  }

  void Fail(beast::error_code ec, const char* what) {
    // Clients hanging up or idling out are routine.
    if (ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::eof ||
        ec == net::error::broken_pipe)
      return;
    log::Debug("store", "connection error", {{"op", what}, {"error", ec.message()}});
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  StoreApp* app_;
  uint64_t body_limit_;
  std::chrono::seconds idle_;
  std::array<char, 8192> drain_buf_;
  size_t drained_ = 0;
};

}  // namespace

struct StoreServer::Impl {
  // Declaration order is destruction order in reverse: the io_context (and
  // with it every session) goes before the app and the pool they use.
  PgPool pool;
  StoreApp app;
  net::io_context ioc;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
  uint64_t body_limit;
  std::chrono::seconds idle;

  Impl(const StoreServerOptions& o, StoreAppOptions app_options)
      : pool(o.conninfo, o.store.pool_size),
        app(std::move(app_options), &pool),
        ioc(o.store.threads),
        acceptor(net::make_strand(ioc)),
        body_limit(o.store.max_body_bytes),
        idle(o.idle_timeout_seconds) {}

  void Accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
      if (ec)
        log::Warn("store", "accept failed", {{"error", ec.message()}});
      else
        std::make_shared<Session>(std::move(socket), &app, body_limit, idle)->Run();
      Accept();
    });
  }
};

StoreServer::StoreServer(StoreServerOptions options) : options_(std::move(options)) {}

StoreServer::~StoreServer() { Stop(); }

Result<uint16_t> StoreServer::Start() {
  if (impl_) return Status::InvalidArgument("store server already started");
  StoreAppOptions app_options;
  app_options.session_secret = options_.session_secret;
  app_options.session_ttl_seconds = options_.store.session_ttl_seconds;
  app_options.on_statement = options_.on_statement;
  auto impl = std::make_unique<Impl>(options_, std::move(app_options));

  std::string host =
      options_.store.listen_address == "localhost" ? "127.0.0.1" : options_.store.listen_address;
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) return Status::InvalidArgument("bad listen address '" + host + "': " + ec.message());
  tcp::endpoint endpoint(address, options_.store.listen_port);
  auto where = host + ":" + std::to_string(options_.store.listen_port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (ec) return Status::IOError("cannot bind " + where + ": " + ec.message());
  impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("cannot listen on " + where + ": " + ec.message());
  uint16_t port = impl->acceptor.local_endpoint(ec).port();
  if (ec) return Status::IOError("cannot read the bound port: " + ec.message());

  impl->Accept();
  int n = options_.store.threads < 1 ? 1 : options_.store.threads;
  for (int i = 0; i < n; ++i) impl->threads.emplace_back([io = &impl->ioc] { io->run(); });
  impl_ = std::move(impl);
  return port;
}

void StoreServer::Stop() {
  if (!impl_) return;
  // Stopping the io_context abandons every pending operation; the acceptor
  // and the sessions close when the Impl (and its io_context) is destroyed.
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_.reset();
}

}  // namespace cacheportal::store
