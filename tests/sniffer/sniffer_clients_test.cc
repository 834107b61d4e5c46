// Real clients through the sniffer against the throwaway server: psql,
// pgbench (simple, extended, prepared, several clients), COPY both ways,
// notices, LISTEN/NOTIFY, and the SSLRequest answer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "tests/sniffer/sniffer_test_util.h"

namespace cacheportal::testing {
namespace {

class SnifferClients : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = TestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::make_unique<TestDatabase>(std::move(db).value());
    proxy_ = StartProxy(&sink_);
    ASSERT_TRUE(proxy_);
  }
  void TearDown() override {
    if (proxy_) {
      proxy_->Stop();
      EXPECT_EQ(proxy_->stats().protocol_errors, 0u);
    }
  }
  std::string Proxy(const std::string& extra = "") {
    return ProxyConninfo(*proxy_, db_->name(), extra);
  }
  std::string Direct() { return DirectConninfo(db_->name()); }

  RecordingSink sink_;
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Sniffer> proxy_;
};

std::string Psql(const std::string& conninfo, const std::string& args) {
  auto r = RunShell("psql -X -v ON_ERROR_STOP=1 \"" + conninfo + "\" " + args);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output;
}

TEST_F(SnifferClients, PsqlCommandGivesSameOutputAsDirect) {
  const std::string cmd =
      "-c \"SELECT g AS n, repeat('x', g) AS s, g * 1.5 AS f, NULL AS nothing "
      "FROM generate_series(1, 50) g\"";
  std::string via_proxy = Psql(Proxy(), cmd);
  std::string direct = Psql(Direct(), cmd);
  EXPECT_EQ(via_proxy, direct);
  EXPECT_NE(via_proxy.find("(50 rows)"), std::string::npos);
}

TEST_F(SnifferClients, PsqlFileGivesSameOutputAsDirect) {
  std::string path = std::string(kBuildDir) + "/sniffer_psql_file_" + db_->name() + ".sql";
  {
    std::ofstream f(path);
    // A temporary table: each run starts from nothing, so the outputs compare.
    f << "CREATE TEMP TABLE pets (id int PRIMARY KEY, name text, born date);\n"
         "INSERT INTO pets SELECT g, 'pet ' || g, date '2020-01-01' + g FROM generate_series(1, "
         "200) g;\n"
         "BEGIN;\n"
         "UPDATE pets SET name = upper(name) WHERE id % 7 = 0;\n"
         "SELECT count(*), min(name), max(born) FROM pets;\n"
         "COMMIT;\n"
         "SELECT 1/0;\n";  // an error mid-file: same message both ways
  }
  auto via_proxy = RunShell("psql -X \"" + Proxy() + "\" -f " + path);
  auto direct = RunShell("psql -X \"" + Direct() + "\" -f " + path);
  std::remove(path.c_str());
  EXPECT_EQ(via_proxy.exit_code, direct.exit_code);
  EXPECT_EQ(via_proxy.output, direct.output);
  EXPECT_NE(via_proxy.output.find("division by zero"), std::string::npos);
}

class SnifferPgBench : public SnifferClients {
 protected:
  void SetUp() override {
    SnifferClients::SetUp();
    if (HasFatalFailure()) return;
    // pgbench -i loads its tables with COPY through the proxy.
    auto init = RunShell(PgBench() + " -i -s 1 -q -h 127.0.0.1 -p " +
                         std::to_string(proxy_->port()) + " -U postgres " + db_->name());
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }
  void Run(const std::string& args, int expected_tx) {
    auto r = RunShell(PgBench() + " " + args + " -h 127.0.0.1 -p " +
                      std::to_string(proxy_->port()) + " -U postgres " + db_->name());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::string want = "number of transactions actually processed: " + std::to_string(expected_tx) +
                       "/" + std::to_string(expected_tx);
    EXPECT_NE(r.output.find(want), std::string::npos) << r.output;
  }
};

