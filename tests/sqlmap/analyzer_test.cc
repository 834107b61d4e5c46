// Analyzer: the CachePortal paper's PetStore queries and the building blocks
// of analysis (slots, literal values, flags, writes, logging tables).
#include "sqlmap/analyzer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <thread>

namespace cacheportal::sqlmap {
namespace {

// The sample store's schema (sample-app/loader.cc), as the optional catalog.
AnalyzerOptions PetStoreOptions() {
  AnalyzerOptions o;
  o.logging_tables = {"public.access_log"};
  o.table_columns = {
      {"public.category", {"catid"}},
      {"public.category_details", {"catid", "locale", "name", "image", "descn"}},
      {"public.product", {"productid", "catid"}},
      {"public.product_details", {"productid", "locale", "name", "image", "descn"}},
      {"public.item", {"itemid", "productid"}},
      {"public.item_details",
       {"itemid", "locale", "listprice", "unitcost", "image", "descn", "attr1", "attr2", "attr3",
        "attr4", "attr5"}},
  };
  return o;
}

const TableRef* FindTable(const QueryTemplate& t, const std::string& name) {
  for (const auto& tr : t.tables) {
    if (tr.table == name) return &tr;
  }
  return nullptr;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

bool HasJoin(const QueryTemplate& t, const std::string& a, const std::string& acol,
             const std::string& b, const std::string& bcol) {
  for (const auto& j : t.joins) {
    const std::string& l = t.tables[j.left_table].alias;
    const std::string& r = t.tables[j.right_table].alias;
    if ((l == a && j.left_column == acol && r == b && j.right_column == bcol) ||
        (l == b && j.left_column == bcol && r == a && j.right_column == acol)) {
      return true;
    }
  }
  return false;
}

QueryInstance MustInstantiate(Analyzer& an, const std::string& sql,
                              std::vector<std::optional<std::string>> params = {}) {
  auto r = an.Instantiate(sql, params);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : QueryInstance{};
}

// Value of the single slot of a `col op value` compare.
std::string CompareValue(const QueryInstance& qi, const Predicate& p) {
  EXPECT_EQ(p.kind, Predicate::Kind::kCompare);
  EXPECT_EQ(p.slots.size(), 1u);
  if (p.slots.empty()) return {};
  const auto& v = qi.values.at(p.slots[0]);
  return v ? *v : "<null>";
}

TEST(AnalyzerPaperTest, Query1CategoryJoinCategoryDetailsByLocale) {
  Analyzer an(PetStoreOptions());
  QueryInstance qi = MustInstantiate(
      an,
      "select a.catid, name, descn from category a, category_details b where a.catid=b.catid "
      "and locale = 'en_US' order by name /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-"
      "00f067aa0ba902b7-01'*/");
  const QueryTemplate& t = *qi.tmpl;
  EXPECT_EQ(t.precision, Precision::kPrecise) << Analyzer::Explain(t);
  EXPECT_TRUE(t.read_only);
  ASSERT_EQ(t.tables.size(), 2u);
  const TableRef* a = FindTable(t, "public.category");
  const TableRef* b = FindTable(t, "public.category_details");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->alias, "a");
  EXPECT_EQ(b->alias, "b");
  EXPECT_EQ(a->predicate.kind, Predicate::Kind::kTrue);
  ASSERT_EQ(b->predicate.kind, Predicate::Kind::kCompare);
  EXPECT_EQ(b->predicate.column, "locale");
  EXPECT_EQ(b->predicate.op, CompareOp::kEq);
  EXPECT_EQ(CompareValue(qi, b->predicate), "en_US");
  EXPECT_TRUE(HasJoin(t, "a", "catid", "b", "catid"));
  EXPECT_EQ(Sorted(a->columns_read), (std::vector<std::string>{"catid"}));
  EXPECT_EQ(Sorted(b->columns_read),
            (std::vector<std::string>{"catid", "descn", "locale", "name"}));
  EXPECT_FALSE(a->reads_all_columns);
}

TEST(AnalyzerPaperTest, Query2ProductJoinProductDetailsByLocaleAndCatid) {
  Analyzer an(PetStoreOptions());
  QueryInstance qi = MustInstantiate(
      an,
      "select a.productid, name, descn from product a, product_details b where "
      "a.productid=b.productid and locale = 'en_US' and a.catid = 'FISH' order by name");
  const QueryTemplate& t = *qi.tmpl;
  EXPECT_EQ(t.precision, Precision::kPrecise) << Analyzer::Explain(t);
  const TableRef* a = FindTable(t, "public.product");
  const TableRef* b = FindTable(t, "public.product_details");
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->predicate.kind, Predicate::Kind::kCompare);
  EXPECT_EQ(a->predicate.column, "catid");
  EXPECT_EQ(CompareValue(qi, a->predicate), "FISH");
  ASSERT_EQ(b->predicate.kind, Predicate::Kind::kCompare);
  EXPECT_EQ(b->predicate.column, "locale");
  EXPECT_EQ(CompareValue(qi, b->predicate), "en_US");
  EXPECT_TRUE(HasJoin(t, "a", "productid", "b", "productid"));
  EXPECT_EQ(Sorted(a->columns_read), (std::vector<std::string>{"catid", "productid"}));
  EXPECT_EQ(Sorted(b->columns_read),
            (std::vector<std::string>{"descn", "locale", "name", "productid"}));

