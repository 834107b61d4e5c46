#include "sample-app/store_app.h"

#include <charconv>
#include <cstdio>
#include <ctime>
#include <exception>
#include <optional>
#include <set>
#include <vector>

#include "common/log.h"
#include "common/session_cookie.h"
#include "common/traceparent.h"
#include "sample-app/form.h"
#include "sample-app/html.h"
#include "sample-app/password.h"

namespace cacheportal::store {
namespace {

constexpr size_t kMaxIdBytes = 64;
constexpr int kProductsShown = 200;
constexpr int kSearchShown = 50;
constexpr int kMaxQuantity = 999;

struct Labels {
  const char* html_lang;
  const char* search;
  const char* cart;
  const char* account;
  const char* signin;
  const char* signout;
  const char* categories;
  const char* welcome;
  const char* welcome_text;
  const char* products;
  const char* items;
  const char* item;
  const char* price;
  const char* in_stock;
  const char* add_to_cart;
  const char* my_list;
  const char* signed_in_as;
  const char* no_purchases;
  const char* more_use_search;
  const char* results_for;
  const char* no_results;
  const char* cart_empty;
  const char* quantity;
  const char* update;
  const char* total;
  const char* checkout;
  const char* orders;
  const char* no_orders;
  const char* username;
  const char* password;
  const char* bad_login;
};

constexpr Labels kEnglish = {
    "en",
    "Search",
    "Cart",
    "Account",
    "Sign in",
    "Sign out",
    "Categories",
    "Welcome to PetStore",
    "Browse the categories on the left, or search for a pet.",
    "Products",
    "Items",
    "Item",
    "Price",
    "In stock",
    "Add to cart",
    "My List",
    "Signed in as",
    "No purchases yet.",
    "More products: use search.",
    "Search results for",
    "No products found.",
    "Your cart is empty.",
    "Quantity",
    "Update",
    "Total",
    "Check out",
    "Orders",
    "No orders yet.",
    "User name",
    "Password",
    "Invalid user name or password.",
};

constexpr Labels kJapanese = {
    "ja",
    "検索",
    "カート",
    "アカウント",
    "サインイン",
    "サインアウト",
    "カテゴリー",
    "ペットストアへようこそ",
    "左のカテゴリーから選ぶか、ペットを検索してください。",
    "商品",
    "品目",
    "品目",
    "価格",
    "在庫",
    "カートに入れる",
    "マイリスト",
    "サインイン中",
    "購入履歴はまだありません。",
    "その他の商品は検索してください。",
    "検索結果",
    "商品が見つかりません。",
    "カートは空です。",
    "数量",
    "更新",
    "合計",
    "購入手続き",
    "注文",
    "注文はまだありません。",
    "ユーザー名",
    "パスワード",
    "ユーザー名またはパスワードが違います。",
};

constexpr const char* kStyle =
    "body{font-family:sans-serif;margin:0}header{background:#2d5d2d;color:#fff;padding:8px}"
    "header a{color:#fff}.page{display:flex;gap:16px;padding:8px}main{flex:1}"
    "nav.categories,aside.mylist{width:180px}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 6px}";

const char* ReasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

HttpResponse HtmlResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.Set("Content-Type", "text/html; charset=utf-8");
  r.body = std::move(body);
  return r;
}

HttpResponse ErrorPage(int status, std::string_view message) {
  std::string title = std::to_string(status) + " " + ReasonPhrase(status);
  std::string body =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + title +
      " - PetStore</title>\n</head>\n<body>\n<h1>" + title + "</h1>\n<p>" + Esc(message) +
      "</p>\n<p><a href=\"/\">PetStore</a></p>\n</body>\n</html>\n";
  HttpResponse r = HtmlResponse(status, std::move(body));
  r.Set("Cache-Control", "no-store");
  return r;
}

HttpResponse Redirect(int status, std::string location) {
  HttpResponse r = HtmlResponse(status, "");
  r.Set("Location", std::move(location));
  r.Set("Cache-Control", "no-store");
  return r;
}

// Fixed-point money as PostgreSQL prints numeric(…,2): "16.50".
std::optional<int64_t> ParseCents(std::string_view s) {
  int64_t whole = 0, frac = 0;
  size_t dot = s.find('.');
  std::string_view w = s.substr(0, dot);
  auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), whole);
  if (ec != std::errc() || p != w.data() + w.size()) return std::nullopt;
  if (dot != std::string_view::npos) {
    std::string_view f = s.substr(dot + 1);
    if (f.size() > 2 || f.empty()) return std::nullopt;
    auto [q, ec2] = std::from_chars(f.data(), f.data() + f.size(), frac);
    if (ec2 != std::errc() || q != f.data() + f.size()) return std::nullopt;
    if (f.size() == 1) frac *= 10;
  }
  return whole * 100 + frac;
}

std::string CentsText(int64_t cents) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%02lld", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100));
  return buf;
}

std::optional<int> ParseQuantity(std::string_view s, int lo, int hi) {
  if (s.empty() || s.size() > 6) return std::nullopt;
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) return std::nullopt;
  return v;
}

// LIKE pattern matching `text` anywhere, with its own wildcards escaped
// (backslash is PostgreSQL's default LIKE escape).
std::string ContainsPattern(std::string_view text) {
  std::string p = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') p.push_back('\\');
    p.push_back(c);
  }
  p.push_back('%');
  return p;
}

// A path id ("/category/<id>"): percent-decoded, bounded, no '/'.
std::optional<std::string> PathId(std::string_view rest) {
  if (rest.empty() || rest.find('/') != std::string_view::npos) return std::nullopt;
  auto id = DecodeComponent(rest, false);
  if (!id || id->empty() || id->size() > kMaxIdBytes) return std::nullopt;
  return id;
}

