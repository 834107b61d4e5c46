// The proxy: listener, per-connection session (two relay pumps sharing one
// protocol state), cancel routing. Framing and message layouts live in
// wire_framing.cc; this file only acts on decoded messages.
#include "sniffer/sniffer.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "common/traceparent.h"
#include "sniffer/sql_scan.h"
#include "sniffer/statement_cache.h"
#include "sniffer/wire_framing.h"

namespace cacheportal {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using sniffer::CancelKey;
using sniffer::FrameReader;
using sniffer::Message;
using sniffer::MessageHandler;
using sniffer::SessionCommandKind;
using sniffer::StartupKind;
using sniffer::StatementPtr;

namespace {

constexpr const char* kPart = "sniffer";
// Per direction. Big enough that a pgbench round trip is one read, small
// enough for thousands of connections.
constexpr size_t kBufferBytes = 32 * 1024;

struct Counters {
  std::atomic<uint64_t> accepted{0}, active{0}, registered{0}, c2s{0}, s2c{0}, protocol_errors{0},
      cancels{0}, connect_failures{0};
};

// Backends this sniffer has seen (BackendKeyData), so that a CancelRequest
// arriving on a new connection is only forwarded for one of them.
class CancelRegistry {
 public:
  void Add(const CancelKey& k) {
    std::lock_guard lock(mu_);
    keys_[k.pid] = k.key;
  }
  void Remove(const CancelKey& k) {
    std::lock_guard lock(mu_);
    auto it = keys_.find(k.pid);
    if (it != keys_.end() && it->second == k.key) keys_.erase(it);
  }
  bool Known(const CancelKey& k) {
    std::lock_guard lock(mu_);
    auto it = keys_.find(k.pid);
    return it != keys_.end() && it->second == k.key;
  }

 private:
  std::mutex mu_;
  std::unordered_map<int32_t, std::string> keys_;
};

}  // namespace

namespace {
class Session;
class RelayLoop;
}  // namespace

// Threads: one Asio io_context thread accepts connections and runs each one
// through its startup (SSL/GSS refusal, CancelRequest routing, the upstream
// connect, timeouts); then the session is handed to a relay thread
// (SnifferOptions::threads of them), which owns it until it closes.
class Sniffer::Impl {
 public:
  Impl(const SnifferOptions& o, StatementSink* sink) : options(o), sink(sink) {}
  ~Impl();

  Status Start();
  void Stop();
  void DoAccept();
  void ForwardCancel(asio::any_io_executor ex, const CancelKey& key, uint64_t conn_id);
  // From any thread: the cancel is sent from the Asio thread.
  void PostForwardCancel(const CancelKey& key, uint64_t conn_id);
  // Gives a session past its startup to a relay thread; false when stopping.
  bool HandOff(std::shared_ptr<Session> session);

  const SnifferOptions options;
  StatementSink* const sink;
  Counters counters;
  CancelRegistry cancels;
  tcp::resolver::results_type upstream;
  uint16_t port = 0;

 private:
  std::unique_ptr<asio::io_context> ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::thread asio_thread_;
  std::vector<std::unique_ptr<RelayLoop>> loops_;
  std::atomic<size_t> next_loop_{0};
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::atomic<uint64_t> next_conn_id_{1};
  std::mutex stop_mu_;
  bool stopped_ = false;
};

namespace {

// One side of a relaying session as registered with a RelayLoop's epoll.
struct Endpoint {
  Session* session = nullptr;
  bool is_client = false;
  int fd = -1;
  uint32_t events = 0;  // currently registered interest
  bool registered = false;
};

// A relay thread. Plain level-triggered epoll, as PgBouncer's libevent loop:
// a socket is read once per readiness report and never speculatively. (Asio's
// reactor tries a recv before it waits, which on a request/response protocol
// fails with EAGAIN on every turn: two wasted syscalls per transaction, a
// fifth of the proxy's CPU per pgbench -S transaction.) Writes go out at
// once; only what does not fit waits for EPOLLOUT, and meanwhile the source
// side is not read (backpressure instead of buffering).
class RelayLoop {
 public:
  explicit RelayLoop(Sniffer::Impl& impl) : impl_(impl) {}
  ~RelayLoop();
  Status Init();
  void StartThread() {
    thread_ = std::thread([this] { Run(); });
  }
  // From the Asio thread. False once the loop is stopping.
  bool Adopt(std::shared_ptr<Session> session);
  // From outside: closes every session the loop owns, joins the thread.
  void Stop();

  // Loop thread only.
  void SetInterest(Endpoint& ep, uint32_t events, bool registered);
  void Retire(Session* session);  // after the session closed its sockets
  std::chrono::steady_clock::time_point now() const { return now_; }

 private:
  void Run();
  void TakeIncoming();

  Sniffer::Impl& impl_;
  int epfd_ = -1;
  int wakefd_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::shared_ptr<Session>> incoming_;  // guarded by mu_
  bool stopping_ = false;                           // guarded by mu_
  std::unordered_map<Session*, std::shared_ptr<Session>> sessions_;
  // Closed during the current batch of events: kept alive until the batch
  // is done, since a later event of the batch may still point at them.
  std::vector<std::shared_ptr<Session>> retired_;
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::now();
};

// One client connection and its upstream connection. During startup it lives
// on the Asio thread, kept alive by its own pending operations (Beast's
// session shape); from the upstream connect on, a RelayLoop owns it and its
// two sockets (raw descriptors released from Asio). Either way exactly one
// thread touches it at a time, so no locking is needed.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Sniffer::Impl& impl, tcp::socket client, uint64_t id)
      : impl_(impl),
        client_(std::move(client)),
        server_(client_.get_executor()),
        timer_(client_.get_executor()),
        id_(id),
        client_frames_(impl.options.max_message_bytes),
        server_frames_(impl.options.max_message_bytes),
        client_buf_(new char[kBufferBytes]),
        server_buf_(new char[kBufferBytes]),
        statements_(static_cast<size_t>(impl.options.max_prepared_per_connection)) {
    client_frames_.ExpectUntyped();
    for (char t : {'Q', 'P', 'B', 'E', 'C', 'X', 'S', 'F'}) client_frames_.Want(t);
    for (char t : {'Z', 'K'}) server_frames_.Want(t);
  }

