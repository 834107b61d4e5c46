// The store's schema and its deterministic data (`cacheportal-store load`).
//
// The schema follows the Java PetStore's data model: category/product/item,
// each with a *_details table keyed by (id, locale) for en_US and ja_JP,
// inventory, signon/account/profile, orders/orderstatus/lineitem, a cart
// table (one row per user and item, so carts survive restarts) and
// access_log, the tracking table every request writes. Every table has a
// primary key, so REPLICA IDENTITY FULL (set later by the invalidator) and
// logical replication work on all of them.
//
// Data is a pure function of the scale: scale 1 is the classic 5 categories,
// 16 products and 28 items; scale N has the same 5 categories, 16*N products
// and 28*N items (copies of the classic ones with numbered ids and names).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace cacheportal::store {

inline constexpr int kMaxScale = 100000;

struct LoadStats {
  int64_t categories = 0;
  int64_t products = 0;
  int64_t items = 0;
  int64_t users = 0;
};

// The SQL that drops and creates every store table (no data).
const std::string& SchemaSql();

// Drops the store's tables, creates the schema and loads the data for
// `scale` (1..kMaxScale) with COPY, all in one transaction: on failure the
// database is left as it was. Unavailable when the database cannot be reached,
// InvalidArgument for a bad scale or a refused statement.
Result<LoadStats> LoadStore(const std::string& conninfo, int scale);

// Seeded sign-ins: j2ee/j2ee (en_US), ACID/ACID (ja_JP) and user1..user10
// with password "password" (odd ones en_US, even ones ja_JP).

}  // namespace cacheportal::store