bool ValidId(const std::optional<std::string>& id) {
  return id && !id->empty() && id->size() <= kMaxIdBytes;
}

// The access_log path column: printable ASCII only, bounded.
std::string LoggablePath(std::string_view target) {
  std::string out;
  for (char c : target.substr(0, 2048)) out.push_back(c > 0x20 && c < 0x7f ? c : '?');
  return out;
}

enum class FragKind { kCategories, kProducts, kItems, kItem, kMylist };

struct FragRef {
  FragKind kind;
  std::string arg;  // category, product or item id

  std::string Url() const {
    switch (kind) {
      case FragKind::kCategories:
        return "/frag/categories";
      case FragKind::kProducts:
        return "/frag/products?category=" + PercentEncode(arg);
      case FragKind::kItems:
        return "/frag/items?product=" + PercentEncode(arg);
      case FragKind::kItem:
        return "/frag/item?id=" + PercentEncode(arg);
      case FragKind::kMylist:
        return "/frag/mylist";
    }
    return "/";
  }
};

// One piece of a page: literal HTML or a fragment.
struct Part {
  std::string html;
  std::optional<FragRef> frag;
};
Part Html(std::string html) { return Part{std::move(html), std::nullopt}; }
Part Frag(FragKind kind, std::string arg = {}) { return Part{{}, FragRef{kind, std::move(arg)}}; }

std::string_view Value(const PGresult* r, int row, int col) {
  return std::string_view(PQgetvalue(r, row, col), PQgetlength(r, row, col));
}

// One request: its trace context, locale, session and (lazily) a connection.
class Request {
 public:
  Request(const StoreAppOptions& options, PgPool* pool, const HttpRequest& req)
      : options_(options), pool_(pool), req_(req) {
    auto [path, query] = SplitTarget(req.target);
    path_ = path;
    query_text_ = query;
    auto incoming = TraceParent::Parse(req.Header("traceparent"));
    trace_ = incoming ? *incoming : TraceParent::Generate();
    comment_ = SqlCommentFor(trace_.Child());
    for (std::string_view v : req.Headers("Surrogate-Capability"))
      if (v.find("ESI/1.0") != std::string_view::npos) esi_ = true;
    std::optional<std::string> lang_cookie;
    bool saw_sid = false;
    for (auto& [name, value] : ParseCookies(req.Headers("Cookie"))) {
      // Only the first `sid` counts, as at the edge: a second one cannot
      // stand in for an invalid first one.
      if (name == "sid" && !saw_sid) {
        saw_sid = true;
        SessionCookieCodec codec(options_.session_secret);
        session_ = codec.Decode(value, static_cast<int64_t>(std::time(nullptr)));
      } else if (name == "lang" && !lang_cookie) {
        lang_cookie = value;
      }
    }
    if (lang_cookie == "ja")
      ja_ = true;
    else if (lang_cookie == "en")
      ja_ = false;
    else if (session_)
      ja_ = session_->locale == "ja_JP";
  }

  HttpResponse Run() {
    HttpResponse resp;
    try {
      resp = Route();
    } catch (const std::exception& e) {
      log::Error("store", "request failed", {{"path", std::string(path_)}, {"error", e.what()}});
      resp = ErrorPage(500, "Internal error.");
    }
    LogAccess(resp.status);
    return resp;
  }

  HttpResponse Rejected(int status) {
    HttpResponse resp =
        ErrorPage(status, status == 413 ? "Request body too large." : "Bad request.");
    LogAccess(status);
    return resp;
  }

 private:
  const char* locale() const { return ja_ ? "ja_JP" : "en_US"; }
  const Labels& L() const { return ja_ ? kJapanese : kEnglish; }
  const char* user() const { return session_ ? session_->user_id.c_str() : nullptr; }

  std::string Money(std::string_view amount) const {
    if (!ja_) return "$" + std::string(amount);
    std::string s(amount);
    if (s.size() > 3 && s.compare(s.size() - 3, 3, ".00") == 0) s.resize(s.size() - 3);
    return "¥" + s;
  }

  // Every statement goes through here: it gets the request's sqlcommenter
  // comment, and any database failure becomes Unavailable (→ 503).
  Result<pg::ResultPtr> Sql(std::string_view sql, const std::vector<const char*>& params = {}) {
    if (!lease_) {
      auto lease = pool_->Acquire();
      if (!lease.ok()) return Status::Unavailable(lease.status().message());
      lease_.emplace(std::move(lease).value());
    }
    std::string text = std::string(sql) + " " + comment_;
    if (options_.on_statement) options_.on_statement(text);
    auto r = pg::ExecParams(lease_->get(), text, params);
    if (!r.ok() && PQstatus(lease_->get()) != CONNECTION_OK && !in_transaction_ &&
        (sql.substr(0, 7) == "SELECT " || sql.substr(0, 22) == "INSERT INTO access_log")) {
      // A pooled connection the server dropped (restart, idle kill) fails on
      // first use; a read is safe to repeat once on a fresh connection, and
      // so is the access_log row (at worst logged twice).
      lease_->MarkBroken();
      lease_.reset();
      auto lease = pool_->Acquire();
      if (!lease.ok()) return Status::Unavailable(lease.status().message());
      lease_.emplace(std::move(lease).value());
      if (options_.on_statement) options_.on_statement(text);
      r = pg::ExecParams(lease_->get(), text, params);
    }
    if (!r.ok()) return Status::Unavailable(r.status().message());
    return r;
  }

  void LogAccess(int status) {
    std::string path = LoggablePath(req_.target);
    std::string method = LoggablePath(req_.method.substr(0, 16));
    std::string st = std::to_string(status);
    auto r =
        Sql("INSERT INTO access_log (trace_id, method, path, status, userid) VALUES ($1, $2, $3, "
            "$4, $5)",
            {trace_.trace_id.c_str(), method.c_str(), path.c_str(), st.c_str(), user()});
    if (!r.ok()) log::Warn("store", "access_log write failed", {{"error", r.status().message()}});
  }

