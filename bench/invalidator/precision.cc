// Invalidation precision on a store-like update mix (issue 6, item 9).
//
//   bench_invalidator_precision CONNINFO [CHANGES] [SEED]
//
// Builds the store's catalogue (categories, products, items) in a fresh
// database, registers its pages with their query instances (item pages,
// product pages, per-category product lists and item lists (a join), the
// categories fragment, category pages including both fragments), runs the
// real Invalidator (replication stream, join polling) and applies CHANGES
// single-statement commits drawn from the update mix, one at a time. After
// each commit (awaited through a sentinel change), every page is re-rendered
// from the database and compared byte for byte with its previous rendering.
//
//   precision = ejected pages whose bytes changed / ejected pages
//   missed    = changed pages not ejected (must be 0: freshness)
// for CachePortal's ejections and for the coarse table-level baseline (eject
// every page that reads a changed table).
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/pg.h"
#include "invalidator/replication.h"
#include "tests/invalidator/fakes.h"
#include "tests/invalidator/template_builders.h"

using namespace cacheportal;                     // NOLINT
using namespace cacheportal::invalidator;        // NOLINT
using namespace cacheportal::invalidator::test;  // NOLINT
using sqlmap::CompareOp;

namespace {

struct Page {
  std::string key;
  std::string sql;  // renders the page (with $1 = param); empty: only children
  std::string param;
  std::vector<sqlmap::QueryInstance> instances;
  std::vector<std::string> children;
  std::set<std::string> tables;  // what the coarse baseline looks at
};

bool Exec(PGconn* c, const std::string& sql) {
  auto r = pg::Exec(c, sql);
  if (!r.ok()) std::fprintf(stderr, "%s: %s\n", sql.c_str(), r.status().ToString().c_str());
  return r.ok();
}

std::string Render(PGconn* c, const Page& p, const std::map<std::string, std::string>& rendered) {
  std::string out;
  if (!p.sql.empty()) {
    std::vector<const char*> params;
    if (!p.param.empty()) params.push_back(p.param.c_str());
    auto r = pg::ExecParams(c, p.sql, params);
    if (!r.ok()) return "error: " + r.status().ToString();
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      for (int j = 0; j < PQnfields(r->get()); ++j) {
        out += PQgetisnull(r->get(), i, j) ? "\\N" : PQgetvalue(r->get(), i, j);
        out += '\t';
      }
      out += '\n';
    }
  }
  for (const auto& ch : p.children) {
    auto it = rendered.find(ch);
    out += "<include " + ch + ">" + (it == rendered.end() ? "" : it->second);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_invalidator_precision CONNINFO [CHANGES] [SEED]\n");
    return 2;
  }
  std::string admin_conninfo = argv[1];
  int changes = argc > 2 ? std::atoi(argv[2]) : 300;
  unsigned seed = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 42;
  log::SetLevel(log::Level::kError);

  auto admin = pg::Connect(admin_conninfo);
  if (!admin.ok()) return std::fprintf(stderr, "%s\n", admin.status().ToString().c_str()), 1;
  const std::string db = "cp_precision";
  Exec(admin->get(),
       "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = "
       "'cp_precision'");
  Exec(admin->get(), "DROP DATABASE IF EXISTS " + db);
  if (!Exec(admin->get(), "CREATE DATABASE " + db)) return 1;
  std::string conninfo = admin_conninfo + " dbname=" + db;
  auto conn_r = pg::Connect(conninfo);
  if (!conn_r.ok()) return std::fprintf(stderr, "%s\n", conn_r.status().ToString().c_str()), 1;
  PGconn* c = conn_r->get();

  // The store's catalogue: 10 categories x 6 products x 4 items.
  const int kCats = 10, kProds = 6, kItems = 4;
  Exec(c, "CREATE TABLE category (catid text PRIMARY KEY, name text, descn text)");
  Exec(c,
       "CREATE TABLE product (productid text PRIMARY KEY, category text, name text, descn text)");
  Exec(c,
       "CREATE TABLE item (itemid text PRIMARY KEY, productid text, listprice numeric(10,2), "
       "unitcost numeric(10,2), status text, attr1 text, qty int)");
  Exec(c, "CREATE TABLE marker (id int PRIMARY KEY, v int)");
  Exec(c, "INSERT INTO marker SELECT g, 0 FROM generate_series(1, 100000) g");
  std::vector<std::string> cats, prods, items;
  std::map<std::string, std::string> cat_of_prod;
  for (int i = 0; i < kCats; ++i) {
    std::string cat = "C" + std::to_string(i);
    cats.push_back(cat);
    Exec(c, "INSERT INTO category VALUES ('" + cat + "', 'Category " + cat + "', '')");
    for (int j = 0; j < kProds; ++j) {
      std::string prod = cat + "-P" + std::to_string(j);
      prods.push_back(prod);
      cat_of_prod[prod] = cat;
      Exec(c, "INSERT INTO product VALUES ('" + prod + "', '" + cat + "', 'Product " + prod +
                  "', '')");
      for (int k = 0; k < kItems; ++k) {
        std::string item = prod + "-I" + std::to_string(k);
        items.push_back(item);
        Exec(c, "INSERT INTO item VALUES ('" + item + "', '" + prod + "', " +
                    std::to_string(10 + k) + ", 5, 'P', 'attr', 100)");
      }
    }
  }

