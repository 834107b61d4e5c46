// The edge's mechanism: sessions (Beast session shape: one coroutine per
// connection, a deadline before every read and every upstream operation,
// body/header limits, one failure path), the request path stages, the origin
// connection pools, coalescing, ESI assembly and the admin listener.
//
// Threading: one io_context per worker thread; a connection and its origin
// fetches live on one worker, so per-worker state (the origin pool) needs no
// lock. Cross-worker state (store shards, pending fills, read-your-writes) is
// behind small mutexes; the hit path takes only one store shard's mutex.
#include "edgecache/edge_server.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "common/log.h"
#include "common/traceparent.h"
#include "edgecache/cacheability.h"
#include "edgecache/disk_tier.h"
#include "edgecache/esi_parser.h"
#include "edgecache/outcomes.h"
#include "edgecache/store.h"

namespace cacheportal::edge {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

namespace {

constexpr std::string_view kPart = "edge";

int64_t NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

std::string_view ToView(beast::string_view s) { return {s.data(), s.size()}; }

// A response ready to write: the hit path appends Age/X-Cache per request.
struct Reply {
  std::shared_ptr<const CachedObject> object;
  const char* x_cache = "PASS";
  int64_t age = -1;        // >= 0 on hits
  bool ok = true;          // false: no origin answer (fragment failure)
  bool cacheable = false;  // the request had a key (for ESI children)
  std::string key;
  // ESI: the assembled body as pieces (views into the bodies `holders` keep
  // alive); `object->head` then lacks Content-Length and ETag.
  bool assembled = false;
  std::vector<std::string_view> pieces;
  std::vector<std::shared_ptr<const CachedObject>> holders;
  size_t assembled_size = 0;
  uint64_t assembled_hash = 0;
};

Reply MakeReply(std::shared_ptr<const CachedObject> object, const char* x_cache) {
  Reply r;
  r.object = std::move(object);
  r.x_cache = x_cache;
  return r;
}

// What serving one request takes, decided without suspending (PlanObject).
struct ObjectPlan {
  enum class Kind {
    kPass,          // to the origin, not cacheable
    kPassUnstored,  // cacheable, but nothing may be stored or served (not vouched)
    kFill,          // a miss: fetch (coalesced) and maybe store under `key`
    kHit,           // answered: `hit`
  };
  Kind kind = Kind::kPass;
  differentiator::Decision decision;  // its origin_target, if any, is where the origin is asked
  std::string key;                    // kFill
  Reply hit;                          // kHit
};

std::shared_ptr<const CachedObject> ShortPage(int status, std::string_view reason,
                                              std::string_view text) {
  auto o = std::make_shared<CachedObject>();
  o->status = status;
  auto body = std::make_shared<Body>(std::string(text) + "\n");
  o->head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
            "\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"
            "Content-Length: " +
            std::to_string(body->size()) + "\r\n";
  o->body = std::move(body);
  return o;
}

// Request the edge is serving: a client request or an ESI sub-request. Views
// point into the client's parsed request, which outlives every sub-request.
struct RequestCtx {
  std::string_view method;  // as received
  bool head = false;
  std::string target;
  HeaderList headers;
  std::string_view body;
  std::string_view client;  // peer address, for read-your-writes
  int depth = 0;            // ESI nesting
};

struct UpstreamResult {
  FetchOutcome outcome = FetchOutcome::kOk;
  http::response<http::string_body> response;
};

struct Fetched {
  FetchOutcome fetch = FetchOutcome::kOk;
  StoreOutcome storable = StoreOutcome::kStored;
  std::shared_ptr<CachedObject> object;
  // The copy to store and hand to coalesced waiters when it differs from the
  // requester's (Set-Cookie stripped, rule store_despite: set-cookie).
  std::shared_ptr<CachedObject> shared;
  const std::shared_ptr<CachedObject>& Shared() const { return shared ? shared : object; }
  std::string request_id;
  std::vector<std::string> children;
};

struct Waiter {
  explicit Waiter(asio::any_io_executor ex) : executor(ex), timer(ex) {}
  asio::any_io_executor executor;
  asio::steady_timer timer;
  bool done = false;                           // touched only on executor's thread
  std::shared_ptr<const CachedObject> result;  // null: fetch yourself
};

// An in-flight fill of one key: the leader fetches, waiters wait, Eject taints.
struct Fill {
  std::mutex mu;
  bool tainted = false;
  std::string url;
  std::vector<std::string> children;  // ESI fragment keys, known before they are fetched
  std::vector<std::shared_ptr<Waiter>> waiters;
};

struct OriginConn {
  explicit OriginConn(asio::any_io_executor ex) : stream(ex) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

struct Worker {
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{ioc.get_executor()};
  std::vector<std::unique_ptr<OriginConn>> idle;  // keep-alive origin connections
  std::thread thread;
};

}  // namespace

uint64_t EdgeMetrics::Outcome(const std::string& stage_outcome) const {
  for (const auto& [k, v] : outcomes)
    if (k == stage_outcome) return v;
  return 0;
}

class EdgeServer::Impl {
 public:
  Impl(const EdgeOptions& o, EdgeDeps d)
      : opt_(o),
        deps_(std::move(d)),
        store_(o.memory_budget_bytes, deps_.store_shards ? deps_.store_shards : 1) {
    origin_timeout_ =
        deps_.origin_timeout.count() > 0
            ? deps_.origin_timeout
            : std::chrono::milliseconds(1000LL * std::max(1, o.origin_timeout_seconds));
    idle_timeout_ = deps_.idle_timeout.count() > 0
                        ? deps_.idle_timeout
                        : std::chrono::milliseconds(1000LL * std::max(1, o.idle_timeout_seconds));
    storing_ = deps_.registrar != nullptr || deps_.store_without_registrar;
    revalidate_on_no_cache_ = o.client_no_cache == "revalidate";
  }

  Status Init();
  void Stop();

  // ---- Ejector ----
  Status Eject(std::span<const std::string> keys);
  Status EjectAll();
  void SetVouched(bool v) { vouched_.store(v, std::memory_order_release); }

  EdgeMetrics Metrics() const;
  std::string PrometheusText() const;
  std::string StatsJson() const;
  std::vector<std::string> ChildrenOf(const std::string& key);
  bool Contains(const std::string& key);

  uint16_t port() const { return port_; }
  uint16_t admin_port() const { return admin_port_; }

 private:
  // ---- sessions ----
  awaitable<void> Accept(tcp::acceptor& acceptor, bool admin);
  awaitable<void> Session(tcp::socket socket);
  awaitable<void> AdminSession(tcp::socket socket);
  awaitable<void> RulesTimer();
  awaitable<void> WriteReply(beast::tcp_stream& stream, const Reply& r, const RequestCtx& c,
                             bool keep_alive);

  // ---- the request path ----
  awaitable<Reply> Serve(RequestCtx& c);
  awaitable<Reply> Pass(RequestCtx& c, std::string_view target);
  awaitable<Reply> FillKey(RequestCtx& c, const std::string& key,
                           const differentiator::Decision& d);
  awaitable<Fetched> FetchAndAssemble(RequestCtx& c, const std::string& key,
                                      const differentiator::Decision& d, Fill* fill);
  // The key and lookup stages for `c`, which never suspend: what serving it
  // takes (counted here, once). A fresh hit is answered in the plan, so ESI
  // assembly takes the hit fragments of a page in place instead of spawning
  // a coroutine (frame, timer, dispatch) per include.
  ObjectPlan PlanObject(RequestCtx& c);
  // Carries a plan out (pass, fill or hit) and assembles an ESI answer.
  awaitable<Reply> ServePlanned(RequestCtx& c, ObjectPlan plan);
  bool WantsRevalidation(const RequestCtx& c) const;
  // ESI stage, parse half: once per origin response. Null when not ESI.
  std::shared_ptr<const std::vector<EsiInstruction>> ParseEsi(
      const http::response<http::string_body>& res, std::string_view target);
  // ESI stage, delivery half: fetches the includes of r's template in
  // parallel (each through Serve, so rules, cache and coalescing apply) and
  // fills r.pieces in order.
  awaitable<void> Assemble(RequestCtx& c, Reply& r);
  // Keys the includes of a template would have for this request.
  std::vector<std::string> ChildKeys(const RequestCtx& c, const std::vector<EsiInstruction>& ins,
                                     std::string_view target);
  std::vector<RequestCtx> SubRequests(const RequestCtx& c, const std::vector<EsiInstruction>& ins,
                                      std::string_view target) const;
  awaitable<UpstreamResult> OriginFetch(http::request<http::string_body>& req, bool head);
  void StoreStage(const std::string& key, const Fetched& f, Fill& fill, RegisterVerdict verdict,
                  bool* stored);
  // `page` must outlive the call (the caller's frame does).
  awaitable<RegisterVerdict> RegistrarComplete(const PageRegistration& page);
  void ReleaseFill(const std::string& key, const std::shared_ptr<Fill>& fill,
                   std::shared_ptr<const CachedObject> result);

