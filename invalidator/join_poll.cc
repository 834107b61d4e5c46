#include "invalidator/join_poll.h"

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

}  // namespace

Result<PollQuery> BuildJoinPoll(const sqlmap::QueryInstance& instance, int changed,
                                const Relation& rel, const std::vector<const Row*>& rows) {
  if (!instance.tmpl) return Status::NotSupported("instance without template");
  const sqlmap::QueryTemplate& t = *instance.tmpl;
  if (t.flags & sqlmap::kFlagOuterJoin)
    return Status::NotSupported("outer join: a row can appear without a partner");
  if (changed < 0 || static_cast<size_t>(changed) >= t.tables.size())
    return Status::NotSupported("changed table index out of range");
  if (t.tables.size() < 2) return Status::NotSupported("not a join");
  if (rows.empty()) return Status::NotSupported("no row to poll for");

  PollQuery q;
  Renderer r(instance, &q);
  auto alias = [](size_t i) { return "t" + std::to_string(i); };
  std::string from, where;
  for (size_t i = 0; i < t.tables.size(); ++i) {
    if (static_cast<int>(i) == changed) continue;
    if (!from.empty()) from += ", ";
    from += QuoteTable(t.tables[i].table) + " " + alias(i);
    where += " AND " + r.Render(t.tables[i].predicate, alias(i), true);
  }
  // Joins among the other tables stay joins; joins with the changed table take
  // the row's values, once per row image (old, new).
  std::vector<const sqlmap::JoinEquality*> to_row;
  for (const auto& j : t.joins) {
    bool l = j.left_table == changed, rr = j.right_table == changed;
    if (j.left_table < 0 || j.right_table < 0 ||
        static_cast<size_t>(j.left_table) >= t.tables.size() ||
        static_cast<size_t>(j.right_table) >= t.tables.size())
      return Status::NotSupported("join refers to an unknown table");
    if (l && rr) continue;  // a condition within the changed row: already in its predicate
    if (l || rr) {
      to_row.push_back(&j);
      continue;
    }
    where += " AND (" + alias(j.left_table) + "." + QuoteIdent(j.left_column) + " = " +
             alias(j.right_table) + "." + QuoteIdent(j.right_column) + ")";
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
        conj += "(" + alias(other) + "." + QuoteIdent(other_col) + " = " + r.Param(v) + ")";
      }
      if (!any.empty()) any += " OR ";
      any += "(" + conj + ")";
    }
    where += " AND (" + any + ")";
  }
  q.sql = "SELECT EXISTS (SELECT 1 FROM " + from + " WHERE TRUE" + where +
          "), pg_current_wal_insert_lsn()::text";
  return q;
}

Result<PollAnswer> PgJoinPoller::Poll(const PollQuery& query) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
      auto c = pg::Connect(conninfo_);
      if (!c.ok()) return c.status();
      conn_ = std::move(c).value();
      auto s = pg::Exec(conn_.get(), "SET statement_timeout = " + std::to_string(timeout_ms_));
      if (!s.ok()) return s.status();
    }
    std::vector<const char*> params;
    for (const auto& p : query.params) params.push_back(p ? p->c_str() : nullptr);
    auto r = pg::ExecParams(conn_.get(), query.sql, params);
    if (!r.ok()) {
      // Tell a statement_timeout (57014, "canceling statement due to statement
      // timeout") apart so that it is counted: the poll waited on a lock or a
      // slow plan; the server is fine.
      const std::string& msg = r.status().message();
      if (msg.find("statement timeout") != std::string::npos)
        return Status::TimedOut("join poll exceeded statement_timeout (" +
                                std::to_string(timeout_ms_) + " ms): " + msg);
    }
    if (!r.ok()) {
      if (r.status().IsUnavailable() && attempt == 0) {
        conn_.reset();
        continue;
      }
      return r.status();
    }
    PollAnswer a;
    a.exists = PQntuples(r->get()) != 1 || std::string_view(PQgetvalue(r->get(), 0, 0)) != "f";
    auto lsn = ParseLsn(PQgetvalue(r->get(), 0, 1));
    if (!lsn.ok()) return lsn.status();
    a.wal_lsn = *lsn;
    return a;
  }
  return Status::Unavailable("poll connection lost");
}

}  // namespace cacheportal::invalidator
