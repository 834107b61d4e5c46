#include "common/session_cookie.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <vector>

namespace cacheportal {
namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back(kB64[v & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = B64Value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero: otherwise two encodings decode alike and a
  // MAC could be altered without failing verification.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string PercentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : in) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[(uint8_t(c) >> 4) & 0xf]);
      out.push_back(kHex[uint8_t(c) & 0xf]);
    }
  }
  return out;
}

std::string PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && HexDigit(in[i + 1]) >= 0 && HexDigit(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigit(in[i + 1]) * 16 + HexDigit(in[i + 2])));
      i += 2;
    } else if (in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::string SessionCookieCodec::Encode(const SessionData& d) const {
  std::string payload = "u=" + PercentEncode(d.user_id) + "&l=" + PercentEncode(d.locale) +
                        "&e=" + std::to_string(d.expires_unix);
  std::string signed_part = "v1." + Base64UrlEncode(payload);
  return signed_part + "." + Base64UrlEncode(HmacSha256(secret_, signed_part));
}

std::optional<SessionData> SessionCookieCodec::Decode(std::string_view value,
                                                      int64_t now_unix) const {
  if (value.size() > 1024 || value.substr(0, 3) != "v1.") return std::nullopt;
  size_t dot = value.rfind('.');
  if (dot <= 2) return std::nullopt;
  std::string_view signed_part = value.substr(0, dot);
  auto mac = Base64UrlDecode(value.substr(dot + 1));
  if (!mac || !ConstantTimeEquals(*mac, HmacSha256(secret_, signed_part))) return std::nullopt;
  auto payload = Base64UrlDecode(signed_part.substr(3));
  if (!payload) return std::nullopt;
  SessionData d;
  bool have_u = false, have_e = false;
  std::string_view rest = *payload;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view item = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (item.size() < 2 || item[1] != '=') return std::nullopt;
    std::string_view v = item.substr(2);
    switch (item[0]) {
      case 'u':
        d.user_id = PercentDecode(v);
        have_u = true;
        break;
      case 'l':
        d.locale = PercentDecode(v);
        break;
      case 'e': {
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d.expires_unix);
        if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
        have_e = true;
        break;
      }
      default:
        break;  // unknown attributes are ignored for forward compatibility
    }
  }
  if (!have_u || !have_e || d.user_id.empty() || d.expires_unix <= now_unix) return std::nullopt;
  return d;
}

}  // namespace cacheportal
