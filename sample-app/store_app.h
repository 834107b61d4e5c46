// The store's answer layer: maps one HTTP request to one response, running
// its SQL through a PgPool. No sockets here (see store_server.h), so pages
// can be rendered and tested directly.
//
// Cacheability contract (what CachePortal relies on):
//  * Catalog pages and fragments are deterministic bytes for a given database
//    state, path/query and locale: no clocks, counters or random ids.
//  * Only /frag/mylist, /account and /cart (and the POSTs) depend on the
//    signed-in user; catalog pages show the user only through /frag/mylist.
//  * The locale comes from the `lang` cookie (en → en_US, ja → ja_JP), else
//    from the session, else en_US.
//  * With `Surrogate-Capability: …ESI/1.0…` pages carry
//    `<esi:include src="/frag/…"/>` and `Surrogate-Control: content="ESI/1.0"`;
//    otherwise the store puts each fragment's exact bytes there itself.
//  * Every statement ends with a sqlcommenter comment carrying the request's
//    traceparent (same trace id as the incoming header, new parent id), and
//    every request writes one access_log row with that trace id.
//
// Thread-safe: Handle() may run on many threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "sample-app/http_types.h"
#include "sample-app/pg_pool.h"

namespace cacheportal::store {

struct StoreAppOptions {
  // HMAC secret of the `sid` cookie (common.session_secret).
  std::string session_secret;
  // Lifetime of a new session cookie. Default: 86400.
  int64_t session_ttl_seconds = 86400;
  // Called with the exact text of every statement before it is sent (tests
  // check the traceparent comments with it). Must be thread-safe. Default: none.
  std::function<void(std::string_view sql)> on_statement;
};

class StoreApp {
 public:
  // `pool` must outlive the app.
  StoreApp(StoreAppOptions options, PgPool* pool);

  // Never throws; database failures become 503 pages (logged).
  HttpResponse Handle(const HttpRequest& request);

  // A request the I/O layer refused before it was complete (413, 400, 431):
  // renders the error page and still writes the access_log row.
  HttpResponse Reject(const HttpRequest& partial, int status);

 private:
  StoreAppOptions options_;
  PgPool* pool_;
};

}  // namespace cacheportal::store
