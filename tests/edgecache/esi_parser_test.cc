// EsiParser: instructions, tolerance, and chunk-split independence.
#include "edgecache/esi_parser.h"

#include <gtest/gtest.h>

namespace cacheportal::edge {
namespace {

// Renders instructions as "text|{src}|text" for compact comparisons.
std::string Render(std::string_view body, const EsiParser& p) {
  std::string out;
  for (const auto& i : p.instructions()) {
    if (i.kind == EsiInstruction::Kind::kVerbatim)
      out += body.substr(i.offset, i.length);
    else
      out += "{" + i.src + "}";
  }
  return out;
}

std::string Parse(std::string_view body, size_t* errors = nullptr) {
  EsiParser p;
  p.Feed(body);
  p.Finish();
  if (errors) *errors = p.errors().size();
  return Render(body, p);
}

TEST(EsiParser, IncludesBecomeInstructions) {
  size_t errors = 0;
  EXPECT_EQ(
      Parse("<p><esi:include src=\"/frag/a\"/>-<esi:include src='/b?x=1&amp;y=2' /></p>", &errors),
      "<p>{/frag/a}-{/b?x=1&y=2}</p>");
  EXPECT_EQ(errors, 0u);
}

TEST(EsiParser, RemoveCommentAndEsiCommentBlocks) {
  EXPECT_EQ(Parse("a<esi:remove>fallback</esi:remove>b<esi:comment text=\"x\"/>c"), "abc");
  EXPECT_EQ(Parse("a<!--esi <esi:include src=\"/f\"/> -->b"), "a {/f} b");
}

TEST(EsiParser, PlainHtmlIsVerbatim) {
  std::string html = "<html><!-- c --><e>a-b</e><es>x</es><esi</html>";
  size_t errors = 0;
  EXPECT_EQ(Parse(html, &errors), html);
  EXPECT_EQ(errors, 0u);
}

TEST(EsiParser, BadMarkupIsCountedAndKept) {
  size_t errors = 0;
  EXPECT_EQ(Parse("x<esi:include/>y<esi:bogus/>z</esi:nope>", &errors),
            "xy<esi:bogus/>z</esi:nope>");
  EXPECT_EQ(errors, 3u);
  EXPECT_EQ(Parse("x<esi:include src=\"/a\"", &errors), "x<esi:include src=\"/a\"");
  EXPECT_EQ(errors, 1u);
  EXPECT_EQ(Parse("x<esi:remove>never closed", &errors), "x");
  EXPECT_EQ(errors, 1u);
}

TEST(EsiParser, AnyChunkSplitGivesTheSameResult) {
  const std::string body =
      "<h1>t</h1><esi:include src=\"/frag/a\"/><!--esi <b><esi:include src='/c'/></b> -->"
      "<esi:remove>no</esi:remove>-tail-<esi:comment text='z'/>end";
  const std::string whole = Parse(body);
  ASSERT_EQ(whole, "<h1>t</h1>{/frag/a} <b>{/c}</b> -tail-end");
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    EsiParser p;
    p.Feed(std::string_view(body).substr(0, cut));
    p.Feed(std::string_view(body).substr(cut));
    p.Finish();
    EXPECT_EQ(Render(body, p), whole) << "cut at " << cut;
    EXPECT_TRUE(p.errors().empty());
  }
  EsiParser bytes;  // one byte at a time
  for (char c : body) bytes.Feed(std::string_view(&c, 1));
  bytes.Finish();
  EXPECT_EQ(Render(body, bytes), whole);
}

}  // namespace
}  // namespace cacheportal::edge