  ~Session() {
    if (phase_ != Phase::kClosed) Release();
    if (cfd_ >= 0) ::close(cfd_);
    if (sfd_ >= 0) ::close(sfd_);
  }

  void Start() {
    ArmTimer(std::chrono::seconds(impl_.options.connect_timeout_seconds));
    ReadClient();
  }

 private:
  enum class Phase { kStartup, kConnecting, kRelay, kClosed };

  struct ClientHandler : MessageHandler {
    Session* s;
    void OnMessage(const Message& m) override { s->OnClientMessage(m); }
  };
  struct ServerHandler : MessageHandler {
    Session* s;
    void OnMessage(const Message& m) override { s->OnServerMessage(m); }
  };

  struct Portal {
    StatementPtr statement;
    std::string bind_body;  // parsed only when the portal is registered
  };

  // ---- relay (on the RelayLoop thread) --------------------------------------

 public:
  // The loop adopted this session: flush the startup packet (and whatever
  // followed it) upstream, then relay both ways.
  void StartRelay(RelayLoop* loop) {
    loop_ = loop;
    last_activity_ = loop->now();
    client_ep_.session = server_ep_.session = this;
    client_ep_.is_client = true;
    client_ep_.fd = cfd_;
    server_ep_.fd = sfd_;
    if (!to_server_.empty() && !Flush(/*to_client=*/false)) return;
    UpdateInterest();
  }

  void OnEvent(Endpoint& ep, uint32_t events) {
    if (phase_ == Phase::kClosed) return;
    const bool client = ep.is_client;
    // Output waiting for this socket first: it may unblock reading the other.
    if ((events & EPOLLOUT) && !(client ? to_client_ : to_server_).empty()) {
      if (!Flush(client)) return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      // Not read while what came from it has not been written on.
      const bool blocked = !(client ? to_server_ : to_client_).empty();
      if (!blocked) {
        if (client) {
          ReadClientRelay();
        } else {
          ReadServerRelay();
        }
      } else if ((events & (EPOLLERR | EPOLLHUP)) && ep.registered) {
        // Reported whatever the interest: stop listening to this socket
        // until the other side drained, else the loop would spin on it.
        (client ? client_hup_ : server_hup_) = true;
      }
    }
    if (phase_ != Phase::kClosed) UpdateInterest();
  }

  void CheckIdle(std::chrono::steady_clock::time_point now) {
    if (phase_ == Phase::kClosed || impl_.options.idle_timeout_seconds <= 0) return;
    if (now - last_activity_ >= std::chrono::seconds(impl_.options.idle_timeout_seconds)) {
      Close("idle timeout", false, Error("08P01", "cacheportal sniffer: idle timeout"));
    }
  }

  void CloseForStop() { Close("sniffer stopping", false); }

 private:
  // Usually no syscall: the interest changes only under backpressure.
  void UpdateInterest() {
    constexpr uint32_t kIn = EPOLLIN, kOut = EPOLLOUT;
    uint32_t c = (to_server_.empty() ? kIn : 0) | (to_client_.empty() ? 0 : kOut);
    uint32_t s = (to_client_.empty() ? kIn : 0) | (to_server_.empty() ? 0 : kOut);
    // A hung-up socket reports whatever the interest: while nothing is
    // wanted from it, it is taken out of the epoll set; once it may be read
    // again, the read sees the end (after any data still queued).
    if (c & EPOLLIN) client_hup_ = false;
    if (s & EPOLLIN) server_hup_ = false;
    loop_->SetInterest(client_ep_, c, !(client_hup_ && c == 0));
    loop_->SetInterest(server_ep_, s, !(server_hup_ && s == 0));
  }

