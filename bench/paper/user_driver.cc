#include "bench/paper/user_driver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <queue>
#include <string>
#include <thread>
#include <utility>

namespace cacheportal::bench {
namespace {

using Clock = SimulatedUser::Clock;

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~UniqueFd() { reset(); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct Slot {
  enum class State { kThinking, kConnecting, kSending, kReading, kDone };
  SimulatedUser* user = nullptr;
  State state = State::kThinking;
  UniqueFd fd;
  bool reused = false;   // the request went out on a connection kept from before
  bool retried = false;  // already sent once more on a fresh connection
  bool head = false;
  std::string out;
  size_t out_off = 0;
  std::string in;
  Clock::time_point sent, deadline;
};

// One event loop: its users, its epoll set and its think-time timers.
class Loop {
 public:
  Loop(const UserDriverOptions& options, const sockaddr_storage& addr, socklen_t addr_len)
      : options_(options), addr_(addr), addr_len_(addr_len) {}

  void Add(SimulatedUser* u) {
    slots_.emplace_back();
    slots_.back().user = u;
  }

  Status Run() {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) return Status::IOError(std::string("epoll_create1: ") + std::strerror(errno));
    active_ = slots_.size();
    Clock::time_point now = Clock::now();
    for (size_t i = 0; i < slots_.size(); ++i) Begin(i, now);
    std::vector<epoll_event> events(256);
    Clock::time_point next_sweep = now + std::chrono::milliseconds(100);
    while (active_ > 0) {
      int wait_ms = 100;
      if (!timers_.empty()) {
        auto until = std::chrono::ceil<std::chrono::milliseconds>(timers_.top().first - now);
        wait_ms = static_cast<int>(std::clamp<int64_t>(until.count(), 0, 100));
      }
      int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), wait_ms);
      if (n < 0 && errno != EINTR)
        return Status::IOError(std::string("epoll_wait: ") + std::strerror(errno));
      now = Clock::now();
      for (int e = 0; e < n; ++e) OnEvent(events[e].data.u32, events[e].events, now);
      while (!timers_.empty() && timers_.top().first <= now) {
        size_t i = timers_.top().second;
        timers_.pop();
        if (slots_[i].state == Slot::State::kThinking) Begin(i, now);
      }
      if (now >= next_sweep) {  // timeouts are rare: a coarse sweep is enough
        next_sweep = now + std::chrono::milliseconds(100);
        for (size_t i = 0; i < slots_.size(); ++i) {
          Slot& s = slots_[i];
          bool waiting = s.state == Slot::State::kConnecting || s.state == Slot::State::kSending ||
                         s.state == Slot::State::kReading;
          if (waiting && now >= s.deadline)
            Fail(
                i,
                Status::TimedOut("no answer within " + std::to_string(options_.timeout_ms) + " ms"),
                false, now);
        }
      }
    }
    return Status::OK();
  }

 private:
  // Starts the user's next request, or ends the user.
  void Begin(size_t i, Clock::time_point now) {
    Slot& s = slots_[i];
    if (!s.user->WantsMore(now)) {
      s.state = Slot::State::kDone;
      s.fd.reset();
      --active_;
      return;
    }
    Request req = s.user->Next();
    s.head = req.method == "HEAD";
    s.out = SerializeRequest(req, options_.target);
    s.retried = false;
    // `now` is when the loop woke; the send happens later in the same turn,
    // and the response time must not include this turn's other work.
    s.sent = Clock::now();
    s.deadline = s.sent + std::chrono::milliseconds(options_.timeout_ms);
    Send(i, now);
  }

  // Sends s.out from the start, on the kept connection or a new one.
  void Send(size_t i, Clock::time_point now) {
    Slot& s = slots_[i];
    s.out_off = 0;
    s.in.clear();
    s.reused = static_cast<bool>(s.fd);
    if (!s.fd) {
      if (!Connect(i, now)) return;
      if (s.state == Slot::State::kConnecting) return;
    }
    TrySend(i, now);
  }

