// Connection life cycle through the sniffer: clients that vanish mid-query,
// CancelRequest routing, SCRAM and md5 authentication passed through, and
// the protocol-error exit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>

#include "sniffer/wire_framing.h"
#include "tests/sniffer/sniffer_test_util.h"

namespace cacheportal::testing {
namespace {

class SnifferLifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = TestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::make_unique<TestDatabase>(std::move(db).value());
    proxy_ = StartProxy(&sink_);
    ASSERT_TRUE(proxy_);
    auto d = pg::Connect(DirectConninfo(db_->name()));
    ASSERT_TRUE(d.ok());
    direct_ = std::move(d).value();
  }
  void TearDown() override {
    direct_.reset();
    if (proxy_) proxy_->Stop();
  }
  std::string Proxy(const std::string& extra = "") {
    return ProxyConninfo(*proxy_, db_->name(), extra);
  }
  // State of a backend in pg_stat_activity ("" when it is gone).
  std::string BackendState(const std::string& pid) {
    auto r = pg::Exec(direct_.get(),
                      "SELECT state || ':' || coalesce(query, '') FROM "
                      "pg_stat_activity WHERE pid = " +
                          pid);
    if (!r.ok() || PQntuples(r->get()) == 0) return "";
    return PQgetvalue(r->get(), 0, 0);
  }
  std::string BackendPid(PGconn* c) {
    auto r = pg::Exec(c, "SELECT pg_backend_pid()");
    EXPECT_TRUE(r.ok());
    return r.ok() ? PQgetvalue(r->get(), 0, 0) : "0";
  }
  void WaitUntilSleeping(const std::string& pid) {
    ASSERT_TRUE(WaitFor([&] { return BackendState(pid).rfind("active:SELECT pg_sleep", 0) == 0; }))
        << BackendState(pid);
  }

  RecordingSink sink_;
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Sniffer> proxy_;
  pg::ConnPtr direct_;
};

TEST_F(SnifferLifecycle, ClientVanishingMidQueryLeavesNoBackendBehind) {
  auto conn = pg::Connect(Proxy());
  ASSERT_TRUE(conn.ok());
  std::string pid = BackendPid(conn->get());
  ASSERT_EQ(PQsendQuery(conn->get(), "SELECT pg_sleep(300)"), 1);
  WaitUntilSleeping(pid);
  // An abrupt disconnect: no Terminate message, just the socket going away.
  shutdown(PQsocket(conn->get()), SHUT_RDWR);
  conn->reset();
  EXPECT_TRUE(WaitFor([&] { return BackendState(pid).empty(); })) << BackendState(pid);
  EXPECT_TRUE(WaitFor([&] { return proxy_->stats().connections_active == 0; }));
  EXPECT_EQ(proxy_->stats().cancels_forwarded, 1u);
}

TEST_F(SnifferLifecycle, ClientTerminatingMidQueryLeavesNoBackendBehind) {
  auto conn = pg::Connect(Proxy());
  ASSERT_TRUE(conn.ok());
  std::string pid = BackendPid(conn->get());
  ASSERT_EQ(PQsendQuery(conn->get(), "SELECT pg_sleep(300)"), 1);
  WaitUntilSleeping(pid);
  conn->reset();  // PQfinish: sends Terminate, closes
  EXPECT_TRUE(WaitFor([&] { return BackendState(pid).empty(); })) << BackendState(pid);
}

TEST_F(SnifferLifecycle, IdleClientDisconnectClosesUpstream) {
  auto conn = pg::Connect(Proxy());
  ASSERT_TRUE(conn.ok());
  std::string pid = BackendPid(conn->get());
  shutdown(PQsocket(conn->get()), SHUT_RDWR);
  conn->reset();
  EXPECT_TRUE(WaitFor([&] { return BackendState(pid).empty(); }));
  EXPECT_EQ(proxy_->stats().cancels_forwarded, 0u);  // nothing was running
}

