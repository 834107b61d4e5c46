#include "invalidator/row_evaluator.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace cacheportal::invalidator {

using sqlmap::CompareOp;
using sqlmap::Predicate;

int Relation::Find(std::string_view name) const {
  // Called for every comparison of every candidate: a scan of a typical
  // table's few column names beats hashing a temporary string.
  if (columns.size() <= 24) {
    for (size_t i = 0; i < columns.size(); ++i)
      if (columns[i].name == name) return static_cast<int>(i);
    return -1;
  }
  auto it = by_name.find(std::string(name));
  return it == by_name.end() ? -1 : it->second;
}

std::shared_ptr<const Relation> MakeRelation(const RelationMessage& m) {
  auto r = std::make_shared<Relation>();
  r->relid = m.relid;
  r->table = (m.nspname.empty() ? std::string("pg_catalog") : m.nspname) + "." + m.relname;
  r->replica_identity = m.replica_identity;
  r->columns = m.columns;
  for (size_t i = 0; i < m.columns.size(); ++i) r->by_name.emplace(m.columns[i].name, int(i));
  return r;
}

bool RowChange::old_row_complete() const {
  if (!old_row) return false;
  for (const auto& c : *old_row)
    if (c.state == Cell::State::kUnknown) return false;
  return true;
}

// ---- building rows ----------------------------------------------------------

namespace {

Cell FromValue(const ColumnValue& v) {
  Cell c;
  switch (v.kind) {
    case ColumnValue::Kind::kNull:
      c.state = Cell::State::kNull;
      break;
    case ColumnValue::Kind::kText:
      c.state = Cell::State::kValue;
      c.text = v.data;
      break;
    case ColumnValue::Kind::kUnchangedToast:
    case ColumnValue::Kind::kBinary:  // we never ask for binary; treat as unknown
      c.state = Cell::State::kUnknown;
      break;
  }
  return c;
}

Status CheckWidth(const Relation& rel, const TupleData& t, const char* what) {
  if (t.columns.size() != rel.columns.size())
    return Status::Corruption(std::string(what) + " tuple for " + rel.table + " has " +
                              std::to_string(t.columns.size()) + " columns, relation has " +
                              std::to_string(rel.columns.size()));
  return Status::OK();
}

// Old row from a 'K' (key columns only; the others are sent as 'n' but are
// really unknown) or 'O' (complete) tuple.
Row OldRow(const Relation& rel, char old_kind, const TupleData& t) {
  Row row(rel.columns.size());
  for (size_t i = 0; i < row.size(); ++i) {
    if (old_kind == 'K' && !rel.columns[i].key) continue;  // stays kUnknown
    row[i] = FromValue(t.columns[i]);
  }
  return row;
}

bool SameCell(const Cell& a, const Cell& b) { return a.state == b.state && a.text == b.text; }

}  // namespace

Result<RowChange> MakeInsert(std::shared_ptr<const Relation> rel, const TupleData& new_tuple) {
  if (Status s = CheckWidth(*rel, new_tuple, "INSERT"); !s.ok()) return s;
  RowChange c;
  c.kind = RowChange::Kind::kInsert;
  Row row(rel->columns.size());
  for (size_t i = 0; i < row.size(); ++i) row[i] = FromValue(new_tuple.columns[i]);
  c.new_row = std::move(row);
  c.rel = std::move(rel);
  return c;
}

