// What the sniffer registers: statements carrying a request id, with their
// SQL and bound parameters, under the right id, before the server runs them.
#include "tests/sniffer/sniffer_test_util.h"

namespace cacheportal::testing {
namespace {

constexpr const char* kRidA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
constexpr const char* kRidB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2";
constexpr const char* kRidC = "ccccccccccccccccccccccccccccccc3";

class SnifferCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = TestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::make_unique<TestDatabase>(std::move(db).value());
    proxy_ = StartProxy(&sink_);
    ASSERT_TRUE(proxy_);
    auto c = pg::Connect(ProxyConninfo(*proxy_, db_->name()));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    conn_ = std::move(c).value();
  }
  void TearDown() override {
    conn_.reset();
    if (proxy_) {
      proxy_->Stop();
      EXPECT_EQ(proxy_->stats().protocol_errors, 0u);
    }
  }
  PGconn* c() { return conn_.get(); }

  RecordingSink sink_;
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Sniffer> proxy_;
  pg::ConnPtr conn_;
};

TEST_F(SnifferCapture, SimpleQueryIsRegisteredUnderItsRequestId) {
  std::string sql = std::string("SELECT 41 + 1 AS answer ") + Comment(kRidA);
  auto r = pg::Exec(c(), sql);
  ASSERT_TRUE(r.ok());
  EXPECT_STREQ(PQgetvalue(r->get(), 0, 0), "42");
  auto rec = sink_.Records();
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].request_id, kRidA);
  EXPECT_EQ(rec[0].statement.sql, sql);
  EXPECT_TRUE(rec[0].statement.params.empty());
  EXPECT_FALSE(rec[0].statement.in_transaction_block);
  EXPECT_GT(rec[0].statement.connection_id, 0u);
  EXPECT_EQ(proxy_->stats().statements_registered, 1u);
}

TEST_F(SnifferCapture, StatementsWithoutRequestIdAreNotRegistered) {
  ASSERT_TRUE(pg::Exec(c(), "SELECT 1").ok());
  ASSERT_TRUE(pg::ExecParams(c(), "SELECT $1::int", {"7"}).ok());
  ASSERT_TRUE(pg::Exec(c(), "SELECT 2 /* just a comment */").ok());
  ASSERT_TRUE(pg::Exec(c(), "SELECT 3 /*traceparent='00-zz-00f067aa0ba902b7-01'*/").ok());
  EXPECT_TRUE(sink_.Records().empty());
  EXPECT_EQ(proxy_->stats().statements_registered, 0u);
}

TEST_F(SnifferCapture, ExtendedQueryRegistersSqlAndBoundParameters) {
  std::string sql = std::string("SELECT $1::int + $2::int, $3::text IS NULL ") + Comment(kRidB);
  auto r = pg::ExecParams(c(), sql, {"40", "2", nullptr});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_STREQ(PQgetvalue(r->get(), 0, 0), "42");
  auto rec = sink_.Records();
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].request_id, kRidB);
  EXPECT_EQ(rec[0].statement.sql, sql);
  ASSERT_EQ(rec[0].statement.params.size(), 3u);
  EXPECT_EQ(rec[0].statement.params[0], "40");
  EXPECT_EQ(rec[0].statement.params[1], "2");
  EXPECT_FALSE(rec[0].statement.params[2].has_value());
  EXPECT_EQ(rec[0].statement.param_is_binary, (std::vector<bool>{false, false, false}));
}

TEST_F(SnifferCapture, BinaryParametersAreKeptRawAndFlagged) {
  std::string sql = std::string("SELECT $1::int4 ") + Comment(kRidA);
  const char value[4] = {0, 0, 1, 0};  // 256, network order
  const char* values[] = {value};
  int lengths[] = {4};
  int formats[] = {1};
  Oid types[] = {23};
  pg::ResultPtr r(PQexecParams(c(), sql.c_str(), 1, types, values, lengths, formats, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c());
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), "256");
  auto rec = sink_.Records();
  ASSERT_EQ(rec.size(), 1u);
  ASSERT_EQ(rec[0].statement.params.size(), 1u);
  EXPECT_EQ(*rec[0].statement.params[0], std::string(value, 4));
  EXPECT_EQ(rec[0].statement.param_is_binary, std::vector<bool>{true});
}