TEST_F(SnifferLifecycle, CancelRequestThroughTheProxyCancelsTheQuery) {
  auto conn = pg::Connect(Proxy());
  ASSERT_TRUE(conn.ok());
  std::string pid = BackendPid(conn->get());
  ASSERT_EQ(PQsendQuery(conn->get(), "SELECT pg_sleep(300)"), 1);
  WaitUntilSleeping(pid);
  // libpq sends the CancelRequest to the address it is connected to: the sniffer.
  PGcancel* cancel = PQgetCancel(conn->get());
  char err[256] = {};
  ASSERT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  pg::ResultPtr r(PQgetResult(conn->get()));
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
  EXPECT_EQ(pg::SqlState(r.get()), "57014");  // query_canceled
  while (PGresult* extra = PQgetResult(conn->get())) PQclear(extra);
  // The connection is still usable.
  auto ok = pg::Exec(conn->get(), "SELECT 'still here'");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(proxy_->stats().cancels_forwarded, 1u);
}

TEST_F(SnifferLifecycle, CancelForUnknownBackendIsDropped) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(proxy_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string packet = sniffer::BuildCancelRequest({12345, "abcd"});
  ASSERT_EQ(write(fd, packet.data(), packet.size()), 16);
  char c;
  EXPECT_EQ(read(fd, &c, 1), 0);  // closed without an answer, as a server does
  close(fd);
  EXPECT_EQ(proxy_->stats().cancels_forwarded, 0u);
}

TEST_F(SnifferLifecycle, IdleTimeoutClosesTheConnectionWithAReason) {
  SnifferOptions o;
  o.idle_timeout_seconds = 1;
  auto idle_proxy = StartProxy(&sink_, o);
  ASSERT_TRUE(idle_proxy);
  auto conn = pg::Connect(ProxyConninfo(*idle_proxy, db_->name()));
  ASSERT_TRUE(conn.ok());
  std::string pid = BackendPid(conn->get());
  // Wait for the sniffer to give up on the silent client; the upstream goes too.
  EXPECT_TRUE(WaitFor([&] { return idle_proxy->stats().connections_active == 0; }));
  EXPECT_TRUE(WaitFor([&] { return BackendState(pid).empty(); }));
  // The connection's error text holds every message received (the result's only the last).
  pg::ResultPtr r(PQexec(conn->get(), "SELECT 1"));
  EXPECT_NE(PQresultStatus(r.get()), PGRES_TUPLES_OK);
  std::string error = PQerrorMessage(conn->get());
  EXPECT_NE(error.find("idle timeout"), std::string::npos) << error;
}

TEST_F(SnifferLifecycle, BackendTerminationReachesTheClient) {
  auto conn = pg::Connect(Proxy());
  ASSERT_TRUE(conn.ok());
  std::string pid = BackendPid(conn->get());
  ASSERT_TRUE(pg::Exec(direct_.get(), "SELECT pg_terminate_backend(" + pid + ")").ok());
  EXPECT_TRUE(WaitFor([&] { return proxy_->stats().connections_active == 0; }));
  pg::ResultPtr r(PQexec(conn->get(), "SELECT 1"));
  EXPECT_NE(PQresultStatus(r.get()), PGRES_TUPLES_OK);
  std::string error = PQerrorMessage(conn->get());
  EXPECT_NE(error.find("terminating connection due to administrator command"), std::string::npos)
      << error;
}

TEST_F(SnifferLifecycle, StopClosesOpenConnections) {
  auto conn = pg::Connect(Proxy());
  ASSERT_TRUE(conn.ok());
  std::string pid = BackendPid(conn->get());
  proxy_->Stop();
  EXPECT_FALSE(pg::Exec(conn->get(), "SELECT 1").ok());
  EXPECT_TRUE(WaitFor([&] { return BackendState(pid).empty(); }));
  EXPECT_EQ(proxy_->stats().connections_active, 0u);
}