  // One recv per readiness report (level-triggered: more data is reported
  // again). Returns the byte count, 0 after closing the session, or -1 when
  // nothing was there.
  ssize_t RecvRelay(int fd, char* buf, bool client) {
    ssize_t n = ::recv(fd, buf, kBufferBytes, 0);
    if (n > 0) {
      last_activity_ = loop_->now();
      return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return -1;
    std::string err = n == 0 ? std::string() : std::strerror(errno);
    if (client) {
      Close(n == 0 ? (terminated_ ? "client terminated" : "client closed the connection")
                   : "client read error: " + err,
            /*client_gone=*/true);
    } else {
      Close(n == 0 ? "upstream closed the connection" : "upstream read error: " + err, false);
    }
    return 0;
  }

  // Sends at once; keeps what does not fit in `pending` (then EPOLLOUT).
  // False after closing the session on a write error.
  bool SendRelay(int fd, const char* p, size_t n, std::string* pending, bool to_client) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        std::string err = std::strerror(errno);
        if (to_client) {
          Close("client write error: " + err, true);
        } else {
          Close("upstream write error: " + err, false);
        }
        return false;
      }
      w = 0;
    }
    if (static_cast<size_t>(w) < n) pending->append(p + w, n - static_cast<size_t>(w));
    return true;
  }

  bool Flush(bool to_client) {
    std::string& pending = to_client ? to_client_ : to_server_;
    std::string rest;
    rest.swap(pending);
    return SendRelay(to_client ? cfd_ : sfd_, rest.data(), rest.size(), &pending, to_client);
  }

  // Inspects a chunk from the client (registering statements) and only then
  // relays it, so every registration precedes the bytes that complete its
  // message upstream.
  void ReadClientRelay() {
    ssize_t n = RecvRelay(cfd_, client_buf_.get(), true);
    if (n <= 0) return;
    impl_.counters.c2s.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    std::string_view data(client_buf_.get(), static_cast<size_t>(n));
    ClientHandler h;
    h.s = this;
    auto consumed = client_frames_.Feed(data, h);
    if (!consumed.ok()) {
      ProtocolError("client sent " + consumed.status().message());
      return;
    }
    if (phase_ == Phase::kClosed) return;
    SendRelay(sfd_, data.data(), data.size(), &to_server_, false);
  }

  void ReadServerRelay() {
    ssize_t n = RecvRelay(sfd_, server_buf_.get(), false);
    if (n <= 0) return;
    impl_.counters.s2c.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    std::string_view data(server_buf_.get(), static_cast<size_t>(n));
    ServerHandler h;
    h.s = this;
    auto consumed = server_frames_.Feed(data, h);
    if (!consumed.ok()) {
      ProtocolError("upstream sent " + consumed.status().message());
      return;
    }
    if (phase_ == Phase::kClosed) return;
    SendRelay(cfd_, data.data(), data.size(), &to_client_, true);
  }

  // ---- startup reads (on the Asio thread) ------------------------------------

  void ReadClient() {
    client_.async_read_some(
        asio::buffer(client_buf_.get(), kBufferBytes),
        [self = shared_from_this()](error_code ec, size_t n) { self->OnClientRead(ec, n); });
  }

  void OnClientRead(error_code ec, size_t n) {
    if (phase_ == Phase::kClosed) return;
    if (ec) {
      Close(ec == asio::error::eof ? "client closed the connection"
                                   : "client read error: " + ec.message(),
            /*client_gone=*/true);
      return;
    }
    last_activity_ = std::chrono::steady_clock::now();
    impl_.counters.c2s.fetch_add(n, std::memory_order_relaxed);
    HandleStartupBytes(std::string_view(client_buf_.get(), n));
  }

  // ---- startup -------------------------------------------------------------

  void HandleStartupBytes(std::string_view data) {
    ClientHandler h;
    h.s = this;
    startup_kind_.reset();
    auto consumed = client_frames_.Feed(data, h);
    if (!consumed.ok()) {
      ProtocolError("client sent " + consumed.status().message());
      return;
    }
    if (!startup_kind_) {  // packet incomplete
      ReadClient();
      return;
    }
    leftover_.assign(data.substr(*consumed));
    switch (*startup_kind_) {
      case StartupKind::kSslRequest:
      case StartupKind::kGssEncRequest: {
        // The sniffer must read plaintext: refuse encryption, the client
        // then sends its StartupMessage on the same socket.
        client_frames_.ExpectUntyped();
        static const char kNo = 'N';
        asio::async_write(client_, asio::buffer(&kNo, 1),
                          [self = shared_from_this()](error_code ec, size_t) {
                            if (self->phase_ == Phase::kClosed) return;
                            if (ec) return self->Close("client write error: " + ec.message(), true);
                            std::string rest = std::move(self->leftover_);
                            if (rest.empty()) {
                              self->ReadClient();
                            } else {
                              self->HandleStartupBytes(rest);
                            }
                          });
        return;
      }
      case StartupKind::kCancelRequest: {
        if (cancel_key_ && impl_.cancels.Known(*cancel_key_)) {
          impl_.ForwardCancel(client_.get_executor(), *cancel_key_, id_);
          Close("cancel request forwarded", true);
        } else {
          Close("cancel request for a backend this sniffer does not know", true);
        }
        return;
      }
      case StartupKind::kStartup:
        ConnectUpstream();
        return;
      case StartupKind::kUnknown:
        ProtocolError("unsupported startup packet (protocol version or request code)");
        return;
    }
  }

  void ConnectUpstream() {
    phase_ = Phase::kConnecting;
    ArmTimer(std::chrono::seconds(impl_.options.connect_timeout_seconds));
    asio::async_connect(server_, impl_.upstream,
                        [self = shared_from_this()](error_code ec, const tcp::endpoint&) {
                          self->OnUpstreamConnected(ec);
                        });
  }

  void OnUpstreamConnected(error_code ec) {
    if (phase_ == Phase::kClosed) return;
    if (ec) {
      impl_.counters.connect_failures.fetch_add(1, std::memory_order_relaxed);
      Close("upstream connect failed: " + ec.message(), false,
            Error("08006",
                  "cacheportal sniffer: cannot connect to the database server: " + ec.message()));
      return;
    }
    error_code ignored;
    server_.set_option(tcp::no_delay(true), ignored);
    phase_ = Phase::kRelay;
    // Inspect whatever followed the StartupMessage before relaying it.
    ClientHandler h;
    h.s = this;
    auto consumed = client_frames_.Feed(leftover_, h);
    if (!consumed.ok()) {
      ProtocolError("client sent " + consumed.status().message());
      return;
    }
    to_server_ = std::move(startup_packet_);
    to_server_ += leftover_;
    std::string().swap(leftover_);
    // Hand both sockets to a relay thread. The timer's handler may still run
    // here (cancelled or already due): handed_off_ tells it to do nothing.
    timer_.cancel();
    error_code ec1, ec2;
    int cfd = client_.release(ec1);
    int sfd = server_.release(ec2);
    handed_off_ = true;
    cfd_ = ec1 ? -1 : cfd;
    sfd_ = ec2 ? -1 : sfd;
    if (ec1 || ec2 || !PrepareForRelay(cfd_) || !PrepareForRelay(sfd_)) {
      Close("cannot hand the connection to a relay thread", false);
      return;
    }
    if (!impl_.HandOff(shared_from_this())) Close("sniffer stopping", false);
  }

  // Also close-on-exec: a process the host forks must not keep our sockets
  // (and so the client's or the backend's connection) open.
  static bool PrepareForRelay(int fd) {
    int flags = ::fcntl(fd, F_GETFL, 0);
    return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 &&
           ::fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
  }

  // ---- timers --------------------------------------------------------------

  void ArmTimer(std::chrono::steady_clock::duration d) {
    timer_.expires_after(d);
    timer_.async_wait([self = shared_from_this()](error_code ec) { self->OnTimer(ec); });
  }

  void OnTimer(error_code ec) {
    if (ec || handed_off_ || phase_ == Phase::kClosed) return;
    switch (phase_) {
      case Phase::kStartup:
        Close("startup timeout", true, Error("08P01", "cacheportal sniffer: startup timeout"));
        return;
      case Phase::kConnecting:
        impl_.counters.connect_failures.fetch_add(1, std::memory_order_relaxed);
        Close("upstream connect timeout", false,
              Error("08006", "cacheportal sniffer: timeout connecting to the database server"));
        return;
      case Phase::kRelay:  // the relay loop watches idleness
      case Phase::kClosed:
        return;
    }
  }

  // ---- protocol state ------------------------------------------------------

  void OnClientMessage(const Message& m) {
    switch (m.type) {
      case '\0':
        OnStartupPacket(m);
        break;
      case 'Q':
        OnQuery(m.body);
        break;
      case 'P':
        OnParse(m.body);
        break;
      case 'B':
        OnBind(m.body);
        break;
      case 'E':
        OnExecute(m.body);
        break;
      case 'C':
        if (auto c = sniffer::ParseClose(m.body)) {
          if (c->kind == 'S') {
            statements_.Erase(c->name);
          } else {
            ErasePortal(c->name);
          }
        } else {
          Malformed("Close");
        }
        break;
      case 'S':
        ++pending_ready_;
        break;
      case 'F':
        // A fast-path function call carries no SQL we could analyse; under a
        // request id it is registered without SQL so the request fails closed.
        executed_since_ready_ = true;
        if (request_id_) {
          CapturedStatement cs;
          cs.in_transaction_block = InTransactionBlock();
          cs.connection_id = id_;
          Register(std::move(cs));
        }
        break;
      case 'X':
        terminated_ = true;
        break;
      default:
        break;
    }
  }

  void OnStartupPacket(const Message& m) {
    startup_kind_ = sniffer::ClassifyStartup(m);
    if (*startup_kind_ == StartupKind::kCancelRequest) {
      cancel_key_ = sniffer::ParseCancelRequest(m);
    } else if (*startup_kind_ == StartupKind::kStartup) {
      startup_packet_.assign(m.raw);
      if (log::GetLevel() <= log::Level::kDebug) {
        std::string user, db;
        if (auto params = sniffer::ParseStartupParameters(m)) {
          for (auto& [k, v] : *params) {
            if (k == "user") user = v;
            if (k == "database") db = v;
          }
        }
        log::Debug(kPart, "client startup",
                   {{"conn", std::to_string(id_)}, {"user", user}, {"database", db}});
      }
    }
  }

  bool InTransactionBlock() const { return tx_status_ != 'I' || begun_in_flight_; }

  void ApplySessionCommands(const std::vector<sniffer::SessionCommand>& cmds) {
    for (const auto& c : cmds) {
      switch (c.kind) {
        case SessionCommandKind::kBegin:
          begun_in_flight_ = true;
          break;
        case SessionCommandKind::kDeallocate:
          statements_.Erase(c.name);
          break;
        case SessionCommandKind::kDeallocateAll:
          statements_.Clear();
          break;
        case SessionCommandKind::kDiscardAll:
          statements_.Clear();
          portals_.clear();
          unnamed_portal_.statement.reset();
          break;
      }
    }
  }

  void OnQuery(std::string_view body) {
    ++pending_ready_;
    auto sql = sniffer::ParseQuery(body);
    if (!sql) return Malformed("Query");
    request_id_ = RequestIdFromSql(*sql);
    auto cmds = sniffer::ScanSessionCommands(*sql);
    bool begins = false;
    for (const auto& c : cmds) begins |= c.kind == SessionCommandKind::kBegin;
    if (request_id_) {
      CapturedStatement cs;
      cs.sql.assign(*sql);
      cs.in_transaction_block = InTransactionBlock() || begins;
      cs.connection_id = id_;
      Register(std::move(cs));
    }
    ApplySessionCommands(cmds);
  }

  void OnParse(std::string_view body) {
    auto p = sniffer::ParseParse(body);
    if (!p) return Malformed("Parse");
    request_id_ = RequestIdFromSql(p->sql);
    auto st = std::make_shared<sniffer::PreparedStatement>();
    st->sql.assign(p->sql);
    st->commands = sniffer::ScanSessionCommands(p->sql);
    statements_.Put(p->statement, std::move(st));
  }

  void OnBind(std::string_view body) {
    auto names = sniffer::ParseBindNames(body);
    if (!names) return Malformed("Bind");
    Portal* portal;
    if (names->first.empty()) {
      portal = &unnamed_portal_;
    } else {
      // Portals normally die at transaction end; a client that never closes
      // them cannot make this map grow without bound.
      if (portals_.size() >= static_cast<size_t>(impl_.options.max_prepared_per_connection) &&
          portals_.find(std::string(names->first)) == portals_.end()) {
        portals_.erase(portals_.begin());
      }
      portal = &portals_[std::string(names->first)];
    }
    portal->statement = statements_.Get(names->second);
    portal->bind_body.assign(body);
    if (!portal->statement) {
      log::Debug(kPart, "bind of an unknown statement",
                 {{"conn", std::to_string(id_)}, {"statement", std::string(names->second)}});
    }
  }

  void OnExecute(std::string_view body) {
    auto name = sniffer::ParseExecute(body);
    if (!name) return Malformed("Execute");
    Portal* portal = &unnamed_portal_;
    if (!name->empty()) {
      auto it = portals_.find(std::string(*name));
      if (it == portals_.end()) return;
      portal = &it->second;
    }
    executed_since_ready_ = true;
    if (portal->bind_body.empty()) return;  // never bound: the server will reject it
    StatementPtr st = portal->statement;
    if (request_id_) {
      CapturedStatement cs;
      cs.in_transaction_block = InTransactionBlock();
      cs.connection_id = id_;
      if (st) {
        cs.sql = st->sql;
      } else {
        // Evicted or never seen: still register (with no SQL) so the request
        // is not mistaken for one that ran nothing; the analyser fails closed.
        log::Warn(kPart, "executing a statement whose SQL is unknown (evicted?)",
                  {{"conn", std::to_string(id_)}});
      }
      if (auto b = sniffer::ParseBind(portal->bind_body)) {
        cs.params.reserve(b->params.size());
        for (const auto& p : b->params) {
          cs.params.emplace_back(p ? std::optional<std::string>(std::string(*p)) : std::nullopt);
        }
        cs.param_is_binary = std::move(b->param_is_binary);
      } else {
        Malformed("Bind");
      }
      Register(std::move(cs));
    }
    if (st && !st->commands.empty()) {
      auto cmds = st->commands;  // may clear the statement map
      ApplySessionCommands(cmds);
    }
  }

  void ErasePortal(std::string_view name) {
    if (name.empty()) {
      unnamed_portal_ = Portal{};
    } else {
      portals_.erase(std::string(name));
    }
  }

  void OnServerMessage(const Message& m) {
    if (m.type == 'Z') {
      if (auto s = sniffer::ParseReadyForQuery(m.body)) {
        tx_status_ = *s;
      } else {
        Malformed("ReadyForQuery");
      }
      begun_in_flight_ = false;
      executed_since_ready_ = false;
      if (pending_ready_ > 0) --pending_ready_;
    } else if (m.type == 'K') {
      if (auto k = sniffer::ParseBackendKeyData(m.body)) {
        if (backend_key_) impl_.cancels.Remove(*backend_key_);
        backend_key_ = std::move(k);
        impl_.cancels.Add(*backend_key_);
      } else {
        Malformed("BackendKeyData");
      }
    }
  }

  void Register(CapturedStatement cs) {
    impl_.counters.registered.fetch_add(1, std::memory_order_relaxed);
    if (!impl_.sink) return;
    try {
      impl_.sink->OnStatement(*request_id_, std::move(cs));
    } catch (const std::exception& e) {
      log::Error(kPart, "statement sink threw",
                 {{"conn", std::to_string(id_)}, {"error", e.what()}});
    } catch (...) {
      log::Error(kPart, "statement sink threw", {{"conn", std::to_string(id_)}});
    }
  }

  // An inspected message we could not decode: relay it anyway (the server
  // judges it), but count it.
  void Malformed(const char* what) {
    impl_.counters.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    log::Warn(kPart, "malformed message relayed uninspected",
              {{"conn", std::to_string(id_)}, {"type", what}});
  }

  // ---- the one close path --------------------------------------------------

  std::string Error(std::string_view sqlstate, std::string_view msg) {
    return sniffer::BuildErrorResponse(sqlstate, msg);
  }

  void ProtocolError(const std::string& reason) {
    impl_.counters.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    Close("protocol error: " + reason, false,
          Error("08P01", "cacheportal sniffer: protocol violation: " + reason));
  }

  void Release() {
    impl_.counters.active.fetch_sub(1, std::memory_order_relaxed);
    if (backend_key_) impl_.cancels.Remove(*backend_key_);
  }

  // Closes both sides. `client_gone`: the client left (or broke); if its
  // query is still running upstream, cancel it so no backend keeps working
  // for nobody. `error_to_client`: an ErrorResponse to send first, if the
  // client side is idle.
  void Close(const std::string& reason, bool client_gone, std::string error_to_client = {}) {
    if (phase_ == Phase::kClosed) return;
    const bool relaying = phase_ == Phase::kRelay;
    phase_ = Phase::kClosed;
    const bool normal = reason == "client terminated" || reason == "cancel request forwarded";
    if (normal) {
      log::Debug(kPart, "closing", {{"conn", std::to_string(id_)}, {"reason", reason}});
    } else {
      log::Info(kPart, "closing", {{"conn", std::to_string(id_)}, {"reason", reason}});
    }
    Release();
    if (client_gone && relaying && (pending_ready_ > 0 || executed_since_ready_) && backend_key_) {
      impl_.PostForwardCancel(*backend_key_, id_);
    }
    if (handed_off_) {
      CloseRelay(relaying, std::move(error_to_client));
      return;
    }
    error_code ignored;
    timer_.cancel();
    if (server_.is_open()) {
      // Say goodbye properly when we are between messages, so the backend
      // logs no "unexpected EOF".
      if (relaying && !terminated_ && client_frames_.AtBoundary()) {
        auto x = sniffer::TerminateMessage();
        server_.write_some(asio::buffer(x.data(), x.size()), ignored);
      }
      server_.shutdown(tcp::socket::shutdown_both, ignored);
      server_.close(ignored);
    }
    if (!error_to_client.empty() && client_.is_open()) {
      close_message_ = std::move(error_to_client);
      asio::async_write(client_, asio::buffer(close_message_),
                        [self = shared_from_this()](error_code, size_t) {
                          error_code ignored;
                          self->client_.shutdown(tcp::socket::shutdown_both, ignored);
                          self->client_.close(ignored);
                        });
      return;
    }
    client_.shutdown(tcp::socket::shutdown_both, ignored);
    client_.close(ignored);
  }

  // Close() on the relay thread: raw sockets, no waiting. The error message
  // is small and goes to an idle socket, so one send is enough.
  void CloseRelay(bool relaying, std::string error_to_client) {
    // Out of the epoll set explicitly: close() alone would leave the
    // registration (and events pointing at this session) behind while
    // another process still holds the socket, e.g. a child forked before
    // it was marked close-on-exec.
    if (loop_) {
      loop_->SetInterest(client_ep_, 0, false);
      loop_->SetInterest(server_ep_, 0, false);
    }
    if (sfd_ >= 0) {
      if (relaying && !terminated_ && to_server_.empty() && client_frames_.AtBoundary()) {
        auto x = sniffer::TerminateMessage();
        [[maybe_unused]] ssize_t w = ::send(sfd_, x.data(), x.size(), MSG_NOSIGNAL);
      }
      ::shutdown(sfd_, SHUT_RDWR);
      ::close(sfd_);  // also leaves the epoll set
      sfd_ = -1;
    }
    if (cfd_ >= 0) {
      if (!error_to_client.empty() && to_client_.empty()) {
        [[maybe_unused]] ssize_t w =
            ::send(cfd_, error_to_client.data(), error_to_client.size(), MSG_NOSIGNAL);
      }
      ::shutdown(cfd_, SHUT_RDWR);
      ::close(cfd_);
      cfd_ = -1;
    }
    client_ep_.fd = server_ep_.fd = -1;
    client_ep_.registered = server_ep_.registered = false;
    if (loop_) loop_->Retire(this);
  }

  Sniffer::Impl& impl_;
  tcp::socket client_;
  tcp::socket server_;
  asio::steady_timer timer_;
  const uint64_t id_;
  Phase phase_ = Phase::kStartup;
  FrameReader client_frames_;
  FrameReader server_frames_;
  std::unique_ptr<char[]> client_buf_;
  std::unique_ptr<char[]> server_buf_;
  // Relay phase (RelayLoop thread).
  bool handed_off_ = false;  // set on the Asio thread before the hand-off
  RelayLoop* loop_ = nullptr;
  int cfd_ = -1;
  int sfd_ = -1;
  Endpoint client_ep_;
  Endpoint server_ep_;
  std::string to_server_;  // relayed from the client, not yet written upstream
  std::string to_client_;  // relayed from the server, not yet written to the client
  bool client_hup_ = false;
  bool server_hup_ = false;
  bool terminated_ = false;
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();

  // Startup phase.
  std::optional<StartupKind> startup_kind_;
  std::optional<CancelKey> cancel_key_;
  std::string startup_packet_;
  std::string leftover_;
  std::string close_message_;

  // Protocol state (see ../shared/reference/sqlcommenter.md "Pitfalls").
  std::optional<std::string> request_id_;
  char tx_status_ = 'I';
  bool begun_in_flight_ = false;       // a BEGIN was sent and its ReadyForQuery is pending
  int64_t pending_ready_ = 0;          // Query/Sync sent whose ReadyForQuery has not come back
  bool executed_since_ready_ = false;  // Execute/FunctionCall sent (maybe with Flush, no Sync)
  std::optional<CancelKey> backend_key_;
  sniffer::StatementCache statements_;
  Portal unnamed_portal_;
  std::unordered_map<std::string, Portal> portals_;
};

