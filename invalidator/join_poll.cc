#include "invalidator/join_poll.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>

#include "sqlmap/query_template.h"

namespace cacheportal::invalidator {
namespace {

using sqlmap::CompareOp;
using sqlmap::Predicate;

std::string QuoteIdent(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string QuoteTable(std::string_view qualified) {
  size_t dot = qualified.find('.');
  if (dot == std::string_view::npos) return QuoteIdent(qualified);
  return QuoteIdent(qualified.substr(0, dot)) + "." + QuoteIdent(qualified.substr(dot + 1));
}

class Renderer {
 public:
  Renderer(const sqlmap::QueryInstance& inst, PollQuery* q) : inst_(inst), q_(q) {}

  std::string Param(const std::optional<std::string>& v) {
    q_->params.push_back(v);
    return "$" + std::to_string(q_->params.size());
  }
  // `positive`: the expression sits under an even number of NOTs, so an unknown
  // part must become TRUE to widen; under an odd number, FALSE.
  std::string Render(const Predicate& p, const std::string& alias, bool positive, int depth = 0) {
    const char* widen = positive ? "TRUE" : "FALSE";
    if (depth > 100) return widen;
    switch (p.kind) {
      case Predicate::Kind::kTrue:
        return "TRUE";
      case Predicate::Kind::kUnknown:
        return widen;
      case Predicate::Kind::kAnd:
      case Predicate::Kind::kOr: {
        if (p.children.empty()) return p.kind == Predicate::Kind::kAnd ? "TRUE" : "FALSE";
        std::string out = "(";
        for (size_t i = 0; i < p.children.size(); ++i) {
          if (i) out += p.kind == Predicate::Kind::kAnd ? " AND " : " OR ";
          out += Render(p.children[i], alias, positive, depth + 1);
        }
        return out + ")";
      }
      case Predicate::Kind::kNot:
        if (p.children.size() != 1) return widen;
        return "(NOT " + Render(p.children[0], alias, !positive, depth + 1) + ")";
      case Predicate::Kind::kCompare:
        return Compare(p, alias, widen);
    }
    return widen;
  }

 private:
  bool SlotOk(int s) const { return s >= 0 && static_cast<size_t>(s) < inst_.values.size(); }

  std::string Compare(const Predicate& p, const std::string& alias, const char* widen) {
    for (int s : p.slots)
      if (!SlotOk(s)) return widen;
    std::string col = alias + "." + QuoteIdent(p.column);
    auto one = [&](const char* op) -> std::string {
      if (p.slots.size() != 1) return widen;
      return "(" + col + " " + op + " " + Param(inst_.values[p.slots[0]]) + ")";
    };
    auto list = [&](const char* op) -> std::string {
      if (p.slots.empty()) return widen;
      std::string out = "(" + col + " " + op + " (";
      for (size_t i = 0; i < p.slots.size(); ++i) {
        if (i) out += ", ";
        out += Param(inst_.values[p.slots[i]]);
      }
      return out + "))";
    };
    auto between = [&](const char* op) -> std::string {
      if (p.slots.size() != 2) return widen;
      std::string lo = Param(inst_.values[p.slots[0]]);
      std::string hi = Param(inst_.values[p.slots[1]]);
      return "(" + col + " " + op + " " + lo + " AND " + hi + ")";
    };
    switch (p.op) {
      case CompareOp::kEq:
        return one("=");
      case CompareOp::kNe:
        return one("<>");
      case CompareOp::kLt:
        return one("<");
      case CompareOp::kLe:
        return one("<=");
      case CompareOp::kGt:
        return one(">");
      case CompareOp::kGe:
        return one(">=");
      case CompareOp::kIn:
        return list("IN");
      case CompareOp::kNotIn:
        return list("NOT IN");
      case CompareOp::kBetween:
        return between("BETWEEN");
      case CompareOp::kNotBetween:
        return between("NOT BETWEEN");
      case CompareOp::kLike:
        return one("LIKE");
      case CompareOp::kNotLike:
        return one("NOT LIKE");
      case CompareOp::kILike:
        return one("ILIKE");
      case CompareOp::kNotILike:
        return one("NOT ILIKE");
      case CompareOp::kIsNull:
        return "(" + col + " IS NULL)";
      case CompareOp::kIsNotNull:
        return "(" + col + " IS NOT NULL)";
    }
    return widen;
  }

  const sqlmap::QueryInstance& inst_;
  PollQuery* q_;
};

Status CheckPollable(const sqlmap::QueryTemplate& t, int changed, size_t rows) {
  if (t.flags & sqlmap::kFlagOuterJoin)
    return Status::NotSupported("outer join: a row can appear without a partner");
  if (changed < 0 || static_cast<size_t>(changed) >= t.tables.size())
    return Status::NotSupported("changed table index out of range");
  if (t.tables.size() < 2) return Status::NotSupported("not a join");
  if (rows == 0) return Status::NotSupported("no row to poll for");
  for (const auto& j : t.joins) {
    if (j.left_table < 0 || j.right_table < 0 ||
        static_cast<size_t>(j.left_table) >= t.tables.size() ||
        static_cast<size_t>(j.right_table) >= t.tables.size())
      return Status::NotSupported("join refers to an unknown table");
  }
  return Status::OK();
}

std::string Alias(size_t i) { return "t" + std::to_string(i); }

// " FROM <the other tables> WHERE TRUE AND ...": joins among the other tables
// stay joins; joins with the changed table take the row's values (one
// disjunct per row image). With `inst`, the other tables' predicates take
// its values; without, they are left out (partner rows of any instance).
Result<std::string> RenderFromWhere(const sqlmap::QueryTemplate& t,
                                    const sqlmap::QueryInstance* inst, int changed,
                                    const Relation& rel, std::span<const Row* const> rows,
                                    PollQuery* q) {
  static const sqlmap::QueryInstance kNoInstance;
  Renderer r(inst ? *inst : kNoInstance, q);
  std::string from, where;
  for (size_t i = 0; i < t.tables.size(); ++i) {
    if (static_cast<int>(i) == changed) continue;
    if (!from.empty()) from += ", ";
    from += QuoteTable(t.tables[i].table) + " " + Alias(i);
    if (inst) where += " AND " + r.Render(t.tables[i].predicate, Alias(i), true);
  }
  std::vector<const sqlmap::JoinEquality*> to_row;
  for (const auto& j : t.joins) {
    bool l = j.left_table == changed, rr = j.right_table == changed;
    if (l && rr) continue;  // a condition within the changed row: already in its predicate
    if (l || rr) {
      to_row.push_back(&j);
      continue;
    }
    where += " AND (" + Alias(j.left_table) + "." + QuoteIdent(j.left_column) + " = " +
             Alias(j.right_table) + "." + QuoteIdent(j.right_column) + ")";
  }
  if (!to_row.empty()) {
    std::string any;
    for (const Row* row : rows) {
      std::string conj;
      for (const auto* j : to_row) {
        bool left_is_row = j->left_table == changed;
        const std::string& row_col = left_is_row ? j->left_column : j->right_column;
        int other = left_is_row ? j->right_table : j->left_table;
        const std::string& other_col = left_is_row ? j->right_column : j->left_column;
        int c = rel.Find(row_col);
        if (c < 0 || static_cast<size_t>(c) >= row->size())
          return Status::NotSupported("join column " + row_col + " not in " + rel.table);
        const Cell& cell = (*row)[c];
        if (cell.state == Cell::State::kUnknown)
          return Status::NotSupported("join column " + row_col + " of the changed row is unknown");
        std::optional<std::string> v;
        if (cell.state == Cell::State::kValue) v = cell.text;
        if (!conj.empty()) conj += " AND ";
        conj += "(" + Alias(other) + "." + QuoteIdent(other_col) + " = " + r.Param(v) + ")";
      }
      if (!any.empty()) any += " OR ";
      any += "(" + conj + ")";
    }
    where += " AND (" + any + ")";
  }
  return " FROM " + from + " WHERE TRUE" + where;
}

void CollectColumns(const sqlmap::Predicate& p, std::vector<std::string>* out, int depth = 0) {
  if (depth > 100) return;
  if (p.kind == sqlmap::Predicate::Kind::kCompare &&
      std::find(out->begin(), out->end(), p.column) == out->end())
    out->push_back(p.column);
  for (const auto& c : p.children) CollectColumns(c, out, depth + 1);
}

Result<Lsn> ReadLsn(const PollRows& answer) {
  if (answer.rows.empty() || answer.rows[0].empty() || !answer.rows[0][0])
    return Status::Corruption("join poll answer without a WAL position");
  Lsn best = 0;
  for (const auto& row : answer.rows) {
    if (row.empty() || !row[0]) continue;
    auto lsn = ParseLsn(*row[0]);
    if (!lsn.ok()) return lsn.status();
    best = std::max(best, *lsn);
  }
  return best;
}

}  // namespace

Result<PartnerPoll> PartnerPoll::Build(std::shared_ptr<const sqlmap::QueryTemplate> tmpl,
                                       int changed, const Relation& rel,
                                       std::span<const Row* const> rows, size_t max_partners) {
  if (!tmpl) return Status::NotSupported("instance without template");
  if (Status s = CheckPollable(*tmpl, changed, rows.size()); !s.ok()) return s;
  if (rows.size() > kMaxRows) return Status::InvalidArgument("too many rows for one partner poll");
  PartnerPoll p;
  p.tmpl_ = tmpl;
  p.max_partners_ = std::max<size_t>(1, max_partners);
  std::string select;
  size_t col = 2;  // 0: WAL position, 1: row number
  for (size_t i = 0; i < tmpl->tables.size(); ++i) {
    if (static_cast<int>(i) == changed) continue;
    Side side;
    side.table = static_cast<int>(i);
    CollectColumns(tmpl->tables[i].predicate, &side.columns);
    side.first = col;
    for (const auto& c : side.columns) {
      select += ", " + Alias(i) + "." + QuoteIdent(c) + " AS c" + std::to_string(col);
      ++col;
    }
    p.sides_.push_back(std::move(side));
  }
  p.columns_ = col;
  // One branch per row so that each partner says which row it joined.
  std::string branches;
  for (size_t k = 0; k < rows.size(); ++k) {
    auto body = RenderFromWhere(*tmpl, nullptr, changed, rel, rows.subspan(k, 1), &p.query_);
    if (!body.ok()) return body.status();
    if (k) branches += " UNION ALL ";
    branches += "SELECT " + std::to_string(k) + " AS r" + select + *body;
  }
  // The LEFT JOIN keeps one row (with the WAL position) when there are no partners.
  p.query_.sql =
      "SELECT pg_current_wal_insert_lsn()::text, p.* FROM (SELECT 1) AS one LEFT JOIN (" +
      branches + " LIMIT " + std::to_string(p.max_partners_ + 1) + ") AS p ON TRUE";
  return p;
}

Status PartnerPoll::Read(const PollRows& answer) {
  partners_.clear();
  overflowed_ = false;
  if (answer.types.size() != columns_)
    return Status::Corruption("partner poll answer has " + std::to_string(answer.types.size()) +
                              " columns, expected " + std::to_string(columns_));
  auto lsn = ReadLsn(answer);
  if (!lsn.ok()) return lsn.status();
  wal_lsn_ = *lsn;
  // Types the row evaluator reads exactly; for any other (a domain, citext,
  // an enum) text equality may differ from SQL's, so ask SQL instead.
  auto known = [](uint32_t t) {
    switch (t) {
      case oid::kBool:
      case oid::kName:
      case oid::kInt8:
      case oid::kInt2:
      case oid::kInt4:
      case oid::kText:
      case oid::kOid:
      case oid::kFloat4:
      case oid::kFloat8:
      case oid::kBpchar:
      case oid::kVarchar:
      case oid::kDate:
      case oid::kTimestamp:
      case oid::kTimestamptz:
      case oid::kNumeric:
      case oid::kUuid:
        return true;
      default:
        return false;
    }
  };
  for (size_t c = 2; c < answer.types.size(); ++c) {
    if (!known(answer.types[c])) {
      overflowed_ = true;
      return Status::OK();
    }
  }
  for (auto& side : sides_) {
    RelationMessage m;
    m.nspname = "poll";
    m.relname = tmpl_->tables[side.table].table;
    for (size_t c = 0; c < side.columns.size(); ++c)
      m.columns.push_back({false, side.columns[c], answer.types[side.first + c], -1});
    side.rel = MakeRelation(m);
  }
  for (const auto& row : answer.rows) {
    if (row.size() != columns_) return Status::Corruption("partner poll answer row width");
    if (!row[1]) continue;  // no partners at all
    if (partners_.size() >= max_partners_) {
      overflowed_ = true;
      partners_.clear();
      return Status::OK();
    }
    Partner p;
    p.row = static_cast<uint32_t>(std::strtoul(row[1]->c_str(), nullptr, 10));
    for (const auto& side : sides_) {
      Row cells(side.columns.size());
      for (size_t c = 0; c < side.columns.size(); ++c) {
        const auto& v = row[side.first + c];
        cells[c].state = v ? Cell::State::kValue : Cell::State::kNull;
        if (v) cells[c].text = *v;
      }
      p.sides.push_back(std::move(cells));
    }
    partners_.push_back(std::move(p));
  }
  return Status::OK();
}

bool PartnerPoll::Matches(const sqlmap::QueryInstance& instance, std::span<const uint32_t> rows,
                          const EvalOptions& options) const {
  if (overflowed_) return true;
  const sqlmap::QueryTemplate& t = instance.tmpl ? *instance.tmpl : *tmpl_;
  for (const auto& p : partners_) {
    if (std::find(rows.begin(), rows.end(), p.row) == rows.end()) continue;
    bool all = true;
    for (size_t s = 0; s < sides_.size() && all; ++s) {
      const auto& side = sides_[s];
      if (static_cast<size_t>(side.table) >= t.tables.size() || !side.rel) return true;
      all = EvaluatePredicate(t.tables[side.table].predicate, *side.rel, p.sides[s],
                              instance.values, options) != Tri::kNo;
    }
    if (all) return true;
  }
  return false;
}

Status ProbeBatch::Add(const sqlmap::QueryInstance& instance, int changed, const Relation& rel,
                       std::span<const Row* const> rows) {
  if (!instance.tmpl) return Status::NotSupported("instance without template");
  if (Status s = CheckPollable(*instance.tmpl, changed, rows.size()); !s.ok()) return s;
  size_t params_before = query_.params.size();
  auto body = RenderFromWhere(*instance.tmpl, &instance, changed, rel, rows, &query_);
  if (!body.ok()) {
    query_.params.resize(params_before);
    return body.status();
  }
  select_ += ", EXISTS (SELECT 1" + *body + ")";
  ++probes_;
  return Status::OK();
}

const PollQuery& ProbeBatch::Finish() {
  query_.sql = "SELECT pg_current_wal_insert_lsn()::text" + select_;
  return query_;
}

Result<std::vector<bool>> ProbeBatch::Read(const PollRows& answer, Lsn* wal_lsn) const {
  if (answer.rows.size() != 1 || answer.rows[0].size() != probes_ + 1)
    return Status::Corruption("probe batch answer does not have one row of " +
                              std::to_string(probes_ + 1) + " columns");
  auto lsn = ReadLsn(answer);
  if (!lsn.ok()) return lsn.status();
  *wal_lsn = *lsn;
  std::vector<bool> out(probes_);
  // Anything but an explicit false (NULL included) counts as "may join".
  for (size_t i = 0; i < probes_; ++i)
    out[i] = !(answer.rows[0][i + 1] && *answer.rows[0][i + 1] == "f");
  return out;
}

namespace {

PollRows ToRows(const PGresult* res) {
  PollRows out;
  int cols = PQnfields(res), n = PQntuples(res);
  for (int c = 0; c < cols; ++c) out.types.push_back(PQftype(res, c));
  out.rows.resize(n);
  for (int i = 0; i < n; ++i) {
    out.rows[i].reserve(cols);
    for (int c = 0; c < cols; ++c) {
      if (PQgetisnull(res, i, c))
        out.rows[i].emplace_back();
      else
        out.rows[i].emplace_back(std::string(PQgetvalue(res, i, c), PQgetlength(res, i, c)));
    }
  }
  return out;
}

// Tell a statement_timeout (57014, "canceling statement due to statement
// timeout") apart so that it is counted: the poll waited on a lock or a slow
// plan; the server is fine.
Status ClassifyError(const Status& s, int timeout_ms) {
  if (s.message().find("statement timeout") != std::string::npos)
    return Status::TimedOut("join poll exceeded statement_timeout (" + std::to_string(timeout_ms) +
                            " ms): " + s.message());
  return s;
}

}  // namespace

Status PgJoinPoller::EnsureConnected() {
  if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) return Status::OK();
  auto c = pg::Connect(conninfo_);
  if (!c.ok()) return c.status();
  conn_ = std::move(c).value();
  auto s = pg::Exec(conn_.get(), "SET statement_timeout = " + std::to_string(timeout_ms_));
  if (!s.ok()) {
    conn_.reset();
    return s.status();
  }
  return Status::OK();
}

Result<PollRows> PgJoinPoller::Query(const PollQuery& query) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (Status s = EnsureConnected(); !s.ok()) return s;
    std::vector<const char*> params;
    params.reserve(query.params.size());
    for (const auto& p : query.params) params.push_back(p ? p->c_str() : nullptr);
    auto r = pg::ExecParams(conn_.get(), query.sql, params);
    if (!r.ok()) {
      Status s = ClassifyError(r.status(), timeout_ms_);
      if (s.IsUnavailable() && attempt == 0) {
        conn_.reset();
        continue;
      }
      return s;
    }
    return ToRows(r->get());
  }
  return Status::Unavailable("poll connection lost");
}