  // Query 3 of the paper is the same shape for DOGS: one parse, other values.
  QueryInstance q3 = MustInstantiate(
      an,
      "select a.productid, name, descn from product a, product_details b where "
      "a.productid=b.productid and locale = 'en_US' and a.catid = 'DOGS' order by name");
  EXPECT_EQ(q3.tmpl.get(), qi.tmpl.get());
  EXPECT_NE(q3.Id(), qi.Id());
  EXPECT_EQ(CompareValue(q3, FindTable(*q3.tmpl, "public.product")->predicate), "DOGS");
  EXPECT_EQ(an.GetStats().parses, 1u);
  EXPECT_EQ(an.GetStats().cache_hits, 1u);
}

TEST(AnalyzerPaperTest, Query5FourWayItemJoinByProductidAndLocale) {
  Analyzer an(PetStoreOptions());
  QueryInstance qi = MustInstantiate(
      an,
      "select catid, name, a.itemid, b.image, b.descn, attr1, attr2, attr3, attr4, attr5, "
      "listprice, unitcost from item a, item_details b, product_details c, product d where "
      "a.itemid=b.itemid and a.productid=c.productid and d.productid=c.productid and b.locale "
      "= c.locale and b.locale = 'en_US' and a.productid = 'AV-CB-01'");
  const QueryTemplate& t = *qi.tmpl;
  EXPECT_EQ(t.precision, Precision::kPrecise) << Analyzer::Explain(t);
  ASSERT_EQ(t.tables.size(), 4u);
  const TableRef* a = FindTable(t, "public.item");
  const TableRef* b = FindTable(t, "public.item_details");
  const TableRef* c = FindTable(t, "public.product_details");
  const TableRef* d = FindTable(t, "public.product");
  ASSERT_TRUE(a && b && c && d);
  ASSERT_EQ(a->predicate.kind, Predicate::Kind::kCompare);
  EXPECT_EQ(a->predicate.column, "productid");
  EXPECT_EQ(CompareValue(qi, a->predicate), "AV-CB-01");
  ASSERT_EQ(b->predicate.kind, Predicate::Kind::kCompare);
  EXPECT_EQ(b->predicate.column, "locale");
  EXPECT_EQ(CompareValue(qi, b->predicate), "en_US");
  EXPECT_EQ(c->predicate.kind, Predicate::Kind::kTrue);
  EXPECT_EQ(d->predicate.kind, Predicate::Kind::kTrue);
  EXPECT_EQ(t.joins.size(), 4u);
  EXPECT_TRUE(HasJoin(t, "a", "itemid", "b", "itemid"));
  EXPECT_TRUE(HasJoin(t, "a", "productid", "c", "productid"));
  EXPECT_TRUE(HasJoin(t, "d", "productid", "c", "productid"));
  EXPECT_TRUE(HasJoin(t, "b", "locale", "c", "locale"));
  EXPECT_EQ(Sorted(a->columns_read), (std::vector<std::string>{"itemid", "productid"}));
  EXPECT_EQ(Sorted(b->columns_read),
            (std::vector<std::string>{"attr1", "attr2", "attr3", "attr4", "attr5", "descn", "image",
                                      "itemid", "listprice", "locale", "unitcost"}));
  EXPECT_EQ(Sorted(c->columns_read), (std::vector<std::string>{"locale", "name", "productid"}));
  EXPECT_EQ(Sorted(d->columns_read), (std::vector<std::string>{"catid", "productid"}));
}

TEST(AnalyzerPaperTest, WithoutCatalogUnqualifiedColumnsAreUnknownButReadEverywhere) {
  Analyzer an(AnalyzerOptions{});
  QueryInstance qi = MustInstantiate(
      an,
      "select a.catid, name from category a, category_details b where a.catid=b.catid and "
      "locale = 'en_US'");
  const QueryTemplate& t = *qi.tmpl;
  const TableRef* a = FindTable(t, "public.category");
  const TableRef* b = FindTable(t, "public.category_details");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->predicate.kind, Predicate::Kind::kUnknown);
  EXPECT_EQ(b->predicate.kind, Predicate::Kind::kUnknown);
  // Attributed to both: an UPDATE of either table's `locale` must count.
  EXPECT_NE(std::find(a->columns_read.begin(), a->columns_read.end(), "locale"),
            a->columns_read.end());
  EXPECT_NE(std::find(b->columns_read.begin(), b->columns_read.end(), "locale"),
            b->columns_read.end());
}

