// Every page and fragment over a real socket: status and key content; bad
// input; access_log; traceparent comments on every statement.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include "common/traceparent.h"
#include "store_fixture.h"

namespace cacheportal::testing {
namespace {

bool Has(const std::string& body, const std::string& needle) {
  return body.find(needle) != std::string::npos;
}

using StorePages = StoreTest;

TEST_F(StorePages, HomeListsAllCategories) {
  auto r = Get(port(), "/");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.Header("Content-Type"), "text/html; charset=utf-8");
  for (const char* id : {"FISH", "DOGS", "REPTILES", "CATS", "BIRDS"})
    EXPECT_TRUE(Has(r.body, std::string("href=\"/category/") + id + "\"")) << id;
  EXPECT_TRUE(Has(r.body, ">Reptiles</a>"));
  EXPECT_TRUE(Has(r.body, "Welcome to PetStore"));
}

TEST_F(StorePages, CategoryListsItsProductsOnly) {
  auto r = Get(port(), "/category/FISH");
  ASSERT_EQ(r.status, 200) << r.error;
  for (const char* name : {"Angelfish", "Tiger Shark", "Koi", "Goldfish"})
    EXPECT_TRUE(Has(r.body, name)) << name;
  EXPECT_TRUE(Has(r.body, "href=\"/product/FI-SW-01\""));
  EXPECT_FALSE(Has(r.body, "Bulldog"));
}

TEST_F(StorePages, ProductListsItsItems) {
  auto r = Get(port(), "/product/FI-SW-01");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_TRUE(Has(r.body, "href=\"/item/EST-1\""));
  EXPECT_TRUE(Has(r.body, "href=\"/item/EST-2\""));
  EXPECT_TRUE(Has(r.body, "Large Angelfish"));
  EXPECT_TRUE(Has(r.body, "$16.50"));
  EXPECT_FALSE(Has(r.body, "EST-3\""));
}

TEST_F(StorePages, ItemShowsPriceStockAndCartForm) {
  auto r = Get(port(), "/item/EST-18");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_TRUE(Has(r.body, "Adult Male Amazon Parrot"));
  EXPECT_TRUE(Has(r.body, "$193.50"));
  EXPECT_TRUE(Has(r.body, "In stock: 10000"));
  EXPECT_TRUE(Has(r.body, "action=\"/cart/add\""));
  EXPECT_TRUE(Has(r.body, "value=\"EST-18\""));
}

TEST_F(StorePages, JapaneseFromLangCookie) {
  Headers ja = {{"Cookie", "lang=ja"}};
  auto home = Get(port(), "/", ja);
  ASSERT_EQ(home.status, 200);
  EXPECT_TRUE(Has(home.body, "<html lang=\"ja\">"));
  EXPECT_TRUE(Has(home.body, ">爬虫類</a>"));
  auto item = Get(port(), "/item/EST-1", ja);
  ASSERT_EQ(item.status, 200);
  EXPECT_TRUE(Has(item.body, "¥1815"));
  EXPECT_TRUE(Has(item.body, "エンゼルフィッシュ"));
  // An unknown value falls back to English.
  auto other = Get(port(), "/", {{"Cookie", "lang=xx"}});
  EXPECT_TRUE(Has(other.body, "<html lang=\"en\">"));
}

TEST_F(StorePages, LangSetsCookieAndRedirectsBackOnSite) {
  auto r = Get(port(), "/lang/ja", {{"Referer", "http://shop.example/product/FI-SW-01"}});
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.Header("Location"), "/product/FI-SW-01");
  EXPECT_EQ(SetCookieValue(r, "lang"), "ja");
  auto en = Get(port(), "/lang/en");
  EXPECT_EQ(en.status, 302);
  EXPECT_EQ(en.Header("Location"), "/");
  EXPECT_EQ(SetCookieValue(en, "lang"), "en");
  // A protocol-relative referer path must not become an off-site redirect.
  auto evil = Get(port(), "/lang/en", {{"Referer", "//evil.example/x"}});
  EXPECT_EQ(evil.Header("Location"), "/");
  EXPECT_EQ(Get(port(), "/lang/fr").status, 404);
}

