// The PetStore workload of the CachePortal paper as pure parts: a Zipf
// sampler, the catalogue the store was loaded with, the action mix of
// anonymous browsers and signed-in buyers, and the HTTP request each action
// sends. No I/O here, so everything is unit-tested.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "bench/paper/http_client.h"
#include "common/status.h"

namespace cacheportal::bench {

// Ranks 0..n-1 with P(k) ∝ 1/(k+1)^s. Sampling is a binary search in the
// precomputed CDF: O(log n), thread-safe once built (const).
class ZipfSampler {
 public:
  ZipfSampler(size_t n, double s);
  size_t Sample(std::mt19937_64& rng) const;
  // Probability of rank k (for tests and the report).
  double Probability(size_t k) const;
  size_t size() const { return cdf_.size(); }

 private:
  std::vector<double> cdf_;
};

struct Catalog {
  std::vector<std::string> categories;
  struct Product {
    std::string id;
    std::string catid;
  };
  std::vector<Product> products;  // in popularity order (rank 0 = most popular)
  struct Item {
    std::string id;
    std::string productid;
  };
  std::vector<Item> items;  // in popularity order
  // Words of product names, for search queries (popularity order).
  std::vector<std::string> search_terms;

  // Shuffles products and items with `seed` so that popularity is not tied to
  // the load order (ids of copies are contiguous).
  void ShuffleForPopularity(uint64_t seed);
  const Product* FindProduct(std::string_view id) const;
  const Item* FindItem(std::string_view id) const;
};

enum class Action : uint8_t {
  kHome,
  kCategory,
  kProduct,
  kItem,
  kSearch,
  kLang,      // switch language (/lang/en|ja)
  kSignin,    // POST /signin
  kCartAdd,   // POST /cart/add
  kCartView,  // GET /cart
  kCheckout,  // POST /checkout
};
inline constexpr size_t kActionCount = 10;
std::string_view ActionName(Action a);
// True for the actions the edge may answer from its cache (catalogue reads).
bool IsCatalogAction(Action a);

// Weights per action (any non-negative scale). Browsers never use the
// personal actions (sign-in, cart, checkout).
struct Mix {
  std::array<double, kActionCount> weights{};
  // The default browse mix (anonymous visitors) and buy mix (signed in).
  static Mix Browse();
  static Mix Buy();
  // "home=10,category=20,..." overrides on top of *this; unknown names fail.
  Status Apply(std::string_view spec);
  Action Sample(std::mt19937_64& rng) const;
  double Fraction(Action a) const;
};

// One simulated user's state across requests.
struct UserState {
  bool buyer = false;
  bool ja = false;       // lang=ja cookie
  std::string username;  // buyers sign in as user1..user10
  std::string sid;       // session cookie value once signed in
  int cart_lines = 0;
};

struct WorkloadOptions {
  double zipf_s = 1.0;
  Mix browse = Mix::Browse();
  Mix buy = Mix::Buy();
};

class Workload {
 public:
  Workload(const Catalog* catalog, WorkloadOptions options);

  // Picks the next action for `user`, turning personal actions into the
  // steps they need first (sign in before the cart, add before checkout).
  Action Next(const UserState& user, std::mt19937_64& rng) const;
  // The request for `a`, with the user's cookies.
  Request Build(Action a, const UserState& user, std::mt19937_64& rng) const;
  // Updates the user from the response (cookies, cart).
  static void Observe(Action a, const Response& resp, UserState* user);

  const Catalog& catalog() const { return *catalog_; }
  const ZipfSampler& product_zipf() const { return products_; }
  const ZipfSampler& item_zipf() const { return items_; }

 private:
  const Catalog* catalog_;
  WorkloadOptions opt_;
  ZipfSampler products_;
  ZipfSampler items_;
  ZipfSampler terms_;
};

// Percent-encoding for form bodies (application/x-www-form-urlencoded).
std::string FormEncode(std::string_view s);

}  // namespace cacheportal::bench