TEST(AnalyzerTest, LiteralValuesInPostgresTextForm) {
  Analyzer an(AnalyzerOptions{});
  QueryInstance qi = MustInstantiate(
      an,
      "SELECT * FROM t WHERE a = -5 AND b = 'it''s' AND c = true AND d = -1.50 AND e = "
      "E'x\\ny' AND f = $$dollar$$ AND g = 007");
  const QueryTemplate& t = *qi.tmpl;
  ASSERT_EQ(t.tables.size(), 1u);
  const Predicate& p = t.tables[0].predicate;
  ASSERT_EQ(p.kind, Predicate::Kind::kAnd);
  ASSERT_EQ(p.children.size(), 7u);
  EXPECT_EQ(CompareValue(qi, p.children[0]), "-5");
  EXPECT_EQ(CompareValue(qi, p.children[1]), "it's");
  EXPECT_EQ(CompareValue(qi, p.children[2]), "t");
  EXPECT_EQ(CompareValue(qi, p.children[3]), "-1.50");
  EXPECT_EQ(CompareValue(qi, p.children[4]), "x\ny");
  EXPECT_EQ(CompareValue(qi, p.children[5]), "dollar");
  EXPECT_EQ(CompareValue(qi, p.children[6]), "7");
  EXPECT_TRUE(t.tables[0].reads_all_columns);

  // Second instance of the shape comes from the cache, values from the scanner.
  QueryInstance q2 = MustInstantiate(
      an,
      "select * from t where a = -6 and b = 'x' and c = true and d = -2.5 and e = E'\\x41' "
      "and f = $$q$$ and g = 8");
  EXPECT_EQ(q2.tmpl.get(), qi.tmpl.get());
  EXPECT_EQ(an.GetStats().parses, 1u);
  const Predicate& p2 = q2.tmpl->tables[0].predicate;
  EXPECT_EQ(CompareValue(q2, p2.children[0]), "-6");
  EXPECT_EQ(CompareValue(q2, p2.children[1]), "x");
  EXPECT_EQ(CompareValue(q2, p2.children[3]), "-2.5");
  EXPECT_EQ(CompareValue(q2, p2.children[4]), "A");
  EXPECT_EQ(CompareValue(q2, p2.children[6]), "8");
}