// Roles with passwords and pg_hba lines for them only, removed afterwards.
class SnifferAuth : public SnifferLifecycle {
 protected:
  void SetUp() override {
    SnifferLifecycle::SetUp();
    if (HasFatalFailure()) return;
    auto r = pg::Exec(direct_.get(), "SHOW hba_file");
    ASSERT_TRUE(r.ok());
    hba_path_ = PQgetvalue(r->get(), 0, 0);
    std::ifstream in(hba_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    original_hba_ = ss.str();
    ASSERT_FALSE(original_hba_.empty());
    std::random_device rd;
    suffix_ = std::to_string(rd() % 1000000);
  }
  void TearDown() override {
    if (!hba_path_.empty() && !original_hba_.empty()) {
      std::ofstream(hba_path_, std::ios::trunc) << original_hba_;
      pg::Exec(direct_.get(), "SELECT pg_reload_conf()");
    }
    for (const auto& role : roles_) pg::Exec(direct_.get(), "DROP ROLE IF EXISTS " + role);
    SnifferLifecycle::TearDown();
  }
  // Creates `role` with `password` stored by `method`'s hash and requires
  // `method` for it from 127.0.0.1.
  void AddPasswordRole(const std::string& role, const std::string& password,
                       const std::string& method) {
    roles_.push_back(role);
    ASSERT_TRUE(pg::Exec(direct_.get(), "SET password_encryption = '" + method + "'").ok());
    ASSERT_TRUE(
        pg::Exec(direct_.get(), "CREATE ROLE " + role + " LOGIN PASSWORD '" + password + "'").ok());
    ASSERT_TRUE(
        pg::Exec(direct_.get(), "GRANT ALL ON DATABASE " + db_->name() + " TO " + role).ok());
    std::string current;
    {
      std::ifstream in(hba_path_);
      std::stringstream ss;
      ss << in.rdbuf();
      current = ss.str();
    }
    std::ofstream(hba_path_, std::ios::trunc)
        << "host all " << role << " 127.0.0.1/32 " << method << "\n"
        << current;
    ASSERT_TRUE(pg::Exec(direct_.get(), "SELECT pg_reload_conf()").ok());
    // The reload is asynchronous: wait until the server asks this role for a password.
    std::string conninfo = DirectConninfo(db_->name()) + " user=" + role + " password=wrong";
    ASSERT_TRUE(WaitFor([&] { return !pg::Connect(conninfo).ok(); }));
  }

  std::string hba_path_, original_hba_, suffix_;
  std::vector<std::string> roles_;
};

TEST_F(SnifferAuth, ScramAuthenticationPassesThrough) {
  std::string role = "scram_role_" + suffix_;
  AddPasswordRole(role, "s3cret-scram", "scram-sha-256");
  if (HasFatalFailure()) return;
  auto conn = pg::Connect(Proxy("user=" + role + " password=s3cret-scram"));
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto r = pg::Exec(conn->get(), "SELECT current_user");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::string(PQgetvalue(r->get(), 0, 0)), role);
  auto bad = pg::Connect(Proxy("user=" + role + " password=nope"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("password authentication failed"), std::string::npos)
      << bad.status().message();
}

TEST_F(SnifferAuth, Md5AuthenticationPassesThrough) {
  std::string role = "md5_role_" + suffix_;
  AddPasswordRole(role, "s3cret-md5", "md5");
  if (HasFatalFailure()) return;
  auto conn = pg::Connect(Proxy("user=" + role + " password=s3cret-md5"));
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto r = pg::Exec(conn->get(), "SELECT current_user");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::string(PQgetvalue(r->get(), 0, 0)), role);
  EXPECT_FALSE(pg::Connect(Proxy("user=" + role + " password=nope")).ok());
}

