#include "common/pg.h"

namespace cacheportal::pg {
namespace {
Status FromResult(PGconn* conn, const PGresult* r) {
  std::string state = SqlState(r);
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (!state.empty()) msg = "[" + state + "] " + msg;
  // Class 08 (connection exception) and 57P0x (shutdown) mean "try later".
  if (PQstatus(conn) != CONNECTION_OK || state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0)
    return Status::Unavailable(msg);
  return Status::InvalidArgument(msg);
}

Result<ResultPtr> Check(PGconn* conn, PGresult* raw) {
  ResultPtr r(raw);
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN ||
      st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
    return r;
  return FromResult(conn, r.get());
}
}  // namespace

Result<ConnPtr> Connect(const std::string& conninfo) {
  ConnPtr c(PQconnectdb(conninfo.c_str()));
  if (!c) return Status::Unavailable("libpq could not allocate a connection");
  if (PQstatus(c.get()) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c.get());
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Status::Unavailable("cannot connect to PostgreSQL: " + msg);
  }
  return c;
}

Result<ResultPtr> Exec(PGconn* conn, std::string_view sql) {
  std::string s(sql);
  return Check(conn, PQexec(conn, s.c_str()));
}

Result<ResultPtr> ExecParams(PGconn* conn, std::string_view sql,
                             const std::vector<const char*>& params) {
  std::string s(sql);
  return Check(conn, PQexecParams(conn, s.c_str(), static_cast<int>(params.size()), nullptr,
                                  params.data(), nullptr, nullptr, 0));
}

std::string SqlState(const PGresult* r) {
  if (!r) return "";
  const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return s ? s : "";
}

std::string QuoteIdent(PGconn* conn, std::string_view ident) {
  char* q = PQescapeIdentifier(conn, ident.data(), ident.size());
  if (!q) return "\"\"";
  std::string out(q);
  PQfreemem(q);
  return out;
}

std::string QuoteLiteral(PGconn* conn, std::string_view literal) {
  char* q = PQescapeLiteral(conn, literal.data(), literal.size());
  if (!q) return "''";
  std::string out(q);
  PQfreemem(q);
  return out;
}

}  // namespace cacheportal::pg
