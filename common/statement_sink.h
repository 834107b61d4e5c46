// StatementSink: the sniffer's only output. For every statement that carries
// a request id, the sniffer calls OnStatement() *before* forwarding the
// statement upstream, so no commit can slip between the query's snapshot and
// its registration (DESIGN.md, step 3).
//
// Thread-safety: called concurrently from every sniffer connection.
// Must not block on I/O; it may parse (libpg_query) and take short locks.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cacheportal {

struct CapturedStatement {
  // Full SQL text as the client sent it (comment included). For Bind/Execute
  // this is the text of the prepared statement the portal was bound from.
  std::string sql;
  // Bound parameter values $1..$n; nullopt = SQL NULL. Text-format values are
  // as sent; binary-format values are kept raw and flagged.
  std::vector<std::optional<std::string>> params;
  std::vector<bool> param_is_binary;
  // The statement ran inside an explicit transaction block (ReadyForQuery 'T'
  // before it, or BEGIN earlier in the same simple-query string).
  bool in_transaction_block = false;
  // The sniffer's connection id, for logs.
  uint64_t connection_id = 0;
};

class StatementSink {
 public:
  virtual ~StatementSink() = default;
  virtual void OnStatement(std::string_view request_id, CapturedStatement statement) = 0;
};

}  // namespace cacheportal