  HttpResponse FromStatus(const Status& s) {
    if (s.IsNotFound()) return ErrorPage(404, s.message().empty() ? "Not found." : s.message());
    if (s.IsInvalidArgument()) return ErrorPage(400, s.message());
    if (s.IsUnavailable()) {
      log::Error(
          "store", "database error",
          {{"path", std::string(path_)}, {"trace_id", trace_.trace_id}, {"error", s.message()}});
      return ErrorPage(503, "The database is unavailable; try again later.");
    }
    log::Error("store", "internal error", {{"path", std::string(path_)}, {"error", s.ToString()}});
    return ErrorPage(500, "Internal error.");
  }

  HttpResponse Answer(Result<HttpResponse> r) {
    return r.ok() ? std::move(r).value() : FromStatus(r.status());
  }

  Result<Fields> Query() const { return ParseUrlEncoded(query_text_); }

  Result<Fields> Form() const { return ParseFormBody(req_.Header("Content-Type"), req_.body); }

  HttpResponse Route() {
    const std::string& m = req_.method;
    std::string_view p = path_;
    // A known path with the wrong method gets 405 naming the right one.
    auto only = [&](const char* allowed, auto&& fn) -> HttpResponse {
      // HEAD is answered as GET; the I/O layer drops the body.
      if (m != allowed && !(m == "HEAD" && std::string_view(allowed) == "GET")) {
        HttpResponse r = ErrorPage(405, "Method not allowed.");
        r.Set("Allow", allowed);
        return r;
      }
      return Answer(fn());
    };
    auto starts = [&](std::string_view prefix) { return p.substr(0, prefix.size()) == prefix; };

    if (p == "/") return only("GET", [&] { return HomePage(); });
    if (starts("/category/")) {
      auto id = PathId(p.substr(10));
      if (!id) return ErrorPage(404, "No such category.");
      return only("GET", [&] { return CategoryPage(*id); });
    }
    if (starts("/product/")) {
      auto id = PathId(p.substr(9));
      if (!id) return ErrorPage(404, "No such product.");
      return only("GET", [&] { return ProductPage(*id); });
    }
    if (starts("/item/")) {
      auto id = PathId(p.substr(6));
      if (!id) return ErrorPage(404, "No such item.");
      return only("GET", [&] { return ItemPage(*id); });
    }
    if (p == "/search") return only("POST", [&] { return SearchPage(); });
    if (p == "/lang/en" || p == "/lang/ja")
      return only("GET", [&] { return SetLang(p.substr(6)); });
    if (p == "/signin") {
      if (m == "GET" || m == "HEAD") return Answer(SigninPage(200, false));
      return only("POST", [&] { return Signin(); });
    }
    if (p == "/signout") return only("GET", [&] { return Signout(); });
    if (p == "/account") return only("GET", [&] { return AccountPage(); });
    if (p == "/cart") return only("GET", [&] { return CartPage(); });
    if (p == "/cart/add") return only("POST", [&] { return CartAdd(); });
    if (p == "/cart/update") return only("POST", [&] { return CartUpdate(); });
    if (p == "/checkout") return only("POST", [&] { return Checkout(); });
    if (starts("/frag/")) return only("GET", [&] { return FragmentUrl(p.substr(6)); });
    return ErrorPage(404, "No such page.");
  }

  // ---- fragments ---------------------------------------------------------

  // The paper's Query1: category ⨝ category_details by locale.
  Result<std::string> FragCategories() {
    auto r =
        Sql("SELECT a.catid, b.name, b.descn FROM category a, category_details b WHERE a.catid = "
            "b.catid AND b.locale = $1 ORDER BY b.name, a.catid",
            {locale()});
    if (!r.ok()) return r.status();
    const PGresult* res = r->get();
    std::string h =
        "<nav class=\"categories\">\n<h2>" + std::string(L().categories) + "</h2>\n<ul>\n";
    for (int i = 0; i < PQntuples(res); ++i)
      h += "<li><a href=\"/category/" + EscUrl(Value(res, i, 0)) + "\" title=\"" +
           Esc(Value(res, i, 2)) + "\">" + Esc(Value(res, i, 1)) + "</a></li>\n";
    h += "</ul>\n</nav>\n";
    return h;
  }

  // The paper's Query2/Query3: product ⨝ product_details by locale and catid.
  Result<std::string> FragProducts(const std::string& catid) {
    auto head = Sql("SELECT name, descn FROM category_details WHERE catid = $1 AND locale = $2",
                    {catid.c_str(), locale()});
    if (!head.ok()) return head.status();
    if (PQntuples(head->get()) == 0) return Status::NotFound("No such category.");
    std::string limit = std::to_string(kProductsShown + 1);
    auto r = Sql(
        "SELECT a.productid, b.name, b.descn FROM product a, product_details b WHERE a.productid = "
        "b.productid AND b.locale = $1 AND a.catid = $2 ORDER BY b.name, a.productid LIMIT $3",
        {locale(), catid.c_str(), limit.c_str()});
    if (!r.ok()) return r.status();
    const PGresult* res = r->get();
    std::string h = "<section class=\"products\">\n<h1>" + Esc(Value(head->get(), 0, 0)) +
                    "</h1>\n<p>" + Esc(Value(head->get(), 0, 1)) + "</p>\n<table>\n";
    int n = PQntuples(res);
    for (int i = 0; i < n && i < kProductsShown; ++i)
      h += "<tr><td><a href=\"/product/" + EscUrl(Value(res, i, 0)) + "\">" +
           Esc(Value(res, i, 1)) + "</a></td><td>" + Esc(Value(res, i, 2)) + "</td></tr>\n";
    h += "</table>\n";
    if (n > kProductsShown) h += "<p class=\"more\">" + std::string(L().more_use_search) + "</p>\n";
    h += "</section>\n";
    return h;
  }