  bool Connect(size_t i, Clock::time_point now) {
    Slot& s = slots_[i];
    int fd = ::socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      Fail(i, Status::IOError(std::string("socket: ") + std::strerror(errno)), false, now);
      return false;
    }
    s.fd.reset(fd);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bool pending = false;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr_), addr_len_) != 0) {
      if (errno != EINPROGRESS) {
        Fail(i,
             Status::Unavailable("connect " + options_.target.ToString() + ": " +
                                 std::strerror(errno)),
             false, now);
        return false;
      }
      pending = true;
    }
    epoll_event ev{};
    ev.events = pending ? EPOLLOUT : EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      Fail(i, Status::IOError(std::string("epoll_ctl: ") + std::strerror(errno)), false, now);
      return false;
    }
    s.state = pending ? Slot::State::kConnecting : Slot::State::kSending;
    return true;
  }

  void Watch(size_t i, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u32 = static_cast<uint32_t>(i);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, slots_[i].fd.get(), &ev);
  }

  void TrySend(size_t i, Clock::time_point now) {
    Slot& s = slots_[i];
    while (s.out_off < s.out.size()) {
      ssize_t n =
          ::send(s.fd.get(), s.out.data() + s.out_off, s.out.size() - s.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        s.out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (s.state != Slot::State::kSending) Watch(i, EPOLLIN | EPOLLOUT);
        s.state = Slot::State::kSending;
        return;
      }
      Fail(i, Status::IOError(std::string("send: ") + std::strerror(errno)), s.reused, now);
      return;
    }
    if (s.state == Slot::State::kSending) Watch(i, EPOLLIN);
    s.state = Slot::State::kReading;
  }

  void OnEvent(uint32_t i, uint32_t events, Clock::time_point now) {
    if (i >= slots_.size()) return;
    Slot& s = slots_[i];
    switch (s.state) {
      case Slot::State::kConnecting: {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(s.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          Fail(i,
               Status::Unavailable("connect " + options_.target.ToString() + ": " +
                                   std::strerror(err)),
               false, now);
          return;
        }
        Watch(i, EPOLLIN);
        s.state = Slot::State::kSending;
        TrySend(i, now);
        return;
      }
      case Slot::State::kSending:
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) TrySend(i, now);
        if (s.state != Slot::State::kReading || !(events & EPOLLIN)) return;
        [[fallthrough]];
      case Slot::State::kReading:
        Read(i, now);
        return;
      case Slot::State::kThinking:
        // The server closed the kept connection (or said something unasked)
        // while the user thinks: drop it; the next request opens a new one.
        s.fd.reset();
        return;
      case Slot::State::kDone:
        return;
    }
  }

  void Read(size_t i, Clock::time_point now) {
    Slot& s = slots_[i];
    char buf[65536];
    ssize_t n = ::recv(s.fd.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      Fail(i, Status::IOError(std::string("recv: ") + std::strerror(errno)),
           s.reused && s.in.empty(), now);
      return;
    }
    bool eof = n == 0;
    now = Clock::now();  // the answer is complete now, not when the loop woke
    s.in.append(buf, static_cast<size_t>(n));
    Response resp;
    auto parsed = ParseResponse(s.in, s.head, &resp);
    if (!parsed.ok()) {
      Fail(i, parsed.status(), false, now);
      return;
    }
    if (parsed->consumed == 0) {
      if (!eof) return;
      if (parsed->until_close) {
        resp.body = s.in.substr(parsed->body_offset);
        s.fd.reset();
        Finish(i, std::move(resp), now);
        return;
      }
      // An idle kept connection the server closed fails before any byte.
      Fail(i, Status::IOError("connection closed by peer"), s.reused && s.in.empty(), now);
      return;
    }
    if (parsed->close || eof) s.fd.reset();
    Finish(i, std::move(resp), now);
  }

  void Finish(size_t i, Result<Response> answer, Clock::time_point now) {
    Slot& s = slots_[i];
    s.state = Slot::State::kThinking;
    s.in.clear();
    bool failed = !answer.ok();
    Clock::duration think = s.user->Done(answer, s.sent, now);
    // A refused connection must not spin: back off a little after any failure.
    if (failed) think = std::max<Clock::duration>(think, std::chrono::milliseconds(1));
    if (think <= Clock::duration::zero()) {
      Begin(i, now);
    } else {
      timers_.emplace(now + think, i);
    }
  }

  void Fail(size_t i, Status why, bool retryable, Clock::time_point now) {
    Slot& s = slots_[i];
    s.fd.reset();
    if (retryable && !s.retried) {
      s.retried = true;
      Send(i, now);
      return;
    }
    Finish(i, std::move(why), now);
  }

  const UserDriverOptions& options_;
  sockaddr_storage addr_;
  socklen_t addr_len_;
  UniqueFd epoll_;
  std::vector<Slot> slots_;
  size_t active_ = 0;
  using Timer = std::pair<Clock::time_point, size_t>;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
};

}  // namespace

Status DriveUsers(const UserDriverOptions& options, const std::vector<SimulatedUser*>& users) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(options.target.port);
  if (int rc = ::getaddrinfo(options.target.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return Status::Unavailable("resolve " + options.target.host + ": " + gai_strerror(rc));
  sockaddr_storage addr{};
  socklen_t addr_len = static_cast<socklen_t>(std::min<size_t>(res->ai_addrlen, sizeof addr));
  std::memcpy(&addr, res->ai_addr, addr_len);
  ::freeaddrinfo(res);

  int threads = std::max(1, std::min<int>(options.threads, static_cast<int>(users.size())));
  std::vector<std::unique_ptr<Loop>> loops;
  for (int t = 0; t < threads; ++t)
    loops.push_back(std::make_unique<Loop>(options, addr, addr_len));
  for (size_t i = 0; i < users.size(); ++i) loops[i % threads]->Add(users[i]);
  std::vector<Status> results(threads, Status::OK());
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] { results[t] = loops[t]->Run(); });
  }
  for (auto& w : workers) w.join();
  for (auto& r : results)
    if (!r.ok()) return r;
  return Status::OK();
}

}  // namespace cacheportal::bench
