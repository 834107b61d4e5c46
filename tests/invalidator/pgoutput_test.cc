#include "invalidator/pgoutput.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/pg.h"
#include "tests/support/pg_test_db.h"

namespace cacheportal::invalidator {
namespace {

ColumnValue Text(std::string s) { return {ColumnValue::Kind::kText, std::move(s)}; }
ColumnValue Null() { return {ColumnValue::Kind::kNull, {}}; }
ColumnValue Toast() { return {ColumnValue::Kind::kUnchangedToast, {}}; }

std::vector<PgOutputMessage> SampleMessages() {
  RelationMessage rel{
      16388,
      "public",
      "item",
      'f',
      {{true, "id", 23, -1}, {false, "name", 25, -1}, {false, "price", 1700, 655366}}};
  return {
      BeginMessage{0x1573AE8, 785000000000LL, 739},
      CommitMessage{0, 0x1573AE8, 0x1573B18, 785000000123LL},
      OriginMessage{0xABCDEF, "src1"},
      rel,
      TypeMessage{90001, "public", "mood"},
      InsertMessage{16388, {{Text("1"), Text("one"), Null()}}},
      UpdateMessage{16388, 0, {}, {{Text("1"), Text("uno"), Toast()}}},
      UpdateMessage{16388, 'K', {{Text("2"), Null(), Null()}}, {{Text("20"), Text("two"), Null()}}},
      UpdateMessage{16388,
                    'O',
                    {{Text("1"), Text("a"), Text("9.50")}},
                    {{Text("1"), Text("b"), Text("9.50")}}},
      DeleteMessage{16388, 'K', {{Text("20"), Null(), Null()}}},
      DeleteMessage{16388, 'O', {{Text("1"), Text("b"), Text("")}}},
      TruncateMessage{3, {16388, 16395}},
      LogicalMessage{false, 0x99, "pfx", std::string("hello\0bytes", 11)},
      InsertMessage{16388, {{{ColumnValue::Kind::kBinary, std::string("\x00\x00\x00\x01", 4)}}}},
  };
}

TEST(PgOutput, EveryMessageRoundTrips) {
  for (const auto& m : SampleMessages()) {
    std::string bytes = EncodePgOutput(m);
    PgOutputMessage back;
    Status s = DecodePgOutput(bytes, &back);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(back == m) << "type " << bytes[0];
  }
}

TEST(PgOutput, EveryTruncationIsCorruptionNeverACrash) {
  for (const auto& m : SampleMessages()) {
    std::string bytes = EncodePgOutput(m);
    for (size_t len = 0; len < bytes.size(); ++len) {
      // A fresh heap copy of exactly `len` bytes, so ASan sees any overread.
      std::string cut = bytes.substr(0, len);
      PgOutputMessage out;
      Status s = DecodePgOutput(cut, &out);
      EXPECT_EQ(s.code(), Status::Code::kCorruption)
          << "type " << bytes[0] << " cut at " << len << ": " << s.ToString();
    }
  }
}

TEST(PgOutput, TrailingBytesAreCorruption) {
  std::string bytes = EncodePgOutput(CommitMessage{0, 1, 2, 3}) + "x";
  PgOutputMessage out;
  Status s = DecodePgOutput(bytes, &out);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("trailing"), std::string::npos) << s.ToString();
}

TEST(PgOutput, UnknownTypesAndKindsAreCorruptionWithAReason) {
  PgOutputMessage out;
  Status s = DecodePgOutput("S\0\0\0\1\1", &out);  // stream start: proto 2 only
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("unknown message type 0x53"), std::string::npos) << s.ToString();

  std::string insert = EncodePgOutput(InsertMessage{7, {{Text("1")}}});
  insert[1 + 4 + 1 + 2] = 'z';  // the column kind byte
  s = DecodePgOutput(insert, &out);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("unknown kind byte"), std::string::npos) << s.ToString();

  std::string bad_len = EncodePgOutput(InsertMessage{7, {{Text("abc")}}});
  bad_len[1 + 4 + 1 + 2 + 1] = '\xff';  // length high byte: negative
  s = DecodePgOutput(bad_len, &out);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);

  std::string forged = EncodePgOutput(TruncateMessage{0, {1}});
  forged[1] = '\x7f';  // nrels = huge
  s = DecodePgOutput(forged, &out);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
}