  // The paper's Query5: item ⨝ item_details ⨝ product ⨝ product_details by
  // productid and locale.
  Result<std::string> FragItems(const std::string& productid) {
    auto head =
        Sql("SELECT a.catid, b.name, b.descn FROM product a, product_details b WHERE a.productid = "
            "b.productid AND b.locale = $1 AND a.productid = $2",
            {locale(), productid.c_str()});
    if (!head.ok()) return head.status();
    if (PQntuples(head->get()) == 0) return Status::NotFound("No such product.");
    auto r = Sql(
        "SELECT d.catid, c.name, a.itemid, b.descn, b.attr1, b.listprice FROM item a, "
        "item_details b, product_details c, product d WHERE a.itemid = b.itemid AND a.productid = "
        "c.productid AND d.productid = c.productid AND b.locale = c.locale AND b.locale = $1 AND "
        "a.productid = $2 ORDER BY a.itemid",
        {locale(), productid.c_str()});
    if (!r.ok()) return r.status();
    const PGresult* res = r->get();
    const PGresult* hd = head->get();
    std::string h = "<section class=\"items\">\n<p class=\"crumb\"><a href=\"/category/" +
                    EscUrl(Value(hd, 0, 0)) + "\">" + Esc(Value(hd, 0, 0)) + "</a></p>\n<h1>" +
                    Esc(Value(hd, 0, 1)) + "</h1>\n<p>" + Esc(Value(hd, 0, 2)) + "</p>\n<table>\n";
    for (int i = 0; i < PQntuples(res); ++i)
      h += "<tr><td><a href=\"/item/" + EscUrl(Value(res, i, 2)) + "\">" + Esc(Value(res, i, 2)) +
           "</a></td><td>" + Esc(Value(res, i, 3)) + "</td><td>" + Esc(Money(Value(res, i, 5))) +
           "</td></tr>\n";
    h += "</table>\n</section>\n";
    return h;
  }

  Result<std::string> FragItem(const std::string& itemid) {
    auto r = Sql(
        "SELECT a.itemid, a.productid, b.listprice, b.descn, b.attr1, b.attr2, b.attr3, b.attr4, "
        "b.attr5, c.name, d.catid FROM item a, item_details b, product_details c, product d WHERE "
        "a.itemid = b.itemid AND a.productid = c.productid AND d.productid = c.productid AND "
        "b.locale = c.locale AND b.locale = $1 AND a.itemid = $2",
        {locale(), itemid.c_str()});
    if (!r.ok()) return r.status();
    const PGresult* res = r->get();
    if (PQntuples(res) == 0) return Status::NotFound("No such item.");
    auto inv = Sql("SELECT qty FROM inventory WHERE itemid = $1", {itemid.c_str()});
    if (!inv.ok()) return inv.status();
    std::string qty = PQntuples(inv->get()) ? std::string(Value(inv->get(), 0, 0)) : "0";
    std::string h = "<section class=\"item\">\n<p class=\"crumb\"><a href=\"/category/" +
                    EscUrl(Value(res, 0, 10)) + "\">" + Esc(Value(res, 0, 10)) +
                    "</a> &gt; <a href=\"/product/" + EscUrl(Value(res, 0, 1)) + "\">" +
                    Esc(Value(res, 0, 9)) + "</a></p>\n<h1>" + Esc(Value(res, 0, 0)) +
                    "</h1>\n<p class=\"descn\">" + Esc(Value(res, 0, 3)) +
                    "</p>\n<ul class=\"attrs\">\n";
    for (int col = 4; col <= 8; ++col)
      if (!PQgetisnull(res, 0, col)) h += "<li>" + Esc(Value(res, 0, col)) + "</li>\n";
    h += "</ul>\n<p class=\"price\">" + std::string(L().price) + ": " +
         Esc(Money(Value(res, 0, 2))) + "</p>\n<p class=\"stock\">" + L().in_stock + ": " +
         Esc(qty) +
         "</p>\n<form method=\"post\" action=\"/cart/add\"><input type=\"hidden\" name=\"itemid\" "
         "value=\"" +
         Esc(Value(res, 0, 0)) + "\"><button>" + L().add_to_cart + "</button></form>\n</section>\n";
    return h;
  }

  // The personalised fragment: the signed-in user's recent purchase categories.
  Result<std::string> FragMylist() {
    if (!session_) return std::string("<aside class=\"mylist\"></aside>\n");
    auto r = Sql(
        "SELECT p.catid, cd.name, o.orderid FROM orders o, lineitem l, item i, product p, "
        "category_details cd WHERE o.userid = $1 AND l.orderid = o.orderid AND i.itemid = l.itemid "
        "AND p.productid = i.productid AND cd.catid = p.catid AND cd.locale = $2 ORDER BY "
        "o.orderid DESC, l.linenum LIMIT 50",
        {user(), locale()});
    if (!r.ok()) return r.status();
    const PGresult* res = r->get();
    std::string h = "<aside class=\"mylist\">\n<h2>" + std::string(L().my_list) +
                    "</h2>\n<p class=\"user\">" + L().signed_in_as + " " + Esc(session_->user_id) +
                    "</p>\n";
    std::set<std::string_view> seen;
    std::string list;
    for (int i = 0; i < PQntuples(res) && seen.size() < 5; ++i) {
      if (!seen.insert(Value(res, i, 0)).second) continue;
      list += "<li><a href=\"/category/" + EscUrl(Value(res, i, 0)) + "\">" +
              Esc(Value(res, i, 1)) + "</a></li>\n";
    }
    if (list.empty())
      h += "<p>" + std::string(L().no_purchases) + "</p>\n";
    else
      h += "<ul>\n" + list + "</ul>\n";
    h += "</aside>\n";
    return h;
  }