  auto item_by_id = Single("public.item", Cmp("itemid", CompareOp::kEq, 0),
                           {"itemid", "productid", "listprice", "attr1"});
  auto items_of_prod = Single("public.item", Cmp("productid", CompareOp::kEq, 0),
                              {"itemid", "productid", "listprice", "attr1"});
  auto prods_of_cat = Single("public.product", Cmp("category", CompareOp::kEq, 0),
                             {"productid", "name", "category"});
  auto categories = Single("public.category", sqlmap::Predicate{}, {"catid", "name"});
  auto items_of_cat = Join("public.item", sqlmap::Predicate{}, {"itemid", "productid", "listprice"},
                           "public.product", Cmp("category", CompareOp::kEq, 0),
                           {"productid", "category"}, "productid", "productid");
  auto marker = Single("public.marker", Cmp("id", CompareOp::kEq, 0), {"id", "v"});

  std::vector<Page> pages;  // fragments before the pages that include them
  pages.push_back({"/frag/categories",
                   "SELECT catid, name FROM category ORDER BY catid",
                   "",
                   {Inst(categories, {})},
                   {},
                   {"category"}});
  for (const auto& cat : cats) {
    pages.push_back({"/frag/products/" + cat,
                     "SELECT productid, name, category FROM product WHERE category = $1 "
                     "ORDER BY productid",
                     cat,
                     {Inst(prods_of_cat, {cat})},
                     {},
                     {"product"}});
    pages.push_back({"/items-of/" + cat,
                     "SELECT i.itemid, i.productid, i.listprice FROM item i JOIN product p ON "
                     "i.productid = p.productid WHERE p.category = $1 ORDER BY 1",
                     cat,
                     {Inst(items_of_cat, {cat})},
                     {},
                     {"item", "product"}});
    pages.push_back({"/category/" + cat,
                     "",
                     "",
                     {},
                     {"/frag/categories", "/frag/products/" + cat},
                     {"category", "product"}});
  }
  for (const auto& prod : prods)
    pages.push_back({"/product/" + prod,
                     "SELECT itemid, productid, listprice, attr1 FROM item WHERE productid = $1 "
                     "ORDER BY itemid",
                     prod,
                     {Inst(items_of_prod, {prod})},
                     {},
                     {"item"}});
  for (const auto& item : items)
    pages.push_back({"/item/" + item,
                     "SELECT itemid, productid, listprice, attr1 FROM item WHERE itemid = $1",
                     item,
                     {Inst(item_by_id, {item})},
                     {},
                     {"item"}});

  FakeSource source;
  RecordingEjector ejector;
  InvalidatorDeps deps;
  deps.conninfo = conninfo;
  deps.options.slot_name = "cp_precision";
  deps.options.publication_name = "cp_precision";
  deps.options.status_interval_seconds = 1;
  deps.options.join_mode = "poll";
  deps.source = &source;
  deps.ejector = &ejector;
  auto inv_r = Invalidator::Start(deps);
  if (!inv_r.ok()) return std::fprintf(stderr, "%s\n", inv_r.status().ToString().c_str()), 1;
  auto inv = std::move(inv_r).value();
  if (!ejector.WaitVouched(true, 60)) return std::fprintf(stderr, "never caught up\n"), 1;

  std::map<std::string, std::string> rendered;
  auto render_all = [&] {
    std::map<std::string, std::string> out;
    for (const auto& p : pages) out[p.key] = Render(c, p, out);
    return out;
  };
  auto register_all = [&] {
    for (const auto& p : pages) source.AddPage(p.key, p.instances, p.children);
  };
  rendered = render_all();
  register_all();

  // The update mix (weights in percent): what the store and its back office
  // commit. Stock and cost columns are read by no page.
  std::mt19937 rng(seed);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  struct Kind {
    const char* name;
    int weight;
  };
  const std::vector<Kind> mix = {
      {"checkout: item qty", 35}, {"new list price", 25},     {"cost update", 10},
      {"item attr1", 10},         {"product description", 8}, {"product rename", 5},
      {"new product", 4},         {"same price again", 2},    {"category rename", 1}};
  int total_weight = 0;
  for (const auto& k : mix) total_weight += k.weight;