TEST_F(SnifferPgBench, SimpleProtocol) { Run("-M simple -t 100", 100); }
TEST_F(SnifferPgBench, ExtendedProtocol) { Run("-M extended -t 100", 100); }
TEST_F(SnifferPgBench, PreparedStatements) { Run("-M prepared -t 100", 100); }
TEST_F(SnifferPgBench, FourClientsTwoHundredTransactionsEach) {
  Run("-M prepared -c 4 -j 2 -t 200", 800);
  Run("-M simple -c 4 -t 200", 800);
  // Same table contents through the proxy and directly.
  auto via = Psql(Proxy(), "-A -t -c \"SELECT sum(abalance), count(*) FROM pgbench_accounts\"");
  auto direct = Psql(Direct(), "-A -t -c \"SELECT sum(abalance), count(*) FROM pgbench_accounts\"");
  EXPECT_EQ(via, direct);
  EXPECT_EQ(proxy_->stats().connections_active, 0u);
}

TEST_F(SnifferPgBench, ConnectionChurnAndManyConcurrentClients) {
  Run("-M extended -C -c 8 -j 2 -t 50", 400);  // a new connection per transaction
  Run("-M prepared -c 48 -j 2 -t 40", 1920);
  EXPECT_TRUE(WaitFor([&] { return proxy_->stats().connections_active == 0; }));
  EXPECT_GE(proxy_->stats().connections_accepted, 400u + 48u);
}

TEST_F(SnifferPgBench, TwoRelayThreadsServeConcurrentClients) {
  proxy_->Stop();
  SnifferOptions o;
  o.threads = 2;
  proxy_ = StartProxy(&sink_, o);
  ASSERT_TRUE(proxy_);
  Run("-M prepared -c 6 -j 2 -t 100", 600);
  Run("-M extended -C -c 4 -j 2 -t 25", 100);
  EXPECT_TRUE(WaitFor([&] { return proxy_->stats().connections_active == 0; }));
  EXPECT_GE(proxy_->stats().connections_accepted, 6u + 100u);
}

// Polling before sleeping must not change what is relayed, nor starve the
// stop: same transactions, connection churn, a clean shutdown.
TEST_F(SnifferPgBench, PollingBeforeSleepingRelaysTheSame) {
  proxy_->Stop();
  SnifferOptions o;
  o.poll_microseconds = 200;
  proxy_ = StartProxy(&sink_, o);
  ASSERT_TRUE(proxy_);
  Run("-M prepared -c 4 -j 2 -t 100", 400);
  Run("-M extended -C -c 2 -t 25", 50);
  auto via = Psql(Proxy(), "-A -t -c \"SELECT sum(abalance), count(*) FROM pgbench_accounts\"");
  auto direct = Psql(Direct(), "-A -t -c \"SELECT sum(abalance), count(*) FROM pgbench_accounts\"");
  EXPECT_EQ(via, direct);
  EXPECT_TRUE(WaitFor([&] { return proxy_->stats().connections_active == 0; }));
  proxy_->Stop();
}

// A client slower than the server: psql streams COPY data to its stdout, a
// pipe drained only after a pause, so it stops reading the socket while the
// server keeps sending; the sniffer must hold the server side back
// (backpressure) and still deliver every byte.
TEST_F(SnifferClients, SlowReaderGetsTheWholeLargeResult) {
  const std::string query =
      "-c \"COPY (SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 20000) g) TO "
      "STDOUT\"";
  auto via = RunShell("psql -X \"" + Proxy() + "\" " + query + " | (sleep 0.3; md5sum)");
  auto direct = RunShell("psql -X \"" + Direct() + "\" " + query + " | md5sum");
  ASSERT_EQ(via.exit_code, 0) << via.output;
  ASSERT_EQ(direct.exit_code, 0) << direct.output;
  EXPECT_EQ(via.output, direct.output);
  EXPECT_GT(proxy_->stats().bytes_server_to_client, 20000u * 960u);
}