  Result<std::string> RenderFrag(const FragRef& f) {
    switch (f.kind) {
      case FragKind::kCategories:
        return FragCategories();
      case FragKind::kProducts:
        return FragProducts(f.arg);
      case FragKind::kItems:
        return FragItems(f.arg);
      case FragKind::kItem:
        return FragItem(f.arg);
      case FragKind::kMylist:
        return FragMylist();
    }
    return Status::Internal("unknown fragment");
  }

  // GET /frag/<name>[?<param>=<id>]
  Result<HttpResponse> FragmentUrl(std::string_view name) {
    auto q = Query();
    if (!q.ok()) return Status::InvalidArgument("Malformed query string.");
    auto need = [&](const char* param) -> Result<std::string> {
      auto v = q->Get(param);
      if (!v || v->empty()) return Status::InvalidArgument(std::string("Missing '") + param + "'.");
      if (!ValidId(v)) return Status::NotFound("No such id.");
      return *v;
    };
    std::optional<FragRef> ref;
    if (name == "categories") {
      ref = FragRef{FragKind::kCategories, {}};
    } else if (name == "products") {
      auto id = need("category");
      if (!id.ok()) return id.status();
      ref = FragRef{FragKind::kProducts, *id};
    } else if (name == "items") {
      auto id = need("product");
      if (!id.ok()) return id.status();
      ref = FragRef{FragKind::kItems, *id};
    } else if (name == "item") {
      auto id = need("id");
      if (!id.ok()) return id.status();
      ref = FragRef{FragKind::kItem, *id};
    } else if (name == "mylist") {
      ref = FragRef{FragKind::kMylist, {}};
    } else {
      return Status::NotFound("No such fragment.");
    }
    auto body = RenderFrag(*ref);
    if (!body.ok()) return body.status();
    // No Cache-Control even on /frag/mylist: the paper caches the personalised
    // fragment per user at the edge, keyed by the signed session (rules decide).
    return HtmlResponse(200, std::move(body).value());
  }

  // ---- pages -------------------------------------------------------------

  // The page frame: header, the categories fragment, `main`, the mylist fragment.
  Result<HttpResponse> Page(std::string_view title, std::vector<Part> main, int status = 200) {
    const Labels& l = L();
    std::vector<Part> parts;
    parts.push_back(Html(
        std::string("<!DOCTYPE html>\n<html lang=\"") + l.html_lang +
        "\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + Esc(title) +
        " - PetStore</title>\n<style>" + kStyle +
        "</style>\n</head>\n<body>\n<header>\n<a class=\"logo\" href=\"/\">PetStore</a>\n<form "
        "class=\"search\" method=\"post\" action=\"/search\"><input name=\"q\"><button>" +
        l.search + "</button></form>\n<nav class=\"top\"><a href=\"/cart\">" + l.cart +
        "</a> | <a href=\"/account\">" + l.account + "</a> | <a href=\"/signin\">" + l.signin +
        "</a> | <a href=\"/signout\">" + l.signout +
        "</a> | <a href=\"/lang/en\">English</a> | <a "
        "href=\"/lang/ja\">日本語</a></nav>\n</header>\n"
        "<div class=\"page\">\n"));
    parts.push_back(Frag(FragKind::kCategories));
    parts.push_back(Html("<main>\n"));
    for (auto& p : main) parts.push_back(std::move(p));
    parts.push_back(Html("</main>\n"));
    parts.push_back(Frag(FragKind::kMylist));
    parts.push_back(
        Html("</div>\n<footer>PetStore, a CachePortal sample</footer>\n</body>\n</html>\n"));

    std::string body;
    bool has_include = false;
    for (const auto& p : parts) {
      if (!p.frag) {
        body += p.html;
      } else if (esi_) {
        body += "<esi:include src=\"" + Esc(p.frag->Url()) + "\"/>";
        has_include = true;
      } else {
        auto f = RenderFrag(*p.frag);
        if (!f.ok()) return f.status();
        body += *f;
      }
    }
    HttpResponse r = HtmlResponse(status, std::move(body));
    if (has_include) r.Set("Surrogate-Control", "content=\"ESI/1.0\"");
    return r;
  }

  // With ESI the page itself renders no fragment, so it checks the id itself
  // to answer 404 (and that query ties the page to the row's existence).
  Status CheckExists(const char* sql, const std::string& id, const char* what) {
    auto r = Sql(sql, {id.c_str()});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return Status::NotFound(std::string("No such ") + what + ".");
    return Status::OK();
  }

  Result<HttpResponse> HomePage() {
    return Page("PetStore", {Html("<h1>" + std::string(L().welcome) + "</h1>\n<p>" +
                                  L().welcome_text + "</p>\n")});
  }

  Result<HttpResponse> CategoryPage(const std::string& catid) {
    if (esi_) {
      Status s = CheckExists("SELECT catid FROM category WHERE catid = $1", catid, "category");
      if (!s.ok()) return s;
    }
    return Page(catid, {Frag(FragKind::kProducts, catid)});
  }

  Result<HttpResponse> ProductPage(const std::string& productid) {
    if (esi_) {
      Status s =
          CheckExists("SELECT productid FROM product WHERE productid = $1", productid, "product");
      if (!s.ok()) return s;
    }
    return Page(productid, {Frag(FragKind::kItems, productid)});
  }