Result<RowChange> MakeUpdate(std::shared_ptr<const Relation> rel, char old_kind,
                             const TupleData& old_tuple, const TupleData& new_tuple) {
  if (Status s = CheckWidth(*rel, new_tuple, "UPDATE new"); !s.ok()) return s;
  if (old_kind == 'K' || old_kind == 'O') {
    if (Status s = CheckWidth(*rel, old_tuple, "UPDATE old"); !s.ok()) return s;
  }
  const size_t n = rel->columns.size();
  RowChange c;
  c.kind = RowChange::Kind::kUpdate;
  Row old_row(n);
  if (old_kind == 'K' || old_kind == 'O') {
    old_row = OldRow(*rel, old_kind, old_tuple);
  } else {
    // No old tuple: the identity key did not change, so its old values are the new ones.
    for (size_t i = 0; i < n; ++i)
      if (rel->columns[i].key) old_row[i] = FromValue(new_tuple.columns[i]);
  }
  Row new_row(n);
  c.changed.assign(n, Tri::kMaybe);
  for (size_t i = 0; i < n; ++i) {
    const ColumnValue& v = new_tuple.columns[i];
    if (v.kind == ColumnValue::Kind::kUnchangedToast) {
      // 'u' means "same as before": unchanged for certain, value only if the old row has it.
      new_row[i] = old_row[i];
      c.changed[i] = Tri::kNo;
      continue;
    }
    new_row[i] = FromValue(v);
    if (old_row[i].state != Cell::State::kUnknown && new_row[i].state != Cell::State::kUnknown)
      c.changed[i] = SameCell(old_row[i], new_row[i]) ? Tri::kNo : Tri::kYes;
  }
  c.old_row = std::move(old_row);
  c.new_row = std::move(new_row);
  c.rel = std::move(rel);
  return c;
}

Result<RowChange> MakeDelete(std::shared_ptr<const Relation> rel, char old_kind,
                             const TupleData& old_tuple) {
  if (Status s = CheckWidth(*rel, old_tuple, "DELETE"); !s.ok()) return s;
  RowChange c;
  c.kind = RowChange::Kind::kDelete;
  c.old_row = OldRow(*rel, old_kind, old_tuple);
  c.rel = std::move(rel);
  return c;
}

RowChange MakeTruncate(std::shared_ptr<const Relation> rel) {
  RowChange c;
  c.kind = RowChange::Kind::kTruncate;
  c.rel = std::move(rel);
  return c;
}

// ---- typed values -----------------------------------------------------------

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// An exact decimal: value = sign * 0.d1d2d3... * 10^point. Zero has no digits.
struct Decimal {
  enum class Special : uint8_t { kNone, kNaN, kPosInf, kNegInf };
  Special special = Special::kNone;
  bool negative = false;
  std::string digits;  // no leading or trailing zeros
  long point = 0;
};

bool ParseDecimal(std::string_view s, Decimal* d) {
  s = Trim(s);
  // The special words all start with a letter after an optional sign; numbers
  // skip the (case-insensitive, so slower) word checks.
  size_t first = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
  if (first < s.size() && std::isalpha(static_cast<unsigned char>(s[first]))) {
    if (IEquals(s, "nan")) {
      d->special = Decimal::Special::kNaN;
      return true;
    }
    if (IEquals(s, "infinity") || IEquals(s, "+infinity") || IEquals(s, "inf") ||
        IEquals(s, "+inf")) {
      d->special = Decimal::Special::kPosInf;
      return true;
    }
    if (IEquals(s, "-infinity") || IEquals(s, "-inf")) {
      d->special = Decimal::Special::kNegInf;
      return true;
    }
    return false;
  }
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) d->negative = s[i++] == '-';
  std::string digits;
  long int_digits = 0;
  bool seen_digit = false, seen_point = false;
  for (; i < s.size(); ++i) {
    char ch = s[i];
    if (ch >= '0' && ch <= '9') {
      digits.push_back(ch);
      if (!seen_point) ++int_digits;
      seen_digit = true;
    } else if (ch == '.' && !seen_point) {
      seen_point = true;
    } else if (ch == '_' && seen_digit && i + 1 < s.size() &&
               std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      continue;  // PostgreSQL 16 digit separators
    } else {
      break;
    }
  }
  if (!seen_digit) return false;
  long exp = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    auto r = std::from_chars(s.data() + i + (i < s.size() && s[i] == '+' ? 1 : 0),
                             s.data() + s.size(), exp);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return false;
    if (exp > 100000 || exp < -100000) return false;
    i = s.size();
  }
  if (i != s.size()) return false;
  size_t lead = digits.find_first_not_of('0');
  if (lead == std::string::npos) {
    d->digits.clear();
    d->negative = false;
    d->point = 0;
    return true;
  }
  size_t last = digits.find_last_not_of('0');
  d->digits = digits.substr(lead, last - lead + 1);
  d->point = int_digits - static_cast<long>(lead) + exp;
  return true;
}