TEST(PgOutput, CopyDataFraming) {
  CopyMessage m;
  std::string payload = EncodePgOutput(BeginMessage{5, 6, 7});
  std::string w = EncodeXLogData(0x10, 0x20, 0x30, payload);
  ASSERT_TRUE(DecodeCopyData(w, &m).ok());
  EXPECT_EQ(m.kind, CopyMessage::Kind::kXLogData);
  EXPECT_EQ(m.xlog.data_start, 0x10u);
  EXPECT_EQ(m.xlog.wal_end, 0x20u);
  EXPECT_EQ(m.xlog.payload, payload);

  std::string k = EncodeKeepalive(0x99, 1234, true);
  ASSERT_TRUE(DecodeCopyData(k, &m).ok());
  EXPECT_EQ(m.kind, CopyMessage::Kind::kKeepalive);
  EXPECT_EQ(m.keepalive.wal_end, 0x99u);
  EXPECT_TRUE(m.keepalive.reply_requested);

  for (const std::string& full : {w.substr(0, 25), k}) {
    for (size_t len = 0; len < full.size(); ++len) {
      std::string cut = full.substr(0, len);
      EXPECT_EQ(DecodeCopyData(cut, &m).code(), Status::Code::kCorruption) << len;
    }
  }
  EXPECT_EQ(DecodeCopyData("q123", &m).code(), Status::Code::kCorruption);

  std::string r = EncodeStandbyStatus(1, 2, 3, 4, false);
  ASSERT_EQ(r.size(), 34u);
  EXPECT_EQ(r[0], 'r');
  EXPECT_EQ(r[16], 2);  // flush, low byte
}

TEST(PgOutput, LsnText) {
  EXPECT_EQ(FormatLsn(0x16B374D848ULL), "16/B374D848");
  auto l = ParseLsn("16/B374D848");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, 0x16B374D848ULL);
  EXPECT_FALSE(ParseLsn("16").ok());
  EXPECT_FALSE(ParseLsn("/1").ok());
  EXPECT_FALSE(ParseLsn("1/x").ok());
}

// ---- a real stream, read through the SQL interface to the same decoder ----

class RealStream : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = testing::TestDatabase::Create();
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    db_.emplace(std::move(d).value());
    conn_ = db_->Connect();
    slot_ = "ps_" + db_->name();
    // The test server runs with synchronous_commit=off, and decoding only reads
    // flushed WAL: without this, a commit may not be decodable yet.
    Exec("SET synchronous_commit = on");
    Exec("CREATE TABLE t (id int PRIMARY KEY, name text, big text)");
    Exec("CREATE PUBLICATION p_test FOR TABLE t");
    Exec("SELECT pg_create_logical_replication_slot('" + slot_ + "', 'pgoutput')");
  }
  void TearDown() override {
    if (conn_) pg::Exec(conn_.get(), "SELECT pg_drop_replication_slot('" + slot_ + "')");
  }
  void Exec(const std::string& sql) {
    auto r = pg::Exec(conn_.get(), sql);
    ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  }
  std::vector<PgOutputMessage> Drain() {
    std::vector<PgOutputMessage> out;
    std::string sql = "SELECT data FROM pg_logical_slot_get_binary_changes('" + slot_ +
                      "', NULL, NULL, 'proto_version', '1', 'publication_names', 'p_test')";
    pg::ResultPtr r(PQexecParams(conn_.get(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr,
                                 /*resultFormat=*/1));
    EXPECT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      std::string_view bytes(PQgetvalue(r.get(), i, 0), PQgetlength(r.get(), i, 0));
      PgOutputMessage m;
      Status s = DecodePgOutput(bytes, &m);
      EXPECT_TRUE(s.ok()) << s.ToString();
      out.push_back(std::move(m));
    }
    return out;
  }
  template <typename T>
  std::vector<T> All(const std::vector<PgOutputMessage>& ms) {
    std::vector<T> out;
    for (const auto& m : ms)
      if (auto* p = std::get_if<T>(&m)) out.push_back(*p);
    return out;
  }

  std::optional<testing::TestDatabase> db_;
  pg::ConnPtr conn_;
  std::string slot_;
};

TEST_F(RealStream, InsertUpdateDeleteTruncateWithDefaultIdentity) {
  Exec("INSERT INTO t VALUES (1, 'one', NULL), (2, 'two', 'x')");
  Exec("UPDATE t SET name = 'uno' WHERE id = 1");  // key unchanged: no old tuple
  Exec("UPDATE t SET id = 20 WHERE id = 2");       // key changed: K tuple
  Exec("DELETE FROM t WHERE id = 20");
  Exec("TRUNCATE t");
  auto ms = Drain();

  auto rels = All<RelationMessage>(ms);
  ASSERT_FALSE(rels.empty());
  EXPECT_EQ(rels[0].nspname, "public");
  EXPECT_EQ(rels[0].relname, "t");
  EXPECT_EQ(rels[0].replica_identity, 'd');
  ASSERT_EQ(rels[0].columns.size(), 3u);
  EXPECT_TRUE(rels[0].columns[0].key);
  EXPECT_EQ(rels[0].columns[0].type_oid, 23u);
  EXPECT_FALSE(rels[0].columns[1].key);
  EXPECT_EQ(rels[0].columns[2].type_oid, 25u);

  auto ins = All<InsertMessage>(ms);
  ASSERT_EQ(ins.size(), 2u);
  EXPECT_EQ(ins[0].new_tuple.columns, (std::vector<ColumnValue>{Text("1"), Text("one"), Null()}));

  auto ups = All<UpdateMessage>(ms);
  ASSERT_EQ(ups.size(), 2u);
  EXPECT_EQ(ups[0].old_kind, 0);
  EXPECT_EQ(ups[0].new_tuple.columns[1], Text("uno"));
  EXPECT_EQ(ups[1].old_kind, 'K');
  EXPECT_EQ(ups[1].old_tuple.columns, (std::vector<ColumnValue>{Text("2"), Null(), Null()}));
  EXPECT_EQ(ups[1].new_tuple.columns[0], Text("20"));

  auto dels = All<DeleteMessage>(ms);
  ASSERT_EQ(dels.size(), 1u);
  EXPECT_EQ(dels[0].old_kind, 'K');
  EXPECT_EQ(dels[0].old_tuple.columns[0], Text("20"));

  auto truncs = All<TruncateMessage>(ms);
  ASSERT_EQ(truncs.size(), 1u);
  EXPECT_EQ(truncs[0].relids, std::vector<uint32_t>{rels[0].relid});

  auto begins = All<BeginMessage>(ms);
  auto commits = All<CommitMessage>(ms);
  ASSERT_EQ(begins.size(), 5u);
  ASSERT_EQ(commits.size(), 5u);
  for (size_t i = 0; i < commits.size(); ++i) {
    EXPECT_EQ(begins[i].final_lsn, commits[i].commit_lsn);
    EXPECT_GT(commits[i].end_lsn, commits[i].commit_lsn);
    EXPECT_EQ(begins[i].commit_time, commits[i].commit_time);
  }
}