// Connects to the upstream, sends one CancelRequest, closes.
class CancelForwarder : public std::enable_shared_from_this<CancelForwarder> {
 public:
  CancelForwarder(asio::any_io_executor ex, std::string packet, uint64_t conn_id)
      : socket_(ex), timer_(ex), packet_(std::move(packet)), conn_id_(conn_id) {}

  void Run(const tcp::resolver::results_type& upstream, int timeout_seconds) {
    timer_.expires_after(std::chrono::seconds(timeout_seconds));
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) {
        error_code ignored;
        self->socket_.close(ignored);
      }
    });
    asio::async_connect(
        socket_, upstream, [self = shared_from_this()](error_code ec, const tcp::endpoint&) {
          if (ec) {
            log::Warn(kPart, "cannot forward cancel request",
                      {{"conn", std::to_string(self->conn_id_)}, {"error", ec.message()}});
            self->timer_.cancel();
            return;
          }
          asio::async_write(self->socket_, asio::buffer(self->packet_), [self](error_code, size_t) {
            error_code ignored;
            self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
            self->socket_.close(ignored);
            self->timer_.cancel();
          });
        });
  }

 private:
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::string packet_;
  uint64_t conn_id_;
};

RelayLoop::~RelayLoop() {
  if (epfd_ >= 0) ::close(epfd_);
  if (wakefd_ >= 0) ::close(wakefd_);
}

