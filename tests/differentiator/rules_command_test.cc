// `cacheportal rules check`: run the command function directly and assert on
// exit codes and output.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "tests/support/test_env.h"

namespace cacheportal {
namespace {

int RunRules(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return RunRulesCommand(static_cast<int>(args.size()), argv.data());
}

std::string TempFile(const std::string& name, const std::string& text) {
  std::string path = std::string(testing::kBuildDir) + "/differentiator_test_" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(RulesCommand, ShippedFileIsOk) {
  std::string file = std::string(testing::kSourceDir) + "/config/rules.yaml";
  ::testing::internal::CaptureStdout();
  int rc = RunRules({"rules", "check", file});
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(rc, kExitOk);
  EXPECT_EQ(out.rfind(file + ": OK (", 0), 0u) << out;
  EXPECT_NE(out.find(" rules)\n"), std::string::npos) << out;
}

TEST(RulesCommand, BrokenFilePrintsEveryProblemAndExitsConfigError) {
  std::string file = TempFile("broken.yaml",
                              "version: 1\n"
                              "rules:\n"
                              "  - name: a\n"
                              "    match: {path: /x, pth: 1}\n"
                              "    action: keep\n");
  ::testing::internal::CaptureStderr();
  int rc = RunRules({"rules", "check", file, "--secret", "s"});
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, kExitConfig);
  EXPECT_NE(err.find(file + ":4:23: unknown key 'rules[0].match.pth'"), std::string::npos) << err;
  EXPECT_NE(err.find(file + ":5:13: 'rules[0].action' must be cache or pass"), std::string::npos)
      << err;
}

TEST(RulesCommand, MissingFileIsAConfigError) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunRules({"rules", "check", "/nonexistent/rules.yaml"}), kExitConfig);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("cannot open"), std::string::npos);
}

TEST(RulesCommand, ExplainPrintsTheDecision) {
  std::string file = std::string(testing::kSourceDir) + "/config/rules.yaml";
  ::testing::internal::CaptureStdout();
  int rc = RunRules({"rules", "explain", file, "-H", "Cookie: _ga=1; lang=ja", "GET",
                     "/product/FI-SW-01;jsessionid=1?utm_source=x"});
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(rc, kExitOk);
  EXPECT_NE(out.find("verdict: cache\n"), std::string::npos) << out;
  EXPECT_NE(out.find("rule:    product-page\n"), std::string::npos) << out;
  EXPECT_NE(out.find("key:     GET /product/FI-SW-01 cookies[lang=ja] absent[session.locale]\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("origin:  /product/FI-SW-01\n"), std::string::npos) << out;

  ::testing::internal::CaptureStdout();
  rc = RunRules({"rules", "explain", file, "-H", "Content-Type: application/json", "--data", "[1]",
                 "POST", "/search"});
  out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(rc, kExitOk);
  EXPECT_NE(out.find("verdict: pass\n"), std::string::npos) << out;
  EXPECT_NE(out.find("reason:  JSON body is not an object\n"), std::string::npos) << out;
}

TEST(RulesCommand, UsageErrorsAndHelp) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunRules({"rules"}), kExitUsage);
  EXPECT_EQ(RunRules({"rules", "lint", "x"}), kExitUsage);
  EXPECT_EQ(RunRules({"rules", "check"}), kExitUsage);
  EXPECT_EQ(RunRules({"rules", "check", "a", "b"}), kExitUsage);
  EXPECT_EQ(RunRules({"rules", "check", "a", "--secret"}), kExitUsage);
  EXPECT_EQ(RunRules({"rules", "check", "a", "--frobnicate"}), kExitUsage);
  EXPECT_EQ(RunRules({"rules", "check", "a", "-H", "X: 1"}), kExitUsage) << "explain only";
  EXPECT_EQ(RunRules({"rules", "explain", "a", "GET"}), kExitUsage);
  EXPECT_EQ(RunRules({"rules", "explain", "a", "-H", "nocolon", "GET", "/"}), kExitUsage);
  EXPECT_EQ(RunRules({"rules", "explain", "a", "--now", "soon", "GET", "/"}), kExitUsage);
  ::testing::internal::GetCapturedStderr();
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(RunRules({"rules", "--help"}), kExitOk);
  EXPECT_NE(::testing::internal::GetCapturedStdout().find("usage: cacheportal rules check"),
            std::string::npos);
}

}  // namespace
}  // namespace cacheportal