TEST_F(RealStream, ReplicaIdentityFullSendsWholeOldRow) {
  Exec("ALTER TABLE t REPLICA IDENTITY FULL");
  Exec("INSERT INTO t VALUES (1, 'a', 'x')");
  Exec("UPDATE t SET name = 'b' WHERE id = 1");
  Exec("DELETE FROM t WHERE id = 1");
  auto ms = Drain();
  auto rels = All<RelationMessage>(ms);
  ASSERT_FALSE(rels.empty());
  EXPECT_EQ(rels.back().replica_identity, 'f');
  for (const auto& c : rels.back().columns) EXPECT_TRUE(c.key) << c.name;
  auto ups = All<UpdateMessage>(ms);
  ASSERT_EQ(ups.size(), 1u);
  EXPECT_EQ(ups[0].old_kind, 'O');
  EXPECT_EQ(ups[0].old_tuple.columns, (std::vector<ColumnValue>{Text("1"), Text("a"), Text("x")}));
  EXPECT_EQ(ups[0].new_tuple.columns, (std::vector<ColumnValue>{Text("1"), Text("b"), Text("x")}));
  auto dels = All<DeleteMessage>(ms);
  ASSERT_EQ(dels.size(), 1u);
  EXPECT_EQ(dels[0].old_kind, 'O');
  EXPECT_EQ(dels[0].old_tuple.columns[1], Text("b"));
}

TEST_F(RealStream, UnchangedExternalToastComesAsU) {
  Exec("ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL");
  Exec("INSERT INTO t VALUES (1, 'one', repeat('x', 10000))");
  Exec("UPDATE t SET name = 'uno' WHERE id = 1");
  Exec("ALTER TABLE t REPLICA IDENTITY FULL");
  Exec("UPDATE t SET name = 'eins' WHERE id = 1");
  auto ms = Drain();
  auto ups = All<UpdateMessage>(ms);
  ASSERT_EQ(ups.size(), 2u);
  // DEFAULT identity: no old tuple and the big value is not sent.
  EXPECT_EQ(ups[0].old_kind, 0);
  EXPECT_EQ(ups[0].new_tuple.columns[2], Toast());
  // FULL: the old tuple carries the value in full; the new one still says 'u'.
  EXPECT_EQ(ups[1].old_kind, 'O');
  EXPECT_EQ(ups[1].old_tuple.columns[2], Text(std::string(10000, 'x')));
  EXPECT_EQ(ups[1].new_tuple.columns[2], Toast());
}

}  // namespace
}  // namespace cacheportal::invalidator

namespace cacheportal::invalidator {
namespace {

TEST_F(RealStream, EnumColumnSendsATypeMessageFirst) {
  Exec("CREATE TYPE mood AS ENUM ('sad', 'happy')");
  Exec("CREATE TABLE m (id int PRIMARY KEY, feeling mood)");
  Exec("ALTER PUBLICATION p_test ADD TABLE m");
  Exec("INSERT INTO m VALUES (1, 'happy')");
  auto ms = Drain();
  auto types = All<TypeMessage>(ms);
  ASSERT_EQ(types.size(), 1u);
  EXPECT_EQ(types[0].name, "mood");
  EXPECT_EQ(types[0].nspname, "public");
  auto rels = All<RelationMessage>(ms);
  ASSERT_FALSE(rels.empty());
  EXPECT_EQ(rels.back().columns[1].type_oid, types[0].type_oid);
  auto ins = All<InsertMessage>(ms);
  ASSERT_EQ(ins.size(), 1u);
  EXPECT_EQ(ins[0].new_tuple.columns[1].data, "happy");
}

}  // namespace
}  // namespace cacheportal::invalidator
