#include "sniffer/sql_scan.h"

#include <gtest/gtest.h>

#include "sniffer/statement_cache.h"

namespace cacheportal::sniffer {
namespace {

std::vector<SessionCommandKind> Kinds(std::string_view sql) {
  std::vector<SessionCommandKind> out;
  for (const auto& c : ScanSessionCommands(sql)) out.push_back(c.kind);
  return out;
}

TEST(SqlScan, OrdinaryStatementsAreNotSessionCommands) {
  EXPECT_TRUE(ScanSessionCommands("SELECT * FROM t WHERE a = 'begin'").empty());
  EXPECT_TRUE(ScanSessionCommands("UPDATE t SET discard = 1").empty());
  EXPECT_TRUE(ScanSessionCommands("").empty());
}

TEST(SqlScan, FindsBeginAndStartTransaction) {
  EXPECT_EQ(Kinds("BEGIN"), std::vector{SessionCommandKind::kBegin});
  EXPECT_EQ(Kinds("  begin isolation level serializable;"),
            std::vector{SessionCommandKind::kBegin});
  EXPECT_EQ(Kinds("/* c */ START TRANSACTION READ ONLY"), std::vector{SessionCommandKind::kBegin});
  EXPECT_EQ(Kinds("SELECT 1; BEGIN; SELECT 2"), std::vector{SessionCommandKind::kBegin});
}

TEST(SqlScan, FindsDeallocateAndDiscard) {
  auto c = ScanSessionCommands("DEALLOCATE PREPARE Foo");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].kind, SessionCommandKind::kDeallocate);
  EXPECT_EQ(c[0].name, "foo");
  c = ScanSessionCommands("deallocate \"P_0\"");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].name, "P_0");
  EXPECT_EQ(Kinds("DEALLOCATE ALL"), std::vector{SessionCommandKind::kDeallocateAll});
  EXPECT_EQ(Kinds("DISCARD ALL"), std::vector{SessionCommandKind::kDiscardAll});
  EXPECT_TRUE(ScanSessionCommands("DISCARD PLANS").empty());
}

TEST(SqlScan, KeywordsInsideStringsAndCommentsAreIgnored) {
  EXPECT_TRUE(ScanSessionCommands("SELECT 'x; BEGIN'").empty());
  EXPECT_TRUE(ScanSessionCommands("SELECT E'\\'; BEGIN'").empty());
  EXPECT_TRUE(ScanSessionCommands("SELECT $$; BEGIN$$").empty());
  EXPECT_TRUE(ScanSessionCommands("SELECT $q$; BEGIN $q$").empty());
  EXPECT_TRUE(ScanSessionCommands("SELECT 1 /* ; /* nested ; */ BEGIN */").empty());
  EXPECT_TRUE(ScanSessionCommands("SELECT 1 -- ; BEGIN").empty());
  EXPECT_TRUE(ScanSessionCommands("SELECT \"a;begin\" FROM t").empty());
  EXPECT_EQ(Kinds("SELECT $1; BEGIN"), std::vector{SessionCommandKind::kBegin});
}

TEST(StatementCache, EvictsLeastRecentlyUsedNamedStatement) {
  StatementCache cache(2);
  auto st = [](const char* sql) {
    auto p = std::make_shared<PreparedStatement>();
    p->sql = sql;
    return p;
  };
  cache.Put("a", st("A"));
  cache.Put("b", st("B"));
  ASSERT_TRUE(cache.Get("a"));  // a is now most recent
  cache.Put("c", st("C"));      // evicts b
  EXPECT_TRUE(cache.Get("a"));
  EXPECT_FALSE(cache.Get("b"));
  EXPECT_EQ(cache.Get("c")->sql, "C");
  EXPECT_EQ(cache.evictions(), 1u);
}

TEST(StatementCache, UnnamedStatementHasItsOwnSlot) {
  StatementCache cache(1);
  auto p = std::make_shared<PreparedStatement>();
  p->sql = "U";
  cache.Put("", p);
  cache.Put("x", std::make_shared<PreparedStatement>());
  cache.Put("y", std::make_shared<PreparedStatement>());
  EXPECT_EQ(cache.Get("")->sql, "U");
  cache.Erase("");
  EXPECT_FALSE(cache.Get(""));
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace cacheportal::sniffer