TEST_F(StorePages, FragmentsAnswerOnTheirOwnUrls) {
  auto cats = Get(port(), "/frag/categories");
  ASSERT_EQ(cats.status, 200);
  EXPECT_TRUE(Has(cats.body, "<nav class=\"categories\">"));
  EXPECT_FALSE(Has(cats.body, "<html"));
  auto products = Get(port(), "/frag/products?category=DOGS");
  ASSERT_EQ(products.status, 200);
  EXPECT_TRUE(Has(products.body, "Poodle"));
  EXPECT_FALSE(Has(products.body, "Koi"));
  auto items = Get(port(), "/frag/items?product=K9-PO-02");
  ASSERT_EQ(items.status, 200);
  EXPECT_TRUE(Has(items.body, "EST-8"));
  auto item = Get(port(), "/frag/item?id=EST-8");
  ASSERT_EQ(item.status, 200);
  EXPECT_TRUE(Has(item.body, "Male Puppy Poodle"));
  auto mylist = Get(port(), "/frag/mylist");
  ASSERT_EQ(mylist.status, 200);
  EXPECT_EQ(mylist.body, "<aside class=\"mylist\"></aside>\n");

  EXPECT_EQ(Get(port(), "/frag/products").status, 400);
  EXPECT_EQ(Get(port(), "/frag/items?product=").status, 400);
  EXPECT_EQ(Get(port(), "/frag/item?id=%zz").status, 400);
  EXPECT_EQ(Get(port(), "/frag/products?category=NOPE").status, 404);
  EXPECT_EQ(Get(port(), "/frag/items?product=NOPE").status, 404);
  EXPECT_EQ(Get(port(), "/frag/item?id=NOPE").status, 404);
  EXPECT_EQ(Get(port(), "/frag/nothing").status, 404);
}

TEST_F(StorePages, SearchMatchesNamesWithinOptionalCategory) {
  auto r = PostForm(port(), "/search", "q=fish");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(Has(r.body, "Angelfish"));
  EXPECT_TRUE(Has(r.body, "Goldfish"));
  EXPECT_FALSE(Has(r.body, "Koi"));
  auto dogs = PostForm(port(), "/search", "q=Retriever&category=DOGS");
  ASSERT_EQ(dogs.status, 200);
  EXPECT_TRUE(Has(dogs.body, "Golden Retriever"));
  EXPECT_TRUE(Has(dogs.body, "Labrador Retriever"));
  auto none = PostForm(port(), "/search", "q=Retriever&category=CATS");
  ASSERT_EQ(none.status, 200);
  EXPECT_TRUE(Has(none.body, "No products found."));
  // LIKE wildcards in the query are literal.
  auto pct = PostForm(port(), "/search", "q=%25");
  ASSERT_EQ(pct.status, 200);
  EXPECT_TRUE(Has(pct.body, "No products found."));
}

TEST_F(StorePages, SearchFieldsMeanTheSameInEveryBodyEncoding) {
  // The edge keys POST /search by field values whatever the encoding
  // (docs/rules.md); the store must render the same page for them.
  auto form = PostForm(port(), "/search", "q=retriever&category=DOGS");
  ASSERT_EQ(form.status, 200);
  auto json = HttpCall(port(), "POST", "/search", {{"Content-Type", "application/json"}},
                       "{\"category\": \"DOGS\", \"q\": \"nothing\", \"q\": \"retriever\"}");
  EXPECT_EQ(json.status, 200);
  EXPECT_EQ(json.body, form.body);
  std::string multipart =
      "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nretriever\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"category\"\r\nContent-Type: "
      "text/plain\r\n\r\nDOGS\r\n--XyZ--\r\n";
  auto mp = HttpCall(port(), "POST", "/search",
                     {{"Content-Type", "multipart/form-data; boundary=\"XyZ\""}}, multipart);
  EXPECT_EQ(mp.status, 200);
  EXPECT_EQ(mp.body, form.body);
}

TEST_F(StorePages, MalformedFormsGet400) {
  EXPECT_EQ(PostForm(port(), "/search", "").status, 400);
  EXPECT_EQ(PostForm(port(), "/search", "q=").status, 400);
  EXPECT_EQ(PostForm(port(), "/search", "q=%zz").status, 400);
  EXPECT_EQ(PostForm(port(), "/search", "q=%ff%fe").status, 400);  // not UTF-8
  EXPECT_EQ(PostForm(port(), "/search", "q=a%00b").status, 400);
  EXPECT_EQ(HttpCall(port(), "POST", "/search", {{"Content-Type", "text/plain"}}, "q=fish").status,
            400);
  EXPECT_EQ(
      HttpCall(port(), "POST", "/search", {{"Content-Type", "application/json"}}, "[1]").status,
      400);
  EXPECT_EQ(
      HttpCall(port(), "POST", "/search", {{"Content-Type", "multipart/form-data"}}, "--x\r\n")
          .status,
      400);
  EXPECT_EQ(PostForm(port(), "/signin", "username=j2ee").status, 400);
  EXPECT_EQ(PostForm(port(), "/cart/add", "quantity=1").status, 400);
}