  uint64_t ej = 0, ej_changed = 0, coarse = 0, coarse_changed = 0, changed_total = 0, missed = 0;
  int new_products = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> per_kind;  // ejected, really changed
  for (int n = 1; n <= changes; ++n) {
    int w = static_cast<int>(rng() % total_weight);
    size_t ki = 0;
    while (w >= mix[ki].weight) w -= mix[ki++].weight;
    std::string table, sql;
    switch (ki) {
      case 0:
        table = "item";
        sql = "UPDATE item SET qty = qty - 1 WHERE itemid = '" + pick(items) + "'";
        break;
      case 1:
        table = "item";
        sql = "UPDATE item SET listprice = " + std::to_string(10 + rng() % 90) +
              ".99 WHERE itemid = '" + pick(items) + "'";
        break;
      case 2:
        table = "item";
        sql = "UPDATE item SET unitcost = unitcost + 1 WHERE itemid = '" + pick(items) + "'";
        break;
      case 3:
        table = "item";
        sql = "UPDATE item SET attr1 = 'attr" + std::to_string(n) + "' WHERE itemid = '" +
              pick(items) + "'";
        break;
      case 4:
        table = "product";
        sql = "UPDATE product SET descn = 'd" + std::to_string(n) + "' WHERE productid = '" +
              pick(prods) + "'";
        break;
      case 5:
        table = "product";
        sql = "UPDATE product SET name = 'Product " + std::to_string(n) + "' WHERE productid = '" +
              pick(prods) + "'";
        break;
      case 6: {
        table = "product";
        std::string prod = "NEW-" + std::to_string(++new_products);
        sql = "INSERT INTO product VALUES ('" + prod + "', '" + pick(cats) + "', 'New " + prod +
              "', '')";
        break;
      }
      case 7:
        table = "item";
        sql = "UPDATE item SET listprice = listprice WHERE itemid = '" + pick(items) + "'";
        break;
      default:
        table = "category";
        sql = "UPDATE category SET name = 'Category " + std::to_string(n) + "' WHERE catid = '" +
              pick(cats) + "'";
        break;
    }
    if (!Exec(c, sql)) return 1;
    std::string sentinel = "/marker/" + std::to_string(n);
    source.AddPage(sentinel, {Inst(marker, {std::to_string(n)})});
    Exec(c, "UPDATE marker SET v = v + 1 WHERE id = " + std::to_string(n));
    if (!ejector.WaitEjected(sentinel, 60)) return std::fprintf(stderr, "sentinel lost\n"), 1;
    std::set<std::string> ejected;
    for (const auto& k : ejector.EjectedSet())
      if (k.rfind("/marker/", 0) != 0) ejected.insert(k);
    ejector.Reset();

    auto now = render_all();
    std::set<std::string> changed;
    for (const auto& [k, v] : now)
      if (rendered[k] != v) changed.insert(k);
    rendered = std::move(now);
    changed_total += changed.size();
    for (const auto& k : changed)
      if (!ejected.count(k)) {
        ++missed;
        std::fprintf(stderr, "MISSED: %s after %s\n", k.c_str(), sql.c_str());
      }
    ej += ejected.size();
    for (const auto& k : ejected) ej_changed += changed.count(k);
    auto& pk = per_kind[mix[ki].name];
    pk.first += ejected.size();
    for (const auto& k : ejected) pk.second += changed.count(k);
    for (const auto& p : pages)
      if (p.tables.count(table)) {
        ++coarse;
        coarse_changed += changed.count(p.key);
      }
    register_all();
  }
  InvalidatorMetrics m = inv->GetMetrics();
  inv->Stop();

  auto pct = [](uint64_t a, uint64_t b) { return b ? 100.0 * a / b : 100.0; };
  std::printf("precision: %d changes, %zu pages, seed %u\n", changes, pages.size(), seed);
  std::printf("  cacheportal: ejected %llu page ejections, %llu really changed: precision %.1f%%\n",
              (unsigned long long)ej, (unsigned long long)ej_changed, pct(ej_changed, ej));
  std::printf("  table-level: ejected %llu page ejections, %llu really changed: precision %.1f%%\n",
              (unsigned long long)coarse, (unsigned long long)coarse_changed,
              pct(coarse_changed, coarse));
  std::printf("  pages whose bytes changed: %llu; changed but not ejected (stale): %llu\n",
              (unsigned long long)changed_total, (unsigned long long)missed);
  std::printf(
      "  join polls: %llu queries answering %llu instance checks (%.1f per query), %llu "
      "transactions, poll timeouts: %llu, polls skipped: %llu, overflows: %llu\n",
      (unsigned long long)m.polling_queries, (unsigned long long)m.poll_instances,
      m.InstancesPerPoll(), (unsigned long long)m.transactions, (unsigned long long)m.poll_timeouts,
      (unsigned long long)m.polls_skipped, (unsigned long long)m.poll_overflows);
  for (const auto& [k, v] : per_kind)
    std::printf("    %-22s ejected %5llu  changed %5llu\n", k.c_str(), (unsigned long long)v.first,
                (unsigned long long)v.second);
  Exec(admin->get(), "SELECT 1");
  return missed == 0 ? 0 : 3;
}