std::vector<Result<PollRows>> PgJoinPoller::QueryAll(std::span<const PollQuery* const> queries,
                                                     const std::function<bool()>& expired) {
  if (queries.size() <= 1) return JoinPoller::QueryAll(queries, expired);
  std::vector<Result<PollRows>> out;
  out.reserve(queries.size());
  auto fail_all = [&](const Status& s) {
    conn_.reset();  // the pipeline's state is unknown: start afresh next time
    out.clear();
    for (size_t i = 0; i < queries.size(); ++i) out.push_back(s);
    return out;
  };
  if (Status s = EnsureConnected(); !s.ok()) return fail_all(s);
  PGconn* c = conn_.get();
  if (PQenterPipelineMode(c) != 1)
    return fail_all(Status::Unavailable(std::string("pipeline mode: ") + PQerrorMessage(c)));
  for (const PollQuery* q : queries) {
    std::vector<const char*> params;
    params.reserve(q->params.size());
    for (const auto& p : q->params) params.push_back(p ? p->c_str() : nullptr);
    if (PQsendQueryParams(c, q->sql.c_str(), static_cast<int>(params.size()), nullptr,
                          params.data(), nullptr, nullptr, 0) != 1)
      return fail_all(
          Status::Unavailable(std::string("sending a join poll: ") + PQerrorMessage(c)));
  }
  if (PQpipelineSync(c) != 1)
    return fail_all(Status::Unavailable(std::string("pipeline sync: ") + PQerrorMessage(c)));
  PQflush(c);
  for (size_t i = 0; i < queries.size(); ++i) {
    // Wait in slices so that a spent budget stops the wait: cancel what is
    // running, drop the connection, and leave the rest unanswered.
    while (PQisBusy(c)) {
      if (expired()) {
        if (PGcancel* cancel = PQgetCancel(c)) {
          char err[256];
          PQcancel(cancel, err, sizeof err);
          PQfreeCancel(cancel);
        }
        conn_.reset();
        for (; i < queries.size(); ++i) out.push_back(Status::TryAgain("poll budget spent"));
        return out;
      }
      pollfd pfd{PQsocket(c), POLLIN, 0};
      if (::poll(&pfd, 1, 10) < 0 && errno != EINTR)
        return fail_all(Status::Unavailable("poll connection: waiting failed"));
      if (PQconsumeInput(c) != 1)
        return fail_all(Status::Unavailable(std::string("poll connection: ") + PQerrorMessage(c)));
    }
    PGresult* raw = PQgetResult(c);
    if (!raw)
      return fail_all(Status::Unavailable(std::string("poll connection: ") + PQerrorMessage(c)));
    pg::ResultPtr r(raw);
    switch (PQresultStatus(raw)) {
      case PGRES_TUPLES_OK:
        out.push_back(ToRows(raw));
        break;
      case PGRES_PIPELINE_ABORTED:
        out.push_back(
            Status::Unavailable("join poll skipped: an earlier one in its pipeline failed"));
        break;
      default:
        out.push_back(ClassifyError(
            Status::Internal(std::string("join poll failed: ") + PQresultErrorMessage(raw)),
            timeout_ms_));
        break;
    }
    // Each query's results end with a NULL (already received: not busy).
    while (!PQisBusy(c)) {
      PGresult* extra = PQgetResult(c);
      if (!extra) break;
      PQclear(extra);
    }
  }
  // The sync point, then back to ordinary mode.
  pg::ResultPtr sync(PQgetResult(c));
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC || PQexitPipelineMode(c) != 1) {
    std::vector<Result<PollRows>> answers = std::move(out);
    conn_.reset();
    return answers;  // the answers read are valid; the connection is not reused
  }
  return out;
}

}  // namespace cacheportal::invalidator