TEST_F(StorePages, UnknownIdsAndPathsGet404Pages) {
  for (const char* path : {"/category/NOPE", "/product/NOPE", "/item/NOPE", "/nothing",
                           "/category/", "/item/EST-1/extra", "/item/%zz"}) {
    auto r = Get(port(), path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_TRUE(Has(r.body, "<h1>404 Not Found</h1>")) << path;
  }
  Headers esi = {{"Surrogate-Capability", "edge=\"ESI/1.0\""}};
  for (const char* path : {"/category/NOPE", "/product/NOPE", "/item/NOPE"})
    EXPECT_EQ(Get(port(), path, esi).status, 404) << path;
  std::string long_id(200, 'A');
  EXPECT_EQ(Get(port(), "/item/" + long_id).status, 404);
}

TEST_F(StorePages, HeadAnswersLikeGetWithoutABody) {
  auto get = Get(port(), "/item/EST-9");
  // The client stops at Content-Length, so read a HEAD answer raw.
  auto head = HttpCall(port(), "HEAD", "/item/EST-9");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("Content-Length"), std::to_string(get.body.size()));
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(HttpCall(port(), "HEAD", "/item/NOPE").status, 404);
}

TEST_F(StorePages, WrongMethodGets405) {
  auto r = Get(port(), "/search");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("Allow"), "POST");
  EXPECT_EQ(PostForm(port(), "/category/FISH", "").status, 405);
}

TEST_F(StorePages, OversizeBodyGets413AndIsLogged) {
  std::string body = "q=" + std::string(kTestBodyLimit * 4, 'a');
  auto r = PostForm(port(), "/search", body);
  EXPECT_EQ(r.status, 413) << r.error;
  EXPECT_EQ(Scalar("SELECT count(*) FROM access_log WHERE status = 413 AND path = '/search'"), "1");
  // The server is still serving.
  EXPECT_EQ(Get(port(), "/").status, 200);
}

TEST_F(StorePages, CatalogPagesAreDeterministicBytes) {
  for (const char* path : {"/", "/category/DOGS", "/product/K9-RT-02", "/item/EST-22"}) {
    auto a = Get(port(), path, {{"traceparent", TraceParent::Generate().ToHeader()}});
    auto b = Get(port(), path);
    ASSERT_EQ(a.status, 200) << path;
    EXPECT_EQ(a.body, b.body) << path;
  }
}

TEST_F(StorePages, EveryRequestWritesOneAccessLogRowWithItsTraceId) {
  TraceParent tp = TraceParent::Generate();
  ASSERT_EQ(Get(port(), "/product/FI-FW-01", {{"traceparent", tp.ToHeader()}}).status, 200);
  ASSERT_EQ(Get(port(), "/nothing").status, 404);
  ASSERT_EQ(PostForm(port(), "/search", "q=koi").status, 200);
  EXPECT_EQ(Scalar("SELECT count(*) FROM access_log"), "3");
  EXPECT_EQ(
      Scalar("SELECT path || ' ' || status FROM access_log WHERE trace_id = '" + tp.trace_id + "'"),
      "/product/FI-FW-01 200");
  EXPECT_EQ(Scalar("SELECT count(*) FROM access_log WHERE status = 404 AND method = 'GET'"), "1");
  EXPECT_EQ(Scalar("SELECT count(DISTINCT trace_id) FROM access_log"), "3");
}

TEST_F(StorePages, EveryStatementCarriesTheRequestTraceparent) {
  TakeStatements();
  TraceParent tp = TraceParent::Generate();
  ASSERT_EQ(Get(port(), "/item/EST-5", {{"traceparent", tp.ToHeader()}}).status, 200);
  auto stmts = TakeStatements();
  ASSERT_GE(stmts.size(), 4u);  // categories, item, inventory, access_log
  std::set<std::string> comments;
  for (const auto& sql : stmts) {
    EXPECT_EQ(RequestIdFromSql(sql), tp.trace_id) << sql;
    size_t at = sql.rfind("/*");
    ASSERT_NE(at, std::string::npos) << sql;
    comments.insert(sql.substr(at));
    // A new parent id: the store is a hop of its own.
    EXPECT_EQ(sql.find(tp.parent_id), std::string::npos) << sql;
  }
  EXPECT_EQ(comments.size(), 1u);

  // Without (or with an invalid) header the store mints one trace per request.
  for (const char* header : {"", "00-zz-00f067aa0ba902b7-01"}) {
    Headers h;
    if (*header) h.emplace_back("traceparent", header);
    ASSERT_EQ(Get(port(), "/category/CATS", h).status, 200);
    stmts = TakeStatements();
    ASSERT_FALSE(stmts.empty());
    auto id = RequestIdFromSql(stmts.front());
    ASSERT_TRUE(id.has_value()) << stmts.front();
    for (const auto& sql : stmts) EXPECT_EQ(RequestIdFromSql(sql), id) << sql;
    EXPECT_EQ(Scalar("SELECT count(*) FROM access_log WHERE trace_id = '" + *id + "'"), "1");
  }
}