TEST(AnalyzerTest, ParamsFillSlotsAndMissingParamIsAnError) {
  Analyzer an(AnalyzerOptions{});
  QueryInstance qi = MustInstantiate(an, "SELECT name FROM item WHERE productid = $1 AND qty > 3",
                                     {std::string("FI-SW-01")});
  const Predicate& p = qi.tmpl->tables[0].predicate;
  ASSERT_EQ(p.kind, Predicate::Kind::kAnd);
  EXPECT_EQ(CompareValue(qi, p.children[0]), "FI-SW-01");
  EXPECT_EQ(CompareValue(qi, p.children[1]), "3");
  EXPECT_EQ(qi.tmpl->slot_param[0], 1);
  auto bad = an.Instantiate("SELECT name FROM item WHERE productid = $1 AND qty > 3", {});
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  // NULL parameter value.
  QueryInstance qn =
      MustInstantiate(an, "SELECT name FROM item WHERE productid = $1 AND qty > 3", {std::nullopt});
  EXPECT_FALSE(qn.values[0].has_value());
}

TEST(AnalyzerTest, InListLengthsAndLiteralVsParamAreDifferentShapes) {
  Analyzer an(AnalyzerOptions{});
  QueryInstance a = MustInstantiate(an, "SELECT * FROM t WHERE b IN (1,2,3) AND c IN (4)");
  QueryInstance b = MustInstantiate(an, "SELECT * FROM t WHERE b IN (1,2) AND c IN (3,4)");
  EXPECT_EQ(a.tmpl->fingerprint, b.tmpl->fingerprint);  // libpg_query collapses them
  EXPECT_NE(a.tmpl->shape_id, b.tmpl->shape_id);
  EXPECT_NE(a.Id(), b.Id());
  const Predicate& pa = a.tmpl->tables[0].predicate;
  EXPECT_EQ(pa.children[0].op, CompareOp::kIn);
  EXPECT_EQ(pa.children[0].slots.size(), 3u);
  const Predicate& pb = b.tmpl->tables[0].predicate;
  EXPECT_EQ(pb.children[0].slots.size(), 2u);
  EXPECT_EQ(an.GetStats().parses, 2u);
}

TEST(AnalyzerTest, CommentsAndCaseDoNotChangeTheShape) {
  Analyzer an(AnalyzerOptions{});
  QueryInstance a = MustInstantiate(an, "SELECT x FROM t WHERE id = 1 /*traceparent='a'*/");
  QueryInstance b = MustInstantiate(an, "select  X from T where ID = 1 -- other\n");
  EXPECT_EQ(a.tmpl.get(), b.tmpl.get());
  EXPECT_EQ(a.Id(), b.Id());
  EXPECT_EQ(a.tmpl->normalized_sql, "SELECT x FROM t WHERE id = $1");
}

