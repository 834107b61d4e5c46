#include "sample-app/html.h"

#include "common/session_cookie.h"

namespace cacheportal::store {

std::string Esc(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string EscUrl(std::string_view id) { return Esc(PercentEncode(id)); }

}  // namespace cacheportal::store
