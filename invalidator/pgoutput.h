// pgoutput: the only file that knows byte layouts of the logical replication
// stream (CopyBoth framing and pgoutput protocol v1 messages). See
// ../shared/reference/pgoutput.md for the layouts; everything else in the
// invalidator works on the decoded structs below.
//
// Decoding never trusts the input: a message that is truncated, carries an
// unknown type byte, a negative length or trailing garbage yields
// Status::Corruption with the reason and byte offset. Decoded structs own
// their bytes (no views into the CopyData buffer, which libpq frees).
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace cacheportal::invalidator {

using Lsn = uint64_t;

// "16/B374D848" <-> 0x16B374D848.
std::string FormatLsn(Lsn lsn);
Result<Lsn> ParseLsn(std::string_view text);

// PostgreSQL timestamps are microseconds since 2000-01-01 UTC.
inline constexpr int64_t kPgEpochUnixMicros = 946684800LL * 1000000LL;
inline int64_t PgTimeToUnixMicros(int64_t pg) { return pg + kPgEpochUnixMicros; }
inline int64_t UnixMicrosToPgTime(int64_t unix_us) { return unix_us - kPgEpochUnixMicros; }

// ---- CopyBoth framing -------------------------------------------------------

struct XLogData {
  Lsn data_start = 0;  // 0/0 for Relation/Type messages: never a progress marker
  Lsn wal_end = 0;
  int64_t send_time = 0;     // PostgreSQL epoch µs
  std::string_view payload;  // one pgoutput message; views into the input
};

struct PrimaryKeepalive {
  Lsn wal_end = 0;
  int64_t send_time = 0;
  bool reply_requested = false;
};

struct CopyMessage {
  enum class Kind { kXLogData, kKeepalive };
  Kind kind = Kind::kKeepalive;
  XLogData xlog;
  PrimaryKeepalive keepalive;
};

// Decodes one CopyData payload sent by the server.
Status DecodeCopyData(std::string_view bytes, CopyMessage* out);

// The 34-byte standby status update ('r'). `client_time` in PostgreSQL epoch µs.
std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, int64_t client_time,
                                bool reply_requested);

// Test/bench helpers: the server-side framing.
std::string EncodeXLogData(Lsn data_start, Lsn wal_end, int64_t send_time,
                           std::string_view payload);
std::string EncodeKeepalive(Lsn wal_end, int64_t send_time, bool reply_requested);

// ---- pgoutput v1 messages ---------------------------------------------------

struct ColumnValue {
  enum class Kind : char {
    kNull = 'n',
    kUnchangedToast = 'u',  // external TOAST value the UPDATE did not change; not sent
    kText = 't',
    kBinary = 'b',
  };
  Kind kind = Kind::kNull;
  std::string data;  // kText / kBinary
  bool operator==(const ColumnValue&) const = default;
};

struct TupleData {
  std::vector<ColumnValue> columns;
  bool operator==(const TupleData&) const = default;
};

struct RelationColumn {
  bool key = false;  // part of the replica identity
  std::string name;
  uint32_t type_oid = 0;
  int32_t typmod = -1;
  bool operator==(const RelationColumn&) const = default;
};

struct BeginMessage {
  Lsn final_lsn = 0;
  int64_t commit_time = 0;
  uint32_t xid = 0;
  bool operator==(const BeginMessage&) const = default;
};

struct CommitMessage {
  uint8_t flags = 0;
  Lsn commit_lsn = 0;
  Lsn end_lsn = 0;  // what a consumer confirms as flush
  int64_t commit_time = 0;
  bool operator==(const CommitMessage&) const = default;
};

struct OriginMessage {
  Lsn origin_lsn = 0;
  std::string name;
  bool operator==(const OriginMessage&) const = default;
};

struct RelationMessage {
  uint32_t relid = 0;
  std::string nspname;  // "" = pg_catalog
  std::string relname;
  char replica_identity = 'd';  // d default, f full, i index, n nothing
  std::vector<RelationColumn> columns;
  bool operator==(const RelationMessage&) const = default;
};

struct TypeMessage {
  uint32_t type_oid = 0;
  std::string nspname;
  std::string name;
  bool operator==(const TypeMessage&) const = default;
};

struct InsertMessage {
  uint32_t relid = 0;
  TupleData new_tuple;
  bool operator==(const InsertMessage&) const = default;
};

struct UpdateMessage {
  uint32_t relid = 0;
  char old_kind = 0;  // 0 = no old tuple, 'K' = identity key only, 'O' = whole old row
  TupleData old_tuple;
  TupleData new_tuple;
  bool operator==(const UpdateMessage&) const = default;
};

struct DeleteMessage {
  uint32_t relid = 0;
  char old_kind = 'K';  // 'K' or 'O'
  TupleData old_tuple;
  bool operator==(const DeleteMessage&) const = default;
};

struct TruncateMessage {
  uint8_t flags = 0;  // 1 CASCADE, 2 RESTART IDENTITY
  std::vector<uint32_t> relids;
  bool operator==(const TruncateMessage&) const = default;
};

struct LogicalMessage {
  bool transactional = false;
  Lsn lsn = 0;
  std::string prefix;
  std::string content;
  bool operator==(const LogicalMessage&) const = default;
};

using PgOutputMessage =
    std::variant<BeginMessage, CommitMessage, OriginMessage, RelationMessage, TypeMessage,
                 InsertMessage, UpdateMessage, DeleteMessage, TruncateMessage, LogicalMessage>;

// Decodes one pgoutput v1 message (the payload of an XLogData).
Status DecodePgOutput(std::string_view bytes, PgOutputMessage* out);

// Encodes a message exactly as the server would (tests, benchmarks).
std::string EncodePgOutput(const PgOutputMessage& message);

}  // namespace cacheportal::invalidator