  http::request<http::string_body> UpstreamRequest(const RequestCtx& c, std::string_view method,
                                                   std::string_view target, bool for_cache,
                                                   const TraceParent& tp) const;
  std::shared_ptr<CachedObject> BuildObject(http::response<http::string_body>& res,
                                            std::shared_ptr<const Body> body,
                                            std::shared_ptr<const std::vector<EsiInstruction>> esi,
                                            bool head_response, bool drop_set_cookie = false) const;
  // The live rules. With a reloader, each worker keeps its own copy,
  // refreshed by the rules timer, so the hit path takes no shared lock.
  std::shared_ptr<const differentiator::RuleSet> Rules() const;
  void PublishRules();
  std::string SessionOf(const RequestCtx& c) const;
  bool ReadYourWritesActive(const RequestCtx& c);
  void MarkWrite(const RequestCtx& c);
  // Registrar calls may block (the map is durable), so they run on their own
  // small pool, never on an I/O worker.
  void RegistrarAbandon(const std::string& rid) {
    if (!deps_.registrar || !registrar_pool_) return;
    asio::post(*registrar_pool_, [this, rid] {
      try {
        deps_.registrar->Abandon(rid);
      } catch (...) {
        errors_.fetch_add(1);
      }
    });
  }
  // Taints fills of `key` (and, with fragment_ejects_parents, of its pages)
  // and collects the keys to erase into `all`.
  void CollectEjection(const std::string& key, std::unordered_set<std::string>& seen,
                       std::vector<std::string>& all);
  uint64_t Stamp() const {
    if (!deps_.ejected_through) return 0;
    try {
      return deps_.ejected_through().value_or(0);
    } catch (...) {
      return 0;
    }
  }
  // Memory miss: the disk tier's copy, promoted into memory (null if none).
  std::shared_ptr<const CachedObject> DiskLookup(
      const std::string& key, const std::function<std::string(std::string_view)>& value_of);
  std::shared_ptr<const std::vector<EsiInstruction>> ParseEsiBody(std::string_view body,
                                                                  std::string_view target);
  std::string AdminHandle(const http::request<http::string_body>& req, http::status* status,
                          std::string* content_type);
  void Count(const char* x_cache, int depth) {
    if (depth > 0) return;
    if (x_cache[0] == 'H')
      hits_.fetch_add(1, std::memory_order_relaxed);
    else if (x_cache[0] == 'M')
      misses_.fetch_add(1, std::memory_order_relaxed);
    else
      passes_.fetch_add(1, std::memory_order_relaxed);
  }

  EdgeOptions opt_;
  EdgeDeps deps_;
  MemoryStore store_;
  std::chrono::milliseconds origin_timeout_{10000};
  std::chrono::milliseconds idle_timeout_{30000};
  bool storing_ = false;
  bool revalidate_on_no_cache_ = false;
  tcp::endpoint origin_;
  uint16_t port_ = 0, admin_port_ = 0;
  std::atomic<bool> vouched_{true};
  std::atomic<bool> stopped_{false};

  // In-flight fills by key.
  std::mutex pending_mu_;
  std::unordered_map<std::string, std::shared_ptr<Fill>> pending_;
  // ESI fragment key → keys of stored pages that include it (ejecting a
  // fragment ejects its pages too; sqlmap does the same from its own map).
  std::mutex parents_mu_;
  std::unordered_map<std::string, std::vector<std::string>> parents_;
  // Read-your-writes: session → unix-ms until which it bypasses the cache.
  std::mutex ryw_mu_;
  std::unordered_map<std::string, int64_t> ryw_;
  std::atomic<size_t> ryw_size_{0};

  // Counters.
  std::atomic<uint64_t> requests_{0}, hits_{0}, misses_{0}, passes_{0}, coalesced_{0};
  std::atomic<uint64_t> ejections_{0}, reloads_ok_{0}, reloads_failed_{0}, errors_{0};
  std::atomic<uint64_t> esi_errors_{0}, not_modified_{0}, origin_requests_{0}, waiting_{0};
  OutcomeCounters<KeyOutcome, 4> key_out_;
  OutcomeCounters<LookupOutcome, 7> lookup_out_;
  OutcomeCounters<CoalesceOutcome, 5> coalesce_out_;
  OutcomeCounters<FetchOutcome, 5> fetch_out_;
  OutcomeCounters<EsiOutcome, 4> esi_out_;
  OutcomeCounters<StoreOutcome, 13> store_out_;

  std::atomic<size_t> connections_{0};
  std::unique_ptr<asio::thread_pool> registrar_pool_;  // only with a registrar

  // Second tier (EdgeOptions::disk_tier_path); null when off.
  std::unique_ptr<DiskTier> disk_;
  DiskLoadReport disk_report_;
  std::atomic<uint64_t> disk_hits_{0}, disk_errors_{0};

  // Last: destroyed first, so no coroutine outlives the state above.
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<tcp::acceptor> acceptor_, admin_acceptor_;
  std::atomic<size_t> next_worker_{0};
};

// ---------------------------------------------------------------- startup

Status EdgeServer::Impl::Init() {
  if (!deps_.rules && !deps_.rules_provider)
    return Status::InvalidArgument("edge: no rules (EdgeDeps.rules or rules_provider)");
  int threads = std::max(1, opt_.threads);
  if (deps_.registrar) registrar_pool_ = std::make_unique<asio::thread_pool>(2);
  if (!opt_.disk_tier_path.empty()) {
    EdgeResumePoint rp;
    if (deps_.resume_point) {
      try {
        rp = deps_.resume_point();
      } catch (const std::exception& e) {
        log::Warn(kPart, "resume point unknown", {{"error", e.what()}});
        rp = EdgeResumePoint{};
      }
    }
    DiskResume resume{rp.known, rp.position, rp.slot_recreated};
    auto tier = DiskTier::Open(opt_.disk_tier_path, opt_.disk_tier_budget_bytes, resume, NowUnix(),
                               &disk_report_);
    if (!tier.ok()) return tier.status();
    disk_ = std::move(tier.value());
    log::Info(kPart, "disk tier opened",
              {{"path", opt_.disk_tier_path},
               {"kept", std::to_string(disk_report_.kept)},
               {"discarded", std::to_string(disk_report_.discarded)},
               {"clean_shutdown", disk_report_.clean_marker ? "yes" : "no"},
               {"reason", disk_report_.reason}});
  }
  for (int i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>());
  auto& ioc0 = workers_[0]->ioc;
  boost::system::error_code ec;
  {
    tcp::resolver resolver(ioc0);
    auto results = resolver.resolve(opt_.origin_host, std::to_string(opt_.origin_port), ec);
    if (ec || results.empty())
      return Status::InvalidArgument("edge: cannot resolve origin " + opt_.origin_host + ": " +
                                     ec.message());
    origin_ = results.begin()->endpoint();
  }
  auto listen = [&](const std::string& host, uint16_t port,
                    std::unique_ptr<tcp::acceptor>* out) -> Status {
    auto addr = asio::ip::make_address(host, ec);
    if (ec) return Status::InvalidArgument("edge: bad listen address '" + host + "'");
    auto a = std::make_unique<tcp::acceptor>(ioc0);
    tcp::endpoint ep(addr, port);
    a->open(ep.protocol(), ec);
    if (!ec) a->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a->bind(ep, ec);
    if (!ec) a->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return Status::IOError("edge: cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             ec.message());
    *out = std::move(a);
    return Status::OK();
  };
  if (Status s = listen(opt_.listen_address, opt_.listen_port, &acceptor_); !s.ok()) return s;
  if (Status s = listen(opt_.admin_address, opt_.admin_port, &admin_acceptor_); !s.ok()) return s;
  port_ = acceptor_->local_endpoint().port();
  admin_port_ = admin_acceptor_->local_endpoint().port();

  auto on_exit = [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::Error(kPart, "task failed", {{"error", ex.what()}});
    }
  };
  asio::co_spawn(ioc0, Accept(*acceptor_, false), on_exit);
  asio::co_spawn(ioc0, Accept(*admin_acceptor_, true), on_exit);
  if (deps_.check_rules) asio::co_spawn(ioc0, RulesTimer(), on_exit);
  PublishRules();
  for (auto& w : workers_) {
    Worker* wp = w.get();
    w->thread = std::thread([wp] {
      for (;;) {
        try {
          wp->ioc.run();
          return;
        } catch (const std::exception& e) {
          log::Error(kPart, "worker exception", {{"error", e.what()}});
        }
      }
    });
  }
  log::Info(kPart, "listening",
            {{"port", std::to_string(port_)},
             {"admin_port", std::to_string(admin_port_)},
             {"origin", opt_.origin_host + ":" + std::to_string(opt_.origin_port)},
             {"storing", storing_ ? "yes" : "no (pass only)"}});
  return Status::OK();
}

void EdgeServer::Impl::Stop() {
  if (stopped_.exchange(true)) return;
  for (auto& w : workers_) {
    w->guard.reset();
    w->ioc.stop();
  }
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  // Drains registrar calls in flight; their continuations land in the stopped
  // workers and are destroyed with them.
  if (registrar_pool_) registrar_pool_->join();
  // Nothing stores any more: every record on disk is valid as of the
  // position ejected through now (ejections are synchronous and durable).
  if (disk_ && deps_.ejected_through) {
    std::optional<uint64_t> pos;
    try {
      pos = deps_.ejected_through();
    } catch (...) {
    }
    if (pos) {
      if (Status st = disk_->MarkClean(*pos); !st.ok())
        log::Warn(kPart, "disk tier clean marker not written", {{"error", st.ToString()}});
    }
  }
}

awaitable<void> EdgeServer::Impl::Accept(tcp::acceptor& acceptor, bool admin) {
  for (;;) {
    boost::system::error_code ec;
    Worker& w = *workers_[next_worker_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
    tcp::socket socket = co_await acceptor.async_accept(w.ioc.get_executor(),
                                                        asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      errors_.fetch_add(1, std::memory_order_relaxed);
      log::Warn(kPart, "accept failed", {{"error", ec.message()}});
      continue;
    }
    auto ex = socket.get_executor();
    auto on_exit = [this](std::exception_ptr e) {
      if (!e) return;
      errors_.fetch_add(1, std::memory_order_relaxed);
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        log::Warn(kPart, "session failed", {{"error", x.what()}});
      }
    };
    if (admin)
      asio::co_spawn(ex, AdminSession(std::move(socket)), on_exit);
    else
      asio::co_spawn(ex, Session(std::move(socket)), on_exit);
  }
}

awaitable<void> EdgeServer::Impl::RulesTimer() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(deps_.rules_check_interval);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    RulesCheck r = RulesCheck::kFailed;
    try {
      r = deps_.check_rules();
    } catch (...) {
    }
    if (r == RulesCheck::kReloaded) {
      reloads_ok_.fetch_add(1);
      PublishRules();
    }
    if (r == RulesCheck::kFailed) reloads_failed_.fetch_add(1);
  }
}

namespace {
thread_local const void* tl_rules_owner = nullptr;
thread_local std::shared_ptr<const differentiator::RuleSet> tl_rules;
}  // namespace

