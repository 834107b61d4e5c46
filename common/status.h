// Status and Result<T>: how every fallible call in CachePortal reports.
//
// Modelled on rocksdb::Status: an OK status carries no message (cheap to
// return), NotFound is an ordinary outcome, and predicates such as
// IsTryAgain() tell the caller whether a retry makes sense. No exceptions
// cross a part boundary; Result<T> is the value-or-status return used where an
// out-param would be awkward (C++20 has no std::expected).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace cacheportal {

class Status {
 public:
  enum class Code {
    kOk,
    kNotFound,
    kInvalidArgument,  // bad input from a user, a file or a peer
    kNotSupported,     // understood but not handled (e.g. SQL the analyser cannot reason about)
    kCorruption,       // stored or received bytes that violate their format
    kIOError,
    kUnavailable,  // a dependency (database, origin) is down; retry later
    kTryAgain,     // transient; retry now
    kTimedOut,
    kInternal,
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string msg = {}) { return {Code::kNotFound, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status NotSupported(std::string msg) { return {Code::kNotSupported, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status TryAgain(std::string msg) { return {Code::kTryAgain, std::move(msg)}; }
  static Status TimedOut(std::string msg) { return {Code::kTimedOut, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsNotSupported() const { return code_ == Code::kNotSupported; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsTryAgain() const { return code_ == Code::kTryAgain; }
  bool IsTimedOut() const { return code_ == Code::kTimedOut; }
  const std::string& message() const { return message_; }

  // "InvalidArgument: config/x.yaml:3: unknown key 'prot'".
  std::string ToString() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

std::string_view CodeName(Status::Code code);

// A value or the Status that explains why there is none. Never both.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace cacheportal