TEST_F(StorePages, ConcurrentClientsShareThePool) {
  // 8 clients against 2 worker threads and a pool of 4: every request is
  // answered, correctly, and logged once.
  constexpr int kClients = 8, kEach = 15;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        std::string id = "EST-" + std::to_string(1 + (c * kEach + i) % 28);
        auto r = Get(port(), "/item/" + id);
        if (r.status == 200 && Has(r.body, "<h1>" + id + "</h1>")) ++ok;
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kEach);
  EXPECT_EQ(Scalar("SELECT count(*) FROM access_log WHERE status = 200"),
            std::to_string(kClients * kEach));
}

TEST_F(StorePages, PooledConnectionsKilledByTheServerAreReplaced) {
  ASSERT_EQ(Get(port(), "/item/EST-3").status, 200);
  {
    auto c = Db();
    auto r = pg::Exec(c.get(),
                      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname "
                      "= current_database() AND pid <> pg_backend_pid()");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_NE(std::string(PQgetvalue(r->get(), 0, 0)), "0");
  }
  // Every pooled connection is dead now; requests still succeed and are logged.
  EXPECT_EQ(Get(port(), "/nothing").status, 404);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Get(port(), "/item/EST-3").status, 200) << i;
  EXPECT_EQ(Scalar("SELECT count(*) FROM access_log WHERE path = '/nothing'"), "1");
  EXPECT_EQ(Scalar("SELECT count(*) FROM access_log WHERE path = '/item/EST-3'"), "7");
}

TEST_F(StorePages, DatabaseDownGives503AndServerKeepsServing) {
  StartServer("host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=2");
  auto r = Get(port(), "/category/FISH");
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(Has(r.body, "503 Service Unavailable"));
  EXPECT_EQ(Get(port(), "/").status, 503);
  // A non-database page still answers.
  EXPECT_EQ(Get(port(), "/nothing").status, 404);
}

// A raw connection for exchanges the one-shot client cannot script.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool Send(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // Reads until `until` has been seen (or EOF / the receive timeout).
  std::string ReadUntil(const std::string& until) {
    char buf[8192];
    while (received_.find(until) == std::string::npos) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      received_.append(buf, static_cast<size_t>(n));
    }
    return received_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string received_;
};

TEST_F(StorePages, ExpectContinueIsAnsweredBeforeTheBody) {
  RawConnection c(port());
  ASSERT_TRUE(c.connected());
  std::string body = "q=koi";
  ASSERT_TRUE(
      c.Send("POST /search HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
             "application/x-www-form-urlencoded\r\nExpect: 100-continue\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n"));
  std::string got = c.ReadUntil("\r\n\r\n");
  ASSERT_EQ(got.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << got;
  ASSERT_TRUE(c.Send(body));
  got = c.ReadUntil("</html>");
  EXPECT_NE(got.find("HTTP/1.1 200 OK"), std::string::npos) << got;
  EXPECT_NE(got.find("Koi"), std::string::npos);

  // A declared body above the limit is refused without waiting for it.
  RawConnection big(port());
  ASSERT_TRUE(
      big.Send("POST /search HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
               std::to_string(kTestBodyLimit + 1) + "\r\n\r\n"));
  EXPECT_EQ(big.ReadUntil("\r\n\r\n").rfind("HTTP/1.1 413 ", 0), 0u);
}

TEST_F(StorePages, KeepAliveServesSeveralRequestsOnOneConnection) {
  // Pipelined requests on one connection come back in order.
  std::string two =
      "GET /frag/item?id=EST-1 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /frag/item?id=EST-2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::send(fd, two.data(), two.size(), MSG_NOSIGNAL), static_cast<ssize_t>(two.size()));
  std::string raw;
  char buf[8192];
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, n);
  ::close(fd);
  size_t first = raw.find("Large Angelfish");
  size_t second = raw.find("Small Angelfish");
  EXPECT_NE(first, std::string::npos);
  EXPECT_NE(second, std::string::npos);
  EXPECT_LT(first, second);
}

}  // namespace
}  // namespace cacheportal::testing
