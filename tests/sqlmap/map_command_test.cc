// `cacheportal map stats|show|explain|coverage` against a real map in a temp dir.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "cli/commands.h"
#include "sqlmap/analyzer.h"
#include "sqlmap/sqlmap.h"

namespace cacheportal {
namespace {

namespace fs = std::filesystem;

int RunMap(std::vector<std::string> args, std::string* out) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ::testing::internal::CaptureStdout();
  int rc = RunMapCommand(static_cast<int>(argv.size()), argv.data());
  *out = ::testing::internal::GetCapturedStdout();
  return rc;
}

class MapCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("cp-mapcmd-test-" + std::to_string(rd()));
    path_ = (dir_ / "map").string();
    sqlmap::Analyzer an(sqlmap::AnalyzerOptions{});
    std::unique_ptr<sqlmap::SqlMap> map;
    sqlmap::MapOptions o;
    o.path = path_;
    ASSERT_TRUE(sqlmap::SqlMap::Open(o, &map).ok());
    for (const char* id : {"FI-SW-01", "K9-BD-01"}) {
      std::vector<sqlmap::QueryInstance> inst{
          an.Instantiate("SELECT * FROM item WHERE productid = $1", {std::string(id)}).value(),
          an.Instantiate("SELECT id FROM a UNION SELECT id FROM b", {}).value()};
      ASSERT_TRUE(
          map->PutPage(std::string("GET /product/") + id, inst, {}, std::string("/product/") + id)
              .ok());
    }
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(MapCommandTest, StatsShowCoverage) {
  std::string out;
  EXPECT_EQ(RunMap({"map", "stats", "--path", path_}, &out), kExitOk);
  EXPECT_NE(out.find("pages:               2"), std::string::npos) << out;
  EXPECT_NE(out.find("public.item"), std::string::npos) << out;
  EXPECT_EQ(RunMap({"map", "show", "GET /product/FI-SW-01", "--path", path_}, &out), kExitOk);
  EXPECT_NE(out.find("productid = 'fi-sw-01'"), std::string::npos) << out;
  EXPECT_EQ(RunMap({"map", "show", "nope", "--path", path_}, &out), kExitFailure);
  EXPECT_EQ(RunMap({"map", "coverage", "--path=" + path_}, &out), kExitOk);
  EXPECT_NE(out.find("/product/{id}"), std::string::npos) << out;
  EXPECT_NE(out.find("set operation"), std::string::npos) << out;
}

TEST_F(MapCommandTest, ExplainNeedsNoMapAndUsageErrors) {
  std::string out;
  EXPECT_EQ(RunMap({"map", "explain", "SELECT name FROM product WHERE catid = 'FISH'"}, &out),
            kExitOk);
  EXPECT_NE(out.find("table public.product"), std::string::npos) << out;
  EXPECT_NE(out.find("catid = $1"), std::string::npos) << out;
  EXPECT_NE(out.find("$1='FISH'"), std::string::npos) << out;
  EXPECT_EQ(RunMap({"map", "--help"}, &out), kExitOk);
  EXPECT_NE(out.find("coverage"), std::string::npos);
  EXPECT_EQ(RunMap({"map"}, &out), kExitUsage);
  EXPECT_EQ(RunMap({"map", "frobnicate"}, &out), kExitUsage);
  EXPECT_EQ(RunMap({"map", "explain"}, &out), kExitUsage);
  EXPECT_EQ(RunMap({"map", "stats", "--bogus"}, &out), kExitUsage);
  EXPECT_EQ(RunMap({"map", "stats", "--config", (dir_ / "missing.yaml").string()}, &out),
            kExitConfig);
  EXPECT_EQ(RunMap({"map", "stats", "--path", (dir_ / "nothing-here").string()}, &out),
            kExitFailure);
}

}  // namespace
}  // namespace cacheportal
