// RAII handles for libpq (PGconn, PGresult) and a few helpers used by every
// part that talks to PostgreSQL directly (store, invalidator, tests).
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cacheportal::pg {

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// Connects; Unavailable (with libpq's message) when the server cannot be reached.
Result<ConnPtr> Connect(const std::string& conninfo);

// Runs a statement without parameters; an error result becomes a Status
// carrying the SQLSTATE and message. Accepts PGRES_COMMAND_OK/TUPLES_OK.
Result<ResultPtr> Exec(PGconn* conn, std::string_view sql);

// Runs with text parameters ($1..$n); nullptr entries are NULL.
Result<ResultPtr> ExecParams(PGconn* conn, std::string_view sql,
                             const std::vector<const char*>& params);

// SQLSTATE of a failed result ("" when none).
std::string SqlState(const PGresult* r);

// Quotes an identifier ("my table") / a literal ('it''s') for the given connection.
std::string QuoteIdent(PGconn* conn, std::string_view ident);
std::string QuoteLiteral(PGconn* conn, std::string_view literal);

}  // namespace cacheportal::pg
