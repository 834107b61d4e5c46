// SqlMap on RocksDB: put/lookup/remove, replacement, ref-counted sharing,
// fragments, restart persistence, canonical index values, and a 100k-key
// churn that must leave the map (and every column family) empty.
#include "sqlmap/sqlmap.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "sqlmap/analyzer.h"
#include "tests/support/temp_dir.h"

namespace cacheportal::sqlmap {
namespace {

// A map directory inside a temporary directory removed after the test.
class TempDir {
 public:
  std::string path() const { return (dir_.root() / "map").string(); }

 private:
  testing::TempDir dir_{"cp-sqlmap-test-"};
};

std::unique_ptr<SqlMap> OpenMap(const std::string& path) {
  std::unique_ptr<SqlMap> m;
  MapOptions o;
  o.path = path;
  Status s = SqlMap::Open(o, &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

QueryInstance Inst(Analyzer& an, const std::string& sql,
                   std::vector<std::optional<std::string>> params = {}) {
  auto r = an.Instantiate(sql, params);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.value();
}

std::vector<InstanceId> Candidates(const SqlMap& m, const std::string& t, const std::string& c,
                                   const std::string& v) {
  std::vector<InstanceId> out;
  m.CandidatesByValue(t, c, v, &out);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<InstanceId> Unindexed(const SqlMap& m, const std::string& t) {
  std::vector<InstanceId> out;
  m.UnindexedInstances(t, &out);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Keys(const SqlMap& m, InstanceId id) {
  std::vector<std::string> out;
  m.KeysOfInstance(id, &out);
  std::sort(out.begin(), out.end());
  return out;
}

// Number of records in every column family, read straight from RocksDB.
size_t RawRecordCount(const std::string& path, bool include_meta) {
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, descs, &handles, &db);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return ~size_t{0};
  size_t n = 0;
  for (size_t i = 0; i < handles.size(); ++i) {
    if (!include_meta && names[i] == "meta") continue;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  return n;
}

TEST(SqlMapTest, PutLookupRemove) {
  TempDir dir;
  auto map = OpenMap(dir.path());
  Analyzer an(AnalyzerOptions{});
  QueryInstance q1 = Inst(an, "SELECT name FROM product WHERE catid = $1", {std::string("FISH")});
  QueryInstance q2 = Inst(an, "SELECT * FROM item WHERE productid IN ('A', 'B') AND qty > 0");
  QueryInstance q3 = Inst(an, "SELECT * FROM item WHERE qty > 5");  // nothing indexable
  std::vector<QueryInstance> inst{q1, q2, q3};
  ASSERT_TRUE(map->PutPage("GET /cat/FISH", inst, {}, "/cat/FISH").ok());

  EXPECT_EQ(Candidates(*map, "public.product", "catid", "FISH"),
            std::vector<InstanceId>{q1.IdValue()});
  EXPECT_TRUE(Candidates(*map, "public.product", "catid", "DOGS").empty());
  EXPECT_EQ(Candidates(*map, "public.item", "productid", "B"),
            std::vector<InstanceId>{q2.IdValue()});
  EXPECT_EQ(Unindexed(*map, "public.item"), std::vector<InstanceId>{q3.IdValue()});
  std::vector<InstanceId> readers;
  map->InstancesReading("public.item", &readers);
  EXPECT_EQ(readers.size(), 2u);
  EXPECT_EQ(map->TablesRead(), (std::vector<std::string>{"public.item", "public.product"}));
  std::vector<std::string> cols;
  map->IndexedColumns("public.item", &cols);
  EXPECT_EQ(cols, std::vector<std::string>{"productid"});
  auto got = map->GetInstance(q1.IdValue());
  ASSERT_TRUE(got);
  EXPECT_EQ(got->values, q1.values);
  EXPECT_EQ(got->tmpl->normalized_sql, q1.tmpl->normalized_sql);
  EXPECT_EQ(Keys(*map, q1.IdValue()), std::vector<std::string>{"GET /cat/FISH"});
  std::string desc;
  ASSERT_TRUE(map->DescribePage("GET /cat/FISH", &desc).ok());
  EXPECT_NE(desc.find("/cat/FISH"), std::string::npos);
  EXPECT_NE(desc.find("public.product.catid = 'fish'"), std::string::npos) << desc;
  EXPECT_TRUE(map->DescribePage("nope", &desc).IsNotFound());

  MapStats st = map->GetStats();
  EXPECT_EQ(st.pages, 1u);
  EXPECT_EQ(st.instances, 3u);
  EXPECT_EQ(st.templates, 3u);
  EXPECT_EQ(st.index_entries, 3u);  // catid=fish, productid a, b
  EXPECT_EQ(st.unindexed_instances, 1u);

  std::vector<std::string> keys{"GET /cat/FISH", "unknown key"};
  ASSERT_TRUE(map->RemoveKeys(keys).ok());
  st = map->GetStats();
  EXPECT_EQ(st.pages + st.instances + st.templates + st.index_entries + st.unindexed_instances, 0u);
  EXPECT_TRUE(Candidates(*map, "public.product", "catid", "FISH").empty());
  EXPECT_EQ(map->GetInstance(q1.IdValue()), nullptr);
  EXPECT_TRUE(map->TablesRead().empty());
}

TEST(SqlMapTest, PutPageReplacesEarlierRegistration) {
  TempDir dir;
  auto map = OpenMap(dir.path());
  Analyzer an(AnalyzerOptions{});
  QueryInstance a = Inst(an, "SELECT * FROM product WHERE catid = 'A'");
  QueryInstance b = Inst(an, "SELECT * FROM product WHERE catid = 'B'");
  std::vector<QueryInstance> first{a}, second{b};
  ASSERT_TRUE(map->PutPage("k", first, {}, "/k").ok());
  ASSERT_TRUE(map->PutPage("k", second, {}, "/k").ok());
  EXPECT_TRUE(Candidates(*map, "public.product", "catid", "A").empty());
  EXPECT_EQ(Candidates(*map, "public.product", "catid", "B"), std::vector<InstanceId>{b.IdValue()});
  EXPECT_EQ(map->GetStats().instances, 1u);
  EXPECT_EQ(map->GetStats().templates, 1u);
  // Same instance again: still one reference.
  ASSERT_TRUE(map->PutPage("k", second, {}, "/k").ok());
  EXPECT_EQ(Keys(*map, b.IdValue()), std::vector<std::string>{"k"});
}

TEST(SqlMapTest, RemovalAfterEjectionSparesAFreshRegistration) {
  // The invalidator collects "k" (generation g1) and ejects it; before it
  // removes "k" from the map, a fresh fetch registers "k" again (g2). That
  // registration must survive, or the next change could not find the page.
  TempDir dir;
  auto map = OpenMap(dir.path());
  Analyzer an(AnalyzerOptions{});
  QueryInstance a = Inst(an, "SELECT * FROM product WHERE catid = 'A'");
  std::vector<QueryInstance> page{a};
  ASSERT_TRUE(map->PutPage("k", page, {}, "/k").ok());
  uint64_t g1 = map->KeyGeneration("k");
  ASSERT_NE(g1, 0u);
  ASSERT_TRUE(map->PutPage("k", page, {}, "/k").ok());
  uint64_t g2 = map->KeyGeneration("k");
  EXPECT_NE(g2, g1);
  std::vector<std::string> keys{"k"};
  std::vector<uint64_t> old_gen{g1};
  ASSERT_TRUE(map->RemoveKeysIfUnchanged(keys, old_gen).ok());
  EXPECT_EQ(Keys(*map, a.IdValue()), std::vector<std::string>{"k"});
  std::vector<uint64_t> current{g2};
  ASSERT_TRUE(map->RemoveKeysIfUnchanged(keys, current).ok());
  EXPECT_TRUE(Keys(*map, a.IdValue()).empty());
  EXPECT_EQ(map->KeyGeneration("k"), 0u);
}

TEST(SqlMapTest, SharedInstanceSurvivesRemovalOfOnePage) {
  TempDir dir;
  auto map = OpenMap(dir.path());
  Analyzer an(AnalyzerOptions{});
  QueryInstance menu = Inst(an, "SELECT catid, name FROM category_details WHERE locale = 'en_US'");
  QueryInstance p1 = Inst(an, "SELECT * FROM product WHERE catid = 'FISH'");
  QueryInstance p2 = Inst(an, "SELECT * FROM product WHERE catid = 'DOGS'");
  std::vector<QueryInstance> page1{menu, p1}, page2{menu, p2};
  ASSERT_TRUE(map->PutPage("/cat/FISH", page1, {}, "/cat/FISH").ok());
  ASSERT_TRUE(map->PutPage("/cat/DOGS", page2, {}, "/cat/DOGS").ok());
  EXPECT_EQ(map->GetStats().instances, 3u);
  EXPECT_EQ(map->GetStats().templates, 2u);
  EXPECT_EQ(Keys(*map, menu.IdValue()), (std::vector<std::string>{"/cat/DOGS", "/cat/FISH"}));

  std::vector<std::string> rm{"/cat/FISH"};
  ASSERT_TRUE(map->RemoveKeys(rm).ok());
  EXPECT_EQ(Keys(*map, menu.IdValue()), std::vector<std::string>{"/cat/DOGS"});
  EXPECT_EQ(Candidates(*map, "public.category_details", "locale", "en_US"),
            std::vector<InstanceId>{menu.IdValue()});
  EXPECT_EQ(map->GetInstance(p1.IdValue()), nullptr);
  EXPECT_NE(map->GetInstance(p2.IdValue()), nullptr);
  EXPECT_EQ(map->GetStats().templates, 2u);  // product shape still used by p2
  rm = {"/cat/DOGS"};
  ASSERT_TRUE(map->RemoveKeys(rm).ok());
  EXPECT_EQ(map->GetStats().instances, 0u);
  EXPECT_EQ(map->GetStats().templates, 0u);
}

TEST(SqlMapTest, FragmentParentsAreTransitive) {
  TempDir dir;
  auto map = OpenMap(dir.path());
  std::vector<QueryInstance> none;
  std::vector<std::string> c1{"/frag/menu"}, c2{"/frag/box"};
  ASSERT_TRUE(map->PutPage("/frag/menu", none, {}, "/frag/menu").ok());
  ASSERT_TRUE(map->PutPage("/frag/box", none, c1, "/frag/box").ok());
  ASSERT_TRUE(map->PutPage("/home", none, c2, "/home").ok());
  std::vector<std::string> parents;
  map->ParentsOf("/frag/menu", &parents);
  std::sort(parents.begin(), parents.end());
  EXPECT_EQ(parents, (std::vector<std::string>{"/frag/box", "/home"}));
  std::vector<std::string> rm{"/home"};
  ASSERT_TRUE(map->RemoveKeys(rm).ok());
  parents.clear();
  map->ParentsOf("/frag/menu", &parents);
  EXPECT_EQ(parents, std::vector<std::string>{"/frag/box"});
}

TEST(SqlMapTest, SurvivesRestart) {
  TempDir dir;
  Analyzer an(AnalyzerOptions{});
  QueryInstance q1 = Inst(an, "SELECT name FROM product WHERE catid = $1", {std::string("FISH")});
  QueryInstance q2 = Inst(an, "SELECT * FROM item WHERE qty > -3 AND note LIKE E'a\\nb%'");
  QueryInstance menu = Inst(an, "SELECT * FROM category_details WHERE locale = 'en_US'");
  {
    auto map = OpenMap(dir.path());
    std::vector<QueryInstance> p1{q1, menu}, p2{q2, menu};
    std::vector<std::string> children{"/frag/menu"};
    ASSERT_TRUE(map->PutPage("/cat/FISH", p1, children, "/cat/FISH").ok());
    ASSERT_TRUE(map->PutPage("/item/1", p2, {}, "/item/1").ok());
    ASSERT_TRUE(map->SetAppliedLsn(0x16B3748).ok());
  }
  auto map = OpenMap(dir.path());
  MapStats st = map->GetStats();
  EXPECT_EQ(st.pages, 2u);
  EXPECT_EQ(st.instances, 3u);
  EXPECT_EQ(st.templates, 3u);
  EXPECT_EQ(map->AppliedLsn(), 0x16B3748u);
  EXPECT_EQ(Candidates(*map, "public.product", "catid", "FISH"),
            std::vector<InstanceId>{q1.IdValue()});
  EXPECT_EQ(Unindexed(*map, "public.item"), std::vector<InstanceId>{q2.IdValue()});
  EXPECT_EQ(Keys(*map, menu.IdValue()), (std::vector<std::string>{"/cat/FISH", "/item/1"}));
  auto got = map->GetInstance(q2.IdValue());
  ASSERT_TRUE(got);
  EXPECT_EQ(got->values, q2.values);
  EXPECT_EQ(got->IdValue(), q2.IdValue());
  EXPECT_EQ(Analyzer::Explain(*got->tmpl), Analyzer::Explain(*q2.tmpl));
  std::vector<std::string> parents;
  map->ParentsOf("/frag/menu", &parents);
  EXPECT_EQ(parents, std::vector<std::string>{"/cat/FISH"});
  // Removal after restart still removes every reverse entry.
  std::vector<std::string> all{"/cat/FISH", "/item/1"};
  ASSERT_TRUE(map->RemoveKeys(all).ok());
  st = map->GetStats();
  EXPECT_EQ(st.pages + st.instances + st.templates + st.index_entries + st.unindexed_instances, 0u);
  map.reset();
  EXPECT_EQ(RawRecordCount(dir.path(), /*include_meta=*/false), 0u);
}

TEST(SqlMapTest, OpenWithoutCreateOnMissingDirIsNotFound) {
  TempDir dir;
  std::unique_ptr<SqlMap> m;
  MapOptions o;
  o.path = dir.path();
  o.create_if_missing = false;
  Status s = SqlMap::Open(o, &m);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
}

TEST(SqlMapTest, CanonicalIndexValues) {
  EXPECT_EQ(CanonicalIndexValue("007"), "7");
  EXPECT_EQ(CanonicalIndexValue("+42"), "42");
  EXPECT_EQ(CanonicalIndexValue("-0"), "f");  // 0 and false meet (one column has one type)
  EXPECT_EQ(CanonicalIndexValue("10.50"), "10.5");
  EXPECT_EQ(CanonicalIndexValue("5.0"), "5");
  EXPECT_EQ(CanonicalIndexValue(".5"), "0.5");
  EXPECT_EQ(CanonicalIndexValue("-007.10"), "-7.1");
  EXPECT_EQ(CanonicalIndexValue("TRUE"), "t");
  EXPECT_EQ(CanonicalIndexValue("t"), "t");
  EXPECT_EQ(CanonicalIndexValue("1"), "t");
  EXPECT_EQ(CanonicalIndexValue("abc   "), "abc");
  EXPECT_EQ(CanonicalIndexValue("FI-SW-01"), "fi-sw-01");
  EXPECT_EQ(CanonicalIndexValue("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}"),
            CanonicalIndexValue("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
  EXPECT_FALSE(CanonicalIndexValue("2024-01-01"));
  EXPECT_FALSE(CanonicalIndexValue("2024-01-01 10:00:00+00"));
  EXPECT_FALSE(CanonicalIndexValue("1e5"));
  EXPECT_FALSE(CanonicalIndexValue("today"));
  EXPECT_FALSE(CanonicalIndexValue("$1.00"));
  EXPECT_FALSE(CanonicalIndexValue("\\x41"));
  EXPECT_FALSE(CanonicalIndexValue(std::string(2000, 'x')));
  for (const char* w : {"true", "Yes", "ON", "t", "y", "tr", "tru", "ye"})
    EXPECT_EQ(CanonicalIndexValue(w), "t") << w;
  for (const char* w : {"false", "No", "OFF", "f", "n", "fa", "fal", "fals", "of"})
    EXPECT_EQ(CanonicalIndexValue(w), "f") << w;
  for (const char* w : {"today", "Tomorrow", "yesterday", "NOW", "epoch", "infinity", "-Infinity",
                        "+infinity", "allballs", " now "})
    EXPECT_FALSE(CanonicalIndexValue(w)) << w;
  for (const char* w : {"truee", "yess", "nowhere", "epochs", "allballs2", "offset", "o"})
    EXPECT_EQ(CanonicalIndexValue(w), std::string(w)) << w;
}

TEST(SqlMapTest, NonCanonicalLiteralsMeetRowValues) {
  TempDir dir;
  auto map = OpenMap(dir.path());
  Analyzer an(AnalyzerOptions{});
  QueryInstance q = Inst(an, "SELECT * FROM orders WHERE orderid = '007'");
  QueryInstance d = Inst(an, "SELECT * FROM orders WHERE orderdate = '2024-1-1'");
  QueryInstance n = Inst(an, "SELECT * FROM orders WHERE userid = NULL");
  std::vector<QueryInstance> inst{q, d, n};
  ASSERT_TRUE(map->PutPage("k", inst, {}, "/k").ok());
  // The row's text form (pgoutput): 7.
  EXPECT_EQ(Candidates(*map, "public.orders", "orderid", "7"),
            std::vector<InstanceId>{q.IdValue()});
  // A date literal is not indexable: it waits in unindexed(table).
  auto un = Unindexed(*map, "public.orders");
  EXPECT_EQ(un.size(), 2u);
  EXPECT_TRUE(std::count(un.begin(), un.end(), d.IdValue()));
  EXPECT_TRUE(std::count(un.begin(), un.end(), n.IdValue()));
  // A row value that is not indexable returns everything indexed on the column.
  EXPECT_EQ(Candidates(*map, "public.orders", "orderid", "12:00"),
            std::vector<InstanceId>{q.IdValue()});
}

TEST(SqlMapTest, IndexPrefersKeyLikeConjunct) {
  TempDir dir;
  auto map = OpenMap(dir.path());
  Analyzer an(AnalyzerOptions{});
  QueryInstance q =
      Inst(an, "SELECT name FROM category_details WHERE locale = 'en_US' AND catid = 'FISH'");
  std::vector<QueryInstance> inst{q};
  ASSERT_TRUE(map->PutPage("k", inst, {}, "/k").ok());
  EXPECT_EQ(Candidates(*map, "public.category_details", "catid", "FISH"),
            std::vector<InstanceId>{q.IdValue()});
  EXPECT_TRUE(Candidates(*map, "public.category_details", "locale", "en_US").empty());
  std::vector<std::string> cols;
  map->IndexedColumns("public.category_details", &cols);
  EXPECT_EQ(cols, std::vector<std::string>{"catid"});
}

TEST(SqlMapTest, CoarseInstancesAreUnindexed) {
  TempDir dir;
  auto map = OpenMap(dir.path());
  Analyzer an(AnalyzerOptions{});
  QueryInstance q = Inst(an, "SELECT * FROM a WHERE id = 1 UNION SELECT * FROM b WHERE id = 2");
  std::vector<QueryInstance> inst{q};
  ASSERT_TRUE(map->PutPage("k", inst, {}, "/k").ok());
  EXPECT_TRUE(Candidates(*map, "public.a", "id", "1").empty());
  EXPECT_EQ(Unindexed(*map, "public.a"), std::vector<InstanceId>{q.IdValue()});
  EXPECT_EQ(Unindexed(*map, "public.b"), std::vector<InstanceId>{q.IdValue()});

  // An IN list too long to index waits in unindexed(table) too.
  std::string sql = "SELECT * FROM c WHERE id IN (0";
  for (int i = 1; i < 1500; ++i) sql += "," + std::to_string(i);
  QueryInstance big = Inst(an, sql + ")");
  std::vector<QueryInstance> inst2{big};
  ASSERT_TRUE(map->PutPage("k2", inst2, {}, "/k2").ok());
  EXPECT_EQ(Unindexed(*map, "public.c"), std::vector<InstanceId>{big.IdValue()});
  EXPECT_TRUE(Candidates(*map, "public.c", "id", "7").empty());
}

// What a batch lookup must return: each probe's single lookup, concatenated,
// and the size of `out` after each (both appended after what `out` held).
void ExpectBatchEqualsSingles(const SqlMap& m, const std::vector<ValueProbe>& probes) {
  std::vector<InstanceId> want{42};  // appended to, not replaced
  std::vector<size_t> want_ends{7};
  for (const auto& p : probes) {
    m.CandidatesByValue(p.table, p.column, p.value, &want);
    want_ends.push_back(want.size());
  }
  std::vector<InstanceId> got{42};
  std::vector<size_t> got_ends{7};
  m.CandidatesByValues(probes, &got, &got_ends);
  EXPECT_EQ(got, want);
  EXPECT_EQ(got_ends, want_ends);
  // Without `ends`, the same candidates.
  std::vector<InstanceId> plain{42};
  m.CandidatesByValues(probes, &plain, nullptr);
  EXPECT_EQ(plain, want);
}

TEST(SqlMapTest, BatchLookupEqualsSingleLookups) {
  TempDir dir;
  auto map = OpenMap(dir.path());
  Analyzer an(AnalyzerOptions{});
  QueryInstance cat = Inst(an, "SELECT name FROM product WHERE catid = $1", {std::string("FISH")});
  // Two instances on one key (item.productid = 'A') and an IN list adding a third.
  QueryInstance a1 = Inst(an, "SELECT * FROM item WHERE productid = $1", {std::string("A")});
  QueryInstance a2 = Inst(an, "SELECT itemid FROM item WHERE productid = $1", {std::string("A")});
  QueryInstance in = Inst(an, "SELECT * FROM item WHERE productid IN ('A', 'B') AND qty > 0");
  QueryInstance num = Inst(an, "SELECT * FROM inventory WHERE qty = 7");
  std::vector<QueryInstance> inst{cat, a1, a2, in, num};
  ASSERT_TRUE(map->PutPage("GET /mixed", inst, {}, "/mixed").ok());
  std::vector<InstanceId> on_a;
  map->CandidatesByValue("public.item", "productid", "A", &on_a);
  ASSERT_EQ(on_a.size(), 3u) << "multi-instance key";

  std::vector<ValueProbe> probes = {
      {"public.product", "catid", "FISH"},         // hit
      {"public.product", "catid", "DOGS"},         // miss
      {"public.item", "productid", "A"},           // three instances
      {"public.item", "productid", "B"},           // the IN list
      {"public.item", "productid", "A"},           // duplicate probe
      {"public.item", "productid", "1999-01-08"},  // not indexable: all on (item, productid)
      {"public.inventory", "qty", "007"},          // canonicalised to 7
      {"public.inventory", "qty", "1e5"},          // not indexable
      {"public.nosuch", "id", "1"},                // unknown table
      {"public.nosuch", "id", "12:00"},            // not indexable, unknown table
      {"public.product", "catid", "fish"},         // case-folded hit
  };
  ExpectBatchEqualsSingles(*map, probes);
  std::vector<InstanceId> all;
  std::vector<size_t> ends;
  map->CandidatesByValues(probes, &all, &ends);
  ASSERT_EQ(ends.size(), probes.size());
  EXPECT_EQ(ends[0], 1u);
  EXPECT_EQ(ends[1], 1u) << "a miss adds nothing";
  EXPECT_EQ(ends[5] - ends[4], 3u) << "a non-indexable value yields every instance on the column";

  // An empty batch appends nothing.
  std::vector<InstanceId> none{42};
  std::vector<size_t> none_ends{7};
  map->CandidatesByValues({}, &none, &none_ends);
  EXPECT_EQ(none, std::vector<InstanceId>{42});
  EXPECT_EQ(none_ends, std::vector<size_t>{7});
}

TEST(SqlMapTest, LargeBatchLookupEqualsSingleLookups) {
  // More probes than the lookups kept in flight at once, mixed hits and
  // misses, with the index grown past its first resize.
  TempDir dir;
  auto map = OpenMap(dir.path());
  Analyzer an(AnalyzerOptions{});
  for (int p = 0; p < 400; ++p) {
    std::vector<QueryInstance> inst{
        Inst(an, "SELECT qty FROM inventory WHERE itemid = $1", {"EST-" + std::to_string(p)}),
        Inst(an, "SELECT * FROM item WHERE productid = $1", {"P-" + std::to_string(p % 37)})};
    ASSERT_TRUE(map->PutPage("GET /item/" + std::to_string(p), inst, {}, "/i").ok());
  }
  std::mt19937 rng(3);
  std::vector<std::string> values;
  std::vector<ValueProbe> probes;
  for (int i = 0; i < 157; ++i) {
    switch (rng() % 4) {
      case 0:
        values.push_back("EST-" + std::to_string(rng() % 500));
        break;
      case 1:
        values.push_back("P-" + std::to_string(rng() % 50));
        break;
      case 2:
        values.push_back(" EST-" + std::to_string(rng() % 400) + " ");
        break;
      default:
        values.push_back("2020-01-0" + std::to_string(1 + rng() % 9));
        break;
    }
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const char* column = values[i].find("P-") == 0 ? "productid" : "itemid";
    const char* table = values[i].find("P-") == 0 ? "public.item" : "public.inventory";
    probes.push_back({table, column, values[i]});
  }
  for (size_t n :
       {size_t{1}, size_t{4}, size_t{15}, size_t{16}, size_t{17}, size_t{33}, probes.size()}) {
    SCOPED_TRACE(n);
    ExpectBatchEqualsSingles(*map, std::vector<ValueProbe>(probes.begin(), probes.begin() + n));
  }
  std::vector<InstanceId> got;
  map->CandidatesByValues(probes, &got, nullptr);
  EXPECT_GT(got.size(), 50u) << "the batch finds hits";
}

TEST(SqlMapTest, ChurnOf100kKeysReturnsToEmpty) {
  TempDir dir;
  auto map = OpenMap(dir.path());
  Analyzer an(AnalyzerOptions{});
  QueryInstance menu = Inst(an, "SELECT catid, name FROM category_details WHERE locale = 'en_US'");
  const int kKeys = 100000;
  std::vector<std::string> keys;
  keys.reserve(kKeys);
  for (int i = 0; i < kKeys; ++i) {
    std::string id = std::to_string(i);
    std::vector<QueryInstance> inst{
        menu,
        Inst(an, "SELECT * FROM item WHERE itemid = $1", {id}),
        Inst(an, "SELECT * FROM item_details WHERE itemid IN ($1, $2) AND locale = 'en_US'",
             {id, std::to_string(i + 1)}),
        Inst(an, "SELECT count(*) FROM lineitem WHERE quantity > " + std::to_string(i % 50)),
    };
    std::vector<std::string> children{"/frag/menu", "/frag/item/" + std::to_string(i % 100)};
    keys.push_back("GET /item/" + id);
    ASSERT_TRUE(map->PutPage(keys.back(), inst, children, "/item/" + id).ok());
  }
  MapStats st = map->GetStats();
  EXPECT_EQ(st.pages, static_cast<uint64_t>(kKeys));
  EXPECT_EQ(st.instances, 1u + 2u * kKeys + 50u);
  EXPECT_EQ(Keys(*map, menu.IdValue()).size(), static_cast<size_t>(kKeys));
  // Remove in batches, in a different order from insertion.
  std::mt19937 rng(7);
  std::shuffle(keys.begin(), keys.end(), rng);
  for (size_t i = 0; i < keys.size(); i += 1000) {
    std::span<const std::string> batch(keys.data() + i, std::min<size_t>(1000, keys.size() - i));
    ASSERT_TRUE(map->RemoveKeys(batch).ok());
  }
  st = map->GetStats();
  EXPECT_EQ(st.pages, 0u);
  EXPECT_EQ(st.instances, 0u);
  EXPECT_EQ(st.templates, 0u);
  EXPECT_EQ(st.index_entries, 0u);
  EXPECT_EQ(st.unindexed_instances, 0u);
  EXPECT_TRUE(map->TablesRead().empty());
  std::vector<std::string> parents;
  map->ParentsOf("/frag/menu", &parents);
  EXPECT_TRUE(parents.empty());
  map.reset();
  EXPECT_EQ(RawRecordCount(dir.path(), /*include_meta=*/true), 0u);
}

}  // namespace
}  // namespace cacheportal::sqlmap