int CompareMagnitude(const Decimal& a, const Decimal& b) {
  if (a.point != b.point) return a.point < b.point ? -1 : 1;
  int c = a.digits.compare(b.digits);  // no trailing zeros: lexicographic = numeric
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

int CompareDecimal(const Decimal& a, const Decimal& b) {
  auto rank = [](const Decimal& d) {
    switch (d.special) {
      case Decimal::Special::kNegInf:
        return -2;
      case Decimal::Special::kPosInf:
        return 2;
      case Decimal::Special::kNaN:
        return 3;  // PostgreSQL: NaN sorts above everything
      default:
        return 0;
    }
  };
  int ra = rank(a), rb = rank(b);
  if (ra != 0 || rb != 0) return ra < rb ? -1 : (ra > rb ? 1 : 0);
  bool za = a.digits.empty(), zb = b.digits.empty();
  if (za && zb) return 0;
  int sa = za ? 0 : (a.negative ? -1 : 1);
  int sb = zb ? 0 : (b.negative ? -1 : 1);
  if (sa != sb) return sa < sb ? -1 : 1;
  int m = CompareMagnitude(a, b);
  return sa < 0 ? -m : m;
}

bool ParseDouble(std::string_view s, double* out) {
  s = Trim(s);
  if (IEquals(s, "nan")) {
    *out = std::nan("");
    return true;
  }
  if (IEquals(s, "infinity") || IEquals(s, "inf") || IEquals(s, "+infinity")) {
    *out = HUGE_VAL;
    return true;
  }
  if (IEquals(s, "-infinity") || IEquals(s, "-inf")) {
    *out = -HUGE_VAL;
    return true;
  }
  std::string z(s);
  char* end = nullptr;
  *out = std::strtod(z.c_str(), &end);
  return !z.empty() && end == z.c_str() + z.size();
}

int CompareDoubles(double a, double b) {
  // PostgreSQL float ordering: NaN equals NaN and is above everything else.
  bool na = std::isnan(a), nb = std::isnan(b);
  if (na || nb) return na && nb ? 0 : (na ? 1 : -1);
  return a < b ? -1 : (a > b ? 1 : 0);
}

bool ParseBool(std::string_view s, bool* out) {
  s = Trim(s);
  for (const char* t : {"t", "true", "yes", "y", "on", "1"})
    if (IEquals(s, t)) return *out = true, true;
  for (const char* f : {"f", "false", "no", "n", "off", "0"})
    if (IEquals(s, f)) return *out = false, true;
  return false;
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

int64_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// ISO date/time forms only (DateStyle ISO, PostgreSQL's default and what the
// walsender emits). Anything else is "cannot decide".
// kind: 0 date, 1 timestamp, 2 timestamptz. Result in µs (UTC for timestamptz).
enum class TimeParse { kOk, kPosInf, kNegInf, kFail };

TimeParse ParseTime(std::string_view s, int kind, int64_t* out) {
  s = Trim(s);
  if (IEquals(s, "infinity")) return TimeParse::kPosInf;
  if (IEquals(s, "-infinity")) return TimeParse::kNegInf;
  int y, mo, d;
  if (!Digits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, &mo) ||
      s[7] != '-' || !Digits(s, 8, 2, &d))
    return TimeParse::kFail;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return TimeParse::kFail;
  int64_t us = DaysFromCivil(y, mo, d) * 86400LL * 1000000LL;
  size_t i = 10;
  bool has_time = false;
  if (i < s.size() && (s[i] == ' ' || s[i] == 'T')) {
    int hh, mm, ss = 0;
    if (!Digits(s, i + 1, 2, &hh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !Digits(s, i + 4, 2, &mm))
      return TimeParse::kFail;
    i += 6;
    if (i < s.size() && s[i] == ':') {
      if (!Digits(s, i + 1, 2, &ss)) return TimeParse::kFail;
      i += 3;
    }
    int64_t frac = 0;
    if (i < s.size() && s[i] == '.') {
      ++i;
      int n = 0;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (n < 6) frac = frac * 10 + (s[i] - '0');
        ++n;
        ++i;
      }
      if (n == 0 || n > 6) return TimeParse::kFail;  // rounding beyond µs: don't guess
      for (; n < 6; ++n) frac *= 10;
    }
    if (hh > 24 || mm > 59 || ss > 60) return TimeParse::kFail;
    us += ((hh * 60LL + mm) * 60LL + ss) * 1000000LL + frac;
    has_time = true;
  }
  if (kind == 0) {
    if (i != s.size()) return TimeParse::kFail;
    *out = us;
    return TimeParse::kOk;
  }
  if (kind == 1) {
    if (i != s.size()) return TimeParse::kFail;  // an offset on a timestamp: don't guess
    *out = us;
    return TimeParse::kOk;
  }
  // timestamptz: an explicit offset is required, else the session time zone decides.
  if (!has_time || i >= s.size()) return TimeParse::kFail;
  if (s[i] == 'Z' && i + 1 == s.size()) {
    *out = us;
    return TimeParse::kOk;
  }
  if (s[i] != '+' && s[i] != '-') return TimeParse::kFail;
  int sign = s[i] == '-' ? -1 : 1;
  int oh, om = 0, os = 0;
  if (!Digits(s, i + 1, 2, &oh)) return TimeParse::kFail;
  i += 3;
  if (i < s.size() && s[i] == ':') {
    if (!Digits(s, i + 1, 2, &om)) return TimeParse::kFail;
    i += 3;
    if (i < s.size() && s[i] == ':') {
      if (!Digits(s, i + 1, 2, &os)) return TimeParse::kFail;
      i += 3;
    }
  } else if (i + 2 <= s.size() && Digits(s, i, 2, &om)) {
    i += 2;
  }
  if (i != s.size()) return TimeParse::kFail;
  *out = us - sign * ((oh * 60LL + om) * 60LL + os) * 1000000LL;
  return TimeParse::kOk;
}

std::string_view StripTrailingSpaces(std::string_view s) {
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

bool IsTextType(uint32_t t) {
  return t == oid::kText || t == oid::kVarchar || t == oid::kBpchar || t == oid::kName;
}

int Sign(int c) { return c < 0 ? -1 : (c > 0 ? 1 : 0); }

// The common case of numeric and integer text ("-12.50", "7", " 3 "): at most
// 18 digits, no exponent, separator or special word. Read as a scaled integer
// without allocating; anything else goes to ParseDecimal.
bool ParsePlainDecimal(std::string_view s, __int128* value, int* scale) {
  s = Trim(s);
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  uint64_t m = 0;
  int digits = 0, sc = 0;
  bool point = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      if (++digits > 18) return false;
      m = m * 10 + static_cast<uint64_t>(c - '0');
      if (point) ++sc;
    } else if (c == '.' && !point) {
      point = true;
    } else {
      return false;
    }
  }
  if (digits == 0) return false;
  *value = negative ? -static_cast<__int128>(m) : static_cast<__int128>(m);
  *scale = sc;
  return true;
}

