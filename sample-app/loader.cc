#include "sample-app/loader.h"

#include <libpq-fe.h>

#include <cstdio>
#include <string_view>
#include <vector>

#include "common/pg.h"
#include "sample-app/password.h"

namespace cacheportal::store {
namespace {

struct CategoryRow {
  const char* catid;
  const char* name_en;
  const char* descn_en;
  const char* name_ja;
  const char* descn_ja;
};

struct ProductRow {
  const char* productid;
  const char* catid;
  const char* name_en;
  const char* descn_en;
  const char* name_ja;
  const char* descn_ja;
};

struct ItemRow {
  int number;  // EST-<number>
  const char* productid;
  int listprice_cents;
  int unitcost_cents;
  const char* attr1_en;
  const char* attr1_ja;
};

// The classic PetStore catalogue (scale 1).
constexpr CategoryRow kCategories[] = {
    {"FISH", "Fish", "Saltwater and freshwater fish", "魚", "海水魚と淡水魚"},
    {"DOGS", "Dogs", "Dogs of every size", "犬", "大小さまざまな犬"},
    {"REPTILES", "Reptiles", "Snakes and lizards", "爬虫類", "ヘビとトカゲ"},
    {"CATS", "Cats", "Short-haired and long-haired cats", "猫", "短毛種と長毛種の猫"},
    {"BIRDS", "Birds", "Parrots and finches", "鳥", "オウムとフィンチ"},
};

constexpr ProductRow kProducts[] = {
    {"FI-SW-01", "FISH", "Angelfish", "Salt water fish from Australia", "エンゼルフィッシュ",
     "オーストラリアの海水魚"},
    {"FI-SW-02", "FISH", "Tiger Shark", "Salt water fish from Australia", "タイガーシャーク",
     "オーストラリアの海水魚"},
    {"FI-FW-01", "FISH", "Koi", "Fresh water fish from Japan", "錦鯉", "日本の淡水魚"},
    {"FI-FW-02", "FISH", "Goldfish", "Fresh water fish from China", "金魚", "中国の淡水魚"},
    {"K9-BD-01", "DOGS", "Bulldog", "Friendly dog from England", "ブルドッグ",
     "イギリス生まれの人懐っこい犬"},
    {"K9-PO-02", "DOGS", "Poodle", "Cute dog from France", "プードル",
     "フランス生まれのかわいい犬"},
    {"K9-DL-01", "DOGS", "Dalmation", "Great dog for a fire station", "ダルメシアン",
     "消防署にぴったりの犬"},
    {"K9-RT-01", "DOGS", "Golden Retriever", "Great family dog", "ゴールデンレトリバー",
     "家族にぴったりの犬"},
    {"K9-RT-02", "DOGS", "Labrador Retriever", "Great hunting dog", "ラブラドールレトリバー",
     "優れた猟犬"},
    {"K9-CW-01", "DOGS", "Chihuahua", "Great companion dog", "チワワ", "最高の相棒"},
    {"RP-SN-01", "REPTILES", "Rattlesnake", "Doubles as a watch dog", "ガラガラヘビ",
     "番犬にもなる"},
    {"RP-LI-02", "REPTILES", "Iguana", "Friendly green friend", "イグアナ", "人懐っこい緑の友達"},
    {"FL-DSH-01", "CATS", "Manx", "Great for reducing mouse populations", "マンクス",
     "ネズミ退治に最適"},
    {"FL-DLH-02", "CATS", "Persian", "Friendly house cat, doubles as a princess", "ペルシャ",
     "お姫様のような家猫"},
    {"AV-CB-01", "BIRDS", "Amazon Parrot", "Great companion for up to 75 years", "アマゾンオウム",
     "75年も共に暮らせる相棒"},
    {"AV-SB-02", "BIRDS", "Finch", "Great stress reliever", "フィンチ", "ストレス解消に最適"},
};

constexpr ItemRow kItems[] = {
    {1, "FI-SW-01", 1650, 1000, "Large", "大"},
    {2, "FI-SW-01", 1650, 1000, "Small", "小"},
    {3, "FI-SW-02", 1850, 1200, "Toothless", "歯なし"},
    {4, "FI-FW-01", 1850, 1200, "Spotted", "斑点あり"},
    {5, "FI-FW-01", 1850, 1200, "Spotless", "斑点なし"},
    {6, "K9-BD-01", 1850, 1200, "Male Adult", "成犬・オス"},
    {7, "K9-BD-01", 1850, 1200, "Female Puppy", "子犬・メス"},
    {8, "K9-PO-02", 1850, 1200, "Male Puppy", "子犬・オス"},
    {9, "K9-DL-01", 1850, 1200, "Spotless Male Puppy", "斑点なし子犬・オス"},
    {10, "K9-DL-01", 1850, 1200, "Spotted Adult Female", "斑点あり成犬・メス"},
    {11, "RP-SN-01", 1850, 1200, "Venomless", "毒なし"},
    {12, "RP-SN-01", 1850, 1200, "Rattleless", "ガラガラなし"},
    {13, "RP-LI-02", 1850, 1200, "Green Adult", "緑・成体"},
    {14, "FL-DSH-01", 5850, 1200, "Tailless", "尾なし"},
    {15, "FL-DSH-01", 2350, 1200, "With tail", "尾あり"},
    {16, "FL-DLH-02", 9350, 1200, "Adult Female", "成猫・メス"},
    {17, "FL-DLH-02", 9350, 1200, "Adult Male", "成猫・オス"},
    {18, "AV-CB-01", 19350, 9200, "Adult Male", "成鳥・オス"},
    {19, "AV-SB-02", 1550, 200, "Adult Male", "成鳥・オス"},
    {20, "FI-FW-02", 550, 200, "Adult Male", "成魚・オス"},
    {21, "FI-FW-02", 529, 100, "Adult Female", "成魚・メス"},
    {22, "K9-RT-02", 13550, 10000, "Adult Male", "成犬・オス"},
    {23, "K9-RT-02", 14549, 10000, "Adult Female", "成犬・メス"},
    {24, "K9-RT-02", 25550, 9200, "Adult Male", "成犬・オス"},
    {25, "K9-RT-02", 32529, 9000, "Adult Female", "成犬・メス"},
    {26, "K9-CW-01", 12550, 9200, "Adult Male", "成犬・オス"},
    {27, "K9-CW-01", 15529, 9000, "Adult Female", "成犬・メス"},
    {28, "K9-RT-01", 15529, 9000, "Adult Female", "成犬・メス"},
};

constexpr int kInitialQty = 10000;

const std::string kSchema = R"sql(
DROP TABLE IF EXISTS access_log, cart, lineitem, orderstatus, orders, profile, account, signon,
  inventory, item_details, item, product_details, product, category_details, category CASCADE;

CREATE TABLE category (
  catid text PRIMARY KEY
);
CREATE TABLE category_details (
  catid text NOT NULL REFERENCES category,
  locale text NOT NULL,
  name text NOT NULL,
  image text NOT NULL,
  descn text NOT NULL,
  PRIMARY KEY (catid, locale)
);
CREATE TABLE product (
  productid text PRIMARY KEY,
  catid text NOT NULL REFERENCES category
);
CREATE INDEX product_catid ON product (catid);
CREATE TABLE product_details (
  productid text NOT NULL REFERENCES product,
  locale text NOT NULL,
  name text NOT NULL,
  image text NOT NULL,
  descn text NOT NULL,
  PRIMARY KEY (productid, locale)
);
CREATE TABLE item (
  itemid text PRIMARY KEY,
  productid text NOT NULL REFERENCES product
);
CREATE INDEX item_productid ON item (productid);
CREATE TABLE item_details (
  itemid text NOT NULL REFERENCES item,
  locale text NOT NULL,
  listprice numeric(10,2) NOT NULL,
  unitcost numeric(10,2) NOT NULL,
  image text NOT NULL,
  descn text NOT NULL,
  attr1 text,
  attr2 text,
  attr3 text,
  attr4 text,
  attr5 text,
  PRIMARY KEY (itemid, locale)
);
CREATE TABLE inventory (
  itemid text PRIMARY KEY REFERENCES item,
  qty integer NOT NULL CHECK (qty >= 0)
);
CREATE TABLE signon (
  username text PRIMARY KEY,
  password text NOT NULL
);
CREATE TABLE account (
  userid text PRIMARY KEY REFERENCES signon (username),
  email text NOT NULL,
  firstname text NOT NULL,
  lastname text NOT NULL,
  status text NOT NULL,
  addr1 text NOT NULL,
  addr2 text NOT NULL,
  city text NOT NULL,
  state text NOT NULL,
  zip text NOT NULL,
  country text NOT NULL,
  phone text NOT NULL
);
CREATE TABLE profile (
  userid text PRIMARY KEY REFERENCES account,
  langpref text NOT NULL,
  favcategory text REFERENCES category,
  mylistopt boolean NOT NULL,
  banneropt boolean NOT NULL
);
CREATE TABLE orders (
  orderid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  userid text NOT NULL REFERENCES account,
  orderdate timestamptz NOT NULL DEFAULT now(),
  shipaddr1 text NOT NULL,
  shipcity text NOT NULL,
  shipzip text NOT NULL,
  shipcountry text NOT NULL,
  locale text NOT NULL,
  totalprice numeric(12,2) NOT NULL
);
CREATE INDEX orders_userid ON orders (userid);
CREATE TABLE orderstatus (
  orderid bigint NOT NULL REFERENCES orders,
  linenum integer NOT NULL,
  ts timestamptz NOT NULL DEFAULT now(),
  status text NOT NULL,
  PRIMARY KEY (orderid, linenum)
);
CREATE TABLE lineitem (
  orderid bigint NOT NULL REFERENCES orders,
  linenum integer NOT NULL,
  itemid text NOT NULL REFERENCES item,
  quantity integer NOT NULL CHECK (quantity > 0),
  unitprice numeric(10,2) NOT NULL,
  PRIMARY KEY (orderid, linenum)
);
CREATE TABLE cart (
  userid text NOT NULL REFERENCES account,
  itemid text NOT NULL REFERENCES item,
  quantity integer NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (userid, itemid)
);
CREATE TABLE access_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  trace_id text NOT NULL,
  method text NOT NULL,
  path text NOT NULL,
  status integer NOT NULL,
  userid text
);
)sql";

