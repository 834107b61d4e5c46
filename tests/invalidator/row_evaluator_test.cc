#include "invalidator/row_evaluator.h"

#include <gtest/gtest.h>

#include "tests/invalidator/template_builders.h"

namespace cacheportal::invalidator {
namespace {

using sqlmap::CompareOp;
using namespace test;  // NOLINT

EvalOptions Opts(bool bytewise = true) {
  EvalOptions o;
  o.text_order_bytewise = bytewise;
  return o;
}

TEST(CompareValues, TypedComparisonsFromText) {
  struct Case {
    uint32_t type;
    const char* row;
    const char* inst;
    std::optional<int> want;
  };
  const Case cases[] = {
      {oid::kInt4, "10", "9", 1},
      {oid::kInt4, "10", "010", 0},
      {oid::kInt4, "-5", "3", -1},
      {oid::kInt8, "9223372036854775807", "9223372036854775806", 1},
      {oid::kInt4, "5", "5.5", -1},
      {oid::kInt4, "5", "abc", std::nullopt},
      {oid::kNumeric, "19.50", "19.5", 0},
      {oid::kNumeric, "0.001", "1e-3", 0},
      {oid::kNumeric, "-0.00", "0", 0},
      {oid::kNumeric, "100", "99.999", 1},
      {oid::kNumeric, "-100", "-99.999", -1},
      {oid::kNumeric, "NaN", "1e100", 1},
      {oid::kNumeric, "-Infinity", "-1e100", -1},
      {oid::kFloat8, "0.1", "0.1", 0},
      {oid::kFloat8, "1e10", "9999999999", 1},
      {oid::kFloat8, "NaN", "NaN", 0},
      {oid::kFloat4, "0.5", "0.5", 0},
      {oid::kFloat4, "0.1", "0.1", std::nullopt},  // float4 vs float8 readings differ
      {oid::kBool, "t", "true", 0},
      {oid::kBool, "f", "yes", -1},
      {oid::kDate, "2024-01-05", "2024-01-04", 1},
      {oid::kDate, "2024-01-05", "05/01/2024", std::nullopt},
      {oid::kDate, "infinity", "2024-01-01", 1},
      {oid::kTimestamp, "2024-01-05 10:00:00", "2024-01-05T10:00:00.000001", -1},
      {oid::kTimestamp, "2024-01-05 00:00:00", "2024-01-05", 0},
      {oid::kTimestamptz, "2024-01-05 10:00:00+00", "2024-01-05 12:00:00+02:00", 0},
      {oid::kTimestamptz, "2024-01-05 10:00:00+00", "2024-01-05 10:00:00", std::nullopt},
      {oid::kText, "apple", "banana", -1},
      {oid::kBpchar, "ab  ", "ab", 0},
      {3802 /* jsonb */, "{}", "{}", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(CompareValues(c.type, c.row, c.inst, Opts()), c.want)
        << c.type << " " << c.row << " vs " << c.inst;
  }
  EXPECT_EQ(CompareValues(oid::kText, "a", "b", Opts(false)), std::nullopt)
      << "text ordering under a non-C collation is not decided";
}

TEST(EqualValues, ByType) {
  EXPECT_EQ(EqualValues(oid::kText, "FISH", "FISH"), Tri::kYes);
  EXPECT_EQ(EqualValues(oid::kText, "FISH", "fish"), Tri::kNo);
  EXPECT_EQ(EqualValues(oid::kVarchar, "a ", "a"), Tri::kNo);
  EXPECT_EQ(EqualValues(oid::kBpchar, "a ", "a"), Tri::kYes);
  EXPECT_EQ(EqualValues(oid::kNumeric, "1.50", "1.5"), Tri::kYes);
  EXPECT_EQ(EqualValues(oid::kInt4, "1", "x"), Tri::kMaybe);
  EXPECT_EQ(EqualValues(oid::kUuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
            Tri::kYes);
  EXPECT_EQ(EqualValues(12345 /* an enum */, "open", "open"), Tri::kYes);
  EXPECT_EQ(EqualValues(12345, "open", "closed"), Tri::kNo);
}

TEST(LikeMatch, Patterns) {
  EXPECT_EQ(LikeMatch("Angelfish", "%fish", false), Tri::kYes);
  EXPECT_EQ(LikeMatch("Angelfish", "%FISH", false), Tri::kNo);
  EXPECT_EQ(LikeMatch("Angelfish", "%FISH", true), Tri::kYes);
  EXPECT_EQ(LikeMatch("abc", "a_c", false), Tri::kYes);
  EXPECT_EQ(LikeMatch("abbc", "a_c", false), Tri::kNo);
  EXPECT_EQ(LikeMatch("50%", "50\\%", false), Tri::kYes);
  EXPECT_EQ(LikeMatch("500", "50\\%", false), Tri::kNo);
  EXPECT_EQ(LikeMatch("", "%", false), Tri::kYes);
  EXPECT_EQ(LikeMatch("abc", "%b%", false), Tri::kYes);
  EXPECT_EQ(LikeMatch("Ärger", "_rger", false), Tri::kMaybe);
  EXPECT_EQ(LikeMatch("Ärger", "ä%", true), Tri::kMaybe);
}

// item(itemid text key, productid text, listprice numeric, status text, attr1 text, qty int)
std::shared_ptr<const Relation> Item(char identity = 'f') {
  RelationMessage m{100,
                    "public",
                    "item",
                    identity,
                    {{true, "itemid", oid::kText, -1},
                     {identity == 'f', "productid", oid::kText, -1},
                     {identity == 'f', "listprice", oid::kNumeric, -1},
                     {identity == 'f', "status", oid::kText, -1},
                     {identity == 'f', "attr1", oid::kText, -1},
                     {identity == 'f', "qty", oid::kInt4, -1}}};
  return MakeRelation(m);
}

ColumnValue T(const char* s) { return {ColumnValue::Kind::kText, s}; }
ColumnValue N() { return {ColumnValue::Kind::kNull, {}}; }
ColumnValue U() { return {ColumnValue::Kind::kUnchangedToast, {}}; }

TupleData Tup(std::vector<ColumnValue> v) { return TupleData{std::move(v)}; }

TupleData ItemRow(const char* id, const char* product, const char* price, const char* attr1 = "big",
                  const char* qty = "10") {
  return Tup({T(id), T(product), T(price), T("P"), T(attr1), T(qty)});
}

TEST(RowChange, UpdateWithoutOldTupleKnowsOnlyTheKey) {
  auto rel = Item('d');
  auto ch = MakeUpdate(rel, 0, {}, ItemRow("EST-1", "FI-SW-01", "16.50"));
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ((*ch->old_row)[0].state, Cell::State::kValue);
  EXPECT_EQ((*ch->old_row)[2].state, Cell::State::kUnknown);
  EXPECT_EQ(ch->changed[0], Tri::kNo);
  EXPECT_EQ(ch->changed[2], Tri::kMaybe);
  EXPECT_FALSE(ch->old_row_complete());
}

TEST(RowChange, KeyTupleNullsAreUnknownNotNull) {
  auto rel = Item('d');
  auto ch = MakeDelete(rel, 'K', Tup({T("EST-1"), N(), N(), N(), N(), N()}));
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ((*ch->old_row)[1].state, Cell::State::kUnknown);
}

TEST(RowChange, UnchangedToastTakesOldValueOrStaysUnknown) {
  auto rel = Item('f');
  auto full = MakeUpdate(rel, 'O', ItemRow("EST-1", "FI", "1", "long"),
                         Tup({T("EST-1"), T("FI"), T("2"), T("P"), U(), T("10")}));
  ASSERT_TRUE(full.ok());
  EXPECT_EQ((*full->new_row)[4].text, "long");
  EXPECT_EQ(full->changed[4], Tri::kNo);
  EXPECT_EQ(full->changed[2], Tri::kYes);
  EXPECT_EQ(full->changed[1], Tri::kNo);

  auto no_old =
      MakeUpdate(Item('d'), 0, {}, Tup({T("EST-1"), T("FI"), T("2"), T("P"), U(), T("10")}));
  ASSERT_TRUE(no_old.ok());
  EXPECT_EQ((*no_old->new_row)[4].state, Cell::State::kUnknown);
  EXPECT_EQ(no_old->changed[4], Tri::kNo);
}

TEST(RowChange, WidthMismatchIsCorruption) {
  auto r = MakeInsert(Item(), Tup({T("x")}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
}

// The table of changes and verdicts.
struct EvalCase {
  const char* name;
  sqlmap::QueryInstance instance;
  RowChange change;
  Impact want;
};

RowChange Ins(TupleData t) { return MakeInsert(Item(), t).value(); }
RowChange Upd(TupleData o, TupleData n) { return MakeUpdate(Item(), 'O', o, n).value(); }
RowChange Del(TupleData o) { return MakeDelete(Item(), 'O', o).value(); }

TEST(EvaluateChange, Table) {
  // SELECT listprice, attr1 FROM item WHERE itemid = $1
  auto by_id =
      Single("public.item", Cmp("itemid", CompareOp::kEq, 0), {"itemid", "listprice", "attr1"});
  // SELECT * FROM item WHERE productid = $1
  auto by_product = Single("public.item", Cmp("productid", CompareOp::kEq, 0), {}, true);
  // SELECT itemid FROM item WHERE listprice BETWEEN $1 AND $2
  auto by_price =
      Single("public.item", Cmp("listprice", CompareOp::kBetween, 0, 1), {"itemid", "listprice"});
  // SELECT itemid FROM item WHERE productid IN ($1,$2) AND NOT (qty < $3)
  auto in_not =
      Single("public.item",
             And({Cmp("productid", CompareOp::kIn, 0, 1), Not(Cmp("qty", CompareOp::kLt, 2))}),
             {"itemid", "productid", "qty"});
  // WHERE attr1 LIKE $1 OR some_function(x)
  auto like_or_unknown =
      Single("public.item", Or({Cmp("attr1", CompareOp::kLike, 0), Unknown()}), {"attr1"});
  auto null_check = Single("public.item", Cmp("attr1", CompareOp::kIsNull), {"itemid", "attr1"});
  auto coarse = Single("public.item", Cmp("itemid", CompareOp::kEq, 0), {"itemid"});
  coarse->flags |= sqlmap::kFlagSubquery;
  auto other_table = Single("public.product", sqlmap::Predicate{}, {}, true);
  // SELECT ... FROM item i JOIN product p ON p.productid = i.productid WHERE p.category = $1
  auto join = Join("public.item", sqlmap::Predicate{}, {"itemid", "productid", "listprice"},
                   "public.product", Cmp("category", CompareOp::kEq, 0),
                   {"productid", "category", "name"}, "productid", "productid");

  std::vector<EvalCase> cases = {
      {"price update ejects the item page that reads it", Inst(by_id, {"EST-1"}),
       Upd(ItemRow("EST-1", "FI", "16.50"), ItemRow("EST-1", "FI", "18.50")), Impact::kAffected},
      {"price update does not touch another item's page", Inst(by_id, {"EST-2"}),
       Upd(ItemRow("EST-1", "FI", "16.50"), ItemRow("EST-1", "FI", "18.50")), Impact::kNone},
      {"update of an unread column ejects nothing", Inst(by_id, {"EST-1"}),
       Upd(ItemRow("EST-1", "FI", "16.50", "big", "10"),
           ItemRow("EST-1", "FI", "16.50", "big", "9")),
       Impact::kNone},
      {"SELECT * reads every column", Inst(by_product, {"FI"}),
       Upd(ItemRow("EST-1", "FI", "16.50", "big", "10"),
           ItemRow("EST-1", "FI", "16.50", "big", "9")),
       Impact::kAffected},
      {"no-op update changes nothing", Inst(by_product, {"FI"}),
       Upd(ItemRow("EST-1", "FI", "16.50"), ItemRow("EST-1", "FI", "16.50")), Impact::kNone},
      {"row moving out of the predicate (old row matches)", Inst(by_product, {"FI"}),
       Upd(ItemRow("EST-1", "FI", "16.50"), ItemRow("EST-1", "DOG", "16.50")), Impact::kAffected},
      {"row moving into the predicate (new row matches)", Inst(by_product, {"DOG"}),
       Upd(ItemRow("EST-1", "FI", "16.50"), ItemRow("EST-1", "DOG", "16.50")), Impact::kAffected},
      {"insert into another category", Inst(by_product, {"DOG"}), Ins(ItemRow("EST-9", "FI", "1")),
       Impact::kNone},
      {"insert into the category", Inst(by_product, {"FI"}), Ins(ItemRow("EST-9", "FI", "1")),
       Impact::kAffected},
      {"delete of a matching row", Inst(by_product, {"FI"}), Del(ItemRow("EST-9", "FI", "1")),
       Impact::kAffected},
      {"delete of a non-matching row", Inst(by_product, {"DOG"}), Del(ItemRow("EST-9", "FI", "1")),
       Impact::kNone},
      {"range: inside", Inst(by_price, {"10", "20"}), Ins(ItemRow("E", "FI", "19.99")),
       Impact::kAffected},
      {"range: numeric, not text, order", Inst(by_price, {"10", "20"}),
       Ins(ItemRow("E", "FI", "9.5")), Impact::kNone},
      {"IN and NOT: qty below bound excluded", Inst(in_not, {"FI", "DOG", "5"}),
       Ins(ItemRow("E", "DOG", "1", "x", "3")), Impact::kNone},
      {"IN and NOT: qty above bound included", Inst(in_not, {"FI", "DOG", "5"}),
       Ins(ItemRow("E", "DOG", "1", "x", "7")), Impact::kAffected},
      {"NOT over NULL stays not-true", Inst(in_not, {"FI", "DOG", "5"}),
       Ins(Tup({T("E"), T("DOG"), T("1"), T("P"), T("x"), N()})), Impact::kNone},
      {"IN with no match", Inst(in_not, {"FI", "DOG", "5"}),
       Ins(ItemRow("E", "CAT", "1", "x", "7")), Impact::kNone},
      {"unknown sub-expression means maybe", Inst(like_or_unknown, {"z%"}),
       Ins(ItemRow("E", "CAT", "1", "abc")), Impact::kAffected},
      {"IS NULL on a NULL", Inst(null_check, {}),
       Ins(Tup({T("E"), T("F"), T("1"), T("P"), N(), T("1")})), Impact::kAffected},
      {"IS NULL on a value", Inst(null_check, {}), Ins(ItemRow("E", "F", "1", "x")), Impact::kNone},
      {"NULL instance value never matches", Inst(by_product, {std::nullopt}),
       Ins(ItemRow("E", "FI", "1")), Impact::kNone},
      {"coarse template: any change to its table", Inst(coarse, {"EST-2"}),
       Upd(ItemRow("EST-1", "FI", "1"), ItemRow("EST-1", "FI", "2")), Impact::kAffected},
      {"template on another table", Inst(other_table, {}), Ins(ItemRow("E", "FI", "1")),
       Impact::kNone},
      {"truncate: every instance on the table", Inst(by_id, {"EST-1"}), MakeTruncate(Item()),
       Impact::kAffected},
      {"join: row passes its own predicates → join check", Inst(join, {"FISH"}),
       Ins(ItemRow("E", "FI", "1")), Impact::kJoinCheck},
      {"join: unread column update skips the check", Inst(join, {"FISH"}),
       Upd(ItemRow("E", "FI", "1", "a"), ItemRow("E", "FI", "1", "b")), Impact::kNone},
  };
  for (const auto& c : cases) {
    Evaluation ev = EvaluateChange(c.change, c.instance, Opts());
    EXPECT_EQ(ev.impact, c.want) << c.name;
  }
}

TEST(EvaluateChange, UnknownOldRowIsConservative) {
  auto by_product =
      Single("public.item", Cmp("productid", CompareOp::kEq, 0), {"productid", "listprice"});
  // DEFAULT identity, key unchanged: old productid unknown, so a page for any
  // product might have held the row.
  auto ch = MakeUpdate(Item('d'), 0, {}, ItemRow("EST-1", "DOG", "2")).value();
  EXPECT_EQ(EvaluateChange(ch, Inst(by_product, {"FI"}), Opts()).impact, Impact::kAffected);
  // DELETE with only the key: same.
  auto del = MakeDelete(Item('d'), 'K', Tup({T("EST-1"), N(), N(), N(), N(), N()})).value();
  EXPECT_EQ(EvaluateChange(del, Inst(by_product, {"FI"}), Opts()).impact, Impact::kAffected);
  // But a key predicate is decided: the key is known.
  auto by_id = Single("public.item", Cmp("itemid", CompareOp::kEq, 0), {"itemid", "listprice"});
  EXPECT_EQ(EvaluateChange(del, Inst(by_id, {"EST-2"}), Opts()).impact, Impact::kNone);
}

TEST(EvaluateChange, SchemaChangeToUnknownColumnIsConservative) {
  auto by_gone = Single("public.item", Cmp("dropped_col", CompareOp::kEq, 0), {"dropped_col"});
  auto ch = Ins(ItemRow("E", "FI", "1"));
  EXPECT_EQ(EvaluateChange(ch, Inst(by_gone, {"x"}), Opts()).impact, Impact::kAffected);
}

}  // namespace
TEST(EvaluatePredicate, NumericRangeAgreesWithTheGeneralPath) {
  // BETWEEN over plain decimals takes a single-parse path; anything else
  // (exponents, special values, NULL bounds) the general one. Both must agree.
  auto rel = Item();
  auto between = Cmp("listprice", CompareOp::kBetween, 0, 1);
  auto not_between = Cmp("listprice", CompareOp::kNotBetween, 0, 1);
  auto ge_le = And({Cmp("listprice", CompareOp::kGe, 0), Cmp("listprice", CompareOp::kLe, 1)});
  const char* prices[] = {"10", "10.00", "10.5", "9.999", "-1", "0", "20", "20.001", "1e1", "NaN"};
  const std::vector<std::pair<const char*, const char*>> bounds = {
      {"10", "20"}, {"10.000", "20.0"}, {"-5.5", "0"}, {"20", "10"}, {"1e1", "2e1"}};
  for (const char* price : prices) {
    Row row = MakeInsert(rel, ItemRow("EST-1", "FI", price)).value().new_row.value();
    for (const auto& [lo, hi] : bounds) {
      std::vector<std::optional<std::string>> v = {lo, hi};
      Tri in = EvaluatePredicate(between, *rel, row, v, {});
      EXPECT_EQ(in, EvaluatePredicate(ge_le, *rel, row, v, {}))
          << price << " in [" << lo << ", " << hi << "]";
      Tri out = EvaluatePredicate(not_between, *rel, row, v, {});
      if (in != Tri::kMaybe) EXPECT_NE(in, out) << price;
    }
  }
  std::vector<std::optional<std::string>> null_bound = {std::nullopt, "20"};
  Row row = MakeInsert(rel, ItemRow("EST-1", "FI", "15")).value().new_row.value();
  EXPECT_EQ(EvaluatePredicate(between, *rel, row, null_bound, {}), Tri::kNo) << "NULL bound";
}

}  // namespace cacheportal::invalidator