TEST_F(SnifferCapture, PipelinedStatementsEachRegisteredWithTheirParameters) {
  ASSERT_EQ(PQenterPipelineMode(c()), 1);
  const std::string q1 = std::string("SELECT $1::int * 2 ") + Comment(kRidA);
  const std::string q2 = std::string("SELECT $1::text || $2::text ") + Comment(kRidB);
  const std::string q3 = "SELECT $1::int + 100";  // no comment: clears the current id
  const std::string q4 = std::string("SELECT $1::int - 1 ") + Comment(kRidC);
  auto send = [&](const std::string& sql, std::vector<const char*> params) {
    ASSERT_EQ(PQsendQueryParams(c(), sql.c_str(), static_cast<int>(params.size()), nullptr,
                                params.data(), nullptr, nullptr, 0),
              1)
        << PQerrorMessage(c());
  };
  send(q1, {"21"});
  send(q2, {"foo", "bar"});
  send(q3, {"1"});
  send(q4, {"10"});
  ASSERT_EQ(PQpipelineSync(c()), 1);
  std::vector<std::string> values;
  for (int i = 0; i < 4; ++i) {
    pg::ResultPtr r(PQgetResult(c()));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c());
    values.emplace_back(PQgetvalue(r.get(), 0, 0));
    ASSERT_EQ(PQgetResult(c()), nullptr);
  }
  pg::ResultPtr sync(PQgetResult(c()));
  EXPECT_EQ(PQresultStatus(sync.get()), PGRES_PIPELINE_SYNC);
  ASSERT_EQ(PQexitPipelineMode(c()), 1);
  EXPECT_EQ(values, (std::vector<std::string>{"42", "foobar", "101", "9"}));

  auto rec = sink_.Records();
  ASSERT_EQ(rec.size(), 3u);
  EXPECT_EQ(rec[0].request_id, kRidA);
  EXPECT_EQ(rec[0].statement.sql, q1);
  EXPECT_EQ(rec[0].statement.params, (std::vector<std::optional<std::string>>{"21"}));
  EXPECT_EQ(rec[1].request_id, kRidB);
  EXPECT_EQ(rec[1].statement.sql, q2);
  EXPECT_EQ(rec[1].statement.params, (std::vector<std::optional<std::string>>{"foo", "bar"}));
  EXPECT_EQ(rec[2].request_id, kRidC);
  EXPECT_EQ(rec[2].statement.sql, q4);
  EXPECT_EQ(rec[2].statement.params, (std::vector<std::optional<std::string>>{"10"}));
}

TEST_F(SnifferCapture, NamedPreparedStatementInheritsTheCurrentRequestId) {
  const std::string prepared = std::string("SELECT $1::int + 1 ") + Comment(kRidA);
  pg::ResultPtr p(PQprepare(c(), "s1", prepared.c_str(), 1, nullptr));
  ASSERT_EQ(PQresultStatus(p.get()), PGRES_COMMAND_OK) << PQerrorMessage(c());
  // A later request sends its own commented statement, then re-executes s1.
  ASSERT_TRUE(pg::Exec(c(), std::string("SELECT 'request B' ") + Comment(kRidB)).ok());
  const char* v[] = {"41"};
  pg::ResultPtr r(PQexecPrepared(c(), "s1", 1, v, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK);
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), "42");
  // A statement without a request id clears it: the next execution is not registered.
  ASSERT_TRUE(pg::Exec(c(), "SELECT 'background job'").ok());
  const char* w[] = {"1"};
  r.reset(PQexecPrepared(c(), "s1", 1, w, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK);

  auto rec = sink_.Records();
  ASSERT_EQ(rec.size(), 2u);
  EXPECT_EQ(rec[0].request_id, kRidB);
  EXPECT_EQ(rec[1].request_id, kRidB);
  EXPECT_EQ(rec[1].statement.sql, prepared);  // the statement's own text, old comment and all
  EXPECT_EQ(rec[1].statement.params, (std::vector<std::optional<std::string>>{"41"}));
}

TEST_F(SnifferCapture, DeallocatedNameCanBePreparedAgainWithNewSql) {
  pg::ResultPtr p(PQprepare(c(), "s2", "SELECT 1", 0, nullptr));
  ASSERT_EQ(PQresultStatus(p.get()), PGRES_COMMAND_OK);
  ASSERT_TRUE(pg::Exec(c(), "DEALLOCATE s2").ok());
  const std::string sql = std::string("SELECT 2 ") + Comment(kRidC);
  p.reset(PQprepare(c(), "s2", sql.c_str(), 0, nullptr));
  ASSERT_EQ(PQresultStatus(p.get()), PGRES_COMMAND_OK) << PQerrorMessage(c());
  pg::ResultPtr r(PQexecPrepared(c(), "s2", 0, nullptr, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK);
  auto rec = sink_.Records();
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].statement.sql, sql);
}