// Marks a NULL field (compared by address, so no real value can collide).
constexpr std::string_view kNull = "NULL";

// Text-format COPY: tab-separated, \N for NULL; the generated data contains no
// tabs, newlines or backslashes, but escape anyway so a future edit cannot
// corrupt a load.
void AppendField(std::string* out, std::string_view v) {
  if (v.data() == kNull.data()) {
    out->append("\\N");
    return;
  }
  for (char c : v) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      default:
        out->push_back(c);
    }
  }
}

class CopyWriter {
 public:
  CopyWriter(PGconn* conn, std::string table) : conn_(conn), table_(std::move(table)) {}

  Status Begin() {
    auto r = pg::Exec(conn_, "COPY " + table_ + " FROM STDIN");
    if (!r.ok()) return r.status();
    if (PQresultStatus(r->get()) != PGRES_COPY_IN)
      return Status::Internal("COPY " + table_ + " did not enter COPY IN");
    return Status::OK();
  }

  void Row(std::initializer_list<std::string_view> fields) {
    bool first = true;
    for (auto f : fields) {
      if (!first) buf_.push_back('\t');
      first = false;
      AppendField(&buf_, f);
    }
    buf_.push_back('\n');
    ++rows_;
  }

  // Sends what is buffered once it is large enough, bounding memory at any scale.
  Status MaybeFlush() { return buf_.size() >= (1u << 20) ? Flush() : Status::OK(); }