std::shared_ptr<const differentiator::RuleSet> EdgeServer::Impl::Rules() const {
  if (deps_.rules) return deps_.rules;
  if (tl_rules_owner == this && tl_rules) return tl_rules;
  return deps_.rules_provider ? deps_.rules_provider() : nullptr;
}

void EdgeServer::Impl::PublishRules() {
  if (deps_.rules || !deps_.rules_provider || !deps_.check_rules) return;
  std::shared_ptr<const differentiator::RuleSet> current;
  try {
    current = deps_.rules_provider();
  } catch (...) {
    return;
  }
  for (auto& w : workers_)
    asio::post(w->ioc, [this, current] {
      tl_rules_owner = this;
      tl_rules = current;
    });
}

// ---------------------------------------------------------------- sessions

namespace {
// Writes a complete short response and reports whether it succeeded.
awaitable<void> WriteRaw(beast::tcp_stream& s, const std::string& bytes) {
  boost::system::error_code ec;
  co_await asio::async_write(s, asio::buffer(bytes), asio::redirect_error(use_awaitable, ec));
}

std::string RawError(int status, std::string_view reason, std::string_view detail = {}) {
  std::string body = std::to_string(status) + " " + std::string(reason) + "\n";
  if (!detail.empty()) body += std::string(detail) + "\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
         "\r\nContent-Type: text/plain\r\nConnection: close\r\nX-Cache: PASS\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}
}  // namespace

awaitable<void> EdgeServer::Impl::Session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  boost::system::error_code ec;
  struct ConnectionSlot {
    std::atomic<size_t>& n;
    ~ConnectionSlot() { n.fetch_sub(1, std::memory_order_relaxed); }
  } slot{connections_};
  if (connections_.fetch_add(1, std::memory_order_relaxed) >= deps_.max_client_connections) {
    stream.expires_after(std::chrono::seconds(1));
    {
      const std::string err = RawError(503, "Service Unavailable");
      co_await WriteRaw(stream, err);
    }
    errors_.fetch_add(1, std::memory_order_relaxed);
    co_return;
  }
  std::string client;
  if (auto ep = stream.socket().remote_endpoint(ec); !ec) client = ep.address().to_string();
  stream.socket().set_option(tcp::no_delay(true), ec);
  // Bounds what a client may send ahead (pipelining) as well as one header.
  beast::flat_buffer buffer(opt_.max_header_bytes + 64 * 1024);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(
        static_cast<uint32_t>(std::min<uint64_t>(opt_.max_header_bytes, UINT32_MAX)));
    parser.body_limit(opt_.max_request_body_bytes);
    stream.expires_after(idle_timeout_);
    // Header first: a client that sent `Expect: 100-continue` waits for our
    // go-ahead before the body (RFC 9110 §10.1.1), and a body over the limit
    // is refused from its Content-Length without reading it.
    co_await http::async_read_header(stream, buffer, parser,
                                     asio::redirect_error(use_awaitable, ec));
    if (!ec && !parser.is_done()) {
      const auto& h = parser.get();
      auto expect = h[http::field::expect];
      if (!expect.empty() && h.version() >= 11) {
        if (!beast::iequals(expect, "100-continue")) {
          const std::string err =
              RawError(417, "Expectation Failed", "only Expect: 100-continue is supported");
          co_await WriteRaw(stream, err);
          stream.socket().shutdown(tcp::socket::shutdown_send, ec);
          co_return;
        }
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await asio::async_write(stream, asio::buffer(kContinue.data(), kContinue.size()),
                                   asio::redirect_error(use_awaitable, ec));
      }
      if (!ec) {
        stream.expires_after(idle_timeout_);
        co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      }
    }
    if (ec) {
      // One failure path: answer what deserves an answer, then close.
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        const std::string err =
            RawError(431, "Request Header Fields Too Large",
                     "request header fields exceed " + std::to_string(opt_.max_header_bytes) +
                         " bytes (edge.max_header_bytes)");
        co_await WriteRaw(stream, err);
      } else if (ec == http::error::body_limit) {
        const std::string err =
            RawError(413, "Content Too Large",
                     "request body exceeds " + std::to_string(opt_.max_request_body_bytes) +
                         " bytes (edge.max_request_body_bytes)");
        co_await WriteRaw(stream, err);
      } else if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
                 ec != asio::error::eof && ec != asio::error::connection_reset &&
                 ec != asio::error::operation_aborted && ec != http::error::partial_message) {
        const std::string err = RawError(400, "Bad Request", "malformed request: " + ec.message());
        co_await WriteRaw(stream, err);
      }
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
    auto& req = parser.get();
    requests_.fetch_add(1, std::memory_order_relaxed);
    RequestCtx c;
    c.method = ToView(req.method_string());
    c.head = req.method() == http::verb::head;
    c.target.assign(req.target().data(), req.target().size());
    c.headers.reserve(16);
    for (const auto& f : req) c.headers.emplace_back(ToView(f.name_string()), ToView(f.value()));
    c.body = req.body();
    c.client = client;
    Reply reply;
    try {
      reply = co_await Serve(c);
    } catch (const std::exception& e) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      log::Error(kPart, "request failed", {{"target", c.target}, {"error", e.what()}});
      reply = MakeReply(ShortPage(500, "Internal Server Error", "edge error"), "PASS");
    }
    Count(reply.x_cache, 0);
    bool keep_alive = req.keep_alive();
    stream.expires_after(idle_timeout_);
    co_await WriteReply(stream, reply, c, keep_alive);
    if (!keep_alive) {
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
  }
}

awaitable<void> EdgeServer::Impl::WriteReply(beast::tcp_stream& stream, const Reply& r,
                                             const RequestCtx& c, bool keep_alive) {
  const CachedObject& o = *r.object;
  // An assembled ESI page has the edge's own validator: a fingerprint of the
  // template and of every fragment it holds.
  char esi_etag[48];
  std::string_view etag = o.etag();
  if (r.assembled) {
    int len = std::snprintf(esi_etag, sizeof esi_etag, "\"cp-esi-%016llx-%zx\"",
                            static_cast<unsigned long long>(r.assembled_hash), r.assembled_size);
    etag = std::string_view(esi_etag, len);
  }
  // Conditional requests are answered from what the edge holds (hits and
  // fresh misses); passes are the origin's business.
  bool not_modified = false;
  if (r.x_cache[0] != 'P' && o.status == 200) {
    auto inm = FindHeader(c.headers, "if-none-match");
    if (inm) {
      not_modified = IfNoneMatchMatches(*inm, etag);
    } else if (auto ims = FindHeader(c.headers, "if-modified-since"); ims && o.lm_len > 0) {
      not_modified = NotModifiedSince(*ims, o.last_modified());
    }
  }
  char tail[160];
  int n = 0;
  if (r.age >= 0)
    n = std::snprintf(tail, sizeof tail, "Age: %lld\r\nX-Cache: %s\r\n%s\r\n",
                      static_cast<long long>(r.age), r.x_cache,
                      keep_alive ? "" : "Connection: close\r\n");
  else
    n = std::snprintf(tail, sizeof tail, "X-Cache: %s\r\n%s\r\n", r.x_cache,
                      keep_alive ? "" : "Connection: close\r\n");
  boost::system::error_code ec;
  if (not_modified) {
    not_modified_.fetch_add(1, std::memory_order_relaxed);
    std::string head = "HTTP/1.1 304 Not Modified\r\n";
    if (!etag.empty()) head += "ETag: " + std::string(etag) + "\r\n";
    if (o.lm_len > 0) head += "Last-Modified: " + std::string(o.last_modified()) + "\r\n";
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(tail, n)};
    co_await asio::async_write(stream, bufs, asio::redirect_error(use_awaitable, ec));
    co_return;
  }
  if (r.assembled) {
    std::string extra = "Content-Length: " + std::to_string(r.assembled_size) + "\r\n";
    if (o.status == 200) extra += "ETag: " + std::string(etag) + "\r\n";
    std::vector<asio::const_buffer> bufs;
    bufs.reserve(3 + r.pieces.size());
    bufs.push_back(asio::buffer(o.head));
    bufs.push_back(asio::buffer(extra));
    bufs.push_back(asio::buffer(tail, n));
    if (!c.head)
      for (auto piece : r.pieces)
        if (!piece.empty()) bufs.push_back(asio::buffer(piece.data(), piece.size()));
    co_await asio::async_write(stream, bufs, asio::redirect_error(use_awaitable, ec));
    co_return;
  }
  bool body = !c.head && o.body && !o.body->empty();
  std::array<asio::const_buffer, 3> bufs{asio::buffer(o.head), asio::buffer(tail, n),
                                         body ? asio::buffer(*o.body) : asio::const_buffer()};
  co_await asio::async_write(stream, bufs, asio::redirect_error(use_awaitable, ec));
}

// ---------------------------------------------------------------- request path

// Read-your-writes follows the session cookie only. Keying anonymous clients
// by address would put everyone behind one NAT or proxy (or every user of a
// load generator) into the bypass window of any one of them, and a passed
// POST during the window would renew it for all: the cache would stop serving.
// An anonymous writer sees its change once the invalidator ejects it.
std::string EdgeServer::Impl::SessionOf(const RequestCtx& c) const {
  if (auto cookie = FindHeader(c.headers, "cookie"))
    if (auto sid = CookieValue(*cookie, deps_.session_cookie); sid && !sid->empty())
      return "sid:" + std::string(*sid);
  return "";
}

bool EdgeServer::Impl::ReadYourWritesActive(const RequestCtx& c) {
  if (ryw_size_.load(std::memory_order_relaxed) == 0) return false;
  std::string s = SessionOf(c);
  if (s.empty()) return false;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  std::lock_guard lock(ryw_mu_);
  auto it = ryw_.find(s);
  if (it == ryw_.end()) return false;
  if (it->second > now) return true;
  ryw_.erase(it);
  ryw_size_.store(ryw_.size(), std::memory_order_relaxed);
  return false;
}

