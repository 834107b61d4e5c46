// RulesReloader: CheckNow() picks up a changed file; a broken file keeps the
// previous rules live and is counted and reported.
#include "differentiator/rules_reloader.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "tests/support/test_env.h"

namespace cacheportal::differentiator {
namespace {

constexpr const char* kV1 =
    "version: 1\n"
    "rules:\n"
    "  - name: catalog\n"
    "    match: {path: \"/product/*\"}\n"
    "    action: cache\n";
constexpr const char* kV2 =
    "version: 1\n"
    "rules:\n"
    "  - name: catalog\n"
    "    match: {path: \"/product/*\"}\n"
    "    action: pass\n"
    "  - name: items\n"
    "    match: {path: /frag/items}\n"
    "    action: cache\n"
    "    key: {query: [product]}\n";
constexpr const char* kBroken =
    "version: 1\n"
    "rules:\n"
    "  - name: catalog\n"
    "    match: {path: \"/product/*\"}\n"
    "    action: sometimes\n";

class RulesReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::string(testing::kBuildDir) + "/differentiator_reloader_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml";
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void Write(const char* text) { std::ofstream(path_, std::ios::trunc) << text; }
  Verdict VerdictFor(const RulesReloader& r, std::string_view target) {
    RequestView req;
    req.method = "GET";
    req.target = target;
    return r.Current()->Decide(req, 0).verdict;
  }
  std::string path_;
};

TEST_F(RulesReloaderTest, CreateFailsOnABrokenOrMissingFile) {
  auto missing = RulesReloader::Create(path_, "s");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot open"), std::string::npos);
  Write(kBroken);
  auto broken = RulesReloader::Create(path_, "s");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find(path_ + ":5:13:"), std::string::npos)
      << broken.status().message();
}

TEST_F(RulesReloaderTest, ChangedFileGivesNewRules) {
  Write(kV1);
  auto created = RulesReloader::Create(path_, "s");
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  RulesReloader& r = *created.value();
  EXPECT_EQ(VerdictFor(r, "/product/X"), Verdict::kCache);
  EXPECT_EQ(r.CheckNow(), RulesReloader::CheckOutcome::kUnchanged);
  EXPECT_EQ(r.reloads_ok(), 0u);

  std::shared_ptr<const RuleSet> old = r.Current();
  Write(kV2);
  EXPECT_EQ(r.CheckNow(), RulesReloader::CheckOutcome::kReloaded);
  EXPECT_EQ(r.reloads_ok(), 1u);
  EXPECT_EQ(r.reloads_failed(), 0u);
  EXPECT_EQ(VerdictFor(r, "/product/X"), Verdict::kPass);
  EXPECT_EQ(VerdictFor(r, "/frag/items?product=A"), Verdict::kCache);
  EXPECT_EQ(r.Current()->RuleCount(), 2u);
  // A request that took the old rules before the swap still holds them.
  RequestView req;
  req.method = "GET";
  req.target = "/product/X";
  EXPECT_EQ(old->Decide(req, 0).verdict, Verdict::kCache);
  EXPECT_EQ(r.CheckNow(), RulesReloader::CheckOutcome::kUnchanged);
}

TEST_F(RulesReloaderTest, BrokenFileKeepsOldRulesAndIsCountedOnce) {
  Write(kV1);
  auto created = RulesReloader::Create(path_, "s");
  ASSERT_TRUE(created.ok());
  RulesReloader& r = *created.value();
  std::shared_ptr<const RuleSet> before = r.Current();

  Write(kBroken);
  EXPECT_EQ(r.CheckNow(), RulesReloader::CheckOutcome::kFailed);
  EXPECT_EQ(r.Current(), before) << "the old rules stay live";
  EXPECT_EQ(VerdictFor(r, "/product/X"), Verdict::kCache);
  EXPECT_EQ(r.reloads_failed(), 1u);
  EXPECT_EQ(r.reloads_ok(), 0u);
  EXPECT_TRUE(r.last_failed());
  EXPECT_NE(r.last_error().find(path_ + ":5:13: 'rules[0].action' must be cache or pass"),
            std::string::npos)
      << r.last_error();
  // The same broken content is not retried (nor logged) on every check.
  EXPECT_EQ(r.CheckNow(), RulesReloader::CheckOutcome::kUnchanged);
  EXPECT_EQ(r.reloads_failed(), 1u);

  // The file disappearing is one more failure, still with the old rules.
  std::remove(path_.c_str());
  EXPECT_EQ(r.CheckNow(), RulesReloader::CheckOutcome::kFailed);
  EXPECT_EQ(r.reloads_failed(), 2u);
  EXPECT_EQ(r.Current(), before);

  // Fixed: loaded, error cleared.
  Write(kV2);
  EXPECT_EQ(r.CheckNow(), RulesReloader::CheckOutcome::kReloaded);
  EXPECT_EQ(r.reloads_ok(), 1u);
  EXPECT_FALSE(r.last_failed());
  EXPECT_EQ(r.last_error(), "");
  EXPECT_EQ(VerdictFor(r, "/product/X"), Verdict::kPass);
}

}  // namespace
}  // namespace cacheportal::differentiator