  Status End() {
    Status s = Flush();
    if (!s.ok()) return s;
    if (PQputCopyEnd(conn_, nullptr) != 1)
      return Status::Unavailable(std::string("COPY end failed: ") + PQerrorMessage(conn_));
    pg::ResultPtr r(PQgetResult(conn_));
    Status st = Status::OK();
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      std::string msg = r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_);
      st = Status::InvalidArgument("COPY " + table_ + ": " + msg);
    }
    // Drain: libpq requires reading results until nullptr.
    while (pg::ResultPtr extra{PQgetResult(conn_)}) {
    }
    return st;
  }

  int64_t rows() const { return rows_; }

 private:
  Status Flush() {
    if (buf_.empty()) return Status::OK();
    if (PQputCopyData(conn_, buf_.data(), static_cast<int>(buf_.size())) != 1)
      return Status::Unavailable(std::string("COPY data failed: ") + PQerrorMessage(conn_));
    buf_.clear();
    return Status::OK();
  }

  PGconn* conn_;
  std::string table_;
  std::string buf_;
  int64_t rows_ = 0;
};

std::string Money(int64_t cents) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%02lld", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100));
  return buf;
}

// Yen prices are whole numbers near 110 yen per dollar.
std::string Yen(int64_t cents) { return Money((cents * 110 + 50) / 100 * 100); }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Copy r (0-based) of a classic product: r == 0 is the classic row itself.
std::string ProductId(const ProductRow& p, int r) {
  return r == 0 ? std::string(p.productid) : std::string(p.productid) + "-" + std::to_string(r + 1);
}
std::string CopyName(const char* name, int r) {
  return r == 0 ? std::string(name) : std::string(name) + " " + std::to_string(r + 1);
}