TEST(AnalyzerTest, AllComparisonKinds) {
  Analyzer an(AnalyzerOptions{});
  QueryInstance qi = MustInstantiate(
      an,
      "SELECT * FROM public.products p WHERE p.a <> 1 AND 2 < p.b AND p.c NOT IN ('x','y') AND "
      "p.d BETWEEN 1 AND 9 AND p.e NOT BETWEEN 3 AND 4 AND p.f LIKE 'a%' AND p.g NOT ILIKE "
      "'%b' AND p.h IS NULL AND p.i IS NOT NULL AND (p.j = 1 OR NOT p.k = 2) AND p.l BETWEEN "
      "SYMMETRIC 5 AND 1");
  const QueryTemplate& t = *qi.tmpl;
  EXPECT_EQ(t.precision, Precision::kPrecise);
  const Predicate& p = t.tables[0].predicate;
  ASSERT_EQ(p.children.size(), 11u) << Analyzer::Explain(t);
  EXPECT_EQ(p.children[0].op, CompareOp::kNe);
  EXPECT_EQ(p.children[1].op, CompareOp::kGt);  // 2 < b → b > 2
  EXPECT_EQ(p.children[1].column, "b");
  EXPECT_EQ(p.children[2].op, CompareOp::kNotIn);
  EXPECT_EQ(p.children[3].op, CompareOp::kBetween);
  EXPECT_EQ(p.children[4].op, CompareOp::kNotBetween);
  EXPECT_EQ(p.children[5].op, CompareOp::kLike);
  EXPECT_EQ(p.children[6].op, CompareOp::kNotILike);
  EXPECT_EQ(p.children[7].op, CompareOp::kIsNull);
  EXPECT_EQ(p.children[8].op, CompareOp::kIsNotNull);
  ASSERT_EQ(p.children[9].kind, Predicate::Kind::kOr);
  EXPECT_EQ(p.children[9].children[1].kind, Predicate::Kind::kNot);
  EXPECT_EQ(p.children[10].kind, Predicate::Kind::kOr);  // symmetric: both orders
}

TEST(AnalyzerTest, FunctionOnColumnIsUnknownAndNotOfUnknownStaysUnknown) {
  Analyzer an(AnalyzerOptions{});
  auto t = an.Analyze("SELECT * FROM t WHERE lower(email) = 'a' AND NOT (x = 1 OR upper(y) = 'b')");
  ASSERT_TRUE(t.ok());
  const Predicate& p = (*t)->tables[0].predicate;
  ASSERT_EQ(p.kind, Predicate::Kind::kAnd);
  EXPECT_EQ(p.children[0].kind, Predicate::Kind::kUnknown);
  EXPECT_EQ(p.children[1].kind, Predicate::Kind::kUnknown);
}

TEST(AnalyzerTest, OuterJoinKeepsOnlySoundRowFilters) {
  Analyzer an(AnalyzerOptions{});
  auto r = an.Analyze(
      "SELECT p.name, r.stars FROM products p LEFT JOIN reviews r ON r.pid = p.id AND r.visible "
      "= true AND p.kind = 'x' WHERE p.id = $1 AND r.stars IS NULL");
  ASSERT_TRUE(r.ok());
  const QueryTemplate& t = **r;
  EXPECT_TRUE(t.flags & kFlagOuterJoin);
  EXPECT_EQ(t.precision, Precision::kPrecise);
  const TableRef* p = FindTable(t, "public.products");
  const TableRef* rv = FindTable(t, "public.reviews");
  ASSERT_TRUE(p && rv);
  // Preserved side: WHERE filters, ON does not.
  ASSERT_EQ(p->predicate.kind, Predicate::Kind::kCompare) << Analyzer::Explain(t);
  EXPECT_EQ(p->predicate.column, "id");
  // Nullable side: its own ON conjunct filters, the WHERE (anti-join) does not.
  ASSERT_EQ(rv->predicate.kind, Predicate::Kind::kCompare) << Analyzer::Explain(t);
  EXPECT_EQ(rv->predicate.column, "visible");
  EXPECT_TRUE(HasJoin(t, "r", "pid", "p", "id"));
}

