// Ejectors that live outside the edge process.
//
// HttpPurgeEjector ejects through a remote edge's admin API:
//   POST /purge?key=<percent-encoded key>   (one request per key, keep-alive)
//   POST /ban?prefix=                        (EjectAll: every stored object)
// with `Authorization: Bearer <token>`. Eject() returns OK only when every
// request got a 2xx answer, so the invalidator does not acknowledge a
// position the edge has not confirmed. The admin API has no vouch switch:
// SetVouched() is logged, and the edge protects itself by its own means.
//
// LoggingEjector only logs (a stand-alone invalidator with no edge).
// Both are thread-safe (one request sequence at a time).
#pragma once

#include <mutex>
#include <string>

#include "common/ejector.h"

namespace cacheportal::invalidator {

class HttpPurgeEjector final : public Ejector {
 public:
  HttpPurgeEjector(std::string host, uint16_t port, std::string token, int timeout_ms = 5000);
  ~HttpPurgeEjector() override;
  Status Eject(std::span<const std::string> keys) override;
  Status EjectAll() override;
  void SetVouched(bool vouched) override;

 private:
  Status Post(const std::string& target);
  Status Connect();
  void Close();

  std::mutex mu_;
  std::string host_;
  uint16_t port_;
  std::string token_;
  int timeout_ms_;
  int fd_ = -1;
};

class LoggingEjector final : public Ejector {
 public:
  Status Eject(std::span<const std::string> keys) override;
  Status EjectAll() override;
  void SetVouched(bool vouched) override;
};

}  // namespace cacheportal::invalidator
