// MemoryStore: LRU under a byte budget, Vary variants, erase, full-key hits.
#include "edgecache/store.h"

#include <gtest/gtest.h>

namespace cacheportal::edge {
namespace {

std::shared_ptr<const CachedObject> Obj(std::string body, std::vector<std::string> vary = {},
                                        std::string vary_values = {}) {
  auto o = std::make_shared<CachedObject>();
  o->head = "HTTP/1.1 200 OK\r\n";
  o->body = std::make_shared<const Body>(std::move(body));
  o->vary_names = std::move(vary);
  o->vary_values = std::move(vary_values);
  return o;
}

auto NoHeaders = [](std::string_view) { return std::string(); };

TEST(MemoryStore, FindsByFullKeyAndSharesTheBody) {
  MemoryStore store(1 << 20, 4);
  auto o = Obj("hello");
  ASSERT_TRUE(store.Insert("GET /a", o, nullptr));
  std::shared_ptr<const CachedObject> got;
  ASSERT_EQ(store.Lookup("GET /a", NoHeaders, &got), StoreLookup::kFound);
  EXPECT_EQ(got->body.get(), o->body.get());  // same buffer, no copy
  EXPECT_EQ(store.Lookup("GET /a ", NoHeaders, &got), StoreLookup::kAbsent);
  EXPECT_EQ(store.Stats().objects, 1u);
}

TEST(MemoryStore, EvictsLeastRecentlyUsedUnderTheBudget) {
  auto probe = Obj(std::string(1000, 'x'));
  size_t charge = probe->Charge(1);
  MemoryStore store(3 * charge, 1);
  for (std::string k : {"a", "b", "c"})
    ASSERT_TRUE(store.Insert(k, Obj(std::string(1000, 'x')), nullptr));
  std::shared_ptr<const CachedObject> got;
  ASSERT_EQ(store.Lookup("a", NoHeaders, &got), StoreLookup::kFound);
  std::vector<std::shared_ptr<const CachedObject>> evicted;
  ASSERT_TRUE(store.Insert("d", Obj(std::string(1000, 'x')), &evicted));
  EXPECT_EQ(evicted.size(), 1u);
  EXPECT_EQ(store.Lookup("b", NoHeaders, &got), StoreLookup::kAbsent);
  EXPECT_EQ(store.Lookup("a", NoHeaders, &got), StoreLookup::kFound);
  EXPECT_EQ(store.Stats().evictions, 1u);
  EXPECT_LE(store.Stats().bytes, 3 * charge);
}

TEST(MemoryStore, RefusesObjectsLargerThanAShard) {
  MemoryStore store(1000, 1);
  EXPECT_FALSE(store.Insert("k", Obj(std::string(2000, 'x')), nullptr));
  EXPECT_EQ(store.Stats().objects, 0u);
}

TEST(MemoryStore, KeepsVaryVariantsApart) {
  MemoryStore store(1 << 20, 2);
  std::vector<std::string> names{"accept-language"};
  auto en = [](std::string_view) { return std::string("en"); };
  auto fr = [](std::string_view) { return std::string("fr"); };
  ASSERT_TRUE(store.Insert("k", Obj("EN", names, MemoryStore::VariantValues(names, en)), nullptr));
  std::shared_ptr<const CachedObject> got;
  EXPECT_EQ(store.Lookup("k", fr, &got), StoreLookup::kVaryMismatch);
  ASSERT_TRUE(store.Insert("k", Obj("FR", names, MemoryStore::VariantValues(names, fr)), nullptr));
  ASSERT_EQ(store.Lookup("k", en, &got), StoreLookup::kFound);
  EXPECT_EQ(*got->body, "EN");
  ASSERT_EQ(store.Lookup("k", fr, &got), StoreLookup::kFound);
  EXPECT_EQ(*got->body, "FR");
  EXPECT_EQ(store.Stats().objects, 2u);
  EXPECT_EQ(store.Erase("k").size(), 2u);  // ejecting a key drops all its variants
  EXPECT_EQ(store.Stats().objects, 0u);
  EXPECT_EQ(store.Stats().bytes, 0u);
}

TEST(MemoryStore, EraseIfMatchesByUrl) {
  MemoryStore store(1 << 20, 8);
  for (int i = 0; i < 10; ++i) {
    auto o = std::make_shared<CachedObject>(*Obj("x"));
    o->url = (i % 2 ? "/odd/" : "/even/") + std::to_string(i);
    store.Insert("k" + std::to_string(i), o, nullptr);
  }
  auto removed = store.EraseIf(
      [](std::string_view, const CachedObject& o) { return o.url.starts_with("/odd/"); });
  EXPECT_EQ(removed.size(), 5u);
  EXPECT_EQ(store.Stats().objects, 5u);
  EXPECT_FALSE(store.Contains("k1"));
  EXPECT_TRUE(store.Contains("k2"));
}

}  // namespace
}  // namespace cacheportal::edge