struct PlainDecimal {
  __int128 value = 0;
  int scale = 0;
};

bool ParsePlain(std::string_view s, PlainDecimal* d) {
  return ParsePlainDecimal(s, &d->value, &d->scale);
}

int ComparePlain(PlainDecimal x, PlainDecimal y) {
  // Both below 10^18 and scales at most 18 apart: the product stays below 10^36.
  static constexpr int64_t kPow10[] = {1,
                                       10,
                                       100,
                                       1000,
                                       10000,
                                       100000,
                                       1000000,
                                       10000000,
                                       100000000,
                                       1000000000,
                                       10000000000,
                                       100000000000,
                                       1000000000000,
                                       10000000000000,
                                       100000000000000,
                                       1000000000000000,
                                       10000000000000000,
                                       100000000000000000,
                                       1000000000000000000};
  if (x.scale < y.scale)
    x.value *= kPow10[y.scale - x.scale];
  else if (y.scale < x.scale)
    y.value *= kPow10[x.scale - y.scale];
  return x.value < y.value ? -1 : (x.value > y.value ? 1 : 0);
}

std::optional<int> ComparePlainDecimals(std::string_view a, std::string_view b) {
  PlainDecimal x, y;
  if (!ParsePlain(a, &x) || !ParsePlain(b, &y)) return std::nullopt;
  return ComparePlain(x, y);
}

