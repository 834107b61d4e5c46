#include "common/traceparent.h"

#include <gtest/gtest.h>

namespace cacheportal {
namespace {

constexpr const char* kHeader = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceParent, ParsesValidHeader) {
  auto tp = TraceParent::Parse(kHeader);
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(tp->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(tp->flags, 1u);
  EXPECT_EQ(tp->ToHeader(), kHeader);
}

TEST(TraceParent, RejectsInvalidHeaders) {
  EXPECT_FALSE(TraceParent::Parse(""));
  EXPECT_FALSE(TraceParent::Parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  EXPECT_FALSE(TraceParent::Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  EXPECT_FALSE(TraceParent::Parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(TraceParent::Parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(TraceParent::Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"));
}

TEST(TraceParent, AcceptsFutureVersionWithExtraFields) {
  auto tp = TraceParent::Parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra");
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(TraceParent, GeneratesDistinctValidIds) {
  auto a = TraceParent::Generate(), b = TraceParent::Generate();
  EXPECT_NE(a.trace_id, b.trace_id);
  EXPECT_TRUE(TraceParent::Parse(a.ToHeader()));
  auto child = a.Child();
  EXPECT_EQ(child.trace_id, a.trace_id);
  EXPECT_NE(child.parent_id, a.parent_id);
}

TEST(RequestIdFromSql, ReadsSqlcommenterVariants) {
  const std::string id = "4bf92f3577b34da6a3ce929d0e0e4736";
  EXPECT_EQ(RequestIdFromSql(std::string("SELECT 1 /*traceparent='") + kHeader + "'*/"), id);
  EXPECT_EQ(RequestIdFromSql(std::string("SELECT 1 /*traceparent='") + kHeader + "'*/;"), id);
  EXPECT_EQ(
      RequestIdFromSql(std::string("SELECT 1 /* action='x',traceparent='") + kHeader + "' */ ;\n"),
      id);
  // Percent-encoded value and sorted keys with a route containing '/'.
  EXPECT_EQ(RequestIdFromSql("SELECT 1 /*route='%2Fitems%2F%3Aid',traceparent='00-"
                             "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/"),
            id);
  EXPECT_EQ(RequestIdFromSql("SELECT 1 /*cacheportal_request='" + id + "'*/"), id);
  TraceParent tp = TraceParent::Generate();
  EXPECT_EQ(RequestIdFromSql("SELECT 1 " + SqlCommentFor(tp)), tp.trace_id);
}

TEST(RequestIdFromSql, NoIdWhenAbsentOrInvalid) {
  EXPECT_FALSE(RequestIdFromSql("SELECT 1"));
  EXPECT_FALSE(RequestIdFromSql("SELECT 1 /* plain comment */"));
  EXPECT_FALSE(RequestIdFromSql("SELECT 1 /*traceparent='00-zz'*/"));
  EXPECT_FALSE(RequestIdFromSql("SELECT '/*traceparent=x*/' AS s"));
  EXPECT_FALSE(RequestIdFromSql("SELECT 1 /* a /* nested */ traceparent='x' */"));
}

}  // namespace
}  // namespace cacheportal
