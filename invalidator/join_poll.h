// Join polling: when a changed row passes its own table's predicates in a
// query that joins other tables, ask the database whether the row can join
// anything the instance selects. The question is built from the template's
// structure (tables, per-table predicates, join equalities), not by editing
// SQL text: every instance value and row value travels as a parameter, so no
// quoting is involved. kUnknown sub-predicates become TRUE or FALSE by
// polarity, always widening the EXISTS (more ejections, never fewer).
//
// The answer reflects the database *now*, which may be after later commits.
// The caller must treat "no" as provisional until it has processed the stream
// up to `wal_lsn` (see ChangeProcessor's poll guards).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "common/status.h"
#include "invalidator/pgoutput.h"
#include "invalidator/row_evaluator.h"

namespace cacheportal::invalidator {

struct PollQuery {
  std::string sql;
  std::vector<std::optional<std::string>> params;
};

// NotSupported when polling cannot be exact enough (outer joins, a join column
// of the row we do not know): the caller ejects conservatively.
Result<PollQuery> BuildJoinPoll(const sqlmap::QueryInstance& instance, int changed_table,
                                const Relation& rel, const std::vector<const Row*>& rows);

struct PollAnswer {
  bool exists = true;
  Lsn wal_lsn = 0;  // the server's WAL insert position when the answer was computed
};

class JoinPoller {
 public:
  virtual ~JoinPoller() = default;
  virtual Result<PollAnswer> Poll(const PollQuery& query) = 0;
};

// Runs polls on its own (non-replication) connection, reconnecting as needed.
// Not thread-safe: one per stream.
class PgJoinPoller final : public JoinPoller {
 public:
  explicit PgJoinPoller(std::string conninfo, int statement_timeout_ms = 2000)
      : conninfo_(std::move(conninfo)), timeout_ms_(statement_timeout_ms) {}
  Result<PollAnswer> Poll(const PollQuery& query) override;

 private:
  std::string conninfo_;
  int timeout_ms_;
  pg::ConnPtr conn_;
};

}  // namespace cacheportal::invalidator
