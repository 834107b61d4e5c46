// A tiny SQL lexer for the few session-level commands a wire proxy must
// notice to keep its per-connection state right: BEGIN/START TRANSACTION
// (a statement later in the same string runs inside a transaction block),
// DEALLOCATE and DISCARD ALL (prepared statements disappear). It knows SQL
// strings ('…' with '', E'…', $tag$…$tag$), "identifiers", -- comments and
// nested /* */ comments, so a keyword inside any of them is not seen.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cacheportal::sniffer {

enum class SessionCommandKind {
  kBegin,          // BEGIN, START TRANSACTION
  kDeallocate,     // DEALLOCATE [PREPARE] name
  kDeallocateAll,  // DEALLOCATE [PREPARE] ALL
  kDiscardAll,     // DISCARD ALL
};

struct SessionCommand {
  SessionCommandKind kind;
  std::string name;  // kDeallocate: the statement name (unquoted ones folded to lower case)
};

// The session commands among the ';'-separated statements of `sql`, in order.
// Ordinary statements produce nothing, so the common case returns empty.
std::vector<SessionCommand> ScanSessionCommands(std::string_view sql);

}  // namespace cacheportal::sniffer