void EdgeServer::Impl::MarkWrite(const RequestCtx& c) {
  if (opt_.read_your_writes_seconds <= 0) return;
  std::string session = SessionOf(c);
  if (session.empty()) return;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  std::lock_guard lock(ryw_mu_);
  ryw_[session] = now + static_cast<int64_t>(opt_.read_your_writes_seconds * 1000);
  // Expired sessions are swept here so the map stays small.
  if (ryw_.size() > 4096) std::erase_if(ryw_, [now](const auto& kv) { return kv.second <= now; });
  ryw_size_.store(ryw_.size(), std::memory_order_relaxed);
}

awaitable<Reply> EdgeServer::Impl::Serve(RequestCtx& c) {
  co_return co_await ServePlanned(c, PlanObject(c));
}

ObjectPlan EdgeServer::Impl::PlanObject(RequestCtx& c) {
  using Kind = ObjectPlan::Kind;
  ObjectPlan p;
  // key: the rules decide for GET, HEAD and POST (a POST search can be a
  // cacheable read keyed by its form fields); other methods never are reads.
  bool never_read = c.method != "GET" && c.method != "HEAD" && c.method != "POST";
  if (never_read) {
    key_out_.Add(KeyOutcome::kMethod);
    return p;
  }
  if (ReadYourWritesActive(c)) {
    key_out_.Add(KeyOutcome::kReadYourWrites);
    return p;
  }
  differentiator::Decision& d = p.decision;
  try {
    auto rules = Rules();
    if (!rules) throw std::runtime_error("no rules loaded");
    differentiator::RequestView view{c.method, c.target, c.headers, c.body};
    d = rules->Decide(view, NowUnix());
  } catch (const std::exception& e) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    log::Warn(kPart, "rules failed; passing", {{"target", c.target}, {"error", e.what()}});
    d.verdict = differentiator::Verdict::kPass;
  }
  if (d.verdict != differentiator::Verdict::kCache) {
    key_out_.Add(KeyOutcome::kPass);
    return p;
  }
  key_out_.Add(KeyOutcome::kCache);
  p.key = d.key.ToString();

  // lookup
  if (!storing_ || !vouched_.load(std::memory_order_acquire)) {
    lookup_out_.Add(LookupOutcome::kNotVouched);
    p.kind = Kind::kPassUnstored;
    return p;
  }
  p.kind = Kind::kFill;
  if (WantsRevalidation(c)) {
    lookup_out_.Add(LookupOutcome::kRevalidate);
    return p;
  }
  std::shared_ptr<const CachedObject> obj;
  auto value_of = [&c](std::string_view name) {
    auto v = FindHeader(c.headers, name);
    return v ? std::string(*v) : std::string();
  };
  StoreLookup found = store_.Lookup(p.key, value_of, &obj);
  bool from_disk = false;
  if (found != StoreLookup::kFound && disk_) {
    if ((obj = DiskLookup(p.key, value_of))) {
      found = StoreLookup::kFound;
      from_disk = true;
    }
  }
  int64_t now = NowUnix();
  if (found == StoreLookup::kFound && (obj->expires_at_unix == 0 || now < obj->expires_at_unix)) {
    lookup_out_.Add(from_disk ? LookupOutcome::kDiskHit : LookupOutcome::kHit);
    p.kind = Kind::kHit;
    p.hit = MakeReply(std::move(obj), "HIT");
    p.hit.age = std::max<int64_t>(0, now - p.hit.object->stored_at_unix);
    p.hit.cacheable = true;
    p.hit.key = std::move(p.key);
    return p;
  }
  lookup_out_.Add(found == StoreLookup::kFound          ? LookupOutcome::kExpired
                  : found == StoreLookup::kVaryMismatch ? LookupOutcome::kVaryMismatch
                                                        : LookupOutcome::kMiss);
  return p;
}

awaitable<Reply> EdgeServer::Impl::ServePlanned(RequestCtx& c, ObjectPlan plan) {
  using Kind = ObjectPlan::Kind;
  std::string_view target = plan.decision.origin_target.empty() ? std::string_view(c.target)
                                                                : plan.decision.origin_target;
  Reply r;
  if (plan.kind == Kind::kHit) {
    r = std::move(plan.hit);
  } else if (plan.kind == Kind::kFill) {
    r = co_await FillKey(c, plan.key, plan.decision);
    r.key = std::move(plan.key);
  } else {
    r = co_await Pass(c, target);
    if (plan.kind == Kind::kPassUnstored) r.cacheable = false;
  }
  if (r.object && r.object->esi) co_await Assemble(c, r);
  co_return r;
}

bool EdgeServer::Impl::WantsRevalidation(const RequestCtx& c) const {
  if (!revalidate_on_no_cache_) return false;
  auto cc = FindHeader(c.headers, "cache-control");
  auto pragma = FindHeader(c.headers, "pragma");
  return (cc && HasCacheControlDirective(*cc, "no-cache")) ||
         (pragma && HasCacheControlDirective(*pragma, "no-cache"));
}

awaitable<Reply> EdgeServer::Impl::Pass(RequestCtx& c, std::string_view target) {
  TraceParent tp = TraceParent::Generate();
  auto req = UpstreamRequest(c, c.method, target, /*for_cache=*/false, tp);
  UpstreamResult up = co_await OriginFetch(req, c.head);
  fetch_out_.Add(up.outcome);
  RegistrarAbandon(tp.trace_id);
  Reply r;
  r.x_cache = "PASS";
  if (up.outcome != FetchOutcome::kOk) {
    r.ok = false;
    r.object = up.outcome == FetchOutcome::kTimeout
                   ? ShortPage(504, "Gateway Timeout", "origin timed out")
                   : ShortPage(502, "Bad Gateway", "origin unavailable");
    co_return r;
  }
  if (c.method == "POST" && up.response.result_int() < 500) MarkWrite(c);
  // The origin was told we do ESI, so passed pages are assembled too (by
  // Serve, from the template built here).
  auto esi = c.head ? nullptr : ParseEsi(up.response, target);
  auto body = std::make_shared<const Body>(std::move(up.response.body()));
  r.object = BuildObject(up.response, std::move(body), std::move(esi), c.head);
  co_return r;
}