TEST(AnalyzerTest, CoarseConstructsAreFlaggedWithReasons) {
  Analyzer an(AnalyzerOptions{});
  struct Case {
    const char* sql;
    uint32_t flag;
  } cases[] = {
      {"SELECT * FROM a WHERE id IN (SELECT aid FROM b WHERE x = 1)", kFlagSubquery},
      {"WITH c AS (SELECT * FROM a) SELECT * FROM c", kFlagCte},
      {"SELECT id FROM a UNION SELECT id FROM b", kFlagSetOperation},
      {"SELECT id, row_number() OVER (ORDER BY id) FROM a", kFlagWindow},
  };
  for (const auto& c : cases) {
    auto r = an.Analyze(c.sql);
    ASSERT_TRUE(r.ok()) << c.sql;
    EXPECT_TRUE((*r)->flags & c.flag) << c.sql;
    EXPECT_EQ((*r)->precision, Precision::kCoarse) << c.sql;
    EXPECT_FALSE((*r)->coarse_reason.empty()) << c.sql;
    EXPECT_FALSE((*r)->tables.empty()) << c.sql;
  }
  auto cte = an.Analyze("WITH c AS (SELECT * FROM a) SELECT * FROM c JOIN b ON b.id = c.id");
  ASSERT_TRUE(cte.ok());
  ASSERT_EQ((*cte)->tables.size(), 2u);  // the CTE name is not a table
  EXPECT_TRUE(FindTable(**cte, "public.a") && FindTable(**cte, "public.b"));
}

TEST(AnalyzerTest, AggregatesAndLimitStayPrecise) {
  Analyzer an(AnalyzerOptions{});
  auto r =
      an.Analyze("SELECT catid, count(*) FROM product WHERE catid = 'X' GROUP BY catid LIMIT 5");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)->flags & kFlagAggregate);
  EXPECT_TRUE((*r)->flags & kFlagLimit);
  EXPECT_EQ((*r)->precision, Precision::kPrecise);
}

TEST(AnalyzerTest, WritesAreDetected) {
  AnalyzerOptions o;
  o.logging_tables = {"public.access_log"};
  Analyzer an(o);
  struct Case {
    const char* sql;
    const char* written;
  } cases[] = {
      {"INSERT INTO cart (userid, itemid, quantity) VALUES ($1, $2, 1)", "public.cart"},
      {"UPDATE inventory SET qty = qty - 1 WHERE itemid = 'X' RETURNING qty", "public.inventory"},
      {"DELETE FROM cart WHERE userid = 'u'", "public.cart"},
      {"SELECT * FROM inventory WHERE itemid = 'X' FOR UPDATE", "public.inventory"},
      {"SELECT i.* FROM item i JOIN inventory v ON v.itemid = i.itemid FOR SHARE OF v",
       "public.inventory"},
      {"MERGE INTO inventory v USING item i ON v.itemid = i.itemid WHEN MATCHED THEN UPDATE SET "
       "qty = 0",
       "public.inventory"},
      {"TRUNCATE cart", "public.cart"},
      {"WITH d AS (DELETE FROM cart RETURNING *) SELECT count(*) FROM d", "public.cart"},
  };
  for (const auto& c : cases) {
    auto r = an.Analyze(c.sql);
    ASSERT_TRUE(r.ok()) << c.sql;
    EXPECT_FALSE((*r)->read_only) << c.sql;
    EXPECT_TRUE((*r)->flags & kFlagWrite) << c.sql;
    EXPECT_EQ((*r)->written_tables, std::vector<std::string>{c.written}) << c.sql;
    EXPECT_FALSE((*r)->coarse_reason.empty()) << c.sql;
  }
  for (const char* sql : {"SELECT nextval('orders_seq')", "SELECT my_func(1)", "CALL proc()",
                          "CREATE TABLE x (a int)", "DO $$ BEGIN END $$"}) {
    auto r = an.Analyze(sql);
    ASSERT_TRUE(r.ok()) << sql;
    EXPECT_FALSE((*r)->read_only) << sql;
  }
}