bool IsDecimalType(uint32_t t) {
  return t == oid::kInt2 || t == oid::kInt4 || t == oid::kInt8 || t == oid::kOid ||
         t == oid::kNumeric;
}

}  // namespace

std::optional<int> CompareValues(uint32_t type_oid, std::string_view a, std::string_view b,
                                 const EvalOptions& options) {
  switch (type_oid) {
    case oid::kInt2:
    case oid::kInt4:
    case oid::kInt8:
    case oid::kOid:
    case oid::kNumeric: {
      if (auto fast = ComparePlainDecimals(a, b)) return fast;
      Decimal da, db;
      if (!ParseDecimal(a, &da) || !ParseDecimal(b, &db)) return std::nullopt;
      return CompareDecimal(da, db);
    }
    case oid::kFloat8: {
      double x, y;
      if (!ParseDouble(a, &x) || !ParseDouble(b, &y)) return std::nullopt;
      return CompareDoubles(x, y);
    }
    case oid::kFloat4: {
      // The literal may be compared as float4 ('0.1') or widened to float8
      // (0.1): decide only when both readings agree.
      double x, y;
      if (!ParseDouble(a, &x) || !ParseDouble(b, &y)) return std::nullopt;
      int as4 = CompareDoubles(static_cast<float>(x), static_cast<float>(y));
      int as8 = CompareDoubles(static_cast<float>(x), y);
      if (as4 != as8) return std::nullopt;
      return as4;
    }
    case oid::kBool: {
      bool x, y;
      if (!ParseBool(a, &x) || !ParseBool(b, &y)) return std::nullopt;
      return int(x) - int(y);
    }
    case oid::kDate:
    case oid::kTimestamp:
    case oid::kTimestamptz: {
      int kind = type_oid == oid::kDate ? 0 : (type_oid == oid::kTimestamp ? 1 : 2);
      int64_t x = 0, y = 0;
      TimeParse pa = ParseTime(a, kind, &x), pb = ParseTime(b, kind, &y);
      // A date literal against a timestamp column means midnight: allowed by ParseTime.
      if (pa == TimeParse::kFail || pb == TimeParse::kFail) return std::nullopt;
      auto rank = [](TimeParse p) {
        return p == TimeParse::kNegInf ? -1 : (p == TimeParse::kPosInf ? 1 : 0);
      };
      if (rank(pa) != 0 || rank(pb) != 0) return Sign(rank(pa) - rank(pb));
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    case oid::kBpchar:
      if (!options.text_order_bytewise) return std::nullopt;
      return Sign(StripTrailingSpaces(a).compare(StripTrailingSpaces(b)));
    case oid::kText:
    case oid::kVarchar:
    case oid::kName:
      if (!options.text_order_bytewise) return std::nullopt;
      return Sign(a.compare(b));
    default:
      return std::nullopt;
  }
}

Tri EqualValues(uint32_t type_oid, std::string_view a, std::string_view b) {
  switch (type_oid) {
    case oid::kText:
    case oid::kVarchar:
    case oid::kName:
      return a == b ? Tri::kYes : Tri::kNo;
    case oid::kBpchar:
      return StripTrailingSpaces(a) == StripTrailingSpaces(b) ? Tri::kYes : Tri::kNo;
    case oid::kUuid: {
      auto norm = [](std::string_view s) {
        std::string o;
        for (char c : s)
          if (c != '-' && c != '{' && c != '}')
            o.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        return o;
      };
      return norm(a) == norm(b) ? Tri::kYes : Tri::kNo;
    }
    default: {
      EvalOptions o;
      std::optional<int> c = CompareValues(type_oid, a, b, o);
      if (c) return *c == 0 ? Tri::kYes : Tri::kNo;
      if (a == b) return Tri::kYes;
      // Types we do not parse compare as text (enums, citext's canonical form...).
      // A parseable type whose text failed to parse: cannot decide.
      switch (type_oid) {
        case oid::kInt2:
        case oid::kInt4:
        case oid::kInt8:
        case oid::kOid:
        case oid::kNumeric:
        case oid::kFloat4:
        case oid::kFloat8:
        case oid::kBool:
        case oid::kDate:
        case oid::kTimestamp:
        case oid::kTimestamptz:
          return Tri::kMaybe;
        default:
          return Tri::kNo;
      }
    }
  }
}

Tri LikeMatch(std::string_view text, std::string_view pattern, bool ci) {
  auto non_ascii = [](std::string_view s) {
    for (char c : s)
      if (static_cast<unsigned char>(c) >= 0x80) return true;
    return false;
  };
  bool multibyte = non_ascii(text) || non_ascii(pattern);
  if (multibyte && (ci || pattern.find('_') != std::string_view::npos)) return Tri::kMaybe;
  auto fold = [ci](char c) {
    return ci ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
  };
  // Iterative matcher with backtracking to the last '%'.
  size_t t = 0, p = 0, star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      char pc = pattern[p];
      if (pc == '%') {
        star_p = ++p;
        star_t = t;
        continue;
      }
      if (pc == '_') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '\\') {
        if (p + 1 >= pattern.size()) return Tri::kMaybe;  // PostgreSQL raises an error
        pc = pattern[p + 1];
        if (fold(pc) == fold(text[t])) {
          p += 2;
          ++t;
          continue;
        }
      } else if (fold(pc) == fold(text[t])) {
        ++p;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return Tri::kNo;
    p = star_p;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '%') ++p;
  return p == pattern.size() ? Tri::kYes : Tri::kNo;
}

