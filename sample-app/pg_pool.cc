#include "sample-app/pg_pool.h"

namespace cacheportal::store {

PgPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)), broken_(other.broken_) {
  other.pool_ = nullptr;
}

PgPool::Lease& PgPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = other.pool_;
    conn_ = std::move(other.conn_);
    broken_ = other.broken_;
    other.pool_ = nullptr;
  }
  return *this;
}

PgPool::Lease::~Lease() { Release(); }

void PgPool::Lease::Release() {
  if (pool_ && conn_) pool_->Return(std::move(conn_), broken_);
  pool_ = nullptr;
  conn_.reset();
}

PgPool::PgPool(std::string conninfo, int size, std::chrono::milliseconds wait)
    : conninfo_(std::move(conninfo)), size_(size < 1 ? 1 : size), wait_(wait) {}

PgPool::~PgPool() = default;

Result<PgPool::Lease> PgPool::Acquire() {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, wait_, [&] { return !idle_.empty() || open_ < size_; }))
    return Status::Unavailable("no database connection free within the wait bound");
  if (!idle_.empty()) {
    pg::ConnPtr c = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(c));
  }
  ++open_;
  lock.unlock();
  // Connect outside the lock: it can take as long as the network does.
  auto conn = pg::Connect(conninfo_);
  if (!conn.ok()) {
    lock.lock();
    --open_;
    cv_.notify_one();
    return conn.status();
  }
  PQsetNoticeProcessor(
      conn->get(), [](void*, const char*) {}, nullptr);
  return Lease(this, std::move(conn).value());
}

void PgPool::Return(pg::ConnPtr conn, bool broken) {
  bool usable = !broken && PQstatus(conn.get()) == CONNECTION_OK &&
                PQtransactionStatus(conn.get()) == PQTRANS_IDLE;
  if (!usable) conn.reset();
  std::lock_guard lock(mu_);
  if (usable)
    idle_.push_back(std::move(conn));
  else
    --open_;
  cv_.notify_one();
}

}  // namespace cacheportal::store