  Result<HttpResponse> ItemPage(const std::string& itemid) {
    if (esi_) {
      Status s = CheckExists("SELECT itemid FROM item WHERE itemid = $1", itemid, "item");
      if (!s.ok()) return s;
    }
    return Page(itemid, {Frag(FragKind::kItem, itemid)});
  }

  Result<HttpResponse> SearchPage() {
    auto form = Form();
    if (!form.ok()) return Status::InvalidArgument("Malformed form.");
    auto q = form->Get("q");
    if (!q) return Status::InvalidArgument("Missing 'q'.");
    std::string_view text = *q;
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    if (text.empty() || text.size() > 100)
      return Status::InvalidArgument("'q' must have 1 to 100 characters.");
    auto category = form->Get("category");
    if (category && category->size() > kMaxIdBytes)
      return Status::InvalidArgument("Bad 'category'.");
    std::string pattern = ContainsPattern(text);
    std::string limit = std::to_string(kSearchShown);
    Result<pg::ResultPtr> r = Status::Internal("unset");
    if (category && !category->empty())
      r = Sql(
          "SELECT a.productid, b.name, b.descn, a.catid FROM product a, product_details b WHERE "
          "a.productid = b.productid AND b.locale = $1 AND b.name ILIKE $2 AND a.catid = $3 ORDER "
          "BY b.name, a.productid LIMIT $4",
          {locale(), pattern.c_str(), category->c_str(), limit.c_str()});
    else
      r = Sql(
          "SELECT a.productid, b.name, b.descn, a.catid FROM product a, product_details b WHERE "
          "a.productid = b.productid AND b.locale = $1 AND b.name ILIKE $2 ORDER BY b.name, "
          "a.productid LIMIT $3",
          {locale(), pattern.c_str(), limit.c_str()});
    if (!r.ok()) return r.status();
    const PGresult* res = r->get();
    std::string h = "<section class=\"search\">\n<h1>" + std::string(L().results_for) + " \"" +
                    Esc(text) + "\"</h1>\n";
    if (PQntuples(res) == 0) {
      h += "<p>" + std::string(L().no_results) + "</p>\n";
    } else {
      h += "<table>\n";
      for (int i = 0; i < PQntuples(res); ++i)
        h += "<tr><td><a href=\"/product/" + EscUrl(Value(res, i, 0)) + "\">" +
             Esc(Value(res, i, 1)) + "</a></td><td>" + Esc(Value(res, i, 2)) + "</td><td>" +
             Esc(Value(res, i, 3)) + "</td></tr>\n";
      h += "</table>\n";
    }
    h += "</section>\n";
    return Page(L().search, {Html(std::move(h))});
  }

  // Back to where the user was: only the path of a same-site Referer, so the
  // redirect can never leave the store.
  std::string BackTo() const {
    std::string_view ref = req_.Header("Referer");
    size_t scheme = ref.find("://");
    if (scheme != std::string_view::npos) {
      size_t slash = ref.find('/', scheme + 3);
      ref = slash == std::string_view::npos ? std::string_view("/") : ref.substr(slash);
    }
    if (ref.empty() || ref[0] != '/' || (ref.size() > 1 && (ref[1] == '/' || ref[1] == '\\')) ||
        ref.size() > 2048)
      return "/";
    for (char c : ref)
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return "/";
    return std::string(ref);
  }

  Result<HttpResponse> SetLang(std::string_view lang) {
    HttpResponse r = Redirect(302, BackTo());
    r.Set("Set-Cookie", "lang=" + std::string(lang) + "; Path=/; Max-Age=31536000; SameSite=Lax");
    return r;
  }

  Result<HttpResponse> SigninPage(int status, bool failed) {
    const Labels& l = L();
    std::string h = "<section class=\"signin\">\n<h1>" + std::string(l.signin) + "</h1>\n";
    if (failed) h += "<p class=\"error\">" + std::string(l.bad_login) + "</p>\n";
    h += "<form method=\"post\" action=\"/signin\">\n<label>" + std::string(l.username) +
         " <input name=\"username\"></label>\n<label>" + l.password +
         " <input type=\"password\" name=\"password\"></label>\n<button>" + l.signin +
         "</button>\n</form>\n</section>\n";
    auto page = Page(l.signin, {Html(std::move(h))}, status);
    if (page.ok()) page->Set("Cache-Control", "no-store");
    return page;
  }