// ---- predicate logic --------------------------------------------------------

namespace {

// The set of SQL outcomes still possible: FALSE, NULL, TRUE.
using Outcomes = uint8_t;
constexpr Outcomes kF = 1, kN = 2, kT = 4, kAny = 7;

int Index(Outcomes single) { return single == kF ? 0 : (single == kN ? 1 : 2); }
constexpr Outcomes kFromIndex[3] = {kF, kN, kT};

Outcomes Combine(Outcomes a, Outcomes b, bool is_and) {
  // Kleene logic over every pair of possible outcomes.
  static constexpr Outcomes kAnd[3][3] = {{kF, kF, kF}, {kF, kN, kN}, {kF, kN, kT}};
  static constexpr Outcomes kOr[3][3] = {{kF, kN, kT}, {kN, kN, kT}, {kT, kT, kT}};
  Outcomes out = 0;
  for (int i = 0; i < 3; ++i) {
    if (!(a & kFromIndex[i])) continue;
    for (int j = 0; j < 3; ++j)
      if (b & kFromIndex[j]) out |= is_and ? kAnd[i][j] : kOr[i][j];
  }
  return out;
}

Outcomes Not(Outcomes a) {
  Outcomes out = 0;
  if (a & kF) out |= kT;
  if (a & kT) out |= kF;
  if (a & kN) out |= kN;
  return out;
}

Outcomes FromTri(Tri t) { return t == Tri::kYes ? kT : (t == Tri::kNo ? kF : (kT | kF)); }

struct Ctx {
  const Relation& rel;
  const Row& row;
  const std::vector<std::optional<std::string>>& values;
  const EvalOptions& options;
};

// One comparison of the cell with slot `slot` (SQL NULL semantics).
Outcomes CompareSlot(const Ctx& c, const Cell& cell, uint32_t type, CompareOp op, int slot) {
  if (slot < 0 || static_cast<size_t>(slot) >= c.values.size()) return kAny;
  const auto& v = c.values[slot];
  if (cell.state == Cell::State::kUnknown) return v ? (kF | kN | kT) : kN;
  if (cell.state == Cell::State::kNull || !v) return kN;
  if (op == CompareOp::kEq) return FromTri(EqualValues(type, cell.text, *v));
  if (op == CompareOp::kNe) return Not(FromTri(EqualValues(type, cell.text, *v)));
  std::optional<int> cmp = CompareValues(type, cell.text, *v, c.options);
  if (!cmp) return kT | kF;
  bool r = false;
  switch (op) {
    case CompareOp::kLt:
      r = *cmp < 0;
      break;
    case CompareOp::kLe:
      r = *cmp <= 0;
      break;
    case CompareOp::kGt:
      r = *cmp > 0;
      break;
    case CompareOp::kGe:
      r = *cmp >= 0;
      break;
    default:
      return kAny;
  }
  return r ? kT : kF;
}

Outcomes EvalCompare(const Ctx& c, const Predicate& p) {
  int col = c.rel.Find(p.column);
  if (col < 0) return kAny;  // schema changed under the template: cannot decide
  const Cell& cell = c.row[col];
  uint32_t type = c.rel.columns[col].type_oid;
  auto slot = [&](size_t i) { return i < p.slots.size() ? p.slots[i] : -1; };
  switch (p.op) {
    case CompareOp::kEq:
    case CompareOp::kNe:
    case CompareOp::kLt:
    case CompareOp::kLe:
    case CompareOp::kGt:
    case CompareOp::kGe:
      if (p.slots.size() != 1) return kAny;
      return CompareSlot(c, cell, type, p.op, slot(0));
    case CompareOp::kIn:
    case CompareOp::kNotIn: {
      if (p.slots.empty()) return kAny;
      Outcomes any = kF;
      for (int s : p.slots)
        any = Combine(any, CompareSlot(c, cell, type, CompareOp::kEq, s), false);
      return p.op == CompareOp::kIn ? any : Not(any);
    }
    case CompareOp::kBetween:
    case CompareOp::kNotBetween: {
      if (p.slots.size() != 2) return kAny;
      // A numeric range over plain decimals: read the cell once for both bounds.
      if (IsDecimalType(type) && cell.state == Cell::State::kValue) {
        int lo = slot(0), hi = slot(1);
        PlainDecimal v, l, h;
        if (lo >= 0 && hi >= 0 && static_cast<size_t>(lo) < c.values.size() &&
            static_cast<size_t>(hi) < c.values.size() && c.values[lo] && c.values[hi] &&
            ParsePlain(cell.text, &v) && ParsePlain(*c.values[lo], &l) &&
            ParsePlain(*c.values[hi], &h)) {
          bool in = ComparePlain(v, l) >= 0 && ComparePlain(v, h) <= 0;
          return (p.op == CompareOp::kBetween) == in ? kT : kF;
        }
      }
      Outcomes b = Combine(CompareSlot(c, cell, type, CompareOp::kGe, slot(0)),
                           CompareSlot(c, cell, type, CompareOp::kLe, slot(1)), true);
      return p.op == CompareOp::kBetween ? b : Not(b);
    }
    case CompareOp::kLike:
    case CompareOp::kNotLike:
    case CompareOp::kILike:
    case CompareOp::kNotILike: {
      if (p.slots.size() != 1) return kAny;
      int s = slot(0);
      if (s < 0 || static_cast<size_t>(s) >= c.values.size()) return kAny;
      const auto& v = c.values[s];
      Outcomes r;
      if (cell.state == Cell::State::kNull || !v) {
        r = kN;
      } else if (cell.state == Cell::State::kUnknown || !IsTextType(type)) {
        r = kAny;
      } else {
        bool ci = p.op == CompareOp::kILike || p.op == CompareOp::kNotILike;
        std::string_view text = cell.text;
        if (type == oid::kBpchar) text = StripTrailingSpaces(text);
        r = FromTri(LikeMatch(text, *v, ci));
      }
      bool negated = p.op == CompareOp::kNotLike || p.op == CompareOp::kNotILike;
      return negated ? Not(r) : r;
    }
    case CompareOp::kIsNull:
    case CompareOp::kIsNotNull: {
      Outcomes r = cell.state == Cell::State::kUnknown ? (kT | kF)
                   : cell.state == Cell::State::kNull  ? kT
                                                       : kF;
      return p.op == CompareOp::kIsNull ? r : Not(r);
    }
  }
  return kAny;
}

Outcomes Eval(const Ctx& c, const Predicate& p, int depth) {
  if (depth > 200) return kAny;  // pathological nesting: give up, conservatively
  switch (p.kind) {
    case Predicate::Kind::kTrue:
      return kT;
    case Predicate::Kind::kUnknown:
      return kAny;
    case Predicate::Kind::kAnd: {
      Outcomes r = kT;
      for (const auto& ch : p.children) {
        r = Combine(r, Eval(c, ch, depth + 1), true);
        if (r == kF) break;
      }
      return r;
    }
    case Predicate::Kind::kOr: {
      Outcomes r = kF;
      for (const auto& ch : p.children) {
        r = Combine(r, Eval(c, ch, depth + 1), false);
        if (r == kT) break;
      }
      return r;
    }
    case Predicate::Kind::kNot:
      if (p.children.size() != 1) return kAny;
      return Not(Eval(c, p.children[0], depth + 1));
    case Predicate::Kind::kCompare:
      return EvalCompare(c, p);
  }
  return kAny;
}

}  // namespace

