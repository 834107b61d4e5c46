#include "bench/paper/workload.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace cacheportal::bench {
namespace {

constexpr std::string_view kActionNames[kActionCount] = {
    "home", "category", "product",  "item",      "search",
    "lang", "signin",   "cart_add", "cart_view", "checkout"};

}  // namespace

ZipfSampler::ZipfSampler(size_t n, double s) {
  cdf_.resize(n);
  double sum = 0;
  for (size_t k = 0; k < n; ++k) {
    sum += 1.0 / std::pow(static_cast<double>(k + 1), s);
    cdf_[k] = sum;
  }
  for (double& c : cdf_) c /= sum;
  if (n) cdf_.back() = 1.0;
}

size_t ZipfSampler::Sample(std::mt19937_64& rng) const {
  if (cdf_.empty()) return 0;
  double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  if (it == cdf_.end()) --it;
  return static_cast<size_t>(it - cdf_.begin());
}

double ZipfSampler::Probability(size_t k) const {
  if (k >= cdf_.size()) return 0;
  return k == 0 ? cdf_[0] : cdf_[k] - cdf_[k - 1];
}

void Catalog::ShuffleForPopularity(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::shuffle(products.begin(), products.end(), rng);
  std::shuffle(items.begin(), items.end(), rng);
}

const Catalog::Product* Catalog::FindProduct(std::string_view id) const {
  for (const auto& p : products)
    if (p.id == id) return &p;
  return nullptr;
}

const Catalog::Item* Catalog::FindItem(std::string_view id) const {
  for (const auto& i : items)
    if (i.id == id) return &i;
  return nullptr;
}

std::string_view ActionName(Action a) { return kActionNames[static_cast<size_t>(a)]; }

bool IsCatalogAction(Action a) {
  switch (a) {
    case Action::kHome:
    case Action::kCategory:
    case Action::kProduct:
    case Action::kItem:
    case Action::kSearch:
      return true;
    default:
      return false;
  }
}

Mix Mix::Browse() {
  // Anonymous visitors: the paper's catalogue navigation (category →
  // product → item information) plus search and the language links.
  Mix m;
  m.weights = {8, 17, 30, 36, 7, 2, 0, 0, 0, 0};
  return m;
}

Mix Mix::Buy() {
  // Signed-in shoppers browse the same way and also fill and check out a cart.
  Mix m;
  m.weights = {6, 12, 22, 30, 5, 0, 1, 12, 7, 5};
  return m;
}

Status Mix::Apply(std::string_view spec) {
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view part = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) return Status::InvalidArgument("mix entry needs name=weight");
    std::string_view name = part.substr(0, eq);
    std::string value(part.substr(eq + 1));
    size_t idx = kActionCount;
    for (size_t i = 0; i < kActionCount; ++i)
      if (kActionNames[i] == name) idx = i;
    if (idx == kActionCount)
      return Status::InvalidArgument("unknown action in mix: " + std::string(name));
    char* end = nullptr;
    double w = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(w >= 0) || !std::isfinite(w))
      return Status::InvalidArgument("bad weight for " + std::string(name) + ": " + value);
    weights[idx] = w;
  }
  double total = 0;
  for (double w : weights) total += w;
  if (total <= 0) return Status::InvalidArgument("mix weights sum to zero");
  return Status::OK();
}

Action Mix::Sample(std::mt19937_64& rng) const {
  double total = 0;
  for (double w : weights) total += w;
  double u = std::uniform_real_distribution<double>(0.0, total)(rng);
  for (size_t i = 0; i < kActionCount; ++i) {
    if (u < weights[i]) return static_cast<Action>(i);
    u -= weights[i];
  }
  for (size_t i = kActionCount; i-- > 0;)
    if (weights[i] > 0) return static_cast<Action>(i);
  return Action::kHome;
}

double Mix::Fraction(Action a) const {
  double total = 0;
  for (double w : weights) total += w;
  return total > 0 ? weights[static_cast<size_t>(a)] / total : 0;
}