Status RelayLoop::Init() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ < 0 || wakefd_ < 0) {
    return Status::IOError(std::string("sniffer: cannot create a relay loop: ") +
                           std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake-up descriptor
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) != 0) {
    return Status::IOError(std::string("sniffer: epoll_ctl: ") + std::strerror(errno));
  }
  return Status::OK();
}

bool RelayLoop::Adopt(std::shared_ptr<Session> session) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    incoming_.push_back(std::move(session));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t w = ::write(wakefd_, &one, sizeof one);
  return true;
}

void RelayLoop::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t w = ::write(wakefd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void RelayLoop::SetInterest(Endpoint& ep, uint32_t events, bool registered) {
  if (ep.fd < 0) return;
  if (!registered) {
    if (ep.registered) {
      ::epoll_ctl(epfd_, EPOLL_CTL_DEL, ep.fd, nullptr);
      ep.registered = false;
      ep.events = 0;
    }
    return;
  }
  if (ep.registered && ep.events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = &ep;
  if (::epoll_ctl(epfd_, ep.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, ep.fd, &ev) == 0) {
    ep.registered = true;
    ep.events = events;
  } else {
    log::Error(kPart, "epoll_ctl failed", {{"error", std::strerror(errno)}});
  }
}

void RelayLoop::Retire(Session* session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  retired_.push_back(std::move(it->second));
  sessions_.erase(it);
}

void RelayLoop::TakeIncoming() {
  uint64_t count;
  [[maybe_unused]] ssize_t r = ::read(wakefd_, &count, sizeof count);
  std::vector<std::shared_ptr<Session>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(incoming_);
  }
  for (auto& s : batch) {
    Session* raw = s.get();
    sessions_.emplace(raw, std::move(s));
    raw->StartRelay(this);
  }
}

void RelayLoop::Run() {
  const int idle = impl_.options.idle_timeout_seconds;
  auto last_sweep = std::chrono::steady_clock::now();
  epoll_event events[64];
  const auto poll_window = std::chrono::microseconds(std::max(0, impl_.options.poll_microseconds));
  std::chrono::steady_clock::time_point poll_until{};
  for (;;) {
    // Idleness is checked once a second (the timeout's resolution).
    // Within the poll window after relaying, only ask; otherwise sleep.
    const bool polling = poll_window.count() > 0 && std::chrono::steady_clock::now() < poll_until;
    int n = ::epoll_wait(epfd_, events, 64, polling ? 0 : idle > 0 ? 1000 : -1);
    if (polling && n == 0) {
      ::sched_yield();  // anything runnable here goes first
      continue;
    }
    if (n > 0 && poll_window.count() > 0)
      poll_until = std::chrono::steady_clock::now() + poll_window;
    if (n < 0) {
      if (errno == EINTR) continue;
      log::Error(kPart, "epoll_wait failed", {{"error", std::strerror(errno)}});
      std::lock_guard lock(mu_);
      stopping_ = true;  // refuse further hand-offs: nobody would serve them
      break;
    }
    // The clock is only read for the idle timeout (a call per wake-up).
    if (idle > 0) now_ = std::chrono::steady_clock::now();
    bool wake = false;
    for (int i = 0; i < n; ++i) {
      auto* ep = static_cast<Endpoint*>(events[i].data.ptr);
      if (ep == nullptr) {
        wake = true;
      } else {
        ep->session->OnEvent(*ep, events[i].events);
      }
    }
    retired_.clear();
    if (wake) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) break;
      }
      TakeIncoming();
      retired_.clear();
    }
    if (idle > 0 && now_ - last_sweep >= std::chrono::seconds(1)) {
      last_sweep = now_;
      std::vector<Session*> all;
      all.reserve(sessions_.size());
      for (auto& [raw, s] : sessions_) all.push_back(raw);
      for (Session* s : all) s->CheckIdle(now_);
      retired_.clear();
    }
  }
  // Stopping: close what is left, including sessions handed over meanwhile.
  {
    std::lock_guard lock(mu_);
    for (auto& s : incoming_) {
      Session* raw = s.get();
      sessions_.emplace(raw, std::move(s));
    }
    incoming_.clear();
  }
  std::vector<Session*> all;
  for (auto& [raw, s] : sessions_) all.push_back(raw);
  for (Session* s : all) s->CloseForStop();
  retired_.clear();
  sessions_.clear();
}

}  // namespace

