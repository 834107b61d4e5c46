// PostgreSQL wire protocol v3: framing and the few message bodies the sniffer
// reads. This is the only file that knows byte offsets inside messages (like
// PgBouncer's proto.c); sessions see whole messages or decoded structs.
// See ../shared/reference/pgwire.md.
//
// Framing reads type + length, nothing more. Bodies are assembled only for
// the message types a caller asked for; every other message (DataRow,
// CopyData, …) is skipped byte by byte, so result sets are never buffered.
// Input may arrive split at any byte.
//
// Thread-safety: a FrameReader belongs to one direction of one connection.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cacheportal::sniffer {

// Codes of the untyped pre-startup packets (int32 after the length).
inline constexpr uint32_t kCancelRequestCode = 80877102;  // 0x04D2162E
inline constexpr uint32_t kSslRequestCode = 80877103;     // 0x04D2162F
inline constexpr uint32_t kGssEncRequestCode = 80877104;  // 0x04D21630
inline constexpr uint32_t kProtocolV3 = 196608;           // 0x00030000
// PostgreSQL's own cap on a startup packet (MAX_STARTUP_PACKET_LENGTH).
inline constexpr uint32_t kMaxStartupPacketBytes = 10000;

enum class StartupKind { kSslRequest, kGssEncRequest, kCancelRequest, kStartup, kUnknown };

// One complete message handed to a MessageHandler. `body` is the payload
// after the length (for an untyped packet it starts with the int32 code);
// `raw` is the whole message as it travels (type byte, length, payload).
// Both views are valid only during the callback.
struct Message {
  char type = 0;  // '\0' for an untyped startup-phase packet
  std::string_view body;
  std::string_view raw;
};

class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  virtual void OnMessage(const Message& message) = 0;
};

class FrameReader {
 public:
  // `max_message_bytes`: the largest length field believed (it counts
  // itself and the payload); a larger or impossible one is a protocol error.
  explicit FrameReader(uint64_t max_message_bytes);

  // Ask for complete bodies of messages of this type (others are skipped).
  void Want(char type) { wanted_.set(static_cast<unsigned char>(type)); }
  // The next packet is an untyped startup-phase one (client side, before the
  // StartupMessage and again after an SSLRequest/GSSENCRequest was answered).
  void ExpectUntyped() { untyped_ = true; }

  // Consumes bytes, calling `handler` for every complete wanted message and
  // for every untyped packet. Returns how many bytes were consumed: all of
  // them, except that it stops right after an untyped packet so the caller
  // can act (answer 'N', connect upstream) before relaying what follows.
  // A nonsense length is an InvalidArgument carrying the reason; the reader
  // is then unusable.
  Result<size_t> Feed(std::string_view data, MessageHandler& handler);

  // True between messages (no partial header or body pending).
  bool AtBoundary() const { return header_len_ == 0 && remaining_ == 0; }

 private:
  uint64_t max_message_bytes_;
  std::bitset<256> wanted_;
  bool untyped_ = false;
  bool failed_ = false;
  // Header being read: 5 bytes typed (type + int32), 8 untyped (int32 × 2).
  char header_[8] = {};
  size_t header_len_ = 0;
  // Current message: payload bytes still to come and whether we keep them.
  char type_ = 0;
  bool current_untyped_ = false;
  uint64_t remaining_ = 0;
  bool collecting_ = false;
  std::string partial_;  // raw bytes of a wanted message split across Feeds
};

// ---- Decoding (all return nullopt on a malformed body) ---------------------

StartupKind ClassifyStartup(const Message& untyped);

struct CancelKey {
  int32_t pid = 0;
  std::string key;  // 4 bytes in protocol 3.0, up to 256 in 3.2
};
// CancelRequest (untyped) body.
std::optional<CancelKey> ParseCancelRequest(const Message& untyped);
// BackendKeyData 'K' body.
std::optional<CancelKey> ParseBackendKeyData(std::string_view body);
// StartupMessage parameters (user, database, …) in order.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseStartupParameters(
    const Message& untyped);

// 'Q' Query: the SQL text.
std::optional<std::string_view> ParseQuery(std::string_view body);

struct ParseMsg {
  std::string_view statement;  // "" = unnamed
  std::string_view sql;
  std::vector<uint32_t> param_types;
};
std::optional<ParseMsg> ParseParse(std::string_view body);

struct BindMsg {
  std::string_view portal;
  std::string_view statement;
  std::vector<std::optional<std::string_view>> params;  // nullopt = NULL
  std::vector<bool> param_is_binary;
};
std::optional<BindMsg> ParseBind(std::string_view body);
// Only the portal and statement names of a Bind (cheap: no parameters).
std::optional<std::pair<std::string_view, std::string_view>> ParseBindNames(std::string_view body);

// 'E' Execute: the portal name.
std::optional<std::string_view> ParseExecute(std::string_view body);

struct CloseMsg {
  char kind = 0;  // 'S' statement, 'P' portal
  std::string_view name;
};
std::optional<CloseMsg> ParseClose(std::string_view body);

// 'Z' ReadyForQuery: 'I', 'T' or 'E'.
std::optional<char> ParseReadyForQuery(std::string_view body);

// ---- Encoding ---------------------------------------------------------------

// A FATAL ErrorResponse, sent to a client before the sniffer closes it.
std::string BuildErrorResponse(std::string_view sqlstate, std::string_view message);
// A CancelRequest packet for the given backend.
std::string BuildCancelRequest(const CancelKey& key);
// 'X' Terminate.
std::string_view TerminateMessage();

}  // namespace cacheportal::sniffer