// Beyond max_prepared_per_connection the least recently used statement is
// forgotten; executing it is still registered (without SQL) so the request
// is never taken for one that ran nothing.
TEST_F(SnifferCapture, EvictedStatementIsStillRegistered) {
  SnifferOptions o;
  o.max_prepared_per_connection = 2;
  auto small = StartProxy(&sink_, o);
  ASSERT_TRUE(small);
  auto conn = pg::Connect(ProxyConninfo(*small, db_->name()));
  ASSERT_TRUE(conn.ok());
  for (const char* name : {"e1", "e2", "e3"}) {
    pg::ResultPtr p(
        PQprepare(conn->get(), name, (std::string("SELECT '") + name + "'").c_str(), 0, nullptr));
    ASSERT_EQ(PQresultStatus(p.get()), PGRES_COMMAND_OK);
  }
  ASSERT_TRUE(pg::Exec(conn->get(), std::string("SELECT 0 ") + Comment(kRidA)).ok());
  for (const char* name : {"e1", "e3"}) {
    pg::ResultPtr r(PQexecPrepared(conn->get(), name, 0, nullptr, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK);
    EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), name);  // the server still has it
  }
  auto rec = sink_.Records();
  ASSERT_EQ(rec.size(), 3u);
  EXPECT_EQ(rec[1].request_id, kRidA);
  EXPECT_EQ(rec[1].statement.sql, "");  // e1 was evicted by e3
  EXPECT_EQ(rec[2].statement.sql, "SELECT 'e3'");
}

TEST_F(SnifferCapture, TransactionBlockIsReported) {
  ASSERT_TRUE(pg::Exec(c(), "BEGIN").ok());
  ASSERT_TRUE(pg::Exec(c(), std::string("SELECT 1 ") + Comment(kRidA)).ok());
  ASSERT_TRUE(pg::Exec(c(), "COMMIT").ok());
  ASSERT_TRUE(pg::Exec(c(), std::string("SELECT 2 ") + Comment(kRidA)).ok());
  // BEGIN earlier in the same simple-query string.
  ASSERT_TRUE(pg::Exec(c(), std::string("BEGIN; SELECT 3; COMMIT ") + Comment(kRidA)).ok());
  auto rec = sink_.Records();
  ASSERT_EQ(rec.size(), 3u);
  EXPECT_TRUE(rec[0].statement.in_transaction_block);
  EXPECT_FALSE(rec[1].statement.in_transaction_block);
  EXPECT_TRUE(rec[2].statement.in_transaction_block);
}

// The sink checks the database while it is being called: the row the
// statement inserts must not exist yet, i.e. the statement has not reached
// the server. Afterwards it does.
TEST_F(SnifferCapture, RegistrationHappensBeforeTheServerExecutes) {
  ASSERT_TRUE(pg::Exec(c(), "CREATE TABLE marks (id int)").ok());
  auto direct = pg::Connect(DirectConninfo(db_->name()));
  ASSERT_TRUE(direct.ok());
  std::vector<std::string> counts_at_registration;
  sink_.hook = [&](std::string_view, const CapturedStatement&) {
    auto r = pg::Exec(direct->get(), "SELECT count(*) FROM marks");
    counts_at_registration.push_back(r.ok() ? PQgetvalue(r->get(), 0, 0) : "error");
  };
  // Simple protocol, then extended (registered on Execute).
  ASSERT_TRUE(pg::Exec(c(), std::string("INSERT INTO marks VALUES (1) ") + Comment(kRidA)).ok());
  ASSERT_TRUE(
      pg::ExecParams(c(), std::string("INSERT INTO marks VALUES ($1) ") + Comment(kRidB), {"2"})
          .ok());
  EXPECT_EQ(counts_at_registration, (std::vector<std::string>{"0", "1"}));
  auto after = pg::Exec(direct->get(), "SELECT count(*) FROM marks");
  ASSERT_TRUE(after.ok());
  EXPECT_STREQ(PQgetvalue(after->get(), 0, 0), "2");
}

}  // namespace
}  // namespace cacheportal::testing