TEST_F(SnifferClients, CopyInAndOutPassThrough) {
  auto conn = pg::Connect(Proxy());
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  PGconn* c = conn->get();
  ASSERT_TRUE(pg::Exec(c, "CREATE TABLE items (id int, label text)").ok());
  pg::ResultPtr r(PQexec(c, "COPY items FROM STDIN"));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_COPY_IN) << PQerrorMessage(c);
  std::string expected;
  for (int i = 0; i < 20000; ++i) {
    std::string line = std::to_string(i) + "\tlabel " + std::to_string(i) + "\n";
    expected += line;
    ASSERT_EQ(PQputCopyData(c, line.data(), static_cast<int>(line.size())), 1);
  }
  ASSERT_EQ(PQputCopyEnd(c, nullptr), 1);
  r.reset(PQgetResult(c));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQerrorMessage(c);
  EXPECT_STREQ(PQcmdTuples(r.get()), "20000");
  while (PGresult* extra = PQgetResult(c)) PQclear(extra);

  r.reset(PQexec(c, "COPY (SELECT * FROM items ORDER BY id) TO STDOUT"));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_COPY_OUT) << PQerrorMessage(c);
  std::string got;
  char* buf = nullptr;
  int n;
  while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
    got.append(buf, n);
    PQfreemem(buf);
  }
  EXPECT_EQ(n, -1);
  r.reset(PQgetResult(c));
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK);
  EXPECT_EQ(got, expected);
}

void CollectNotice(void* arg, const PGresult* res) {
  static_cast<std::vector<std::string>*>(arg)->push_back(
      PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
}

TEST_F(SnifferClients, NoticesPassThrough) {
  auto conn = pg::Connect(Proxy());
  ASSERT_TRUE(conn.ok());
  std::vector<std::string> notices;
  PQsetNoticeReceiver(conn->get(), CollectNotice, &notices);
  ASSERT_TRUE(pg::Exec(conn->get(), "DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$").ok());
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0], "hello 42");
}

TEST_F(SnifferClients, ListenNotifyPassThrough) {
  auto listener = pg::Connect(Proxy());
  auto notifier = pg::Connect(Proxy());
  ASSERT_TRUE(listener.ok() && notifier.ok());
  ASSERT_TRUE(pg::Exec(listener->get(), "LISTEN sniffer_channel").ok());
  ASSERT_TRUE(pg::Exec(notifier->get(), "NOTIFY sniffer_channel, 'payload-1'").ok());
  // The notification arrives while the listener is idle: the sniffer must
  // keep reading the server side even with no client request pending.
  std::string payload;
  bool got = WaitFor([&] {
    PGconn* c = listener->get();
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(PQsocket(c), &fds);
    timeval tv{0, 50000};
    select(PQsocket(c) + 1, &fds, nullptr, nullptr, &tv);
    PQconsumeInput(c);
    if (PGnotify* n = PQnotifies(c)) {
      payload = n->extra;
      PQfreemem(n);
      return true;
    }
    return false;
  });
  ASSERT_TRUE(got);
  EXPECT_EQ(payload, "payload-1");
}

TEST_F(SnifferClients, SslAndGssEncRequestsAreAnsweredNoAndStartupContinues) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(proxy_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const unsigned char ssl[8] = {0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F};
  ASSERT_EQ(write(fd, ssl, 8), 8);
  char answer = 0;
  ASSERT_EQ(read(fd, &answer, 1), 1);
  EXPECT_EQ(answer, 'N');
  // A GSSENCRequest on the same socket (libpq may send both) gets 'N' too.
  const unsigned char gss[8] = {0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x30};
  ASSERT_EQ(write(fd, gss, 8), 8);
  ASSERT_EQ(read(fd, &answer, 1), 1);
  EXPECT_EQ(answer, 'N');
  // Then a plain StartupMessage on the same socket reaches the server,
  // which answers with an Authentication message.
  std::string params =
      std::string("user\0postgres\0database\0", 23) + db_->name() + std::string("\0\0", 2);
  uint32_t len = htonl(static_cast<uint32_t>(8 + params.size()));
  uint32_t code = htonl(196608);
  std::string startup(reinterpret_cast<char*>(&len), 4);
  startup.append(reinterpret_cast<char*>(&code), 4);
  startup += params;
  ASSERT_EQ(write(fd, startup.data(), startup.size()), static_cast<ssize_t>(startup.size()));
  ASSERT_EQ(read(fd, &answer, 1), 1);
  EXPECT_EQ(answer, 'R');
  close(fd);
  // libpq's default sslmode=prefer goes through the same path.
  EXPECT_EQ(Psql(Proxy("sslmode=prefer"), "-A -t -c \"SELECT 'ok'\""), "ok\n");
}

}  // namespace
}  // namespace cacheportal::testing
