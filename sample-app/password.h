// Password hashing for the signon table: PBKDF2-HMAC-SHA256.
//   stored = "pbkdf2_sha256$<iterations>$<base64url salt>$<base64url hash>"
// Thread-safe, no global state.
#pragma once

#include <string>
#include <string_view>

namespace cacheportal::store {

inline constexpr int kPasswordIterations = 10000;

// The loader passes a deterministic salt so that a load is reproducible.
std::string HashPassword(std::string_view password, std::string_view salt,
                         int iterations = kPasswordIterations);

// False for a wrong password and for a stored value that does not parse.
bool VerifyPassword(std::string_view password, std::string_view stored);

}  // namespace cacheportal::store
