// RAII owners for libpg_query results (private to sqlmap). Every pg_query_*
// call returns a struct that owns C allocations; each wrapper frees exactly
// once, and the unpacked protobuf messages are freed before their buffers.
#pragma once

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <string>

namespace cacheportal::sqlmap::internal {

class ScanResult {
 public:
  explicit ScanResult(const std::string& sql) : raw_(pg_query_scan(sql.c_str())) {
    if (raw_.error == nullptr) {
      msg_ = pg_query__scan_result__unpack(nullptr, raw_.pbuf.len,
                                           reinterpret_cast<const uint8_t*>(raw_.pbuf.data));
    }
  }
  ~ScanResult() {
    if (msg_ != nullptr) pg_query__scan_result__free_unpacked(msg_, nullptr);
    pg_query_free_scan_result(raw_);
  }
  ScanResult(const ScanResult&) = delete;
  ScanResult& operator=(const ScanResult&) = delete;

  bool ok() const { return raw_.error == nullptr && msg_ != nullptr; }
  std::string error() const {
    return raw_.error != nullptr && raw_.error->message != nullptr ? raw_.error->message
                                                                   : "scan failed";
  }
  const PgQuery__ScanResult* get() const { return msg_; }

 private:
  PgQueryScanResult raw_;
  PgQuery__ScanResult* msg_ = nullptr;
};

class ParseResult {
 public:
  explicit ParseResult(const std::string& sql) : raw_(pg_query_parse_protobuf(sql.c_str())) {
    if (raw_.error == nullptr) {
      msg_ = pg_query__parse_result__unpack(nullptr, raw_.parse_tree.len,
                                            reinterpret_cast<const uint8_t*>(raw_.parse_tree.data));
    }
  }
  ~ParseResult() {
    if (msg_ != nullptr) pg_query__parse_result__free_unpacked(msg_, nullptr);
    pg_query_free_protobuf_parse_result(raw_);
  }
  ParseResult(const ParseResult&) = delete;
  ParseResult& operator=(const ParseResult&) = delete;

  bool ok() const { return raw_.error == nullptr && msg_ != nullptr; }
  std::string error() const {
    return raw_.error != nullptr && raw_.error->message != nullptr ? raw_.error->message
                                                                   : "parse failed";
  }
  const PgQuery__ParseResult* get() const { return msg_; }

 private:
  PgQueryProtobufParseResult raw_;
  PgQuery__ParseResult* msg_ = nullptr;
};

class FingerprintResult {
 public:
  explicit FingerprintResult(const std::string& sql) : raw_(pg_query_fingerprint(sql.c_str())) {}
  ~FingerprintResult() { pg_query_free_fingerprint_result(raw_); }
  FingerprintResult(const FingerprintResult&) = delete;
  FingerprintResult& operator=(const FingerprintResult&) = delete;
  bool ok() const { return raw_.error == nullptr; }
  uint64_t value() const { return raw_.fingerprint; }

 private:
  PgQueryFingerprintResult raw_;
};

}  // namespace cacheportal::sqlmap::internal