awaitable<Reply> EdgeServer::Impl::FillKey(RequestCtx& c, const std::string& key,
                                           const differentiator::Decision& d) {
  std::shared_ptr<Fill> fill;
  std::shared_ptr<Waiter> waiter;
  bool queue_full = false;
  bool tainted_fill = false;
  auto ex = co_await asio::this_coro::executor;
  {
    std::lock_guard lock(pending_mu_);
    auto it = pending_.find(key);
    if (it == pending_.end()) {
      fill = std::make_shared<Fill>();
      fill->url = d.origin_target.empty() ? c.target : d.origin_target;
      pending_.emplace(key, fill);
    } else {
      std::lock_guard fl(it->second->mu);
      if (it->second->tainted) {
        tainted_fill = true;  // its answer may predate the change: fetch alone
      } else if (it->second->waiters.size() >= deps_.coalesce_max_waiters) {
        queue_full = true;
      } else {
        waiter = std::make_shared<Waiter>(ex);
        waiter->timer.expires_after(deps_.coalesce_timeout);
        it->second->waiters.push_back(waiter);
        waiting_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  if (!fill) {
    // A follower: wait for the leader, or fetch for ourselves (not stored:
    // only the registered fill can be tainted by Eject, so only it may store).
    if (waiter) {
      boost::system::error_code ec;
      co_await waiter->timer.async_wait(asio::redirect_error(use_awaitable, ec));
      waiting_.fetch_sub(1, std::memory_order_relaxed);
      if (waiter->done && waiter->result) {
        const auto& obj = waiter->result;
        bool same_variant = true;
        if (!obj->vary_names.empty()) {
          auto value_of = [&c](std::string_view name) {
            auto v = FindHeader(c.headers, name);
            return v ? std::string(*v) : std::string();
          };
          same_variant = MemoryStore::VariantValues(obj->vary_names, value_of) == obj->vary_values;
        }
        if (same_variant) {
          coalesce_out_.Add(CoalesceOutcome::kFollowerServed);
          coalesced_.fetch_add(1, std::memory_order_relaxed);
          Reply r = MakeReply(obj, "MISS");
          r.cacheable = true;
          co_return r;
        }
      }
      coalesce_out_.Add(waiter->done ? CoalesceOutcome::kReleased : CoalesceOutcome::kTimedOut);
    } else if (queue_full) {
      coalesce_out_.Add(CoalesceOutcome::kQueueFull);
    } else if (tainted_fill) {
      coalesce_out_.Add(CoalesceOutcome::kReleased);
    }
    Fetched f = co_await FetchAndAssemble(c, key, d, nullptr);
    RegistrarAbandon(f.request_id);
    Reply r = MakeReply(f.object, "MISS");
    r.ok = f.fetch == FetchOutcome::kOk;
    r.cacheable = f.storable == StoreOutcome::kStored;
    co_return r;
  }

  coalesce_out_.Add(CoalesceOutcome::kLeader);
  Fetched f;
  try {
    f = co_await FetchAndAssemble(c, key, d, fill.get());
  } catch (...) {
    ReleaseFill(key, fill, nullptr);
    throw;
  }
  bool stored = false;
  RegisterVerdict verdict = RegisterVerdict::kStore;
  if (deps_.registrar && f.fetch == FetchOutcome::kOk && f.storable == StoreOutcome::kStored) {
    // A named local, not a temporary in the co_await expression (GCC 12
    // mishandles the latter's lifetime).
    PageRegistration page{f.request_id, key,
                          deps_.fragment_ejects_parents ? f.children : std::vector<std::string>{},
                          fill->url};
    verdict = co_await RegistrarComplete(page);
  }
  StoreStage(key, f, *fill, verdict, &stored);
  ReleaseFill(key, fill, stored ? f.Shared() : nullptr);
  Reply r = MakeReply(f.object, "MISS");
  r.ok = f.fetch == FetchOutcome::kOk;
  r.cacheable = f.storable == StoreOutcome::kStored;
  co_return r;
}

awaitable<RegisterVerdict> EdgeServer::Impl::RegistrarComplete(const PageRegistration& page) {
  auto home = co_await asio::this_coro::executor;
  co_await asio::post(*registrar_pool_, use_awaitable);
  RegisterVerdict v = RegisterVerdict::kMapError;
  try {
    v = deps_.registrar->Complete(page);
  } catch (...) {
    errors_.fetch_add(1, std::memory_order_relaxed);
  }
  co_await asio::post(home, use_awaitable);
  co_return v;
}

void EdgeServer::Impl::StoreStage(const std::string& key, const Fetched& f, Fill& fill,
                                  RegisterVerdict v, bool* stored) {
  *stored = false;
  StoreOutcome out = f.storable;
  if (f.fetch != FetchOutcome::kOk) out = StoreOutcome::kFetchFailed;
  if (out == StoreOutcome::kStored) {
    bool vouched_by_registrar = false;
    if (deps_.registrar) {
      vouched_by_registrar = v == RegisterVerdict::kStore;
      if (v == RegisterVerdict::kTainted)
        out = StoreOutcome::kTainted;
      else if (!vouched_by_registrar)
        out = StoreOutcome::kRegistrarRefused;
    } else if (deps_.store_without_registrar) {
      vouched_by_registrar = true;
    } else {
      out = StoreOutcome::kNoRegistrar;
    }
    if (vouched_by_registrar) {
      // Check-taint-then-insert is atomic with respect to Eject's marking
      // (same mutex), and Eject erases the store after marking: either we
      // see the taint, or our insert is erased.
      std::lock_guard lock(fill.mu);
      if (fill.tainted) {
        out = StoreOutcome::kTainted;
      } else if (!vouched_.load(std::memory_order_acquire)) {
        out = StoreOutcome::kNotVouched;
      } else if (!store_.Insert(key, f.Shared(), nullptr)) {
        out = StoreOutcome::kTooLarge;
      } else {
        *stored = true;
        // Under the fill's lock, like the memory insert: an Eject that
        // taints after this point erases both copies.
        if (disk_) disk_->Put(key, *f.Shared(), Stamp());
        if (deps_.fragment_ejects_parents && !f.children.empty()) {
          std::lock_guard pl(parents_mu_);
          for (const auto& ch : f.children) {
            auto& v = parents_[ch];
            if (std::find(v.begin(), v.end(), key) == v.end()) v.push_back(key);
          }
        }
      }
    }
  } else if (f.fetch == FetchOutcome::kOk) {
    RegistrarAbandon(f.request_id);
  }
  store_out_.Add(out);
}

void EdgeServer::Impl::ReleaseFill(const std::string& key, const std::shared_ptr<Fill>& fill,
                                   std::shared_ptr<const CachedObject> result) {
  std::vector<std::shared_ptr<Waiter>> waiters;
  {
    std::lock_guard lock(pending_mu_);
    auto it = pending_.find(key);
    if (it != pending_.end() && it->second == fill) pending_.erase(it);
    std::lock_guard fl(fill->mu);
    waiters.swap(fill->waiters);
    // A tainted answer is not handed to waiters: they may have arrived after
    // the change that tainted it.
    if (fill->tainted) result = nullptr;
  }
  for (auto& w : waiters) {
    asio::post(w->executor, [w, result] {
      w->done = true;
      w->result = result;
      w->timer.cancel();
    });
  }
}

http::request<http::string_body> EdgeServer::Impl::UpstreamRequest(const RequestCtx& c,
                                                                   std::string_view method,
                                                                   std::string_view target,
                                                                   bool for_cache,
                                                                   const TraceParent& tp) const {
  http::request<http::string_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(beast::string_view(target.data(), target.size()));
  req.version(11);
  bool has_host = false;
  std::string xff;
  for (const auto& [n, v] : c.headers) {
    // Expect: the edge already holds the whole body (and answered the
    // client's 100-continue itself).
    if (IsHopByHop(n) || IEquals(n, "traceparent") || IEquals(n, "surrogate-capability") ||
        IEquals(n, "content-length") || IEquals(n, "expect"))
      continue;
    if (for_cache &&
        (IEquals(n, "if-none-match") || IEquals(n, "if-modified-since") || IEquals(n, "range") ||
         IEquals(n, "if-range") || IEquals(n, "cache-control") || IEquals(n, "pragma")))
      continue;
    if (IEquals(n, "x-forwarded-for")) {
      xff = std::string(v) + ", ";
      continue;
    }
    if (IEquals(n, "host")) has_host = true;
    req.insert(beast::string_view(n.data(), n.size()), beast::string_view(v.data(), v.size()));
  }
  if (!has_host)
    req.set(http::field::host, opt_.origin_host + ":" + std::to_string(opt_.origin_port));
  if (!c.client.empty()) req.set("X-Forwarded-For", xff + std::string(c.client));
  req.set("traceparent", tp.ToHeader());
  req.set("Surrogate-Capability", "cacheportal=\"ESI/1.0\"");
  req.keep_alive(true);
  if (method != "GET" && method != "HEAD") {
    req.body().assign(c.body.data(), c.body.size());
    if (!req.body().empty() || method == "POST" || method == "PUT" || method == "PATCH")
      req.prepare_payload();
  }
  return req;
}

awaitable<UpstreamResult> EdgeServer::Impl::OriginFetch(http::request<http::string_body>& req,
                                                        bool head) {
  Worker* worker = nullptr;
  auto ex = co_await asio::this_coro::executor;
  for (auto& w : workers_)
    if (w->ioc.get_executor() == ex) worker = w.get();
  origin_requests_.fetch_add(1, std::memory_order_relaxed);
  bool idempotent = req.method() == http::verb::get || req.method() == http::verb::head;
  UpstreamResult out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<OriginConn> conn;
    bool reused = false;
    // A pooled connection may have been closed by the origin meanwhile; a
    // request that must not be sent twice (POST...) gets a fresh one, so a
    // failure can never mean "maybe processed". The retry after a stale one
    // connects afresh too: when the origin closed its idle connections all
    // at once, the next pooled one is just as dead.
    if (attempt == 0 && worker && !worker->idle.empty() && idempotent) {
      conn = std::move(worker->idle.back());
      worker->idle.pop_back();
      reused = true;
    } else {
      conn = std::make_unique<OriginConn>(ex);
      boost::system::error_code ec;
      conn->stream.expires_after(origin_timeout_);
      co_await conn->stream.async_connect(origin_, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        out.outcome =
            ec == beast::error::timeout ? FetchOutcome::kTimeout : FetchOutcome::kConnectFailed;
        co_return out;
      }
      conn->stream.socket().set_option(tcp::no_delay(true), ec);
    }
    boost::system::error_code ec;
    conn->stream.expires_after(origin_timeout_);
    co_await http::async_write(conn->stream, req, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (reused && attempt == 0) continue;  // a stale keep-alive connection: retry fresh
      out.outcome =
          ec == beast::error::timeout ? FetchOutcome::kTimeout : FetchOutcome::kConnectFailed;
      co_return out;
    }
    std::optional<http::response_parser<http::string_body>> parser;
    conn->stream.expires_after(origin_timeout_);
    // Interim 1xx answers (100 Continue, 103 Early Hints) are skipped: the
    // client is owed the final one. Bounded, so an origin cannot loop us.
    for (int interim = 0; interim < 8; ++interim) {
      parser.emplace();
      parser->body_limit(opt_.max_origin_body_bytes);
      parser->header_limit(64 * 1024);
      if (head) parser->skip(true);
      co_await http::async_read(conn->stream, conn->buffer, *parser,
                                asio::redirect_error(use_awaitable, ec));
      int st = ec ? 0 : parser->get().result_int();
      if (ec || st < 100 || st >= 200 || st == 101) break;
      if (interim == 7) ec = http::error::bad_status;
    }
    if (!ec && parser->get().result_int() == 101) ec = http::error::bad_status;
    if (ec) {
      bool stale = ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                   ec == asio::error::eof;
      if (reused && attempt == 0 && stale && idempotent) continue;
      if (ec == beast::error::timeout)
        out.outcome = FetchOutcome::kTimeout;
      else if (ec == http::error::body_limit)
        out.outcome = FetchOutcome::kBodyTooLarge;
      else if (stale)
        out.outcome = FetchOutcome::kConnectFailed;
      else
        out.outcome = FetchOutcome::kProtocolError;
      co_return out;
    }
    out.response = parser->release();
    if (worker && out.response.keep_alive() && worker->idle.size() < deps_.origin_pool_per_thread &&
        conn->buffer.size() == 0) {
      conn->stream.expires_never();
      worker->idle.push_back(std::move(conn));
    }
    out.outcome = FetchOutcome::kOk;
    co_return out;
  }
  out.outcome = FetchOutcome::kConnectFailed;
  co_return out;
}

std::shared_ptr<CachedObject> EdgeServer::Impl::BuildObject(
    http::response<http::string_body>& res, std::shared_ptr<const Body> body,
    std::shared_ptr<const std::vector<EsiInstruction>> esi, bool head_response,
    bool drop_set_cookie) const {
  const bool esi_done = esi != nullptr;
  auto o = std::make_shared<CachedObject>();
  o->status = res.result_int();
  o->head.reserve(256);
  o->head += "HTTP/1.1 ";
  o->head += std::to_string(o->status);
  o->head += ' ';
  auto reason = res.reason();
  if (reason.empty()) reason = http::obsolete_reason(res.result());
  o->head.append(reason.data(), reason.size());
  o->head += "\r\n";
  std::string_view origin_length;
  for (const auto& f : res) {
    std::string_view n = ToView(f.name_string());
    std::string_view v = ToView(f.value());
    if (IsHopByHop(n) || IEquals(n, "age") || IEquals(n, "x-cache") ||
        IEquals(n, "surrogate-control") || (drop_set_cookie && IEquals(n, "set-cookie")))
      continue;
    if (IEquals(n, "content-length")) {
      origin_length = v;
      continue;
    }
    // An assembled ESI body is a different representation: its validators
    // are the edge's, not the origin's.
    bool etag = IEquals(n, "etag"), lm = IEquals(n, "last-modified");
    if ((etag || lm) && (esi_done || o->head.size() + n.size() + v.size() + 2 > UINT16_MAX))
      continue;
    if (etag) {
      o->etag_off = static_cast<uint16_t>(o->head.size() + n.size() + 2);
      o->etag_len = static_cast<uint16_t>(v.size());
    }
    if (lm) {
      o->lm_off = static_cast<uint16_t>(o->head.size() + n.size() + 2);
      o->lm_len = static_cast<uint16_t>(v.size());
    }
    if (IEquals(n, "vary")) {
      bool star = false;
      o->vary_names = ParseVary(v, &star);
    }
    o->head.append(n);
    o->head += ": ";
    o->head.append(v);
    o->head += "\r\n";
  }
  bool bodiless = o->status == 204 || o->status == 304 || (o->status >= 100 && o->status < 200);
  o->body_hash = Fnv1a64(*body);
  if (o->etag_len == 0 && o->status == 200 && !head_response && !esi_done &&
      o->head.size() < 60000) {
    std::string etag = StrongEtagFor(*body);
    o->etag_off = static_cast<uint16_t>(o->head.size() + 6);
    o->etag_len = static_cast<uint16_t>(etag.size());
    o->head += "ETag: " + etag + "\r\n";
  }
  if (!bodiless && !esi_done) {
    o->head += "Content-Length: ";
    if (head_response && !origin_length.empty())
      o->head.append(origin_length);
    else
      o->head += std::to_string(body->size());
    o->head += "\r\n";
  }
  o->head.shrink_to_fit();
  o->esi = std::move(esi);
  o->body = std::move(body);
  o->stored_at_unix = NowUnix();
  return o;
}

std::shared_ptr<const std::vector<EsiInstruction>> EdgeServer::Impl::ParseEsi(
    const http::response<http::string_body>& res, std::string_view target) {
  auto sc = res.find("Surrogate-Control");
  if (sc == res.end() || ToView(sc->value()).find("ESI/1.0") == std::string_view::npos) {
    esi_out_.Add(EsiOutcome::kNotEsi);
    return nullptr;
  }
  return ParseEsiBody(res.body(), target);
}

std::shared_ptr<const std::vector<EsiInstruction>> EdgeServer::Impl::ParseEsiBody(
    std::string_view body, std::string_view target) {
  EsiParser parser;
  parser.Feed(body);
  parser.Finish();
  for (const auto& e : parser.errors()) {
    esi_errors_.fetch_add(1, std::memory_order_relaxed);
    log::Warn(
        kPart, "ESI markup error",
        {{"url", std::string(target)}, {"offset", std::to_string(e.offset)}, {"error", e.message}});
  }
  auto ins = parser.instructions();
  const size_t max_includes = static_cast<size_t>(std::max(0, deps_.esi_max_fragments));
  if (parser.include_count() > max_includes) {
    // Includes beyond the bound are dropped (counted, logged).
    esi_errors_.fetch_add(1, std::memory_order_relaxed);
    log::Warn(kPart, "too many ESI includes; extra ones dropped", {{"url", std::string(target)}});
    size_t seen = 0;
    std::erase_if(ins, [&](const EsiInstruction& i) {
      return i.kind == EsiInstruction::Kind::kInclude && ++seen > max_includes;
    });
  }
  return std::make_shared<const std::vector<EsiInstruction>>(std::move(ins));
}

std::vector<RequestCtx> EdgeServer::Impl::SubRequests(const RequestCtx& c,
                                                      const std::vector<EsiInstruction>& ins,
                                                      std::string_view target) const {
  std::vector<RequestCtx> subs;
  for (const auto& i : ins) {
    if (i.kind != EsiInstruction::Kind::kInclude) continue;
    std::string src = i.src;
    if (src.starts_with("http://") || src.starts_with("https://")) {
      size_t slash = src.find('/', src.find("//") + 2);
      src = slash == std::string::npos ? "/" : src.substr(slash);
    } else if (!src.starts_with("/")) {
      std::string base(target.substr(0, target.find('?')));
      src = base.substr(0, base.rfind('/') + 1) + src;
    }
    // Sub-requests inherit the parent's headers (cookies, language) so the
    // rules key fragments exactly as they would key a direct request.
    RequestCtx s;
    s.method = "GET";
    s.target = std::move(src);
    for (const auto& h : c.headers)
      if (!IEquals(h.first, "if-none-match") && !IEquals(h.first, "if-modified-since") &&
          !IEquals(h.first, "content-length") && !IEquals(h.first, "content-type"))
        s.headers.push_back(h);
    s.client = c.client;
    s.depth = c.depth + 1;
    subs.push_back(std::move(s));
  }
  return subs;
}

std::vector<std::string> EdgeServer::Impl::ChildKeys(const RequestCtx& c,
                                                     const std::vector<EsiInstruction>& ins,
                                                     std::string_view target) {
  std::vector<std::string> keys;
  auto rules = Rules();
  if (!rules) return keys;
  for (const auto& s : SubRequests(c, ins, target)) {
    try {
      differentiator::RequestView view{s.method, s.target, s.headers, {}};
      auto d = rules->Decide(view, NowUnix());
      if (d.verdict == differentiator::Verdict::kCache) keys.push_back(d.key.ToString());
    } catch (const std::exception&) {
      errors_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return keys;
}

awaitable<void> EdgeServer::Impl::Assemble(RequestCtx& c, Reply& r) {
  const CachedObject& t = *r.object;
  const auto& ins = *t.esi;
  std::string_view target = t.url.empty() ? std::string_view(c.target) : std::string_view(t.url);
  std::vector<Reply> parts;
  const bool depth_exceeded = c.depth >= deps_.esi_max_depth;
  bool failed = false;
  std::vector<RequestCtx> subs;
  if (depth_exceeded) {
    esi_errors_.fetch_add(1, std::memory_order_relaxed);
  } else {
    subs = SubRequests(c, ins, target);
    parts.resize(subs.size());
  }
  // Fresh hits without includes of their own are taken in place; the rest
  // (misses, passes, nested templates) are served concurrently.
  std::vector<ObjectPlan> plans(subs.size());
  std::vector<size_t> later;
  for (size_t j = 0; j < subs.size(); ++j) {
    plans[j] = PlanObject(subs[j]);
    if (plans[j].kind == ObjectPlan::Kind::kHit && !plans[j].hit.object->esi) {
      parts[j] = std::move(plans[j].hit);
    } else {
      later.push_back(j);
    }
  }
  if (later.size() == 1) {
    try {
      parts[later[0]] = co_await ServePlanned(subs[later[0]], std::move(plans[later[0]]));
    } catch (...) {
      parts[later[0]].ok = false;
    }
  } else if (!later.empty()) {
    auto ex = co_await asio::this_coro::executor;
    struct Gather {
      explicit Gather(asio::any_io_executor e) : timer(e) {}
      asio::steady_timer timer;
      size_t remaining = 0;
    };
    auto g = std::make_shared<Gather>(ex);
    g->timer.expires_at(asio::steady_timer::time_point::max());
    g->remaining = later.size();
    for (size_t j : later) {
      Reply* slot = &parts[j];
      RequestCtx* sub = &subs[j];
      ObjectPlan* plan = &plans[j];
      asio::co_spawn(
          ex,
          [this, slot, sub, plan]() -> awaitable<void> {
            *slot = co_await ServePlanned(*sub, std::move(*plan));
          },
          [g, slot](std::exception_ptr e) {
            if (e) slot->ok = false;
            if (--g->remaining == 0) g->timer.cancel();
          });
    }
    while (g->remaining > 0) {
      boost::system::error_code ec;
      co_await g->timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }
  // Pieces in order: verbatim ranges of the template, then each include's
  // body (or its own pieces when it was itself assembled). No copies.
  auto mix = [](uint64_t h, uint64_t v) {
    return Fnv1a64(std::string_view(reinterpret_cast<const char*>(&v), sizeof v), h);
  };
  const std::string_view raw = *t.body;
  uint64_t h = mix(1469598103934665603ull, t.body_hash);
  r.holders.push_back(r.object);
  size_t next = 0;
  for (const auto& i : ins) {
    if (i.kind == EsiInstruction::Kind::kVerbatim) {
      r.pieces.push_back(raw.substr(i.offset, i.length));
      r.assembled_size += i.length;
      continue;
    }
    if (depth_exceeded || next >= parts.size()) continue;
    Reply& p = parts[next++];
    if (!p.ok || !p.object || p.object->status < 200 || p.object->status >= 300) {
      failed = true;
      esi_errors_.fetch_add(1, std::memory_order_relaxed);
      log::Warn(kPart, "ESI include failed", {{"url", std::string(target)}, {"src", i.src}});
      continue;
    }
    if (p.assembled) {
      r.pieces.insert(r.pieces.end(), p.pieces.begin(), p.pieces.end());
      r.holders.insert(r.holders.end(), p.holders.begin(), p.holders.end());
      r.assembled_size += p.assembled_size;
      h = mix(h, p.assembled_hash);
    } else {
      r.pieces.push_back(*p.object->body);
      r.holders.push_back(p.object);
      r.assembled_size += p.object->body->size();
      h = mix(h, p.object->body_hash);
    }
  }
  r.assembled = true;
  r.assembled_hash = h;
  esi_out_.Add(depth_exceeded ? EsiOutcome::kDepthExceeded
               : failed       ? EsiOutcome::kAssembledWithErrors
                              : EsiOutcome::kAssembled);
}

awaitable<Fetched> EdgeServer::Impl::FetchAndAssemble(RequestCtx& c, const std::string& key,
                                                      const differentiator::Decision& d,
                                                      Fill* fill) {
  Fetched f;
  TraceParent tp = TraceParent::Generate();
  f.request_id = tp.trace_id;
  std::string_view target = d.origin_target.empty() ? std::string_view(c.target) : d.origin_target;
  // HEAD misses are fetched as GET so the answer can be stored; a cacheable
  // POST is forwarded as it came (its body fields are in the key).
  auto req = UpstreamRequest(c, c.head ? std::string_view("GET") : c.method, target,
                             /*for_cache=*/true, tp);
  UpstreamResult up = co_await OriginFetch(req, false);
  f.fetch = up.outcome;
  fetch_out_.Add(up.outcome);
  if (up.outcome != FetchOutcome::kOk) {
    f.storable = StoreOutcome::kFetchFailed;
    auto page = up.outcome == FetchOutcome::kTimeout
                    ? ShortPage(504, "Gateway Timeout", "origin timed out")
                    : ShortPage(502, "Bad Gateway", "origin unavailable");
    f.object = std::make_shared<CachedObject>(*page);
    co_return f;
  }
  auto& res = up.response;
  HeaderList rh;
  for (const auto& h : res) rh.emplace_back(ToView(h.name_string()), ToView(h.value()));
  f.storable = ResponseStorability(res.result_int(), rh, d.store_despite);
  const bool strip_cookies = f.storable == StoreOutcome::kStored && d.store_despite.set_cookie &&
                             res.find(http::field::set_cookie) != res.end();

  // ESI stage, parse half: once, here; the includes are fetched per delivery.
  auto esi = ParseEsi(res, target);
  if (esi) f.children = ChildKeys(c, *esi, target);
  auto body = std::make_shared<const Body>(std::move(res.body()));
  f.object = BuildObject(res, body, esi, false);
  // The requester gets its own cookie; the stored copy (shared by body and
  // template, not copied) never carries one to anyone else.
  if (strip_cookies) f.shared = BuildObject(res, body, esi, false, /*drop_set_cookie=*/true);
  for (auto* o : {&f.object, &f.shared}) {
    if (!*o) continue;
    CachedObject& obj = **o;
    if (!obj.vary_names.empty()) {
      auto value_of = [&c](std::string_view name) {
        auto v = FindHeader(c.headers, name);
        return v ? std::string(*v) : std::string();
      };
      obj.vary_values = MemoryStore::VariantValues(obj.vary_names, value_of);
    }
    if (d.ttl.count() > 0) obj.expires_at_unix = obj.stored_at_unix + d.ttl.count();
    obj.url = std::string(target);
    obj.children = f.children;
  }
  co_return f;
}

// ---------------------------------------------------------------- Ejector

Status EdgeServer::Impl::Eject(std::span<const std::string> keys) {
  std::unordered_set<std::string> seen;
  std::vector<std::string> all;
  for (const auto& k : keys) CollectEjection(k, seen, all);
  // Disk first, durably, then memory: a disk hit promoted into memory in
  // between is erased by the memory pass (promotion holds the disk lock).
  Status st = Status::OK();
  if (disk_) {
    st = disk_->Erase(all);
    if (!st.ok()) {
      disk_errors_.fetch_add(1, std::memory_order_relaxed);
      log::Error(kPart, "disk tier ejection failed", {{"error", st.ToString()}});
    }
  }
  for (const auto& k : all)
    if (!store_.Erase(k).empty()) ejections_.fetch_add(1, std::memory_order_relaxed);
  return st;
}

void EdgeServer::Impl::CollectEjection(const std::string& key,
                                       std::unordered_set<std::string>& seen,
                                       std::vector<std::string>& all) {
  if (!seen.insert(key).second) return;
  all.push_back(key);
  // Mark first, erase second (in Eject): a fill that has not stored yet will
  // see the taint; one that has stored is erased.
  {
    std::lock_guard lock(pending_mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      bool hit = it->first == key;
      std::lock_guard fl(it->second->mu);
      if (!hit && deps_.fragment_ejects_parents)
        hit = std::find(it->second->children.begin(), it->second->children.end(), key) !=
              it->second->children.end();
      if (hit) {
        // The tainted fill stays registered until it finishes: a second,
        // overlapping fill of the key could be registered in the map first
        // and then lose its registration to this one's late refusal (which
        // removes the key), leaving a stored copy no change can find. New
        // requests meanwhile neither join it nor start their own fill: they
        // fetch for themselves and store nothing (FillKey).
        it->second->tainted = true;
      }
      ++it;
    }
  }
  std::vector<std::string> parents;
  {
    std::lock_guard lock(parents_mu_);
    auto it = parents_.find(key);
    if (it != parents_.end()) {
      parents = std::move(it->second);
      parents_.erase(it);
    }
  }
  for (const auto& p : parents) CollectEjection(p, seen, all);
}

Status EdgeServer::Impl::EjectAll() {
  {
    std::lock_guard lock(pending_mu_);
    for (auto& [k, f] : pending_) {
      std::lock_guard fl(f->mu);
      f->tainted = true;
    }
    pending_.clear();
  }
  Status st = Status::OK();
  if (disk_) {
    st = disk_->Clear();
    if (!st.ok()) disk_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  auto stats = store_.Stats();
  store_.Clear();
  ejections_.fetch_add(stats.objects, std::memory_order_relaxed);
  std::lock_guard lock(parents_mu_);
  parents_.clear();
  return st;
}

std::shared_ptr<const CachedObject> EdgeServer::Impl::DiskLookup(
    const std::string& key, const std::function<std::string(std::string_view)>& value_of) {
  std::shared_ptr<const CachedObject> out;
  try {
    disk_->Lookup(key, value_of, [&](std::shared_ptr<CachedObject> o, bool esi) {
      if (esi) o->esi = ParseEsiBody(*o->body, o->url);
      store_.Insert(key, o, nullptr);
      out = std::move(o);
    });
  } catch (const std::exception& e) {
    disk_errors_.fetch_add(1, std::memory_order_relaxed);
    log::Warn(kPart, "disk tier lookup failed", {{"error", e.what()}});
    return nullptr;
  }
  if (out) disk_hits_.fetch_add(1, std::memory_order_relaxed);
  return out;
}

std::vector<std::string> EdgeServer::Impl::ChildrenOf(const std::string& key) {
  std::shared_ptr<const CachedObject> obj;
  auto none = [](std::string_view) { return std::string(); };
  if (store_.Lookup(key, none, &obj) != StoreLookup::kFound) return {};
  return obj->children;
}

bool EdgeServer::Impl::Contains(const std::string& key) {
  return store_.Contains(key) || (disk_ && disk_->Contains(key));
}

// ---------------------------------------------------------------- admin

namespace {
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}
}  // namespace

awaitable<void> EdgeServer::Impl::AdminSession(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer(opt_.max_header_bytes + 64 * 1024);
  boost::system::error_code ec;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(
        static_cast<uint32_t>(std::min<uint64_t>(opt_.max_header_bytes, UINT32_MAX)));
    parser.body_limit(64 * 1024);
    stream.expires_after(idle_timeout_);
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == http::error::header_limit) {
        const std::string err = RawError(431, "Request Header Fields Too Large");
        co_await WriteRaw(stream, err);
      } else if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
                 ec != asio::error::eof && ec != asio::error::connection_reset) {
        const std::string err = RawError(400, "Bad Request");
        co_await WriteRaw(stream, err);
      }
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
    auto& req = parser.get();
    http::response<http::string_body> res;
    res.version(11);
    res.keep_alive(req.keep_alive());
    auto auth = req[http::field::authorization];
    std::string_view a = ToView(auth);
    bool authorized = !opt_.admin_token.empty() && a.starts_with("Bearer ") &&
                      ConstantTimeEquals(a.substr(7), opt_.admin_token);
    if (!authorized) {
      res.result(http::status::unauthorized);
      res.set(http::field::www_authenticate, "Bearer");
      res.set(http::field::content_type, "text/plain");
      res.body() = "401 Unauthorized\n";
    } else {
      http::status status = http::status::ok;
      std::string ct = "text/plain";
      try {
        res.body() = AdminHandle(req, &status, &ct);
      } catch (const std::exception& e) {
        status = http::status::internal_server_error;
        res.body() = std::string("error: ") + e.what() + "\n";
      }
      res.result(status);
      res.set(http::field::content_type, ct);
    }
    res.prepare_payload();
    stream.expires_after(idle_timeout_);
    co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
    if (ec || !res.keep_alive()) {
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
  }
}

std::string EdgeServer::Impl::AdminHandle(const http::request<http::string_body>& req,
                                          http::status* status, std::string* ct) {
  auto parsed = boost::urls::parse_origin_form(ToView(req.target()));
  if (!parsed) {
    *status = http::status::bad_request;
    return "bad target\n";
  }
  std::string path = parsed->path();
  auto param = [&](std::string_view name) -> std::optional<std::string> {
    for (auto p : parsed->params())
      if (p.key == name && p.has_value) return std::string(p.value);
    return std::nullopt;
  };
  bool post = req.method() == http::verb::post;
  bool get = req.method() == http::verb::get;
  if (path == "/metrics" && get) {
    *ct = "text/plain; version=0.0.4";
    return PrometheusText();
  }
  if (path == "/stats" && get) {
    *ct = "application/json";
    return StatsJson();
  }
  if (path == "/purge" && post) {
    size_t n = 0;
    if (auto key = param("key")) {
      bool had = Contains(*key);
      std::string k = *key;
      Eject(std::span<const std::string>(&k, 1));
      n += had;
    } else if (auto url = param("url")) {
      // The rules key of a plain GET of the URL, plus every stored variant
      // whose origin URL is this one (keys that include cookies or headers).
      std::vector<std::string> keys;
      if (auto rules = Rules()) {
        differentiator::RequestView view{"GET", *url, {}, {}};
        auto d = rules->Decide(view, NowUnix());
        if (d.verdict == differentiator::Verdict::kCache) keys.push_back(d.key.ToString());
      }
      std::string u = *url;
      auto matched =
          store_.EraseIf([&u](std::string_view, const CachedObject& o) { return o.url == u; });
      if (disk_) {
        auto on_disk = disk_->KeysWhereUrl([&u](std::string_view url) { return url == u; });
        for (auto& k : on_disk)
          if (std::find(matched.begin(), matched.end(), k) == matched.end())
            matched.push_back(std::move(k));
      }
      keys.insert(keys.end(), matched.begin(), matched.end());
      n = matched.size();
      if (Status st = Eject(keys); !st.ok()) {
        *status = http::status::internal_server_error;
        return "purge not durable: " + st.ToString() + "\n";
      }
    } else {
      *status = http::status::bad_request;
      return "purge needs ?key= or ?url=\n";
    }
    *ct = "application/json";
    return "{\"purged\":" + std::to_string(n) + "}\n";
  }
  if (path == "/ban" && post) {
    std::function<bool(std::string_view)> match;
    std::shared_ptr<std::regex> re;
    if (auto prefix = param("prefix")) {
      std::string p = *prefix;
      match = [p](std::string_view url) { return url.starts_with(p); };
    } else if (auto rx = param("regex")) {
      try {
        re = std::make_shared<std::regex>(*rx, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        *status = http::status::bad_request;
        return std::string("bad regex: ") + e.what() + "\n";
      }
      match = [re](std::string_view url) { return std::regex_search(url.begin(), url.end(), *re); };
    } else {
      *status = http::status::bad_request;
      return "ban needs ?prefix= or ?regex=\n";
    }
    // In-flight fills of matching URLs must not store either.
    {
      std::lock_guard lock(pending_mu_);
      for (auto it = pending_.begin(); it != pending_.end();) {
        std::lock_guard fl(it->second->mu);
        if (match(it->second->url)) {
          it->second->tainted = true;
          it = pending_.erase(it);
        } else {
          ++it;
        }
      }
    }
    auto keys =
        store_.EraseIf([&match](std::string_view, const CachedObject& o) { return match(o.url); });
    if (disk_) {
      auto on_disk = disk_->KeysWhereUrl(match);
      for (auto& k : on_disk)
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(std::move(k));
    }
    // Pages that include a banned fragment go too.
    if (Status st = Eject(keys); !st.ok()) {
      *status = http::status::internal_server_error;
      return "ban not durable: " + st.ToString() + "\n";
    }
    ejections_.fetch_add(keys.size(), std::memory_order_relaxed);
    *ct = "application/json";
    return "{\"banned\":" + std::to_string(keys.size()) + "}\n";
  }
  *status = http::status::not_found;
  return "not found\n";
}

// ---------------------------------------------------------------- metrics

EdgeMetrics EdgeServer::Impl::Metrics() const {
  EdgeMetrics m;
  auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  m.requests = ld(requests_);
  m.hits = ld(hits_);
  m.misses = ld(misses_);
  m.passes = ld(passes_);
  m.coalesced = ld(coalesced_);
  auto st = store_.Stats();
  m.stored_bytes = st.bytes;
  m.stored_objects = st.objects;
  m.evictions = st.evictions;
  m.ejections = ld(ejections_);
  m.rule_reloads_ok = ld(reloads_ok_);
  m.rule_reloads_failed = ld(reloads_failed_);
  m.errors = ld(errors_);
  m.esi_errors = ld(esi_errors_);
  m.not_modified = ld(not_modified_);
  m.origin_requests = ld(origin_requests_);
  m.coalesce_waiting = ld(waiting_);
  m.open_connections = connections_.load(std::memory_order_relaxed);
  if (disk_) {
    m.disk_objects = disk_->objects();
    m.disk_bytes = disk_->bytes();
  }
  m.disk_hits = ld(disk_hits_);
  m.disk_errors = ld(disk_errors_);
  m.disk_loaded = disk_report_.kept;
  m.disk_discarded = disk_report_.discarded;
  auto add = [&m](const char* stage, const auto& names, const auto& counters) {
    for (size_t i = 0; i < counters.v.size(); ++i)
      m.outcomes.emplace_back(std::string(stage) + "/" + names[i],
                              counters.v[i].load(std::memory_order_relaxed));
  };
  add("key", kKeyOutcomeNames, key_out_);
  add("lookup", kLookupOutcomeNames, lookup_out_);
  add("coalesce", kCoalesceOutcomeNames, coalesce_out_);
  add("fetch", kFetchOutcomeNames, fetch_out_);
  add("esi", kEsiOutcomeNames, esi_out_);
  add("store", kStoreOutcomeNames, store_out_);
  return m;
}

std::string EdgeServer::Impl::PrometheusText() const {
  EdgeMetrics m = Metrics();
  std::string out;
  auto counter = [&out](const char* name, const char* help, uint64_t v, bool gauge = false) {
    out += std::string("# HELP cacheportal_edge_") + name + " " + help + "\n";
    out += std::string("# TYPE cacheportal_edge_") + name + (gauge ? " gauge\n" : " counter\n");
    out += std::string("cacheportal_edge_") + name + " " + std::to_string(v) + "\n";
  };
  counter("requests_total", "Client requests.", m.requests);
  counter("hits_total", "Responses served from the store (X-Cache: HIT).", m.hits);
  counter("misses_total", "Responses fetched for a cacheable key (X-Cache: MISS).", m.misses);
  counter("passes_total", "Responses passed through (X-Cache: PASS).", m.passes);
  counter("coalesced_total", "Misses answered by another request's fetch.", m.coalesced);
  counter("stored_bytes", "Bytes charged to the store.", m.stored_bytes, true);
  counter("stored_objects", "Objects in the store.", m.stored_objects, true);
  counter("evictions_total", "Objects evicted by the byte budget.", m.evictions);
  counter("ejections_total", "Objects removed by Eject, purge or ban.", m.ejections);
  out +=
      "# HELP cacheportal_edge_rule_reloads_total Rules file reloads.\n"
      "# TYPE cacheportal_edge_rule_reloads_total counter\n";
  out += "cacheportal_edge_rule_reloads_total{result=\"ok\"} " + std::to_string(m.rule_reloads_ok) +
         "\n";
  out += "cacheportal_edge_rule_reloads_total{result=\"failed\"} " +
         std::to_string(m.rule_reloads_failed) + "\n";
  counter("errors_total", "Internal errors.", m.errors);
  counter("esi_errors_total", "ESI markup errors and failed includes.", m.esi_errors);
  counter("not_modified_total", "304 answers to conditional requests.", m.not_modified);
  counter("origin_requests_total", "Requests sent to the origin.", m.origin_requests);
  counter("disk_objects", "Records in the disk tier.", m.disk_objects, true);
  counter("disk_bytes", "Bytes of records in the disk tier.", m.disk_bytes, true);
  counter("disk_hits_total", "Hits served from the disk tier (promoted to memory).", m.disk_hits);
  counter("disk_loaded", "Disk records vouched for at the last start.", m.disk_loaded, true);
  counter("disk_discarded", "Disk records discarded at the last start.", m.disk_discarded, true);
  counter("disk_errors_total", "Disk tier write or read failures.", m.disk_errors);
  out +=
      "# HELP cacheportal_edge_stage_total Outcomes of each request-path stage.\n"
      "# TYPE cacheportal_edge_stage_total counter\n";
  for (const auto& [k, v] : m.outcomes) {
    size_t slash = k.find('/');
    out += "cacheportal_edge_stage_total{stage=\"" + k.substr(0, slash) + "\",outcome=\"" +
           k.substr(slash + 1) + "\"} " + std::to_string(v) + "\n";
  }
  if (deps_.extra_metrics) out += deps_.extra_metrics();
  return out;
}

std::string EdgeServer::Impl::StatsJson() const {
  EdgeMetrics m = Metrics();
  boost::json::object o;
  o["requests"] = m.requests;
  o["hits"] = m.hits;
  o["misses"] = m.misses;
  o["passes"] = m.passes;
  o["coalesced"] = m.coalesced;
  o["stored_bytes"] = m.stored_bytes;
  o["stored_objects"] = m.stored_objects;
  o["budget_bytes"] = store_.budget_bytes();
  o["evictions"] = m.evictions;
  o["ejections"] = m.ejections;
  o["rule_reloads_ok"] = m.rule_reloads_ok;
  o["rule_reloads_failed"] = m.rule_reloads_failed;
  o["errors"] = m.errors;
  o["esi_errors"] = m.esi_errors;
  o["vouched"] = vouched_.load();
  o["disk_objects"] = m.disk_objects;
  o["disk_bytes"] = m.disk_bytes;
  o["disk_hits"] = m.disk_hits;
  o["disk_loaded"] = m.disk_loaded;
  o["disk_discarded"] = m.disk_discarded;
  boost::json::object stages;
  for (const auto& [k, v] : m.outcomes) stages[k] = v;
  o["outcomes"] = std::move(stages);
  return boost::json::serialize(o) + "\n";
}

// ---------------------------------------------------------------- facade

EdgeServer::EdgeServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EdgeServer::~EdgeServer() { Stop(); }

Result<std::unique_ptr<EdgeServer>> EdgeServer::Start(const EdgeOptions& options, EdgeDeps deps) {
  try {
    auto impl = std::make_unique<Impl>(options, std::move(deps));
    if (Status s = impl->Init(); !s.ok()) {
      impl->Stop();
      return s;
    }
    return std::unique_ptr<EdgeServer>(new EdgeServer(std::move(impl)));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("edge: ") + e.what());
  }
}

uint16_t EdgeServer::port() const { return impl_->port(); }
uint16_t EdgeServer::admin_port() const { return impl_->admin_port(); }
void EdgeServer::Stop() {
  if (impl_) impl_->Stop();
}
EdgeMetrics EdgeServer::Metrics() const { return impl_->Metrics(); }
std::string EdgeServer::PrometheusText() const { return impl_->PrometheusText(); }
std::string EdgeServer::StatsJson() const { return impl_->StatsJson(); }
std::vector<std::string> EdgeServer::ChildrenOf(const std::string& key) const {
  return impl_->ChildrenOf(key);
}
bool EdgeServer::Contains(const std::string& key) const { return impl_->Contains(key); }
Status EdgeServer::Eject(std::span<const std::string> keys) {
  try {
    return impl_->Eject(keys);
  } catch (const std::exception& e) {
    return Status::Internal(e.what());
  }
}
Status EdgeServer::EjectAll() {
  try {
    return impl_->EjectAll();
  } catch (const std::exception& e) {
    return Status::Internal(e.what());
  }
}
void EdgeServer::SetVouched(bool vouched) { impl_->SetVouched(vouched); }

}  // namespace cacheportal::edge