  Result<HttpResponse> Signin() {
    auto form = Form();
    if (!form.ok()) return Status::InvalidArgument("Malformed form.");
    auto username = form->Get("username");
    auto password = form->Get("password");
    if (!username || !password || username->empty() || username->size() > kMaxIdBytes ||
        password->size() > 1024)
      return Status::InvalidArgument("Sign-in needs 'username' and 'password'.");
    auto r = Sql(
        "SELECT s.password, p.langpref FROM signon s, profile p WHERE s.username = $1 AND p.userid "
        "= s.username",
        {username->c_str()});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0 || !VerifyPassword(*password, Value(r->get(), 0, 0))) {
      session_.reset();  // the failed page must not show a previous user
      return SigninPage(403, true);
    }
    // An explicit language choice outlives sign-in; otherwise the profile's.
    bool has_lang = false;
    for (auto& [name, value] : ParseCookies(req_.Headers("Cookie")))
      if (name == "lang" && (value == "en" || value == "ja")) has_lang = true;
    SessionData data;
    data.user_id = *username;
    data.locale = has_lang ? locale() : std::string(Value(r->get(), 0, 1));
    data.expires_unix = static_cast<int64_t>(std::time(nullptr)) + options_.session_ttl_seconds;
    session_ = data;
    HttpResponse resp = Redirect(303, "/");
    resp.Set("Set-Cookie", "sid=" + SessionCookieCodec(options_.session_secret).Encode(data) +
                               "; Path=/; Max-Age=" + std::to_string(options_.session_ttl_seconds) +
                               "; HttpOnly; SameSite=Lax");
    return resp;
  }

  Result<HttpResponse> Signout() {
    HttpResponse r = Redirect(303, "/");
    r.Set("Set-Cookie", "sid=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    return r;
  }

  Result<HttpResponse> AccountPage() {
    if (!session_) return Redirect(303, "/signin");
    auto acct =
        Sql("SELECT a.email, a.firstname, a.lastname, a.city, a.country, p.langpref, p.favcategory "
            "FROM account a, profile p WHERE a.userid = $1 AND p.userid = a.userid",
            {user()});
    if (!acct.ok()) return acct.status();
    if (PQntuples(acct->get()) == 0) return Redirect(303, "/signin");
    auto orders =
        Sql("SELECT orderid, orderdate, totalprice, locale FROM orders WHERE userid = $1 ORDER BY "
            "orderid DESC LIMIT 20",
            {user()});
    if (!orders.ok()) return orders.status();
    const PGresult* a = acct->get();
    const PGresult* o = orders->get();
    const Labels& l = L();
    std::string h = "<section class=\"account\">\n<h1>" + std::string(l.account) + ": " +
                    Esc(session_->user_id) + "</h1>\n<p>" + Esc(Value(a, 0, 1)) + " " +
                    Esc(Value(a, 0, 2)) + " &lt;" + Esc(Value(a, 0, 0)) + "&gt;, " +
                    Esc(Value(a, 0, 3)) + ", " + Esc(Value(a, 0, 4)) + "</p>\n<h2>" + l.orders +
                    "</h2>\n";
    if (PQntuples(o) == 0) {
      h += "<p>" + std::string(l.no_orders) + "</p>\n";
    } else {
      h += "<table class=\"orders\">\n";
      for (int i = 0; i < PQntuples(o); ++i) {
        std::string_view total = Value(o, i, 2);
        std::string money =
            Value(o, i, 3) == "ja_JP" ? "¥" + std::string(total) : "$" + std::string(total);
        h += "<tr><td>#" + Esc(Value(o, i, 0)) + "</td><td>" + Esc(Value(o, i, 1)) + "</td><td>" +
             Esc(money) + "</td></tr>\n";
      }
      h += "</table>\n";
    }
    h += "<p><a href=\"/signout\">" + std::string(l.signout) + "</a></p>\n</section>\n";
    auto page = Page(l.account, {Html(std::move(h))});
    if (page.ok()) page->Set("Cache-Control", "no-store");
    return page;
  }

  Result<HttpResponse> CartPage() {
    if (!session_) return Redirect(303, "/signin");
    auto r =
        Sql("SELECT c.itemid, c.quantity, d.descn, d.listprice FROM cart c, item_details d WHERE "
            "c.itemid = d.itemid AND c.userid = $1 AND d.locale = $2 ORDER BY c.itemid",
            {user(), locale()});
    if (!r.ok()) return r.status();
    const PGresult* res = r->get();
    const Labels& l = L();
    std::string h = "<section class=\"cart\">\n<h1>" + std::string(l.cart) + "</h1>\n";
    if (PQntuples(res) == 0) {
      h += "<p class=\"empty\">" + std::string(l.cart_empty) + "</p>\n";
    } else {
      int64_t total = 0;
      h += "<table>\n";
      for (int i = 0; i < PQntuples(res); ++i) {
        auto price = ParseCents(Value(res, i, 3));
        auto qty = ParseQuantity(Value(res, i, 1), 1, 1000000);
        if (price && qty) total += *price * *qty;
        h += "<tr><td><a href=\"/item/" + EscUrl(Value(res, i, 0)) + "\">" + Esc(Value(res, i, 0)) +
             "</a></td><td>" + Esc(Value(res, i, 2)) + "</td><td>" + Esc(Money(Value(res, i, 3))) +
             "</td><td><form method=\"post\" action=\"/cart/update\"><input type=\"hidden\" "
             "name=\"itemid\" value=\"" +
             Esc(Value(res, i, 0)) + "\"><input name=\"quantity\" size=\"3\" value=\"" +
             Esc(Value(res, i, 1)) + "\"><button>" + l.update + "</button></form></td></tr>\n";
      }
      h += "</table>\n<p class=\"total\">" + std::string(l.total) + ": " +
           Esc(Money(CentsText(total))) +
           "</p>\n<form method=\"post\" action=\"/checkout\"><button>" + l.checkout +
           "</button></form>\n";
    }
    h += "</section>\n";
    auto page = Page(l.cart, {Html(std::move(h))});
    if (page.ok()) page->Set("Cache-Control", "no-store");
    return page;
  }

  Result<HttpResponse> CartAdd() {
    auto form = Form();
    if (!form.ok()) return Status::InvalidArgument("Malformed form.");
    auto itemid = form->Get("itemid");
    auto qtext = form->Get("quantity");
    if (!itemid || itemid->empty()) return Status::InvalidArgument("Missing 'itemid'.");
    std::optional<int> qty = qtext ? ParseQuantity(*qtext, 1, kMaxQuantity) : 1;
    if (!qty) return Status::InvalidArgument("'quantity' must be 1 to 999.");
    if (!session_) return Redirect(303, "/signin");
    if (!ValidId(itemid)) return Status::NotFound("No such item.");
    auto exists = Sql("SELECT itemid FROM item WHERE itemid = $1", {itemid->c_str()});
    if (!exists.ok()) return exists.status();
    if (PQntuples(exists->get()) == 0) return Status::NotFound("No such item.");
    std::string q = std::to_string(*qty);
    std::string max = std::to_string(kMaxQuantity);
    auto r =
        Sql("INSERT INTO cart (userid, itemid, quantity) VALUES ($1, $2, $3) ON CONFLICT (userid, "
            "itemid) DO UPDATE SET quantity = LEAST(cart.quantity + EXCLUDED.quantity, $4)",
            {user(), itemid->c_str(), q.c_str(), max.c_str()});
    if (!r.ok()) return r.status();
    return Redirect(303, "/cart");
  }

  Result<HttpResponse> CartUpdate() {
    auto form = Form();
    if (!form.ok()) return Status::InvalidArgument("Malformed form.");
    auto itemid = form->Get("itemid");
    auto qtext = form->Get("quantity");
    if (!itemid || itemid->empty() || !qtext)
      return Status::InvalidArgument("Missing 'itemid' or 'quantity'.");
    auto qty = ParseQuantity(*qtext, 0, kMaxQuantity);
    if (!qty) return Status::InvalidArgument("'quantity' must be 0 to 999.");
    if (!session_) return Redirect(303, "/signin");
    if (!ValidId(itemid)) return Status::NotFound("No such item in the cart.");
    std::string q = std::to_string(*qty);
    auto r = *qty == 0 ? Sql("DELETE FROM cart WHERE userid = $1 AND itemid = $2",
                             {user(), itemid->c_str()})
                       : Sql("UPDATE cart SET quantity = $3 WHERE userid = $1 AND itemid = $2",
                             {user(), itemid->c_str(), q.c_str()});
    if (!r.ok()) return r.status();
    if (std::string_view(PQcmdTuples(r->get())) == "0")
      return Status::NotFound("No such item in the cart.");
    return Redirect(303, "/cart");
  }

  // One transaction: the order, its lines, the inventory decrements and the
  // emptied cart commit together or not at all.
  Result<HttpResponse> Checkout() {
    if (!session_) return Redirect(303, "/signin");
    if (auto b = Sql("BEGIN"); !b.ok()) return b.status();
    in_transaction_ = true;
    auto result = CheckoutInTransaction();
    in_transaction_ = false;
    if (!result.ok() || result->status != 303) {
      if (auto rb = Sql("ROLLBACK"); !rb.ok() && lease_) lease_->MarkBroken();
      return result;
    }
    if (auto c = Sql("COMMIT"); !c.ok()) return c.status();
    return result;
  }

  Result<HttpResponse> CheckoutInTransaction() {
    auto lines =
        Sql("SELECT c.itemid, c.quantity, d.listprice FROM cart c, item_details d WHERE c.itemid = "
            "d.itemid AND c.userid = $1 AND d.locale = $2 ORDER BY c.itemid",
            {user(), locale()});
    if (!lines.ok()) return lines.status();
    const PGresult* res = lines->get();
    int n = PQntuples(res);
    if (n == 0) return ErrorPage(409, L().cart_empty);
    int64_t total = 0;
    for (int i = 0; i < n; ++i) {
      auto price = ParseCents(Value(res, i, 2));
      auto qty = ParseQuantity(Value(res, i, 1), 1, 1000000);
      if (!price || !qty) return Status::Internal("unparsable cart line");
      total += *price * *qty;
      std::string itemid(Value(res, i, 0)), q(Value(res, i, 1));
      auto inv = Sql("UPDATE inventory SET qty = qty - $1 WHERE itemid = $2 AND qty >= $1",
                     {q.c_str(), itemid.c_str()});
      if (!inv.ok()) return inv.status();
      if (std::string_view(PQcmdTuples(inv->get())) != "1")
        return ErrorPage(409, "Not enough stock for " + itemid + ".");
    }
    std::string total_text = CentsText(total);
    auto order = Sql(
        "INSERT INTO orders (userid, shipaddr1, shipcity, shipzip, shipcountry, locale, "
        "totalprice) SELECT userid, addr1, city, zip, country, $2, $3 FROM account WHERE userid = "
        "$1 RETURNING orderid",
        {user(), locale(), total_text.c_str()});
    if (!order.ok()) return order.status();
    if (PQntuples(order->get()) == 0) return ErrorPage(403, "No account for this user.");
    std::string orderid(Value(order->get(), 0, 0));
    for (int i = 0; i < n; ++i) {
      std::string linenum = std::to_string(i + 1);
      std::string itemid(Value(res, i, 0)), q(Value(res, i, 1)), price(Value(res, i, 2));
      auto li = Sql(
          "INSERT INTO lineitem (orderid, linenum, itemid, quantity, unitprice) VALUES ($1, $2, "
          "$3, $4, $5)",
          {orderid.c_str(), linenum.c_str(), itemid.c_str(), q.c_str(), price.c_str()});
      if (!li.ok()) return li.status();
    }
    auto st = Sql("INSERT INTO orderstatus (orderid, linenum, status) VALUES ($1, 0, 'P')",
                  {orderid.c_str()});
    if (!st.ok()) return st.status();
    auto del = Sql("DELETE FROM cart WHERE userid = $1", {user()});
    if (!del.ok()) return del.status();
    return Redirect(303, "/account");
  }

  const StoreAppOptions& options_;
  PgPool* pool_;
  const HttpRequest& req_;
  std::string_view path_;
  std::string_view query_text_;
  TraceParent trace_;
  std::string comment_;
  bool esi_ = false;
  bool ja_ = false;
  bool in_transaction_ = false;
  std::optional<SessionData> session_;
  std::optional<PgPool::Lease> lease_;
};

}  // namespace

StoreApp::StoreApp(StoreAppOptions options, PgPool* pool)
    : options_(std::move(options)), pool_(pool) {}

HttpResponse StoreApp::Handle(const HttpRequest& request) {
  return Request(options_, pool_, request).Run();
}

HttpResponse StoreApp::Reject(const HttpRequest& partial, int status) {
  return Request(options_, pool_, partial).Rejected(status);
}

}  // namespace cacheportal::store
