// A bounded pool of libpq connections for the store's request threads.
//
// Connections are opened lazily up to `size`; Acquire() waits (bounded) for a
// free one. A Lease returns its connection on destruction, or drops it when
// the caller marked it broken or libpq reports it unusable, so a restarted
// database heals without a store restart. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"

namespace cacheportal::store {

class PgPool {
 public:
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    PGconn* get() const { return conn_.get(); }
    explicit operator bool() const { return conn_ != nullptr; }
    // The connection is in an unknown state (error mid-transaction, I/O
    // failure): close it instead of reusing it.
    void MarkBroken() { broken_ = true; }

   private:
    friend class PgPool;
    Lease(PgPool* pool, pg::ConnPtr conn) : pool_(pool), conn_(std::move(conn)) {}
    void Release();
    PgPool* pool_ = nullptr;
    pg::ConnPtr conn_;
    bool broken_ = false;
  };

  PgPool(std::string conninfo, int size, std::chrono::milliseconds wait = std::chrono::seconds(5));
  ~PgPool();

  // Unavailable when the database cannot be reached or no connection frees
  // up within the wait bound.
  Result<Lease> Acquire();

 private:
  void Return(pg::ConnPtr conn, bool broken);

  const std::string conninfo_;
  const int size_;
  const std::chrono::milliseconds wait_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<pg::ConnPtr> idle_;
  int open_ = 0;  // idle + leased + being opened
};

}  // namespace cacheportal::store