Sniffer::Impl::~Impl() { Stop(); }

bool Sniffer::Impl::HandOff(std::shared_ptr<Session> session) {
  if (loops_.empty()) return false;
  size_t i = next_loop_.fetch_add(1, std::memory_order_relaxed) % loops_.size();
  return loops_[i]->Adopt(std::move(session));
}

void Sniffer::Impl::PostForwardCancel(const CancelKey& key, uint64_t conn_id) {
  asio::post(*ioc_, [this, key, conn_id] { ForwardCancel(ioc_->get_executor(), key, conn_id); });
}

void Sniffer::Impl::ForwardCancel(asio::any_io_executor ex, const CancelKey& key,
                                  uint64_t conn_id) {
  counters.cancels.fetch_add(1, std::memory_order_relaxed);
  log::Info(kPart, "forwarding cancel request",
            {{"conn", std::to_string(conn_id)}, {"backend_pid", std::to_string(key.pid)}});
  std::make_shared<CancelForwarder>(ex, sniffer::BuildCancelRequest(key), conn_id)
      ->Run(upstream, options.connect_timeout_seconds);
}

Status Sniffer::Impl::Start() {
  if (options.threads < 1 || options.threads > 64) {
    return Status::InvalidArgument("sniffer.threads must be 1..64");
  }
  if (options.max_prepared_per_connection < 1) {
    return Status::InvalidArgument("sniffer.max_prepared_per_connection must be at least 1");
  }
  if (options.connect_timeout_seconds < 1) {
    return Status::InvalidArgument("sniffer.connect_timeout_seconds must be at least 1");
  }
  if (options.idle_timeout_seconds < 0) {
    return Status::InvalidArgument("sniffer.idle_timeout_seconds must be 0 (off) or positive");
  }
  if (options.max_message_bytes < 1024) {
    return Status::InvalidArgument("sniffer.max_message_bytes must be at least 1024");
  }
  ioc_ = std::make_unique<asio::io_context>(1);
  guard_.emplace(asio::make_work_guard(*ioc_));
  for (int i = 0; i < options.threads; ++i) {
    loops_.push_back(std::make_unique<RelayLoop>(*this));
    if (Status s = loops_.back()->Init(); !s.ok()) return s;
  }
  error_code ec;
  tcp::resolver resolver(*ioc_);
  upstream = resolver.resolve(options.upstream_host, std::to_string(options.upstream_port), ec);
  if (ec) {
    return Status::InvalidArgument("sniffer: cannot resolve upstream '" + options.upstream_host +
                                   "': " + ec.message());
  }
  auto addr = asio::ip::make_address(options.listen_address, ec);
  if (ec) {
    return Status::InvalidArgument("sniffer: bad listen address '" + options.listen_address +
                                   "': " + ec.message());
  }
  tcp::endpoint ep(addr, options.listen_port);
  acceptor_ = std::make_unique<tcp::acceptor>(*ioc_);
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IOError("sniffer: cannot listen on " + options.listen_address + ":" +
                           std::to_string(options.listen_port) + ": " + ec.message());
  }
  port = acceptor_->local_endpoint().port();
  for (auto& loop : loops_) loop->StartThread();
  DoAccept();
  asio_thread_ = std::thread([ioc = ioc_.get()] {
    for (;;) {
      try {
        ioc->run();
        return;
      } catch (const std::exception& e) {
        log::Error(kPart, "I/O thread caught an exception", {{"error", e.what()}});
      }
    }
  });
  log::Info(kPart, "listening",
            {{"address", options.listen_address + ":" + std::to_string(port)},
             {"upstream", options.upstream_host + ":" + std::to_string(options.upstream_port)},
             {"threads", std::to_string(options.threads)}});
  return Status::OK();
}

