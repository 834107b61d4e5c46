// The signed session cookie `sid`, shared by the store (which issues it) and
// the edge (which verifies it to key personalised fragments by user).
//
// Format (documented in README.md, "Session cookie"):
//   sid=v1.<payload>.<mac>
//   payload = base64url(no padding) of "u=<user id>&l=<locale>&e=<expiry unix seconds>"
//             (user id and locale percent-encoded)
//   mac     = base64url(no padding) of HMAC-SHA256(secret, "v1." + <payload>)
// A cookie whose MAC does not verify, whose expiry has passed, or that does
// not parse is *invalid*: callers treat the client as anonymous (store) or
// pass the request uncached (edge); it is never keyed as someone else's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cacheportal {

struct SessionData {
  std::string user_id;  // "" never occurs in a valid cookie
  std::string locale;   // "en_US" or "ja_JP" in the store
  int64_t expires_unix = 0;
};

class SessionCookieCodec {
 public:
  explicit SessionCookieCodec(std::string secret) : secret_(std::move(secret)) {}

  // The cookie value (without "sid=").
  std::string Encode(const SessionData& data) const;

  // nullopt when the value is malformed, tampered with or expired at now_unix.
  std::optional<SessionData> Decode(std::string_view value, int64_t now_unix) const;

 private:
  std::string secret_;
};

// Helpers shared by the store and the differentiator.
std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);
std::string HmacSha256(std::string_view key, std::string_view message);  // 32 raw bytes
// Constant-time comparison for MACs.
bool ConstantTimeEquals(std::string_view a, std::string_view b);
std::string PercentEncode(std::string_view text);  // RFC 3986 unreserved kept
std::string PercentDecode(std::string_view text);  // '+' is a space (form encoding)

}  // namespace cacheportal