// A raw client that completes a trust login, then sends a message whose
// length no server would accept: the sniffer answers 08P01 and closes.
TEST_F(SnifferLifecycle, NonsenseLengthClosesWithProtocolViolation) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(proxy_->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string params =
      std::string("user\0postgres\0database\0", 23) + db_->name() + std::string("\0\0", 2);
  uint32_t len = htonl(static_cast<uint32_t>(8 + params.size()));
  uint32_t code = htonl(196608);
  std::string startup(reinterpret_cast<char*>(&len), 4);
  startup.append(reinterpret_cast<char*>(&code), 4);
  startup += params;
  ASSERT_EQ(write(fd, startup.data(), startup.size()), static_cast<ssize_t>(startup.size()));

  struct Collect : sniffer::MessageHandler {
    std::vector<std::pair<char, std::string>> seen;
    void OnMessage(const sniffer::Message& m) override {
      seen.emplace_back(m.type, std::string(m.body));
    }
  } collect;
  sniffer::FrameReader frames(1 << 20);
  for (char t : {'Z', 'E'}) frames.Want(t);
  auto read_until = [&](char type) {
    char buf[4096];
    while (collect.seen.empty() || collect.seen.back().first != type) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) return false;
      if (!frames.Feed(std::string_view(buf, n), collect).ok()) return false;
    }
    return true;
  };
  ASSERT_TRUE(read_until('Z'));
  const char bogus[] = {'Q', 0x7f, 0x7f, 0x7f, 0x7f};
  ASSERT_EQ(write(fd, bogus, sizeof bogus), 5);
  ASSERT_TRUE(read_until('E'));
  EXPECT_NE(collect.seen.back().second.find(std::string("C08P01", 7)), std::string::npos);
  char c;
  EXPECT_EQ(read(fd, &c, 1), 0);  // then closed
  close(fd);
  EXPECT_EQ(proxy_->stats().protocol_errors, 1u);
}

// Random bytes, alone or after an SSLRequest, from many clients: each is
// refused or relayed to a server that refuses it; the sniffer keeps serving.
TEST_F(SnifferLifecycle, GarbageFromClientsNeverBreaksTheSniffer) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 200; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(proxy_->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::string junk;
    if (i % 2 == 0) junk.assign("\0\0\0\x08\x04\xd2\x16\x2f", 8);  // SSLRequest first
    if (i % 4 == 1) {
      junk.assign("\0\0\0\x10\0\x03\0\0", 8);  // a v3 startup header, random body
    }
    size_t n = 1 + rng() % 300;
    for (size_t k = 0; k < n; ++k) junk.push_back(static_cast<char>(rng()));
    (void)!write(fd, junk.data(), junk.size());
    shutdown(fd, SHUT_WR);
    char buf[512];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
  }
  auto conn = pg::Connect(Proxy());
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  EXPECT_TRUE(pg::Exec(conn->get(), "SELECT 1").ok());
  EXPECT_GT(proxy_->stats().protocol_errors, 0u);
  conn->reset();
  EXPECT_TRUE(WaitFor([&] { return proxy_->stats().connections_active == 0; }));
}

TEST_F(SnifferLifecycle, UnreachableUpstreamIsReportedToTheClient) {
  SnifferOptions o;
  o.listen_address = "127.0.0.1";
  o.listen_port = 0;
  o.upstream_host = "127.0.0.1";
  o.upstream_port = 1;  // nothing listens there
  auto s = Sniffer::Start(o, &sink_);
  ASSERT_TRUE(s.ok());
  auto conn = pg::Connect("host=127.0.0.1 port=" + std::to_string((*s)->port()) + " user=postgres");
  ASSERT_FALSE(conn.ok());
  EXPECT_NE(conn.status().message().find("cannot connect to the database server"),
            std::string::npos)
      << conn.status().message();
  EXPECT_GE((*s)->stats().upstream_connect_failures, 1u);
}

}  // namespace
}  // namespace cacheportal::testing
