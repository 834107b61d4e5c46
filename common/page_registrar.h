// PageRegistrar: the edge's hand-off to sqlmap after an origin response that
// the edge would like to store.
//
// Sequence for one fill (see DESIGN.md "No stale fill"):
//   1. The edge mints request id R and forwards the request with traceparent R.
//   2. The sniffer reports R's statements to a StatementSink while they run;
//      the invalidator checks every committed change against those in-flight
//      statements and taints R when one matches.
//   3. On a response the edge calls Complete(R, key, children). The registrar
//      writes key ⇄ query instances into the map FIRST, then retires R from
//      the in-flight set, reading its taint atomically. From the map write on,
//      the invalidator finds the key through the map and ejects it through the
//      Ejector, which also taints the edge's pending fill of that key.
//   4. The edge stores the response only for kStore and only if its pending
//      fill was not ejected meanwhile.
// Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cacheportal {

enum class RegisterVerdict {
  kStore,           // map updated; the page may be stored
  kTainted,         // a committed change affected a statement while in flight
  kWrote,           // the request wrote to a monitored table (or could not be proven read-only)
  kUnknownRequest,  // no statement was seen for R (e.g. a page that runs no SQL) and
                    // the registrar cannot vouch for it
  kUnanalysable,    // a statement could not be mapped even coarsely
  kMapError,        // the durable map refused the write
};

const char* RegisterVerdictName(RegisterVerdict v);

struct PageRegistration {
  std::string request_id;             // 32-hex trace id the edge sent
  std::string cache_key;              // differentiator::CacheKey::ToString()
  std::vector<std::string> children;  // cache keys of ESI fragments this page includes
  std::string url;                    // for coverage reports ("/product/FI-SW-01")
};

class PageRegistrar {
 public:
  virtual ~PageRegistrar() = default;
  virtual RegisterVerdict Complete(const PageRegistration& page) = 0;
  // The edge gave up on R (error, uncacheable response): forget its statements.
  virtual void Abandon(std::string_view request_id) = 0;
};

}  // namespace cacheportal