std::string FormEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Workload::Workload(const Catalog* catalog, WorkloadOptions options)
    : catalog_(catalog),
      opt_(std::move(options)),
      products_(catalog->products.size(), opt_.zipf_s),
      items_(catalog->items.size(), opt_.zipf_s),
      terms_(catalog->search_terms.size(), opt_.zipf_s) {}

Action Workload::Next(const UserState& user, std::mt19937_64& rng) const {
  Action a = (user.buyer ? opt_.buy : opt_.browse).Sample(rng);
  if (!user.buyer) {
    // Browsers have no account: personal actions never come up.
    if (!IsCatalogAction(a) && a != Action::kLang) a = Action::kHome;
    return a;
  }
  bool personal = a == Action::kCartAdd || a == Action::kCartView || a == Action::kCheckout;
  if (personal && user.sid.empty()) return Action::kSignin;
  if (a == Action::kCheckout && user.cart_lines == 0) return Action::kCartAdd;
  return a;
}

Request Workload::Build(Action a, const UserState& user, std::mt19937_64& rng) const {
  Request r;
  std::string cookie;
  if (user.ja) cookie = "lang=ja";
  if (!user.sid.empty()) cookie += std::string(cookie.empty() ? "" : "; ") + "sid=" + user.sid;
  if (!cookie.empty()) r.headers.emplace_back("Cookie", cookie);
  const Catalog& c = *catalog_;
  auto form = [&r](std::string body) {
    r.method = "POST";
    r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    r.body = std::move(body);
  };
  auto item = [&]() -> const std::string& {
    static const std::string kNone = "EST-1";
    return c.items.empty() ? kNone : c.items[items_.Sample(rng)].id;
  };
  switch (a) {
    case Action::kHome:
      r.target = "/";
      break;
    case Action::kCategory:
      r.target = c.categories.empty()
                     ? "/"
                     : "/category/" + c.categories[std::uniform_int_distribution<size_t>(
                                          0, c.categories.size() - 1)(rng)];
      break;
    case Action::kProduct:
      r.target = c.products.empty() ? "/" : "/product/" + c.products[products_.Sample(rng)].id;
      break;
    case Action::kItem:
      r.target = "/item/" + item();
      break;
    case Action::kSearch: {
      r.target = "/search";
      std::string q = c.search_terms.empty() ? "fish" : c.search_terms[terms_.Sample(rng)];
      form("q=" + FormEncode(q));
      break;
    }
    case Action::kLang:
      r.target = user.ja ? "/lang/en" : "/lang/ja";
      break;
    case Action::kSignin:
      r.target = "/signin";
      form("username=" + FormEncode(user.username) + "&password=password");
      break;
    case Action::kCartAdd:
      r.target = "/cart/add";
      form("itemid=" + FormEncode(item()) + "&quantity=1");
      break;
    case Action::kCartView:
      r.target = "/cart";
      break;
    case Action::kCheckout:
      r.target = "/checkout";
      form("");
      break;
  }
  return r;
}

void Workload::Observe(Action a, const Response& resp, UserState* user) {
  for (const auto& [k, v] : resp.headers) {
    if (k.size() != 10 || (k[0] != 'S' && k[0] != 's') || (k[4] != 'C' && k[4] != 'c')) continue;
    std::string_view sv = v;
    if (sv.substr(0, 4) == "sid=") {
      std::string_view val = sv.substr(4, sv.find(';') - 4);
      user->sid = std::string(val);
    } else if (sv.substr(0, 5) == "lang=") {
      user->ja = sv.substr(5, 2) == "ja";
    }
  }
  if (a == Action::kCartAdd && resp.status == 303) ++user->cart_lines;
  if (a == Action::kCheckout && (resp.status == 303 || resp.status == 409)) user->cart_lines = 0;
}

}  // namespace cacheportal::bench
