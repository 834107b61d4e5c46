// Test helpers for the edge: a tiny origin server that counts requests and can
// hold answers behind a gate, a blocking HTTP client, and a fake rules set.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "differentiator/differentiator.h"

namespace cacheportal::edge::testing {

// A latch the origin's handler can wait on; the test opens it.
class Gate {
 public:
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Polls `pred` until true or the deadline passes (a bounded wait, not a sleep
// standing in for an event).
bool WaitUntil(const std::function<bool()>& pred,
               std::chrono::milliseconds deadline = std::chrono::seconds(10));

struct OriginRequest {
  std::string method, target, body;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string Path() const { return target.substr(0, target.find('?')); }
};

struct OriginResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

class TinyOrigin {
 public:
  using Handler = std::function<OriginResponse(const OriginRequest&)>;
  explicit TinyOrigin(Handler handler);
  ~TinyOrigin();
  uint16_t port() const { return port_; }
  int Count(const std::string& path) const;
  int Total() const;
  std::vector<OriginRequest> Requests() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
  uint16_t port_ = 0;
};

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// One request on a fresh connection. status 0 = connection failed.
ClientResponse Fetch(uint16_t port, const std::string& method, const std::string& target,
                     const std::vector<std::pair<std::string, std::string>>& headers = {},
                     const std::string& body = {});
// Sends raw bytes, returns everything read until the peer closes (bounded).
std::string RawExchange(uint16_t port, const std::string& bytes);

// Rules for tests: paths under /pass and POSTs are passed, everything else
// (and POST /search, keyed by its body) is cached, keyed by path + full query
// + the `lang` cookie (and /frag/user* also by the `user` cookie).
class FakeRules : public differentiator::RuleSet {
 public:
  explicit FakeRules(std::chrono::seconds ttl = std::chrono::seconds(0), bool pass_all = false)
      : ttl_(ttl), pass_all_(pass_all) {}
  differentiator::Decision Decide(const differentiator::RequestView& r,
                                  int64_t now_unix) const override;
  size_t RuleCount() const override { return 2; }
  uint64_t MaxBodyBytes() const override { return 0; }
  // The key string the edge will use for a plain GET of `target`.
  static std::string KeyFor(const std::string& target, const std::string& lang = {});

 private:
  std::chrono::seconds ttl_;
  bool pass_all_ = false;
};

}  // namespace cacheportal::edge::testing
