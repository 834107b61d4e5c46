// The differentiator turns an HTTP request into a cache decision: a verdict
// from a closed set and, for cacheable requests, an explicit CacheKey record.
// It is policy compiled from YAML (config/rules.yaml), like Varnish's VCL; it
// does no I/O and is a pure function of (rules, request, now).
//
// Thread-safety: a RuleSet is immutable once loaded; share it through
// std::shared_ptr<const RuleSet> and swap the pointer on reload.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cacheportal::differentiator {

// The request as the edge sees it. Views must outlive the Decide() call.
struct RequestView {
  std::string_view method;  // "GET", "HEAD", "POST", ...
  std::string_view target;  // origin-form: path[?query], as received
  // Header fields in arrival order; names compared case-insensitively.
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string_view body;  // may be empty; only read for POST key fields
};

enum class Verdict {
  kCache,  // cacheable under `key`
  kPass,   // forward to the origin, do not look up or store (rule says pass,
           // session cookie invalid, body over the limit, unparsable body...)
};

const char* VerdictName(Verdict v);

// An explicit key: only what the rule names goes in, each part with its
// name. ToString() is canonical (sorted by name within each part) and stable
// across restarts and versions of this file; a hit compares full strings.
struct CacheKey {
  std::string method;  // GET and HEAD share "GET"
  std::string path;    // normalised: noise stripped, percent-decoding canonical
  std::vector<std::pair<std::string, std::string>> query;    // kept parameters
  std::vector<std::pair<std::string, std::string>> cookies;  // kept cookies
  std::vector<std::pair<std::string, std::string>> session;  // verified session attributes
  std::vector<std::pair<std::string, std::string>> headers;  // kept headers (lowercase names)
  std::vector<std::pair<std::string, std::string>> body;     // kept POST fields
  // Components the rule keys on that the request lacks, as "<part>.<name>"
  // (part: query, cookie, session, header, body), in the rule's canonical
  // order. Absent is distinct from empty and from every value, so an
  // anonymous request (no `sid`) never shares a key with a signed-in user and
  // a request without `lang` never shares one with `lang=`.
  std::vector<std::string> absent;
  // Format (docs/rules.md, "Cache keys"):
  //   GET /path?q1=v1&q2=v2 cookies[lang=en] session[user=alice]
  //       headers[accept-language=ja] body[q=dog] absent[cookie.lang]
  // sections only when non-empty; names and values percent-escaped so no
  // separator can be forged. "GET /path" when the rule keeps nothing.
  std::string ToString() const;
  uint64_t Hash() const;  // stable 64-bit hash of ToString()
  // Hash() is FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
  // 0x100000001b3) over the bytes of ToString(): no seed, no platform
  // dependence, so it is stable across restarts and machines.
};

// FNV-1a 64 of arbitrary bytes (the function behind CacheKey::Hash).
uint64_t Fnv1a64(std::string_view bytes);

// What a cache rule lets the edge store although HTTP caching (RFC 9111)
// says not to (rules key `store_despite`). Default: nothing. The edge never
// stores a Set-Cookie header: with set_cookie it stores the response without
// it (the requester still gets its own cookie).
struct StoreDespite {
  bool set_cookie = false;  // Set-Cookie present
  bool private_ = false;    // Cache-Control: private
  bool no_store = false;    // Cache-Control: no-store
  bool status = false;      // any final status below 500 but 206 and 304
  bool any() const { return set_cookie || private_ || no_store || status; }
};

struct Decision {
  Verdict verdict = Verdict::kPass;
  CacheKey key;                 // meaningful for kCache
  std::string rule;             // name (or index) of the rule that matched
  std::string reason;           // why kPass, for logs and X-Cache-Reason
  std::chrono::seconds ttl{0};  // TTL backstop; 0 = none
  StoreDespite store_despite;   // meaningful for kCache
  // The URL to forward to the origin: the target with noise stripped
  // (e.g. ";jsessionid=..." removed); equal to target when nothing was stripped.
  std::string origin_target;
};

class RuleSet {
 public:
  virtual ~RuleSet() = default;
  // Parses and checks a rules file. On failure the Status lists every
  // problem as file:line:column; nothing is partially loaded.
  static Result<std::shared_ptr<const RuleSet>> LoadFile(const std::string& path,
                                                         std::string session_secret);
  static Result<std::shared_ptr<const RuleSet>> LoadText(std::string_view yaml,
                                                         const std::string& name,
                                                         std::string session_secret);
  virtual Decision Decide(const RequestView& request, int64_t now_unix) const = 0;

  // Number of rules (for `rules check` and logs). Not pure, so test fakes
  // of RuleSet need not implement it.
  virtual size_t RuleCount() const { return 0; }
  // The largest max_body_bytes of any rule that keys on POST body fields
  // (0 = no rule reads bodies): the edge need not buffer more than this to
  // decide; a bigger body passes anyway.
  virtual uint64_t MaxBodyBytes() const { return 0; }
};

// Notes on Decide():
//  - Never throws; every problem with the request is a kPass with a reason.
//  - origin_target also carries the path normalisation the key uses
//    (duplicate slashes collapsed, dot segments resolved, percent-encoding
//    canonical), so the origin renders exactly the resource the key names.
//  - No rule matched: kPass, reason "no rule matched", defaults.strip applied.

}  // namespace cacheportal::differentiator