Tri EvaluatePredicate(const Predicate& p, const Relation& rel, const Row& row,
                      const std::vector<std::optional<std::string>>& values,
                      const EvalOptions& options) {
  if (row.size() != rel.columns.size()) return Tri::kMaybe;
  Ctx c{rel, row, values, options};
  Outcomes o = Eval(c, p, 0);
  if (!(o & kT)) return Tri::kNo;
  return o == kT ? Tri::kYes : Tri::kMaybe;
}

Tri ReadColumnsChanged(const sqlmap::TableRef& ref, const RowChange& change) {
  if (change.kind != RowChange::Kind::kUpdate) return Tri::kYes;
  const auto& cols = change.changed;
  Tri result = Tri::kNo;
  auto add = [&result](Tri t) {
    if (t == Tri::kYes)
      result = Tri::kYes;
    else if (t == Tri::kMaybe && result == Tri::kNo)
      result = Tri::kMaybe;
  };
  if (ref.reads_all_columns || ref.columns_read.empty()) {
    // Empty without reads_all_columns is taken as "not known": every column counts.
    for (Tri t : cols) add(t);
    return result;
  }
  for (const auto& name : ref.columns_read) {
    int i = change.rel->Find(name);
    add(i < 0 || static_cast<size_t>(i) >= cols.size() ? Tri::kMaybe : cols[i]);
    if (result == Tri::kYes) break;
  }
  return result;
}

