#include "sample-app/password.h"

#include <openssl/evp.h>

#include <charconv>
#include <vector>

#include "common/session_cookie.h"

namespace cacheportal::store {
namespace {

std::string Derive(std::string_view password, std::string_view salt, int iterations) {
  unsigned char out[32];
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(), sizeof out,
                        out) != 1)
    return {};
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

}  // namespace

std::string HashPassword(std::string_view password, std::string_view salt, int iterations) {
  return "pbkdf2_sha256$" + std::to_string(iterations) + "$" + Base64UrlEncode(salt) + "$" +
         Base64UrlEncode(Derive(password, salt, iterations));
}

bool VerifyPassword(std::string_view password, std::string_view stored) {
  auto parts = Split(stored, '$');
  if (parts.size() != 4 || parts[0] != "pbkdf2_sha256") return false;
  int iterations = 0;
  auto [p, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), iterations);
  // The upper bound keeps a corrupted row from stalling a worker thread.
  if (ec != std::errc() || p != parts[1].data() + parts[1].size() || iterations < 1 ||
      iterations > 1000000)
    return false;
  auto salt = Base64UrlDecode(parts[2]);
  auto expected = Base64UrlDecode(parts[3]);
  if (!salt || !expected || expected->size() != 32) return false;
  std::string actual = Derive(password, *salt, iterations);
  return !actual.empty() && ConstantTimeEquals(actual, *expected);
}

}  // namespace cacheportal::store
