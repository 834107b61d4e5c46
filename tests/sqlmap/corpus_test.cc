// A corpus of real-world statements (tests/sqlmap/corpus.sql): none crashes
// the analyser, each yields a precise template or a flagged one with a
// reason, and each lands in the precision class its section expects.
// Entries are separated by blank lines; `--@ <class>` lines start a section.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "sqlmap/analyzer.h"
#include "tests/support/test_env.h"

namespace cacheportal::sqlmap {
namespace {

struct Entry {
  std::string expect;
  std::string sql;
  int line = 0;
};

std::vector<Entry> LoadCorpus() {
  std::ifstream in(std::string(cacheportal::testing::kSourceDir) + "/tests/sqlmap/corpus.sql");
  EXPECT_TRUE(in.good());
  std::vector<Entry> out;
  std::string expect = "precise";
  std::string line, cur;
  int lineno = 0, start = 0;
  auto flush = [&] {
    if (!cur.empty()) out.push_back({expect, cur, start});
    cur.clear();
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (line.rfind("--@ ", 0) == 0) {
      flush();
      expect = line.substr(4);
      continue;
    }
    if (line.empty()) {
      flush();
      continue;
    }
    if (cur.empty())
      start = lineno;
    else
      cur += "\n";
    cur += line;
  }
  flush();
  return out;
}

int MaxParam(const QueryTemplate& t) {
  int m = 0;
  for (int p : t.slot_param) m = std::max(m, p);
  return m;
}

TEST(SqlCorpusTest, EveryStatementYieldsAPreciseOrFlaggedTemplate) {
  std::vector<Entry> corpus = LoadCorpus();
  ASSERT_GE(corpus.size(), 300u);
  AnalyzerOptions o;
  o.logging_tables = {"public.access_log"};
  Analyzer an(o);
  std::map<std::string, int> counts;
  for (const Entry& e : corpus) {
    SCOPED_TRACE("corpus.sql:" + std::to_string(e.line) + ": " + e.sql);
    counts[e.expect]++;
    auto r = an.Analyze(e.sql);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const QueryTemplate& t = **r;
    if (t.precision == Precision::kPrecise) {
      EXPECT_EQ(t.flags & kCoarseFlags, 0u) << Analyzer::Explain(t);
    } else {
      EXPECT_FALSE(t.coarse_reason.empty()) << Analyzer::Explain(t);
    }
    if (e.expect == "precise") {
      EXPECT_EQ(t.precision, Precision::kPrecise) << Analyzer::Explain(t);
      EXPECT_TRUE(t.read_only) << Analyzer::Explain(t);
    } else if (e.expect == "coarse") {
      EXPECT_EQ(t.precision, Precision::kCoarse) << Analyzer::Explain(t);
      EXPECT_TRUE(t.read_only) << Analyzer::Explain(t);
    } else if (e.expect == "none") {
      EXPECT_EQ(t.precision, Precision::kNone) << Analyzer::Explain(t);
    } else if (e.expect == "write") {
      EXPECT_FALSE(t.read_only) << Analyzer::Explain(t);
      EXPECT_TRUE(t.flags & kFlagWrite) << Analyzer::Explain(t);
    } else if (e.expect == "utility") {
      EXPECT_TRUE(t.flags & kFlagUtility) << Analyzer::Explain(t);
      EXPECT_TRUE(t.read_only);
      EXPECT_TRUE(t.tables.empty());
    } else {
      ADD_FAILURE() << "unknown section " << e.expect;
    }
    // Every predicate slot exists; every table name is schema-qualified.
    for (const auto& tr : t.tables) {
      EXPECT_NE(tr.table.find('.'), std::string::npos) << tr.table;
    }
    // Instantiation works with values for every $n and is deterministic.
    std::vector<std::optional<std::string>> params;
    for (int i = 1; i <= MaxParam(t); ++i) params.push_back(std::to_string(i));
    auto a = an.Instantiate(e.sql, params);
    auto b = an.Instantiate(e.sql, params);
    ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString();
    EXPECT_EQ(a->values.size(), static_cast<size_t>(a->tmpl->num_slots));
    EXPECT_EQ(a->Id(), b->Id());
    EXPECT_FALSE(Analyzer::Explain(t).empty());
  }
  for (const auto& [k, n] : counts) std::printf("corpus: %-8s %d\n", k.c_str(), n);
}

TEST(SqlCorpusTest, PrefixesOfEveryStatementNeverCrash) {
  // Truncated statements (a proxy cut mid-message, a broken client) must
  // yield a template or InvalidArgument, never a crash or a hang.
  std::vector<Entry> corpus = LoadCorpus();
  Analyzer an(AnalyzerOptions{});
  size_t n = 0;
  for (const Entry& e : corpus) {
    for (size_t cut = 1; cut < e.sql.size(); cut += 5) {
      std::string s = e.sql.substr(0, cut);
      auto r = an.Instantiate(s, {std::string("1"), std::string("2"), std::string("3")});
      if (r.ok()) {
        EXPECT_TRUE(r->tmpl != nullptr);
      } else {
        EXPECT_TRUE(r.status().IsInvalidArgument()) << s;
      }
      ++n;
    }
  }
  EXPECT_GT(n, 1000u);
}

}  // namespace
}  // namespace cacheportal::sqlmap