bool IsCoarse(const sqlmap::QueryTemplate& t) {
  return (t.flags & sqlmap::kCoarseFlags) != 0 || t.precision != sqlmap::Precision::kPrecise;
}

Evaluation EvaluateChange(const RowChange& change, const sqlmap::QueryInstance& instance,
                          const EvalOptions& options) {
  Evaluation ev;
  if (!instance.tmpl || !change.rel) {
    ev.impact = Impact::kAffected;
    return ev;
  }
  const sqlmap::QueryTemplate& t = *instance.tmpl;
  const bool coarse = IsCoarse(t);
  for (size_t i = 0; i < t.tables.size(); ++i) {
    const sqlmap::TableRef& ref = t.tables[i];
    if (ref.table != change.rel->table) continue;
    if (coarse || change.kind == RowChange::Kind::kTruncate) {
      ev.impact = Impact::kAffected;
      ev.join_tables.clear();
      return ev;
    }
    if (change.kind == RowChange::Kind::kUpdate && ReadColumnsChanged(ref, change) == Tri::kNo)
      continue;
    bool holds = false;
    if (change.old_row && EvaluatePredicate(ref.predicate, *change.rel, *change.old_row,
                                            instance.values, options) != Tri::kNo)
      holds = true;
    if (!holds && change.new_row &&
        EvaluatePredicate(ref.predicate, *change.rel, *change.new_row, instance.values, options) !=
            Tri::kNo)
      holds = true;
    if (!holds) continue;
    if (t.tables.size() == 1) {
      ev.impact = Impact::kAffected;
      ev.join_tables.clear();
      return ev;
    }
    ev.impact = Impact::kJoinCheck;
    ev.join_tables.push_back(static_cast<int>(i));
  }
  return ev;
}

}  // namespace cacheportal::invalidator
