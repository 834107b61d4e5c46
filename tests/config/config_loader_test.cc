#include "config/config_loader.h"

#include <gtest/gtest.h>

#include "tests/support/test_env.h"

namespace cacheportal {
namespace {

TEST(ConfigLoader, ShippedFileLoadsWithDocumentedDefaults) {
  auto c = LoadConfigFile(std::string(testing::kSourceDir) + "/config/cacheportal.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->edge.listen_port, 8080);
  EXPECT_EQ(c->edge.admin_port, 8090);
  EXPECT_EQ(c->store.listen_port, 8081);
  EXPECT_EQ(c->sniffer.listen_port, 6433);
  EXPECT_EQ(c->sniffer.upstream_port, 55432);
}

TEST(ConfigLoader, EmptyFileGivesDefaults) {
  auto c = LoadConfigText("", "empty.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->store.database, c->common.database);
}

TEST(ConfigLoader, UnknownKeyNamesFileLineAndPath) {
  auto c = LoadConfigText("edge:\n  listen_port: 8080\n  prot: 1\n", "x.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().IsInvalidArgument());
  EXPECT_NE(c.status().message().find("x.yaml:3:3: unknown key 'edge.prot'"), std::string::npos)
      << c.status().message();
}

TEST(ConfigLoader, WrongTypesAreReportedAllAtOnce) {
  auto c = LoadConfigText("edge:\n  listen_port: eighty\nstore:\n  threads: [1]\n", "x.yaml");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("x.yaml:2:16: 'edge.listen_port' must be a port number"), std::string::npos)
      << m;
  EXPECT_NE(m.find("x.yaml:4:12: 'store.threads' must be an integer"), std::string::npos) << m;
}

TEST(ConfigLoader, SyntaxErrorHasPosition) {
  auto c = LoadConfigText("edge:\n  listen_port: [8080\n", "x.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("x.yaml:"), std::string::npos);
  EXPECT_NE(c.status().message().find("YAML syntax error"), std::string::npos);
}

TEST(ConfigLoader, InvalidEnumValue) {
  auto c = LoadConfigText("invalidator:\n  join_mode: maybe\n", "x.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("x.yaml:2:14: 'invalidator.join_mode' must be poll or "
                                      "conservative"),
            std::string::npos)
      << c.status().message();
}

TEST(ConfigLoader, OutOfRangeNumberNamesItsPosition) {
  auto c = LoadConfigText("sniffer:\n  poll_microseconds: -5\n", "x.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(
                "x.yaml:2:22: 'sniffer.poll_microseconds' must be between 0 and 100000"),
            std::string::npos)
      << c.status().message();
  auto ok = LoadConfigText("sniffer:\n  poll_microseconds: 50\n", "y.yaml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->sniffer.poll_microseconds, 50);
}

TEST(ConfigLoader, MissingFileIsAnError) {
  auto c = LoadConfigFile("/nonexistent/cacheportal.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("cannot open file"), std::string::npos);
}

TEST(ConfigLoader, SectionMustBeAMap) {
  auto c = LoadConfigText("edge: 5\n", "x.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("x.yaml:1:7: 'edge' must be a mapping"), std::string::npos)
      << c.status().message();
}

}  // namespace
}  // namespace cacheportal