void Sniffer::Impl::DoAccept() {
  acceptor_->async_accept(*ioc_, [this](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
    if (ec) {
      log::Warn(kPart, "accept failed", {{"error", ec.message()}});
    } else {
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      counters.accepted.fetch_add(1, std::memory_order_relaxed);
      counters.active.fetch_add(1, std::memory_order_relaxed);
      uint64_t id = next_conn_id_.fetch_add(1, std::memory_order_relaxed);
      std::make_shared<Session>(*this, std::move(socket), id)->Start();
    }
    DoAccept();
  });
}

void Sniffer::Impl::Stop() {
  std::lock_guard lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  // Relay threads first (they close their sessions; a hand-off arriving
  // meanwhile is refused and closed by the Asio thread), then the Asio
  // thread, which relay threads post cancels to.
  for (auto& loop : loops_) loop->Stop();
  guard_.reset();
  if (ioc_) ioc_->stop();
  if (asio_thread_.joinable()) asio_thread_.join();
  // Destroying the context destroys the pending handlers and with them the
  // sessions (and their sockets) while counters and registry still exist.
  acceptor_.reset();
  ioc_.reset();
  loops_.clear();
}

Sniffer::Sniffer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sniffer::~Sniffer() { Stop(); }

Result<std::unique_ptr<Sniffer>> Sniffer::Start(const SnifferOptions& options,
                                                StatementSink* sink) {
  auto impl = std::make_unique<Impl>(options, sink);
  Status s = impl->Start();
  if (!s.ok()) return s;
  return std::unique_ptr<Sniffer>(new Sniffer(std::move(impl)));
}

uint16_t Sniffer::port() const { return impl_->port; }
void Sniffer::Stop() { impl_->Stop(); }

SnifferStats Sniffer::stats() const {
  const auto& c = impl_->counters;
  SnifferStats s;
  s.connections_accepted = c.accepted.load(std::memory_order_relaxed);
  s.connections_active = c.active.load(std::memory_order_relaxed);
  s.statements_registered = c.registered.load(std::memory_order_relaxed);
  s.bytes_client_to_server = c.c2s.load(std::memory_order_relaxed);
  s.bytes_server_to_client = c.s2c.load(std::memory_order_relaxed);
  s.protocol_errors = c.protocol_errors.load(std::memory_order_relaxed);
  s.cancels_forwarded = c.cancels.load(std::memory_order_relaxed);
  s.upstream_connect_failures = c.connect_failures.load(std::memory_order_relaxed);
  return s;
}

}  // namespace cacheportal