Status CopyAll(PGconn* conn, int scale, LoadStats* stats) {
  constexpr int kItemCount = static_cast<int>(std::size(kItems));
  {
    CopyWriter w(conn, "category (catid)");
    if (Status s = w.Begin(); !s.ok()) return s;
    for (const auto& c : kCategories) w.Row({c.catid});
    if (Status s = w.End(); !s.ok()) return s;
    stats->categories = w.rows();
  }
  {
    CopyWriter w(conn, "category_details (catid, locale, name, image, descn)");
    if (Status s = w.Begin(); !s.ok()) return s;
    for (const auto& c : kCategories) {
      std::string image = "/images/" + Lower(c.catid) + ".gif";
      w.Row({c.catid, "en_US", c.name_en, image, c.descn_en});
      w.Row({c.catid, "ja_JP", c.name_ja, image, c.descn_ja});
    }
    if (Status s = w.End(); !s.ok()) return s;
  }
  {
    CopyWriter w(conn, "product (productid, catid)");
    if (Status s = w.Begin(); !s.ok()) return s;
    for (int r = 0; r < scale; ++r) {
      for (const auto& p : kProducts) w.Row({ProductId(p, r), p.catid});
      if (Status s = w.MaybeFlush(); !s.ok()) return s;
    }
    if (Status s = w.End(); !s.ok()) return s;
    stats->products = w.rows();
  }
  {
    CopyWriter w(conn, "product_details (productid, locale, name, image, descn)");
    if (Status s = w.Begin(); !s.ok()) return s;
    for (int r = 0; r < scale; ++r) {
      for (const auto& p : kProducts) {
        std::string id = ProductId(p, r);
        std::string image = "/images/" + Lower(p.productid) + ".gif";
        w.Row({id, "en_US", CopyName(p.name_en, r), image, p.descn_en});
        w.Row({id, "ja_JP", CopyName(p.name_ja, r), image, p.descn_ja});
      }
      if (Status s = w.MaybeFlush(); !s.ok()) return s;
    }
    if (Status s = w.End(); !s.ok()) return s;
  }
  auto product_of = [](const char* id) -> const ProductRow& {
    for (const auto& p : kProducts)
      if (std::string_view(p.productid) == id) return p;
    return kProducts[0];  // unreachable: every item names a classic product
  };
  auto item_id = [&](const ItemRow& it, int r) {
    return "EST-" + std::to_string(r * kItemCount + it.number);
  };
  {
    CopyWriter w(conn, "item (itemid, productid)");
    if (Status s = w.Begin(); !s.ok()) return s;
    for (int r = 0; r < scale; ++r) {
      for (const auto& it : kItems) w.Row({item_id(it, r), ProductId(product_of(it.productid), r)});
      if (Status s = w.MaybeFlush(); !s.ok()) return s;
    }
    if (Status s = w.End(); !s.ok()) return s;
    stats->items = w.rows();
  }
  {
    CopyWriter w(conn,
                 "item_details (itemid, locale, listprice, unitcost, image, descn, attr1, attr2, "
                 "attr3, attr4, attr5)");
    if (Status s = w.Begin(); !s.ok()) return s;
    for (int r = 0; r < scale; ++r) {
      for (const auto& it : kItems) {
        const ProductRow& p = product_of(it.productid);
        std::string id = item_id(it, r);
        // Copies get slightly different prices so that scaled data is not uniform.
        int64_t list = it.listprice_cents + (r * 37) % 100;
        int64_t cost = it.unitcost_cents;
        std::string image = "/images/" + Lower(p.productid) + ".gif";
        std::string descn_en = std::string(it.attr1_en) + " " + CopyName(p.name_en, r);
        std::string descn_ja = CopyName(p.name_ja, r) + "（" + it.attr1_ja + "）";
        w.Row({id, "en_US", Money(list), Money(cost), image, descn_en, it.attr1_en, kNull, kNull,
               kNull, kNull});
        w.Row({id, "ja_JP", Yen(list), Yen(cost), image, descn_ja, it.attr1_ja, kNull, kNull, kNull,
               kNull});
      }
      if (Status s = w.MaybeFlush(); !s.ok()) return s;
    }
    if (Status s = w.End(); !s.ok()) return s;
  }
  {
    CopyWriter w(conn, "inventory (itemid, qty)");
    if (Status s = w.Begin(); !s.ok()) return s;
    std::string qty = std::to_string(kInitialQty);
    for (int r = 0; r < scale; ++r) {
      for (const auto& it : kItems) w.Row({item_id(it, r), qty});
      if (Status s = w.MaybeFlush(); !s.ok()) return s;
    }
    if (Status s = w.End(); !s.ok()) return s;
  }

  struct User {
    std::string id, password, first, last, locale, favcat;
  };
  std::vector<User> users = {
      {"j2ee", "j2ee", "ABC", "XYX", "en_US", "DOGS"},
      {"ACID", "ACID", "ABC", "XYX", "ja_JP", "CATS"},
  };
  for (int i = 1; i <= 10; ++i)
    users.push_back({"user" + std::to_string(i), "password", "User", std::to_string(i),
                     i % 2 ? "en_US" : "ja_JP", kCategories[i % 5].catid});
  {
    CopyWriter w(conn, "signon (username, password)");
    if (Status s = w.Begin(); !s.ok()) return s;
    // A per-user salt fixed by the user id keeps loads reproducible.
    for (const auto& u : users) w.Row({u.id, HashPassword(u.password, "petstore:" + u.id)});
    if (Status s = w.End(); !s.ok()) return s;
    stats->users = w.rows();
  }
  {
    CopyWriter w(conn,
                 "account (userid, email, firstname, lastname, status, addr1, addr2, city, state, "
                 "zip, country, phone)");
    if (Status s = w.Begin(); !s.ok()) return s;
    for (const auto& u : users)
      w.Row({u.id, u.id + "@example.com", u.first, u.last, "OK", "901 San Antonio Road",
             "MS UCUP02-206", "Palo Alto", "CA", "94303", "USA", "555-555-5555"});
    if (Status s = w.End(); !s.ok()) return s;
  }
  {
    CopyWriter w(conn, "profile (userid, langpref, favcategory, mylistopt, banneropt)");
    if (Status s = w.Begin(); !s.ok()) return s;
    for (const auto& u : users) w.Row({u.id, u.locale, u.favcat, "t", "t"});
    if (Status s = w.End(); !s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace

const std::string& SchemaSql() { return kSchema; }

Result<LoadStats> LoadStore(const std::string& conninfo, int scale) {
  if (scale < 1 || scale > kMaxScale)
    return Status::InvalidArgument("scale must be between 1 and " + std::to_string(kMaxScale));
  auto conn = pg::Connect(conninfo);
  if (!conn.ok()) return conn.status();
  PGconn* c = conn->get();
  // Keep the NOTICEs of DROP ... IF EXISTS off stderr.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  if (auto r = pg::Exec(c, "BEGIN"); !r.ok()) return r.status();
  if (auto r = pg::Exec(c, kSchema); !r.ok()) return r.status();
  LoadStats stats;
  if (Status s = CopyAll(c, scale, &stats); !s.ok()) {
    (void)pg::Exec(c, "ROLLBACK");
    return s;
  }
  if (auto r = pg::Exec(c, "COMMIT"); !r.ok()) return r.status();
  // Fresh statistics so the first requests get index plans at any scale.
  if (auto r = pg::Exec(c,
                        "ANALYZE category, category_details, product, product_details, item, "
                        "item_details, inventory, signon, account, profile");
      !r.ok())
    return r.status();
  return stats;
}

}  // namespace cacheportal::store