TEST(AnalyzerTest, LoggingTablesAreIgnoredBothWays) {
  AnalyzerOptions o;
  o.logging_tables = {"public.access_log"};
  Analyzer an(o);
  auto w = an.Analyze(
      "INSERT INTO access_log (trace_id, method, path, status) VALUES ('a','GET','/',200)");
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE((*w)->read_only);
  EXPECT_TRUE((*w)->written_tables.empty());
  EXPECT_FALSE((*w)->flags & kFlagWrite);
  auto r = an.Analyze("SELECT path FROM public.access_log WHERE userid = 'u'");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)->tables.empty());
}

TEST(AnalyzerTest, UtilityVolatileCatalogAndGarbage) {
  Analyzer an(AnalyzerOptions{});
  for (const char* sql : {"BEGIN", "COMMIT", "SET search_path = public", "SHOW work_mem"}) {
    auto r = an.Analyze(sql);
    ASSERT_TRUE(r.ok()) << sql;
    EXPECT_TRUE((*r)->flags & kFlagUtility) << sql;
    EXPECT_TRUE((*r)->read_only) << sql;
    EXPECT_TRUE((*r)->tables.empty()) << sql;
  }
  auto v = an.Analyze("SELECT * FROM t WHERE created > now() - interval '1 day'");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->precision, Precision::kNone);
  EXPECT_TRUE((*v)->flags & kFlagVolatileFunction);
  auto c = an.Analyze("SELECT relname FROM pg_class");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->precision, Precision::kNone);
  auto g = an.Analyze("SELEC * FROM where");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)->precision, Precision::kNone);
  EXPECT_TRUE((*g)->flags & kFlagUnparsable);
  EXPECT_FALSE((*g)->coarse_reason.empty());
  auto u = an.Analyze("SELECT 'unterminated");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ((*u)->precision, Precision::kNone);
  EXPECT_FALSE(an.Analyze("").ok());
  EXPECT_FALSE(an.Analyze("  /* only a comment */ ").ok());
}

TEST(AnalyzerTest, DeepNestingNeitherCrashesNorYieldsDeepPredicates) {
  Analyzer an(AnalyzerOptions{});
  std::string nots = "SELECT * FROM t WHERE ";
  for (int i = 0; i < 6000; ++i) nots += "NOT ";
  nots += "a = 1";
  std::string parens =
      "SELECT * FROM t WHERE " + std::string(9000, '(') + "a = 1" + std::string(9000, ')');
  std::string calls = "SELECT ";
  for (int i = 0; i < 3000; ++i) calls += "lower(";
  calls += "x" + std::string(3000, ')') + " FROM t";
  for (const std::string& sql : {nots, parens, calls}) {
    auto r = an.Instantiate(sql, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::function<int(const Predicate&)> depth = [&](const Predicate& p) {
      int d = 0;
      for (const auto& c : p.children) d = std::max(d, depth(c));
      return d + 1;
    };
    for (const auto& t : r->tmpl->tables) EXPECT_LE(depth(t.predicate), 40);
  }
}

TEST(AnalyzerTest, ExplainMentionsTablesPredicatesAndFlags) {
  Analyzer an(AnalyzerOptions{});
  auto r = an.Analyze("SELECT name FROM product WHERE catid = 'FISH' ORDER BY name LIMIT 3");
  ASSERT_TRUE(r.ok());
  std::string e = Analyzer::Explain(**r);
  EXPECT_NE(e.find("table public.product"), std::string::npos) << e;
  EXPECT_NE(e.find("catid = $1"), std::string::npos) << e;
  EXPECT_NE(e.find("limit"), std::string::npos) << e;
  EXPECT_NE(e.find("precise"), std::string::npos) << e;
}

TEST(AnalyzerTest, ConcurrentInstantiationIsConsistent) {
  Analyzer an(AnalyzerOptions{});
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < 500; ++i) {
        std::string v = std::to_string(k * 1000 + i);
        auto r = an.Instantiate("SELECT * FROM t WHERE id = " + v, {});
        if (!r.ok() || !r->values[0] || *r->values[0] != v) ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(an.GetStats().parses, 4u);
}

}  // namespace
}  // namespace cacheportal::sqlmap
