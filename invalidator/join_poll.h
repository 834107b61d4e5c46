// Join polling: when a changed row passes its own table's predicates in a
// query that joins other tables, ask the database whether the row can join
// anything the instance selects. Questions are built from the template's
// structure (tables, per-table predicates, join equalities), not by editing
// SQL text: every instance value and row value travels as a parameter, so no
// quoting is involved.
//
// Two question shapes, both answering many instances with ONE query:
//
//  * PartnerPoll (the usual one): for one template, one changed table and a
//    few row images, fetch the partner rows — the other tables joined with
//    the row, *without* any instance's predicates — and then test every
//    candidate instance's predicates on those partners here, with the row
//    evaluator. One query per (changed row, template), however many
//    instances: a price change on item_details that makes every items-list
//    instance of its locale a candidate costs one indexed lookup of the
//    row's item and product, not one query per list. "Maybe" from the
//    evaluator counts as a match (more ejections, never fewer).
//  * ProbeBatch (fallback when a row has more partners than the bound):
//    one `EXISTS (...)` per instance with its own values, all in one SELECT
//    list. kUnknown sub-predicates become TRUE or FALSE by polarity, always
//    widening the EXISTS.
//
// Every answer carries pg_current_wal_insert_lsn() read in the same
// statement (after its snapshot). The answer reflects the database *now*,
// which may be after later commits: the caller treats "no" as provisional
// until it has processed the stream up to that position (ChangeProcessor's
// poll guards).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
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

// A query's answer as the server sent it (text format; nullopt = NULL).
struct PollRows {
  std::vector<uint32_t> types;  // per column
  std::vector<std::vector<std::optional<std::string>>> rows;
};

class JoinPoller {
 public:
  virtual ~JoinPoller() = default;
  // TimedOut when the server cancelled it by statement_timeout.
  virtual Result<PollRows> Query(const PollQuery& query) = 0;
  // Independent queries, one answer each in order. Once `expired()` says
  // the caller's budget is spent, the remaining ones answer TryAgain without
  // being waited for. Default: one after the other.
  virtual std::vector<Result<PollRows>> QueryAll(std::span<const PollQuery* const> queries,
                                                 const std::function<bool()>& expired) {
    std::vector<Result<PollRows>> out;
    out.reserve(queries.size());
    for (const PollQuery* q : queries)
      out.push_back(expired() ? Result<PollRows>(Status::TryAgain("poll budget spent"))
                              : Query(*q));
    return out;
  }
};

// Runs polls on its own (non-replication) connection, reconnecting as needed.
// Not thread-safe: one per stream.
class PgJoinPoller final : public JoinPoller {
 public:
  explicit PgJoinPoller(std::string conninfo, int statement_timeout_ms = 2000)
      : conninfo_(std::move(conninfo)), timeout_ms_(statement_timeout_ms) {}
  Result<PollRows> Query(const PollQuery& query) override;
  // Sent in one libpq pipeline: one round trip for all of them. A failed
  // query aborts the ones after it (each then answers with an error).
  std::vector<Result<PollRows>> QueryAll(std::span<const PollQuery* const> queries,
                                         const std::function<bool()>& expired) override;

 private:
  Status EnsureConnected();
  std::string conninfo_;
  int timeout_ms_;
  pg::ConnPtr conn_;
};

// Partner rows of up to kMaxRows row images of one changed table in one template.
class PartnerPoll {
 public:
  static constexpr size_t kMaxRows = 32;

  // NotSupported when polling cannot be exact enough (outer joins, a join
  // column of a row we do not know): the caller ejects conservatively.
  // `rows` (1..kMaxRows, all of `rel`) are numbered by their position.
  static Result<PartnerPoll> Build(std::shared_ptr<const sqlmap::QueryTemplate> tmpl,
                                   int changed_table, const Relation& rel,
                                   std::span<const Row* const> rows, size_t max_partners);

  const PollQuery& query() const { return query_; }
  // Takes the poller's answer. Corruption when it does not have the shape asked for.
  Status Read(const PollRows& answer);
  // Matches() cannot decide, probe instead: more than `max_partners` partner
  // rows, or a predicate column of a type the evaluator does not read exactly.
  bool overflowed() const { return overflowed_; }
  Lsn wal_lsn() const { return wal_lsn_; }
  size_t partners() const { return partners_.size(); }

  // After Read() (not overflowed): can some partner of one of `rows` (positions
  // in Build's `rows`) satisfy the instance's predicates on every other table?
  // `instance` must be of the template the poll was built for.
  bool Matches(const sqlmap::QueryInstance& instance, std::span<const uint32_t> rows,
               const EvalOptions& options) const;

 private:
  struct Side {
    int table = 0;                     // index into tmpl->tables
    std::vector<std::string> columns;  // the columns its predicate reads
    size_t first = 0;                  // first result column
    std::shared_ptr<const Relation> rel;
  };
  struct Partner {
    uint32_t row = 0;
    std::vector<Row> sides;  // per Side
  };
  std::shared_ptr<const sqlmap::QueryTemplate> tmpl_;
  std::vector<Side> sides_;
  size_t columns_ = 0;
  size_t max_partners_ = 0;
  PollQuery query_;
  bool overflowed_ = false;
  Lsn wal_lsn_ = 0;
  std::vector<Partner> partners_;
};

// Several instances' EXISTS probes in one query: `SELECT lsn, EXISTS(...), EXISTS(...)`.
class ProbeBatch {
 public:
  // NotSupported (and the batch unchanged) when this probe cannot be exact
  // enough: the caller ejects that instance conservatively.
  Status Add(const sqlmap::QueryInstance& instance, int changed_table, const Relation& rel,
             std::span<const Row* const> rows);
  size_t size() const { return probes_; }
  size_t params() const { return query_.params.size(); }
  // The query to run (valid while the batch lives).
  const PollQuery& Finish();
  // Per probe, in Add() order: can the row join anything the instance selects?
  Result<std::vector<bool>> Read(const PollRows& answer, Lsn* wal_lsn) const;

 private:
  PollQuery query_;
  std::string select_;
  size_t probes_ = 0;
};

}  // namespace cacheportal::invalidator
