// SQL analysis with libpg_query.
//
// Two layers:
//  * the scanner (pg_query_scan, cheap) runs on every statement: it yields
//    the shape key (tokens with constants replaced, comments dropped, case
//    folded) and the constant tokens, from which an instance's values come;
//  * the parser (pg_query_parse_protobuf, exact values incl. negative
//    numbers) runs once per shape key and builds the QueryTemplate.
// The first parse of a shape cross-checks every constant decoded from its
// token against the parser's value; a shape whose tokens we cannot decode
// (U&'' strings, string continuation) is re-parsed on every instance instead.
#include "sqlmap/analyzer.h"

#include <pthread.h>
#include <algorithm>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "sqlmap/pg_query_raii.h"

namespace cacheportal::sqlmap {

// ---------------------------------------------------------------- hashing

namespace {
constexpr uint64_t kFnvOffset = 1469598103934665603ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t FnvBytes(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= kFnvPrime;
  }
  return h;
}
uint64_t FnvU64(uint64_t h, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
  return FnvBytes(h, b, 8);
}
uint64_t Avalanche(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

uint64_t HashInstance(uint64_t shape_id, const std::vector<std::optional<std::string>>& values) {
  uint64_t h = FnvU64(kFnvOffset, shape_id);
  h = FnvU64(h, values.size());
  for (const auto& v : values) {
    if (!v) {
      h = FnvU64(h, ~0ull);
      continue;
    }
    h = FnvU64(h, v->size());
    h = FnvBytes(h, v->data(), v->size());
  }
  return Avalanche(h);
}

uint64_t QueryInstance::IdValue() const { return HashInstance(tmpl ? tmpl->shape_id : 0, values); }

std::string QueryInstance::Id() const {
  static const char* kHex = "0123456789abcdef";
  uint64_t v = IdValue();
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[i] = kHex[v & 15];
    v >>= 4;
  }
  return s;
}

// ---------------------------------------------------------------- scanning

namespace {

using Node = PgQuery__Node;

bool IsValueToken(PgQuery__Token t) {
  switch (t) {
    case PG_QUERY__TOKEN__ICONST:
    case PG_QUERY__TOKEN__FCONST:
    case PG_QUERY__TOKEN__SCONST:
    case PG_QUERY__TOKEN__USCONST:
    case PG_QUERY__TOKEN__BCONST:
    case PG_QUERY__TOKEN__XCONST:
    case PG_QUERY__TOKEN__PARAM:
      return true;
    default:
      return false;
  }
}

struct ValueToken {
  int start = 0;
  int end = 0;
  PgQuery__Token type = PG_QUERY__TOKEN__NUL;
};

struct Scanned {
  bool ok = false;
  std::string error;
  std::string key;
  std::vector<ValueToken> values;
  std::vector<std::pair<int, int>> comments;  // [start, end)
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Scanned Scan(const std::string& sql) {
  Scanned out;
  internal::ScanResult sr(sql);
  if (!sr.ok()) {
    out.error = sr.error();
    return out;
  }
  out.ok = true;
  const PgQuery__ScanResult* r = sr.get();
  out.key.reserve(sql.size());
  for (size_t i = 0; i < r->n_tokens; ++i) {
    const PgQuery__ScanToken* t = r->tokens[i];
    if (t->start < 0 || t->end < t->start || static_cast<size_t>(t->end) > sql.size()) continue;
    std::string_view text(sql.data() + t->start, static_cast<size_t>(t->end - t->start));
    if (t->token == PG_QUERY__TOKEN__C_COMMENT || t->token == PG_QUERY__TOKEN__SQL_COMMENT) {
      out.comments.emplace_back(t->start, t->end);
      continue;
    }
    if (IsValueToken(t->token)) {
      out.values.push_back({t->start, t->end, t->token});
      if (t->token == PG_QUERY__TOKEN__PARAM) {
        out.key.append(text);
      } else {
        out.key.push_back('?');
        out.key.append(std::to_string(static_cast<int>(t->token)));
      }
    } else if ((t->token == PG_QUERY__TOKEN__IDENT && !text.empty() && text[0] != '"') ||
               t->keyword_kind != PG_QUERY__KEYWORD_KIND__NO_KEYWORD) {
      out.key.append(Lower(text));
    } else {
      out.key.append(text);
    }
    out.key.push_back(' ');
  }
  return out;
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string HexToBits(std::string_view hex) {
  std::string out;
  for (char c : hex) {
    int v = HexVal(c);
    if (v < 0) return {};
    for (int b = 3; b >= 0; --b) out.push_back(((v >> b) & 1) ? '1' : '0');
  }
  return out;
}

// Text of a constant token as PostgreSQL would see the value; nullopt when
// the form is not one we decode (the shape then re-parses per instance).
std::optional<std::string> DecodeToken(std::string_view text, PgQuery__Token type) {
  switch (type) {
    case PG_QUERY__TOKEN__ICONST: {
      // The parser stores an int: 007 is 7.
      size_t nz = text.find_first_not_of('0');
      return nz == std::string_view::npos ? std::string("0") : std::string(text.substr(nz));
    }
    case PG_QUERY__TOKEN__FCONST:
      return std::string(text);
    case PG_QUERY__TOKEN__BCONST:
      if (text.size() >= 3 && (text[0] == 'b' || text[0] == 'B') && text[1] == '\'' &&
          text.back() == '\'') {
        return std::string(text.substr(2, text.size() - 3));
      }
      return std::nullopt;
    case PG_QUERY__TOKEN__XCONST:
      if (text.size() >= 3 && (text[0] == 'x' || text[0] == 'X') && text[1] == '\'' &&
          text.back() == '\'') {
        return HexToBits(text.substr(2, text.size() - 3));
      }
      return std::nullopt;
    case PG_QUERY__TOKEN__SCONST:
      break;
    default:
      return std::nullopt;
  }
  if (text.empty()) return std::nullopt;
  if (text[0] == '$') {
    size_t tag_end = text.find('$', 1);
    if (tag_end == std::string_view::npos) return std::nullopt;
    std::string_view tag = text.substr(0, tag_end + 1);
    if (text.size() < 2 * tag.size() || text.substr(text.size() - tag.size()) != tag) {
      return std::nullopt;
    }
    return std::string(text.substr(tag.size(), text.size() - 2 * tag.size()));
  }
  bool escape = false;
  size_t pos = 0;
  if (text[0] == 'e' || text[0] == 'E') {
    escape = true;
    pos = 1;
  }
  if (pos >= text.size() || text[pos] != '\'' || text.back() != '\'' || text.size() < pos + 2) {
    return std::nullopt;
  }
  std::string_view body = text.substr(pos + 1, text.size() - pos - 2);
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\'') {
      if (i + 1 < body.size() && body[i + 1] == '\'') {
        out.push_back('\'');
        ++i;
        continue;
      }
      return std::nullopt;  // continuation ('a' 'b' across lines): not decoded here
    }
    if (escape && c == '\\' && i + 1 < body.size()) {
      char n = body[++i];
      switch (n) {
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'x': {
          int v = 0, k = 0;
          while (k < 2 && i + 1 < body.size() && HexVal(body[i + 1]) >= 0) {
            v = v * 16 + HexVal(body[++i]);
            ++k;
          }
          if (k == 0) {
            out.push_back('x');
          } else {
            if (v == 0) return std::nullopt;
            out.push_back(static_cast<char>(v));
          }
          break;
        }
        case 'u':
        case 'U': {
          int digits = n == 'u' ? 4 : 8;
          if (i + digits >= body.size()) return std::nullopt;
          uint32_t cp = 0;
          for (int k = 0; k < digits; ++k) {
            int hv = HexVal(body[i + 1 + k]);
            if (hv < 0) return std::nullopt;
            cp = cp * 16 + static_cast<uint32_t>(hv);
          }
          i += digits;
          if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return std::nullopt;
          AppendUtf8(&out, cp);
          break;
        }
        default:
          if (n >= '0' && n <= '7') {
            int v = n - '0', k = 1;
            while (k < 3 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7') {
              v = v * 8 + (body[++i] - '0');
              ++k;
            }
            if (v == 0) return std::nullopt;
            out.push_back(static_cast<char>(v & 0xFF));
          } else {
            out.push_back(n);
          }
      }
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// ---------------------------------------------------------------- tree walking

// Visits every message below `msg` (pre-order); `f(m)` returns false to skip
// m's children. Generic over protobuf-c descriptors, so no node type is missed.
template <typename F>
void WalkChildren(const ProtobufCMessage* msg, F& f);

template <typename F>
void Visit(const ProtobufCMessage* msg, F& f) {
  if (msg == nullptr) return;
  if (f(msg)) WalkChildren(msg, f);
}

template <typename F>
void WalkChildren(const ProtobufCMessage* msg, F& f) {
  const ProtobufCMessageDescriptor* d = msg->descriptor;
  const char* base = reinterpret_cast<const char*>(msg);
  for (unsigned i = 0; i < d->n_fields; ++i) {
    const ProtobufCFieldDescriptor* fd = &d->fields[i];
    if (fd->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      uint32_t which = *reinterpret_cast<const uint32_t*>(base + fd->quantifier_offset);
      if (which != fd->id) continue;
    }
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *reinterpret_cast<const size_t*>(base + fd->quantifier_offset);
      auto* arr = *reinterpret_cast<ProtobufCMessage* const* const*>(base + fd->offset);
      for (size_t k = 0; k < n; ++k) Visit(arr[k], f);
    } else {
      auto* sub = *reinterpret_cast<ProtobufCMessage* const*>(base + fd->offset);
      Visit(sub, f);
    }
  }
}

template <typename F>
void WalkNode(const Node* n, F f) {
  Visit(reinterpret_cast<const ProtobufCMessage*>(n), f);
}

template <typename T>
bool Is(const ProtobufCMessage* m, const ProtobufCMessageDescriptor& d) {
  return m->descriptor == &d;
}

const char* StrOf(const Node* n) {
  if (n != nullptr && n->node_case == PG_QUERY__NODE__NODE_STRING && n->string != nullptr) {
    return n->string->sval;
  }
  return nullptr;
}

std::string FuncName(const PgQuery__FuncCall* fc) {
  // Last name part; a pg_catalog. prefix does not change what the function is.
  if (fc->n_funcname == 0) return {};
  const char* s = StrOf(fc->funcname[fc->n_funcname - 1]);
  std::string name = s ? s : "";
  if (fc->n_funcname >= 2) {
    const char* schema = StrOf(fc->funcname[fc->n_funcname - 2]);
    if (schema && std::strcmp(schema, "pg_catalog") != 0) return std::string(schema) + "." + name;
  }
  return name;
}

// ---------------------------------------------------------------- function lists

const std::unordered_set<std::string>& AggregateFunctions() {
  static const std::unordered_set<std::string> s = {"count",
                                                    "sum",
                                                    "avg",
                                                    "min",
                                                    "max",
                                                    "array_agg",
                                                    "string_agg",
                                                    "json_agg",
                                                    "jsonb_agg",
                                                    "json_object_agg",
                                                    "jsonb_object_agg",
                                                    "bool_and",
                                                    "bool_or",
                                                    "every",
                                                    "stddev",
                                                    "stddev_pop",
                                                    "stddev_samp",
                                                    "variance",
                                                    "var_pop",
                                                    "var_samp",
                                                    "percentile_cont",
                                                    "percentile_disc",
                                                    "mode",
                                                    "bit_and",
                                                    "bit_or",
                                                    "bit_xor",
                                                    "corr",
                                                    "covar_pop",
                                                    "covar_samp",
                                                    "regr_slope",
                                                    "regr_intercept",
                                                    "regr_count",
                                                    "xmlagg",
                                                    "range_agg",
                                                    "grouping"};
  return s;
}

const std::unordered_set<std::string>& WindowFunctions() {
  static const std::unordered_set<std::string> s = {
      "row_number", "rank", "dense_rank",  "percent_rank", "cume_dist", "ntile",
      "lag",        "lead", "first_value", "last_value",   "nth_value"};
  return s;
}

// Read-only and deterministic for a given database state (immutable/stable).
const std::unordered_set<std::string>& SafeFunctions() {
  static const std::unordered_set<std::string> s = {
      // strings
      "lower", "upper", "length", "char_length", "character_length", "octet_length", "bit_length",
      "substr", "substring", "trim", "btrim", "ltrim", "rtrim", "replace", "concat", "concat_ws",
      "left", "right", "position", "strpos", "split_part", "initcap", "lpad", "rpad", "repeat",
      "reverse", "md5", "sha224", "sha256", "sha384", "sha512", "encode", "decode", "format",
      "quote_ident", "quote_literal", "quote_nullable", "ascii", "chr", "translate", "starts_with",
      "overlay", "regexp_replace", "regexp_match", "regexp_matches", "regexp_split_to_array",
      "regexp_split_to_table", "regexp_like", "string_to_array", "array_to_string", "to_hex",
      "unaccent", "like_escape", "similar_escape", "similar_to_escape", "normalize", "convert_from",
      "convert_to",
      // numbers
      "abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "cbrt", "power", "pow",
      "mod", "exp", "ln", "log", "log10", "div", "degrees", "radians", "pi", "width_bucket",
      "num_nonnulls", "num_nulls", "scale", "gcd", "lcm", "factorial", "greatest", "least",
      "numeric", "int4", "int8", "float8", "text",
      // date/time (no clock reads)
      "to_char", "to_date", "to_number", "to_timestamp", "date_trunc", "date_part", "extract",
      "make_date", "make_time", "make_interval", "make_timestamp", "make_timestamptz",
      "justify_days", "justify_hours", "justify_interval", "isfinite", "date", "timezone",
      "date_bin", "overlaps",
      // arrays
      "array_length", "array_lower", "array_upper", "array_ndims", "array_dims", "array_position",
      "array_positions", "array_remove", "array_replace", "array_append", "array_prepend",
      "array_cat", "cardinality", "unnest", "generate_series", "generate_subscripts", "array_fill",
      // json
      "json_build_object", "jsonb_build_object", "json_build_array", "jsonb_build_array", "to_json",
      "to_jsonb", "row_to_json", "array_to_json", "jsonb_set", "jsonb_insert", "jsonb_extract_path",
      "jsonb_extract_path_text", "json_extract_path", "json_extract_path_text",
      "jsonb_array_elements", "jsonb_array_elements_text", "json_array_elements",
      "json_array_elements_text", "jsonb_each", "jsonb_each_text", "json_each", "json_each_text",
      "jsonb_object_keys", "json_object_keys", "jsonb_typeof", "json_typeof", "jsonb_array_length",
      "json_array_length", "jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first",
      "jsonb_path_exists", "jsonb_path_match", "jsonb_strip_nulls", "json_strip_nulls",
      "jsonb_pretty", "json_object", "jsonb_object", "jsonb_to_recordset", "json_to_recordset",
      "jsonb_to_record", "json_to_record", "jsonb_populate_record",
      // text search
      "to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery",
      "ts_rank", "ts_rank_cd", "ts_headline", "setweight",
      // misc
      "coalesce", "nullif", "pg_typeof", "format_type", "current_setting", "current_database",
      "current_schema", "current_user", "session_user", "version", "host", "inet", "masklen",
      "lower_inc", "upper_inc", "isempty", "range_merge", "int4range", "int8range", "numrange",
      "tsrange", "tstzrange", "daterange", "point", "box", "circle", "area", "st_distance",
      "st_dwithin", "st_makepoint", "st_setsrid", "st_contains", "st_intersects", "similarity",
      "word_similarity", "levenshtein", "soundex", "difference", "crypt", "gen_salt", "digest",
      "hmac", "xmlelement", "xmlforest", "xmlconcat", "xpath", "string_agg", "uuid", "bool",
      "varchar", "char", "interval", "timestamp", "timestamptz", "time", "bytea", "int2", "float4",
      "money", "jsonb", "json", "tsvector"};
  return s;
}

// Results change without any data change: a page using them cannot be vouched for.
const std::unordered_set<std::string>& VolatileFunctions() {
  // age(x) is age(current_date, x).
  static const std::unordered_set<std::string> s = {"age",
                                                    "random",
                                                    "now",
                                                    "clock_timestamp",
                                                    "statement_timestamp",
                                                    "transaction_timestamp",
                                                    "timeofday",
                                                    "gen_random_uuid",
                                                    "uuid_generate_v1",
                                                    "uuid_generate_v4",
                                                    "txid_current",
                                                    "pg_sleep",
                                                    "lastval",
                                                    "currval",
                                                    "random_normal",
                                                    "pg_backend_pid",
                                                    "inet_client_addr",
                                                    "pg_postmaster_start_time",
                                                    "pg_current_xact_id",
                                                    "txid_current_snapshot"};
  return s;
}

// Functions with side effects on the database or the server.
const std::unordered_set<std::string>& WritingFunctions() {
  static const std::unordered_set<std::string> s = {"nextval",
                                                    "setval",
                                                    "pg_advisory_lock",
                                                    "pg_advisory_xact_lock",
                                                    "pg_advisory_lock_shared",
                                                    "pg_advisory_xact_lock_shared",
                                                    "pg_try_advisory_lock",
                                                    "pg_try_advisory_xact_lock",
                                                    "pg_advisory_unlock",
                                                    "pg_advisory_unlock_all",
                                                    "set_config",
                                                    "lo_import",
                                                    "lo_export",
                                                    "lo_create",
                                                    "lo_unlink",
                                                    "lo_from_bytea",
                                                    "lo_put",
                                                    "dblink",
                                                    "dblink_exec",
                                                    "pg_notify",
                                                    "pg_terminate_backend",
                                                    "pg_cancel_backend",
                                                    "pg_reload_conf",
                                                    "pg_switch_wal",
                                                    "pg_create_logical_replication_slot",
                                                    "pg_create_physical_replication_slot",
                                                    "pg_drop_replication_slot",
                                                    "setseed",
                                                    "pg_logical_emit_message",
                                                    "pg_stat_reset",
                                                    "pg_rotate_logfile"};
  return s;
}

// ---------------------------------------------------------------- analysis state

enum class SlotKind { kToken, kParam, kFixed };
struct SlotSource {
  SlotKind kind = SlotKind::kToken;
  int token = 0;  // index into Scanned::values
  bool negate = false;
  int param = 0;  // $n
  std::optional<std::string> fixed;
};

struct Facts {
  std::vector<const PgQuery__RangeVar*> rels;
  std::set<std::string> ctes;
  bool cte = false, sublink = false, rangesub = false, window = false, aggregate = false;
  bool limit = false, setop = false, locking = false, values = false;
  bool tablesample = false;
  std::vector<std::string> volatile_fns, writing_fns, unknown_fns;
  std::vector<const PgQuery__RangeVar*> nested_write_targets;
  bool select_into = false;
};

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

void AddUnique(std::vector<std::string>* v, const std::string& s) {
  if (std::find(v->begin(), v->end(), s) == v->end()) v->push_back(s);
}

class Builder {
 public:
  Builder(const std::string& sql, const Scanned& scanned, const AnalyzerOptions& opts)
      : sql_(sql), sc_(scanned), opts_(opts) {}

  // Fills tmpl_, sources_, values_, reliable_.
  void Run();

  std::shared_ptr<QueryTemplate> tmpl_ = std::make_shared<QueryTemplate>();
  std::vector<SlotSource> sources_;
  std::vector<std::optional<std::string>> literal_values_;  // per slot, from the parse
  bool reliable_ = true;

 private:
  struct ScopeEntry {
    std::string name;    // alias, or relname
    std::string schema;  // for schema.table.col references (no alias)
    std::string relname;
    bool has_alias = false;
    int table = -1;  // index in tmpl_->tables, -1 for derived sources
  };
  struct FromInfo {
    std::vector<int> scope;    // scope entries in the subtree
    std::vector<int> nonnull;  // entries whose rows are never null-extended in it
  };
  enum class RefKind { kTable, kDerived, kAmbiguous, kStar };
  struct Ref {
    RefKind kind = RefKind::kAmbiguous;
    int entry = -1;  // scope entry (kTable/kDerived/kStar with qualifier)
    std::string column;
  };

  void MapSlots(const PgQuery__ParseResult* pr);
  void AnalyzeStmt(const Node* stmt);
  Facts Gather(const Node* stmt);
  std::string TableName(const PgQuery__RangeVar* rv) const;
  bool IsSystem(const PgQuery__RangeVar* rv) const;
  void AddCoarseTables(const Facts& f, const PgQuery__RangeVar* exclude = nullptr);
  void AddWritten(const PgQuery__RangeVar* rv) { AddUnique(&written_, TableName(rv)); }
  void Coarse(const std::string& reason) {
    coarse_ = true;
    AddUnique(&reasons_, reason);
  }
  void None(const std::string& reason) {
    none_ = true;
    AddUnique(&none_reasons_, reason);
  }
  void ApplyFunctionFacts(const Facts& f);
  void PreciseSelect(const PgQuery__SelectStmt* s);
  FromInfo WalkFrom(const Node* n);
  Ref Resolve(const PgQuery__ColumnRef* cr) const;
  void CollectColumns(const Node* n);
  void AddConjuncts(const Node* e, const std::vector<int>& restrict_entries);
  void ProcessConjunct(const Node* e, const std::vector<int>& restrict_entries);
  bool ColumnOf(const Node* n, int entry, std::string* col) const;
  bool SlotOf(const Node* n, int* slot) const;
  Predicate Translate(const Node* e, int entry, int depth = 0) const;

  const std::string& sql_;
  const Scanned& sc_;
  const AnalyzerOptions& opts_;

  std::unordered_map<const void*, int> slot_of_;  // A_Const* / ParamRef* → slot
  std::vector<std::string> written_;
  bool write_unattributed_ = false;
  bool write_ = false;
  bool coarse_ = false;
  bool none_ = false;
  std::vector<std::string> reasons_;
  std::vector<std::string> none_reasons_;

  // Per SELECT being analysed precisely.
  std::vector<ScopeEntry> scope_;
  std::vector<std::vector<Predicate>> conj_;  // per tmpl table index
};

std::string Builder::TableName(const PgQuery__RangeVar* rv) const {
  std::string schema = rv->schemaname && *rv->schemaname ? rv->schemaname : "public";
  return schema + "." + (rv->relname ? rv->relname : "");
}

bool Builder::IsSystem(const PgQuery__RangeVar* rv) const {
  std::string schema = rv->schemaname ? rv->schemaname : "";
  if (schema == "pg_catalog" || schema == "information_schema") return true;
  std::string rel = rv->relname ? rv->relname : "";
  return schema.empty() && rel.rfind("pg_", 0) == 0;
}

void Builder::MapSlots(const PgQuery__ParseResult* pr) {
  const size_t ntok = sc_.values.size();
  sources_.assign(ntok, SlotSource{});
  literal_values_.assign(ntok, std::nullopt);
  std::unordered_map<int, int> by_start;
  for (size_t i = 0; i < ntok; ++i) {
    by_start[sc_.values[i].start] = static_cast<int>(i);
    sources_[i].token = static_cast<int>(i);
    if (sc_.values[i].type == PG_QUERY__TOKEN__PARAM) {
      sources_[i].kind = SlotKind::kParam;
      std::string_view t(sql_.data() + sc_.values[i].start + 1,
                         static_cast<size_t>(sc_.values[i].end - sc_.values[i].start - 1));
      sources_[i].param = std::atoi(std::string(t).c_str());
    }
  }
  std::vector<bool> verified(ntok, false);
  std::vector<std::pair<int, std::optional<std::string>>> fixed;
  auto visit = [&](const ProtobufCMessage* m) {
    if (Is<void>(m, pg_query__a__const__descriptor)) {
      const auto* c = reinterpret_cast<const PgQuery__AConst*>(m);
      std::optional<std::string> value;
      bool is_fixed = false;
      if (c->isnull) {
        is_fixed = true;
      } else {
        switch (c->val_case) {
          case PG_QUERY__A__CONST__VAL_IVAL:
            value = std::to_string(c->ival ? c->ival->ival : 0);
            break;
          case PG_QUERY__A__CONST__VAL_FVAL:
            value = c->fval && c->fval->fval ? c->fval->fval : "0";
            break;
          case PG_QUERY__A__CONST__VAL_SVAL:
            value = c->sval && c->sval->sval ? c->sval->sval : "";
            break;
          case PG_QUERY__A__CONST__VAL_BOOLVAL:
            is_fixed = true;
            value = (c->boolval && c->boolval->boolval) ? "t" : "f";
            break;
          case PG_QUERY__A__CONST__VAL_BSVAL: {
            std::string b = c->bsval && c->bsval->bsval ? c->bsval->bsval : "";
            if (!b.empty() && (b[0] == 'b' || b[0] == 'B'))
              value = b.substr(1);
            else if (!b.empty() && (b[0] == 'x' || b[0] == 'X'))
              value = HexToBits(b.substr(1));
            else
              value = b;
            break;
          }
          default:
            is_fixed = true;
        }
      }
      if (is_fixed) {
        int slot = static_cast<int>(ntok + fixed.size());
        fixed.emplace_back(slot, value);
        slot_of_[c] = slot;
        return false;
      }
      int tok = -1;
      auto it = by_start.find(c->location);
      if (it != by_start.end()) {
        tok = it->second;
      } else if (c->location >= 0 && static_cast<size_t>(c->location) < sql_.size() &&
                 sql_[c->location] == '-') {
        auto ub = std::upper_bound(sc_.values.begin(), sc_.values.end(), c->location,
                                   [](int loc, const ValueToken& v) { return loc < v.start; });
        if (ub != sc_.values.end()) tok = static_cast<int>(ub - sc_.values.begin());
      }
      if (tok < 0 || sources_[tok].kind != SlotKind::kToken) {
        reliable_ = false;  // a constant we cannot tie to a token
        return false;
      }
      const ValueToken& vt = sc_.values[tok];
      std::string_view text(sql_.data() + vt.start, static_cast<size_t>(vt.end - vt.start));
      std::optional<std::string> decoded = DecodeToken(text, vt.type);
      bool negate = value && !value->empty() && (*value)[0] == '-' && decoded &&
                    (decoded->empty() || (*decoded)[0] != '-');
      if (decoded && negate) decoded = "-" + *decoded;
      if (!decoded || *decoded != *value) reliable_ = false;
      sources_[tok].negate = negate;
      literal_values_[tok] = value;
      verified[tok] = true;
      slot_of_[c] = tok;
      return false;
    }
    if (Is<void>(m, pg_query__param_ref__descriptor)) {
      const auto* p = reinterpret_cast<const PgQuery__ParamRef*>(m);
      auto it = by_start.find(p->location);
      if (it != by_start.end() && sources_[it->second].kind == SlotKind::kParam) {
        slot_of_[p] = it->second;
      }
      return false;
    }
    return true;
  };
  for (size_t i = 0; i < pr->n_stmts; ++i) {
    if (pr->stmts[i]->stmt) WalkNode(pr->stmts[i]->stmt, visit);
  }
  for (size_t i = 0; i < ntok; ++i) {
    if (sources_[i].kind != SlotKind::kToken || verified[i]) continue;
    const ValueToken& vt = sc_.values[i];
    std::string_view text(sql_.data() + vt.start, static_cast<size_t>(vt.end - vt.start));
    literal_values_[i] = DecodeToken(text, vt.type);
    if (!literal_values_[i]) reliable_ = false;
  }
  for (auto& [slot, v] : fixed) {
    SlotSource s;
    s.kind = SlotKind::kFixed;
    s.fixed = v;
    sources_.push_back(s);
    literal_values_.push_back(v);
  }
  tmpl_->fixed_slots = std::move(fixed);
  tmpl_->num_slots = static_cast<int>(sources_.size());
  tmpl_->slot_param.resize(sources_.size(), 0);
  for (size_t i = 0; i < sources_.size(); ++i) {
    tmpl_->slot_param[i] = sources_[i].kind == SlotKind::kParam ? sources_[i].param : 0;
  }
}

Facts Builder::Gather(const Node* stmt) {
  Facts f;
  bool top = true;
  auto visit = [&](const ProtobufCMessage* m) {
    const auto* d = m->descriptor;
    if (d == &pg_query__range_var__descriptor) {
      f.rels.push_back(reinterpret_cast<const PgQuery__RangeVar*>(m));
    } else if (d == &pg_query__common_table_expr__descriptor) {
      const auto* c = reinterpret_cast<const PgQuery__CommonTableExpr*>(m);
      f.cte = true;
      if (c->ctename) f.ctes.insert(c->ctename);
    } else if (d == &pg_query__sub_link__descriptor) {
      f.sublink = true;
    } else if (d == &pg_query__range_subselect__descriptor) {
      f.rangesub = true;
    } else if (d == &pg_query__range_table_sample__descriptor) {
      f.tablesample = true;
    } else if (d == &pg_query__window_def__descriptor) {
      f.window = true;
    } else if (d == &pg_query__func_call__descriptor) {
      const auto* fc = reinterpret_cast<const PgQuery__FuncCall*>(m);
      std::string name = FuncName(fc);
      if (fc->over) f.window = true;
      if (AggregateFunctions().count(name) || fc->agg_star) {
        if (!fc->over) f.aggregate = true;
      } else if (WindowFunctions().count(name)) {
        f.window = true;
      } else if (VolatileFunctions().count(name)) {
        AddUnique(&f.volatile_fns, name);
      } else if (WritingFunctions().count(name)) {
        AddUnique(&f.writing_fns, name);
      } else if (!SafeFunctions().count(name)) {
        AddUnique(&f.unknown_fns, name);
      }
    } else if (d == &pg_query__sqlvalue_function__descriptor) {
      const auto* sv = reinterpret_cast<const PgQuery__SQLValueFunction*>(m);
      if (sv->op >= PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_DATE &&
          sv->op <= PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP_N) {
        AddUnique(&f.volatile_fns, "current_date/time");
      }
    } else if (d == &pg_query__select_stmt__descriptor) {
      const auto* s = reinterpret_cast<const PgQuery__SelectStmt*>(m);
      if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
          s->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED) {
        f.setop = true;
      }
      if (s->limit_count || s->limit_offset) f.limit = true;
      if (s->n_locking_clause) f.locking = true;
      if (s->n_values_lists) f.values = true;
      if (s->into_clause) f.select_into = true;
    } else if (!top && (d == &pg_query__insert_stmt__descriptor)) {
      f.nested_write_targets.push_back(reinterpret_cast<const PgQuery__InsertStmt*>(m)->relation);
    } else if (!top && (d == &pg_query__update_stmt__descriptor)) {
      f.nested_write_targets.push_back(reinterpret_cast<const PgQuery__UpdateStmt*>(m)->relation);
    } else if (!top && (d == &pg_query__delete_stmt__descriptor)) {
      f.nested_write_targets.push_back(reinterpret_cast<const PgQuery__DeleteStmt*>(m)->relation);
    } else if (!top && (d == &pg_query__merge_stmt__descriptor)) {
      f.nested_write_targets.push_back(reinterpret_cast<const PgQuery__MergeStmt*>(m)->relation);
    }
    if (d != &pg_query__node__descriptor) top = false;
    return true;
  };
  WalkNode(stmt, visit);
  return f;
}

void Builder::AddCoarseTables(const Facts& f, const PgQuery__RangeVar* exclude) {
  std::set<std::string> seen;
  for (const auto* rv : f.rels) {
    if (rv == exclude || rv->relname == nullptr) continue;
    if ((!rv->schemaname || !*rv->schemaname) && f.ctes.count(rv->relname)) continue;
    if (IsSystem(rv)) {
      tmpl_->flags |= kFlagNonMonitoredSource;
      None("reads system catalog " + std::string(rv->relname));
      continue;
    }
    std::string name = TableName(rv);
    if (!seen.insert(name).second) continue;
    TableRef t;
    t.table = name;
    t.alias = rv->alias && rv->alias->aliasname ? rv->alias->aliasname : rv->relname;
    t.reads_all_columns = true;
    tmpl_->tables.push_back(std::move(t));
  }
}

void Builder::ApplyFunctionFacts(const Facts& f) {
  if (!f.volatile_fns.empty()) {
    tmpl_->flags |= kFlagVolatileFunction;
    None("volatile function " + Join(f.volatile_fns, ", "));
  }
  if (!f.writing_fns.empty()) {
    tmpl_->flags |= kFlagWrite;
    write_ = true;
    write_unattributed_ = true;
    Coarse("calls " + Join(f.writing_fns, ", ") + " (side effects)");
  }
  if (!f.unknown_fns.empty()) {
    tmpl_->flags |= kFlagUnknownFunction | kFlagWrite;
    write_ = true;
    write_unattributed_ = true;
    Coarse("calls " + Join(f.unknown_fns, ", ") + " (not provably read-only)");
  }
  if (f.tablesample) {
    tmpl_->flags |= kFlagVolatileFunction;
    None("TABLESAMPLE");
  }
  for (const auto* rv : f.nested_write_targets) {
    if (rv) AddWritten(rv);
    write_ = true;
    tmpl_->flags |= kFlagWrite;
  }
}

void Builder::AnalyzeStmt(const Node* stmt) {
  if (stmt == nullptr) return;
  switch (stmt->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT: {
      const PgQuery__SelectStmt* s = stmt->select_stmt;
      Facts f = Gather(stmt);
      ApplyFunctionFacts(f);
      if (f.aggregate) tmpl_->flags |= kFlagAggregate;
      if (f.limit) tmpl_->flags |= kFlagLimit;
      if (f.select_into) {
        tmpl_->flags |= kFlagWrite;
        write_ = true;
        write_unattributed_ = true;
        Coarse("SELECT INTO creates a table");
      }
      if (f.locking) {
        tmpl_->flags |= kFlagWrite;
        write_ = true;
        for (size_t i = 0; i < s->n_locking_clause; ++i) {
          const Node* lc = s->locking_clause[i];
          if (lc->node_case == PG_QUERY__NODE__NODE_LOCKING_CLAUSE &&
              lc->locking_clause->n_locked_rels) {
            for (size_t k = 0; k < lc->locking_clause->n_locked_rels; ++k) {
              const Node* r = lc->locking_clause->locked_rels[k];
              if (r->node_case == PG_QUERY__NODE__NODE_RANGE_VAR) {
                // FOR UPDATE OF alias: find the table behind the alias.
                std::string want = r->range_var->relname ? r->range_var->relname : "";
                bool found = false;
                for (const auto* rv : f.rels) {
                  std::string nm = rv->alias && rv->alias->aliasname
                                       ? rv->alias->aliasname
                                       : (rv->relname ? rv->relname : "");
                  if (nm == want && rv != r->range_var) {
                    AddWritten(rv);
                    found = true;
                  }
                }
                if (!found) write_unattributed_ = true;
              }
            }
          } else {
            for (const auto* rv : f.rels) {
              if (!(rv->relname && !rv->schemaname && f.ctes.count(rv->relname))) AddWritten(rv);
            }
          }
        }
        Coarse("locking read (FOR UPDATE/SHARE)");
      }
      std::vector<std::string> why;
      if (f.setop) {
        tmpl_->flags |= kFlagSetOperation;
        why.push_back("set operation");
      }
      if (f.cte) {
        tmpl_->flags |= kFlagCte;
        why.push_back("CTE");
      }
      if (f.sublink || f.rangesub) {
        tmpl_->flags |= kFlagSubquery;
        why.push_back("subquery");
      }
      if (f.window) {
        tmpl_->flags |= kFlagWindow;
        why.push_back("window function");
      }
      if (!why.empty() || f.locking) {
        if (!why.empty()) Coarse(Join(why, ", "));
        AddCoarseTables(f);
        return;
      }
      if (f.values && s->n_from_clause == 0) return;  // VALUES: reads nothing
      for (const auto* rv : f.rels) {
        if (IsSystem(rv)) {
          tmpl_->flags |= kFlagNonMonitoredSource;
          None("reads system catalog " + std::string(rv->relname ? rv->relname : ""));
          return;
        }
      }
      PreciseSelect(s);
      return;
    }
    case PG_QUERY__NODE__NODE_INSERT_STMT:
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
    case PG_QUERY__NODE__NODE_DELETE_STMT:
    case PG_QUERY__NODE__NODE_MERGE_STMT: {
      const PgQuery__RangeVar* target = nullptr;
      const char* verb = "";
      if (stmt->node_case == PG_QUERY__NODE__NODE_INSERT_STMT) {
        target = stmt->insert_stmt->relation;
        verb = "INSERT";
      } else if (stmt->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT) {
        target = stmt->update_stmt->relation;
        verb = "UPDATE";
      } else if (stmt->node_case == PG_QUERY__NODE__NODE_DELETE_STMT) {
        target = stmt->delete_stmt->relation;
        verb = "DELETE";
      } else {
        target = stmt->merge_stmt->relation;
        verb = "MERGE";
      }
      Facts f = Gather(stmt);
      ApplyFunctionFacts(f);
      tmpl_->flags |= kFlagWrite;
      write_ = true;
      if (target)
        AddWritten(target);
      else
        write_unattributed_ = true;
      Coarse(std::string("writes (") + verb + ")");
      AddCoarseTables(f, stmt->node_case == PG_QUERY__NODE__NODE_INSERT_STMT ? target : nullptr);
      return;
    }
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
      AnalyzeStmt(stmt->explain_stmt->query);
      return;
    case PG_QUERY__NODE__NODE_PREPARE_STMT:
      AnalyzeStmt(stmt->prepare_stmt->query);
      return;
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
      AnalyzeStmt(stmt->declare_cursor_stmt->query);
      return;
    case PG_QUERY__NODE__NODE_COPY_STMT: {
      const PgQuery__CopyStmt* c = stmt->copy_stmt;
      if (c->is_from) {
        tmpl_->flags |= kFlagWrite;
        write_ = true;
        if (c->relation) AddWritten(c->relation);
        Coarse("writes (COPY FROM)");
        return;
      }
      if (c->query) {
        AnalyzeStmt(c->query);
        return;
      }
      if (c->relation) {
        Facts f;
        f.rels.push_back(c->relation);
        AddCoarseTables(f);
        Coarse("COPY TO reads the whole table");
      }
      return;
    }
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
    case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
    case PG_QUERY__NODE__NODE_DISCARD_STMT:
    case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
    case PG_QUERY__NODE__NODE_LISTEN_STMT:
    case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
    case PG_QUERY__NODE__NODE_CHECK_POINT_STMT:
    case PG_QUERY__NODE__NODE_VACUUM_STMT:
    case PG_QUERY__NODE__NODE_FETCH_STMT:
    case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
      tmpl_->flags |= kFlagUtility;
      return;
    case PG_QUERY__NODE__NODE_EXECUTE_STMT:
      None("EXECUTE of a prepared statement whose text is not known");
      return;
    case PG_QUERY__NODE__NODE_LOCK_STMT:
    case PG_QUERY__NODE__NODE_TRUNCATE_STMT: {
      Facts f = Gather(stmt);
      tmpl_->flags |= kFlagWrite;
      write_ = true;
      for (const auto* rv : f.rels) AddWritten(rv);
      Coarse(stmt->node_case == PG_QUERY__NODE__NODE_LOCK_STMT ? "LOCK TABLE"
                                                               : "writes (TRUNCATE)");
      return;
    }
    default: {
      // DDL, CALL, DO, GRANT, ...: writes we cannot attribute precisely.
      Facts f = Gather(stmt);
      tmpl_->flags |= kFlagWrite;
      write_ = true;
      write_unattributed_ = true;
      for (const auto* rv : f.rels) AddWritten(rv);
      Coarse("DDL or procedural statement");
      return;
    }
  }
}

// ---------------------------------------------------------------- precise SELECT

Builder::FromInfo Builder::WalkFrom(const Node* n) {
  FromInfo out;
  if (n == nullptr) return out;
  switch (n->node_case) {
    case PG_QUERY__NODE__NODE_RANGE_VAR: {
      const PgQuery__RangeVar* rv = n->range_var;
      ScopeEntry e;
      e.relname = rv->relname ? rv->relname : "";
      e.schema = rv->schemaname ? rv->schemaname : "";
      e.has_alias = rv->alias && rv->alias->aliasname;
      e.name = e.has_alias ? rv->alias->aliasname : e.relname;
      TableRef t;
      t.table = TableName(rv);
      t.alias = e.name;
      e.table = static_cast<int>(tmpl_->tables.size());
      tmpl_->tables.push_back(std::move(t));
      conj_.emplace_back();
      scope_.push_back(e);
      int idx = static_cast<int>(scope_.size() - 1);
      out.scope.push_back(idx);
      out.nonnull.push_back(idx);
      return out;
    }
    case PG_QUERY__NODE__NODE_RANGE_FUNCTION: {
      const PgQuery__RangeFunction* rf = n->range_function;
      ScopeEntry e;
      if (rf->alias && rf->alias->aliasname) {
        e.name = rf->alias->aliasname;
        e.has_alias = true;
      } else if (rf->n_functions) {
        // functions[i] is a List (func, coldeflist); name the source by its function.
        WalkNode(rf->functions[0], [&](const ProtobufCMessage* m) {
          if (m->descriptor == &pg_query__func_call__descriptor && e.name.empty()) {
            e.name = FuncName(reinterpret_cast<const PgQuery__FuncCall*>(m));
          }
          return e.name.empty();
        });
      }
      scope_.push_back(e);
      out.scope.push_back(static_cast<int>(scope_.size() - 1));
      return out;
    }
    case PG_QUERY__NODE__NODE_JOIN_EXPR: {
      const PgQuery__JoinExpr* j = n->join_expr;
      FromInfo l = WalkFrom(j->larg);
      FromInfo r = WalkFrom(j->rarg);
      out.scope = l.scope;
      out.scope.insert(out.scope.end(), r.scope.begin(), r.scope.end());
      std::vector<int> restrict_on;
      switch (j->jointype) {
        case PG_QUERY__JOIN_TYPE__JOIN_LEFT:
          tmpl_->flags |= kFlagOuterJoin;
          restrict_on = r.nonnull;
          out.nonnull = l.nonnull;
          break;
        case PG_QUERY__JOIN_TYPE__JOIN_RIGHT:
          tmpl_->flags |= kFlagOuterJoin;
          restrict_on = l.nonnull;
          out.nonnull = r.nonnull;
          break;
        case PG_QUERY__JOIN_TYPE__JOIN_FULL:
          tmpl_->flags |= kFlagOuterJoin;
          break;
        default:
          restrict_on = l.nonnull;
          restrict_on.insert(restrict_on.end(), r.nonnull.begin(), r.nonnull.end());
          out.nonnull = restrict_on;
      }
      if (j->quals) AddConjuncts(j->quals, restrict_on);
      if (j->is_natural) {
        for (int e : out.scope) {
          if (scope_[e].table >= 0) tmpl_->tables[scope_[e].table].reads_all_columns = true;
        }
      }
      for (size_t i = 0; i < j->n_using_clause; ++i) {
        const char* col = StrOf(j->using_clause[i]);
        if (!col) continue;
        for (int e : out.scope) {
          if (scope_[e].table >= 0) AddUnique(&tmpl_->tables[scope_[e].table].columns_read, col);
        }
        if (l.scope.size() == 1 && r.scope.size() == 1 && scope_[l.scope[0]].table >= 0 &&
            scope_[r.scope[0]].table >= 0) {
          tmpl_->joins.push_back({scope_[l.scope[0]].table, col, scope_[r.scope[0]].table, col});
        }
      }
      return out;
    }
    default: {
      // Not expected on the precise path (subselects are coarse): stay safe.
      ScopeEntry e;
      scope_.push_back(e);
      out.scope.push_back(static_cast<int>(scope_.size() - 1));
      return out;
    }
  }
}

Builder::Ref Builder::Resolve(const PgQuery__ColumnRef* cr) const {
  Ref ref;
  if (cr->n_fields == 0) return ref;
  const Node* last = cr->fields[cr->n_fields - 1];
  bool star = last->node_case == PG_QUERY__NODE__NODE_A_STAR;
  if (!star) {
    const char* c = StrOf(last);
    ref.column = c ? c : "";
  }
  if (cr->n_fields == 1) {
    if (star) {
      ref.kind = RefKind::kStar;
      return ref;
    }
    if (scope_.size() == 1) {
      ref.entry = 0;
      ref.kind = scope_[0].table >= 0 ? RefKind::kTable : RefKind::kDerived;
      return ref;
    }
    // Several sources: only the catalog can say which one has the column.
    if (!opts_.table_columns.empty()) {
      int found = -1;
      bool ok = true;
      for (size_t i = 0; i < scope_.size() && ok; ++i) {
        if (scope_[i].table < 0) {
          ok = false;
          break;
        }
        auto it = opts_.table_columns.find(tmpl_->tables[scope_[i].table].table);
        if (it == opts_.table_columns.end()) {
          ok = false;
          break;
        }
        if (std::find(it->second.begin(), it->second.end(), ref.column) != it->second.end()) {
          if (found >= 0) ok = false;
          found = static_cast<int>(i);
        }
      }
      if (ok && found >= 0) {
        ref.entry = found;
        ref.kind = RefKind::kTable;
        return ref;
      }
    }
    ref.kind = RefKind::kAmbiguous;
    return ref;
  }
  const char* qual = StrOf(cr->fields[cr->n_fields - 2]);
  const char* schema = cr->n_fields >= 3 ? StrOf(cr->fields[cr->n_fields - 3]) : nullptr;
  int found = -1;
  int count = 0;
  for (size_t i = 0; i < scope_.size(); ++i) {
    const ScopeEntry& e = scope_[i];
    if (!qual || e.name != qual) continue;
    if (schema) {
      if (e.has_alias) continue;
      std::string es = e.schema.empty() ? "public" : e.schema;
      if (es != schema) continue;
    }
    found = static_cast<int>(i);
    ++count;
  }
  if (count != 1) {
    ref.kind = RefKind::kAmbiguous;
    return ref;
  }
  ref.entry = found;
  if (star) {
    ref.kind = RefKind::kStar;
  } else {
    ref.kind = scope_[found].table >= 0 ? RefKind::kTable : RefKind::kDerived;
  }
  return ref;
}

void Builder::CollectColumns(const Node* n) {
  if (n == nullptr) return;
  WalkNode(n, [&](const ProtobufCMessage* m) {
    if (m->descriptor != &pg_query__column_ref__descriptor) return true;
    Ref r = Resolve(reinterpret_cast<const PgQuery__ColumnRef*>(m));
    switch (r.kind) {
      case RefKind::kTable:
        AddUnique(&tmpl_->tables[scope_[r.entry].table].columns_read, r.column);
        break;
      case RefKind::kStar:
        for (size_t i = 0; i < scope_.size(); ++i) {
          if (scope_[i].table < 0) continue;
          if (r.entry < 0 || static_cast<int>(i) == r.entry) {
            tmpl_->tables[scope_[i].table].reads_all_columns = true;
          }
        }
        break;
      case RefKind::kDerived:
        break;
      case RefKind::kAmbiguous:
        for (const auto& e : scope_) {
          if (e.table >= 0 && !r.column.empty()) {
            AddUnique(&tmpl_->tables[e.table].columns_read, r.column);
          }
        }
        break;
    }
    return false;
  });
}

void Builder::AddConjuncts(const Node* e, const std::vector<int>& restrict_entries) {
  if (e == nullptr) return;
  if (e->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR &&
      e->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
    for (size_t i = 0; i < e->bool_expr->n_args; ++i) {
      AddConjuncts(e->bool_expr->args[i], restrict_entries);
    }
    return;
  }
  ProcessConjunct(e, restrict_entries);
}

void Builder::ProcessConjunct(const Node* e, const std::vector<int>& restrict_entries) {
  // Join equality: col = col across two tables.
  if (e->node_case == PG_QUERY__NODE__NODE_A_EXPR &&
      e->a_expr->kind == PG_QUERY__A__EXPR__KIND__AEXPR_OP && e->a_expr->n_name == 1 &&
      StrOf(e->a_expr->name[0]) && std::strcmp(StrOf(e->a_expr->name[0]), "=") == 0 &&
      e->a_expr->lexpr && e->a_expr->rexpr &&
      e->a_expr->lexpr->node_case == PG_QUERY__NODE__NODE_COLUMN_REF &&
      e->a_expr->rexpr->node_case == PG_QUERY__NODE__NODE_COLUMN_REF) {
    Ref a = Resolve(e->a_expr->lexpr->column_ref);
    Ref b = Resolve(e->a_expr->rexpr->column_ref);
    if (a.kind == RefKind::kTable && b.kind == RefKind::kTable && a.entry != b.entry) {
      tmpl_->joins.push_back({scope_[a.entry].table, a.column, scope_[b.entry].table, b.column});
      return;
    }
  }
  std::set<int> entries;
  bool ambiguous = false;
  WalkNode(e, [&](const ProtobufCMessage* m) {
    if (m->descriptor == &pg_query__column_ref__descriptor) {
      Ref r = Resolve(reinterpret_cast<const PgQuery__ColumnRef*>(m));
      if (r.kind == RefKind::kTable || r.kind == RefKind::kDerived) {
        entries.insert(r.entry);
      } else {
        ambiguous = true;
      }
      return false;
    }
    return true;
  });
  auto restricts = [&](int entry) {
    return std::find(restrict_entries.begin(), restrict_entries.end(), entry) !=
           restrict_entries.end();
  };
  if (!ambiguous && entries.empty()) return;  // no row in it: does not filter rows
  if (!ambiguous && entries.size() == 1 && scope_[*entries.begin()].table >= 0) {
    int entry = *entries.begin();
    if (restricts(entry)) conj_[scope_[entry].table].push_back(Translate(e, entry));
    return;
  }
  Predicate unknown;
  unknown.kind = Predicate::Kind::kUnknown;
  for (size_t i = 0; i < scope_.size(); ++i) {
    if (scope_[i].table < 0 || !restricts(static_cast<int>(i))) continue;
    if (ambiguous || entries.count(static_cast<int>(i))) conj_[scope_[i].table].push_back(unknown);
  }
}

bool Builder::ColumnOf(const Node* n, int entry, std::string* col) const {
  if (n == nullptr || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF) return false;
  Ref r = Resolve(n->column_ref);
  if (r.kind != RefKind::kTable || r.entry != entry || r.column.empty()) return false;
  *col = r.column;
  return true;
}

bool Builder::SlotOf(const Node* n, int* slot) const {
  if (n == nullptr) return false;
  if (n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST) return SlotOf(n->type_cast->arg, slot);
  const void* key = nullptr;
  if (n->node_case == PG_QUERY__NODE__NODE_A_CONST) {
    if (n->a_const->isnull) return false;  // = NULL never holds: keep it unknown
    key = n->a_const;
  } else if (n->node_case == PG_QUERY__NODE__NODE_PARAM_REF) {
    key = n->param_ref;
  } else {
    return false;
  }
  auto it = slot_of_.find(key);
  if (it == slot_of_.end()) return false;
  *slot = it->second;
  return true;
}

constexpr int kMaxPredicateDepth = 32;

bool Uncertain(const Predicate& p) {
  if (p.kind == Predicate::Kind::kUnknown || p.kind == Predicate::Kind::kTrue) return true;
  for (const auto& c : p.children) {
    if (Uncertain(c)) return true;
  }
  return false;
}

Predicate Builder::Translate(const Node* e, int entry, int depth) const {
  Predicate unknown;
  unknown.kind = Predicate::Kind::kUnknown;
  // Deeper boolean nesting is approximated: keeps stored templates (and every
  // recursive consumer of predicates) bounded.
  if (e == nullptr || depth > kMaxPredicateDepth) return unknown;
  auto compare = [](std::string col, CompareOp op, std::vector<int> slots) {
    Predicate p;
    p.kind = Predicate::Kind::kCompare;
    p.column = std::move(col);
    p.op = op;
    p.slots = std::move(slots);
    return p;
  };
  switch (e->node_case) {
    case PG_QUERY__NODE__NODE_BOOL_EXPR: {
      const PgQuery__BoolExpr* b = e->bool_expr;
      Predicate p;
      if (b->boolop == PG_QUERY__BOOL_EXPR_TYPE__NOT_EXPR) {
        if (b->n_args != 1) return unknown;
        Predicate c = Translate(b->args[0], entry, depth + 1);
        // NOT(maybe) is maybe: never negate an approximation.
        if (Uncertain(c)) return unknown;
        p.kind = Predicate::Kind::kNot;
        p.children.push_back(std::move(c));
        return p;
      }
      p.kind = b->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR ? Predicate::Kind::kAnd
                                                               : Predicate::Kind::kOr;
      for (size_t i = 0; i < b->n_args; ++i)
        p.children.push_back(Translate(b->args[i], entry, depth + 1));
      return p;
    }
    case PG_QUERY__NODE__NODE_NULL_TEST: {
      std::string col;
      if (!ColumnOf(e->null_test->arg, entry, &col)) return unknown;
      return compare(col,
                     e->null_test->nulltesttype == PG_QUERY__NULL_TEST_TYPE__IS_NULL
                         ? CompareOp::kIsNull
                         : CompareOp::kIsNotNull,
                     {});
    }
    case PG_QUERY__NODE__NODE_A_EXPR: {
      const PgQuery__AExpr* a = e->a_expr;
      const char* opname = a->n_name >= 1 ? StrOf(a->name[a->n_name - 1]) : nullptr;
      if (!opname) return unknown;
      std::string op = opname;
      std::string col;
      int slot = 0;
      switch (a->kind) {
        case PG_QUERY__A__EXPR__KIND__AEXPR_OP: {
          static const std::unordered_map<std::string, std::pair<CompareOp, CompareOp>> ops = {
              {"=", {CompareOp::kEq, CompareOp::kEq}},
              {"<>", {CompareOp::kNe, CompareOp::kNe}},
              {"<", {CompareOp::kLt, CompareOp::kGt}},
              {"<=", {CompareOp::kLe, CompareOp::kGe}},
              {">", {CompareOp::kGt, CompareOp::kLt}},
              {">=", {CompareOp::kGe, CompareOp::kLe}},
              {"~~", {CompareOp::kLike, CompareOp::kLike}},
              {"!~~", {CompareOp::kNotLike, CompareOp::kNotLike}},
              {"~~*", {CompareOp::kILike, CompareOp::kILike}},
              {"!~~*", {CompareOp::kNotILike, CompareOp::kNotILike}}};
          auto it = ops.find(op);
          if (it == ops.end() || a->n_name != 1) return unknown;
          bool like = op.find('~') != std::string::npos;
          if (ColumnOf(a->lexpr, entry, &col) && SlotOf(a->rexpr, &slot)) {
            return compare(col, it->second.first, {slot});
          }
          if (!like && ColumnOf(a->rexpr, entry, &col) && SlotOf(a->lexpr, &slot)) {
            return compare(col, it->second.second, {slot});
          }
          return unknown;
        }
        case PG_QUERY__A__EXPR__KIND__AEXPR_LIKE:
        case PG_QUERY__A__EXPR__KIND__AEXPR_ILIKE: {
          CompareOp cop;
          if (op == "~~")
            cop = CompareOp::kLike;
          else if (op == "!~~")
            cop = CompareOp::kNotLike;
          else if (op == "~~*")
            cop = CompareOp::kILike;
          else if (op == "!~~*")
            cop = CompareOp::kNotILike;
          else
            return unknown;
          if (ColumnOf(a->lexpr, entry, &col) && SlotOf(a->rexpr, &slot)) {
            return compare(col, cop, {slot});
          }
          return unknown;
        }
        case PG_QUERY__A__EXPR__KIND__AEXPR_IN: {
          if (!ColumnOf(a->lexpr, entry, &col) || !a->rexpr ||
              a->rexpr->node_case != PG_QUERY__NODE__NODE_LIST) {
            return unknown;
          }
          std::vector<int> slots;
          for (size_t i = 0; i < a->rexpr->list->n_items; ++i) {
            if (!SlotOf(a->rexpr->list->items[i], &slot)) return unknown;
            slots.push_back(slot);
          }
          return compare(col, op == "=" ? CompareOp::kIn : CompareOp::kNotIn, slots);
        }
        case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN:
        case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM:
        case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM: {
          int lo = 0, hi = 0;
          if (!ColumnOf(a->lexpr, entry, &col) || !a->rexpr ||
              a->rexpr->node_case != PG_QUERY__NODE__NODE_LIST || a->rexpr->list->n_items != 2 ||
              !SlotOf(a->rexpr->list->items[0], &lo) || !SlotOf(a->rexpr->list->items[1], &hi)) {
            return unknown;
          }
          bool neg = a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN ||
                     a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM;
          CompareOp cop = neg ? CompareOp::kNotBetween : CompareOp::kBetween;
          if (a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN ||
              a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN) {
            return compare(col, cop, {lo, hi});
          }
          // SYMMETRIC: either order of the bounds.
          Predicate p;
          p.kind = neg ? Predicate::Kind::kAnd : Predicate::Kind::kOr;
          p.children.push_back(compare(col, cop, {lo, hi}));
          p.children.push_back(compare(col, cop, {hi, lo}));
          return p;
        }
        default:
          return unknown;
      }
    }
    default:
      return unknown;
  }
}

void Builder::PreciseSelect(const PgQuery__SelectStmt* s) {
  scope_.clear();
  size_t first_table = tmpl_->tables.size();
  size_t first_join = tmpl_->joins.size();
  conj_.assign(first_table, {});
  std::vector<int> nonnull;
  for (size_t i = 0; i < s->n_from_clause; ++i) {
    FromInfo fi = WalkFrom(s->from_clause[i]);
    nonnull.insert(nonnull.end(), fi.nonnull.begin(), fi.nonnull.end());
  }
  AddConjuncts(s->where_clause, nonnull);
  for (size_t i = 0; i < s->n_target_list; ++i) CollectColumns(s->target_list[i]);
  CollectColumns(s->where_clause);
  for (size_t i = 0; i < s->n_group_clause; ++i) CollectColumns(s->group_clause[i]);
  CollectColumns(s->having_clause);
  for (size_t i = 0; i < s->n_sort_clause; ++i) CollectColumns(s->sort_clause[i]);
  for (size_t i = 0; i < s->n_distinct_clause; ++i) CollectColumns(s->distinct_clause[i]);
  for (size_t i = 0; i < s->n_from_clause; ++i) CollectColumns(s->from_clause[i]);
  for (size_t i = first_join; i < tmpl_->joins.size(); ++i) {
    const JoinEquality& j = tmpl_->joins[i];
    AddUnique(&tmpl_->tables[j.left_table].columns_read, j.left_column);
    AddUnique(&tmpl_->tables[j.right_table].columns_read, j.right_column);
  }
  for (size_t t = first_table; t < tmpl_->tables.size(); ++t) {
    std::vector<Predicate>& c = conj_[t];
    if (c.empty()) continue;
    if (c.size() == 1) {
      tmpl_->tables[t].predicate = std::move(c[0]);
    } else {
      Predicate p;
      p.kind = Predicate::Kind::kAnd;
      p.children = std::move(c);
      tmpl_->tables[t].predicate = std::move(p);
    }
  }
  for (auto& t : tmpl_->tables) {
    if (t.reads_all_columns) t.columns_read.clear();
  }
}

void Builder::Run() {
  internal::ParseResult pr(sql_);
  if (!pr.ok()) {
    tmpl_->flags |= kFlagUnparsable;
    tmpl_->precision = Precision::kNone;
    tmpl_->coarse_reason = "unparsable: " + pr.error();
    tmpl_->read_only = true;
    sources_.clear();
    // Slots still carry the constants so two garbage strings never share an instance.
    for (size_t i = 0; i < sc_.values.size(); ++i) {
      SlotSource s;
      s.token = static_cast<int>(i);
      if (sc_.values[i].type == PG_QUERY__TOKEN__PARAM) {
        s.kind = SlotKind::kParam;
        s.param = std::atoi(sql_.c_str() + sc_.values[i].start + 1);
      }
      sources_.push_back(s);
      const ValueToken& vt = sc_.values[i];
      literal_values_.push_back(std::string(sql_.substr(vt.start, vt.end - vt.start)));
    }
    tmpl_->num_slots = static_cast<int>(sources_.size());
    tmpl_->slot_param.assign(sources_.size(), 0);
    for (size_t i = 0; i < sources_.size(); ++i) {
      if (sources_[i].kind == SlotKind::kParam) {
        tmpl_->slot_param[i] = sources_[i].param;
      } else {
        sources_[i].kind = SlotKind::kFixed;  // raw token text, no decoding needed
      }
    }
    reliable_ = false;
    return;
  }
  const PgQuery__ParseResult* r = pr.get();
  MapSlots(r);
  if (r->n_stmts > 1) tmpl_->flags |= kFlagMultiStatement;
  for (size_t i = 0; i < r->n_stmts; ++i) AnalyzeStmt(r->stmts[i]->stmt);

  // Logging tables are ignored both ways.
  std::unordered_set<std::string> logging(opts_.logging_tables.begin(), opts_.logging_tables.end());
  if (!logging.empty()) {
    std::vector<int> remap(tmpl_->tables.size(), -1);
    std::vector<TableRef> kept;
    for (size_t i = 0; i < tmpl_->tables.size(); ++i) {
      if (logging.count(tmpl_->tables[i].table)) continue;
      remap[i] = static_cast<int>(kept.size());
      kept.push_back(std::move(tmpl_->tables[i]));
    }
    tmpl_->tables = std::move(kept);
    std::vector<JoinEquality> joins;
    for (auto j : tmpl_->joins) {
      if (remap[j.left_table] < 0 || remap[j.right_table] < 0) continue;
      j.left_table = remap[j.left_table];
      j.right_table = remap[j.right_table];
      joins.push_back(std::move(j));
    }
    tmpl_->joins = std::move(joins);
    std::vector<std::string> w;
    for (auto& t : written_) {
      if (!logging.count(t)) w.push_back(t);
    }
    written_ = std::move(w);
  }
  tmpl_->written_tables = written_;
  bool writes = write_ && (write_unattributed_ || !written_.empty());
  tmpl_->read_only = !writes;
  if (!writes) {
    tmpl_->flags &= ~static_cast<uint32_t>(kFlagWrite);
    // The only coarse reasons were writes to logging tables: drop them.
    std::vector<std::string> rs;
    for (auto& s : reasons_) {
      if (s.rfind("writes (", 0) != 0 && s.rfind("locking read", 0) != 0) rs.push_back(s);
    }
    if (rs.size() != reasons_.size()) {
      reasons_ = std::move(rs);
      coarse_ = !reasons_.empty();
    }
  }
  if (none_) {
    tmpl_->precision = Precision::kNone;
    std::vector<std::string> all = none_reasons_;
    all.insert(all.end(), reasons_.begin(), reasons_.end());
    tmpl_->coarse_reason = Join(all, "; ");
  } else if (coarse_ || (tmpl_->flags & kCoarseFlags)) {
    tmpl_->precision = Precision::kCoarse;
    tmpl_->coarse_reason = Join(reasons_, "; ");
    for (auto& t : tmpl_->tables) {
      t.predicate = Predicate{};
      t.reads_all_columns = true;
      t.columns_read.clear();
    }
  } else {
    tmpl_->precision = Precision::kPrecise;
  }
}

std::string NormalizedSql(const std::string& sql, const Scanned& sc,
                          const std::vector<SlotSource>& sources) {
  // Constants → $k (k = slot + 1), comments dropped; for display and polling.
  struct Cut {
    int start, end;
    std::string with;
  };
  std::vector<Cut> cuts;
  for (size_t i = 0; i < sc.values.size() && i < sources.size(); ++i) {
    int start = sc.values[i].start;
    if (sources[i].negate) {
      int k = start - 1;
      while (k >= 0 && (sql[k] == ' ' || sql[k] == '\t' || sql[k] == '\n')) --k;
      if (k >= 0 && sql[k] == '-') start = k;
    }
    cuts.push_back({start, sc.values[i].end, "$" + std::to_string(i + 1)});
  }
  for (auto& c : sc.comments) cuts.push_back({c.first, c.second, ""});
  std::sort(cuts.begin(), cuts.end(), [](const Cut& a, const Cut& b) { return a.start < b.start; });
  std::string out;
  int pos = 0;
  for (const auto& c : cuts) {
    if (c.start < pos) continue;
    out.append(sql, pos, c.start - pos);
    out += c.with;
    pos = c.end;
  }
  out.append(sql, pos, std::string::npos);
  // Trim whitespace left by a stripped trailing comment.
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n' || out.back() == '\t')) {
    out.pop_back();
  }
  size_t b = out.find_first_not_of(" \t\n");
  return b == std::string::npos ? std::string() : out.substr(b);
}

// libpg_query's protobuf unpacking and our tree walks recurse once per
// nesting level; PostgreSQL's grammar allows ~10000 levels, more than a
// default 8 MiB thread stack holds. Analysis (once per shape) therefore runs
// on one long-lived worker thread with a large stack. One thread, not one per
// call: libpg_query creates a pthread key in every thread that uses it and
// never deletes it, so short-lived threads would exhaust the process's keys.
class LargeStackWorker {
 public:
  static LargeStackWorker& Get() {
    static LargeStackWorker* w = new LargeStackWorker();  // never destroyed: lives with the process
    return *w;
  }

  void Run(const std::function<void()>& fn) {
    if (!started_) {
      fn();  // no worker thread: analyse here (very deep input may still fail)
      return;
    }
    Job job{&fn};
    std::unique_lock lock(mu_);
    queue_.push_back(&job);
    cv_.notify_all();
    done_cv_.wait(lock, [&] { return job.done; });
  }

 private:
  struct Job {
    const std::function<void()>* fn;
    bool done = false;
  };

  LargeStackWorker() {
    constexpr size_t kStack = 256u << 20;  // reserved, committed only as used
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) return;
    pthread_attr_setstacksize(&attr, kStack);
    pthread_t th;
    started_ = pthread_create(
                   &th, &attr,
                   [](void* self) -> void* {
                     static_cast<LargeStackWorker*>(self)->Loop();
                     return nullptr;
                   },
                   this) == 0;
    pthread_attr_destroy(&attr);
    if (started_) pthread_detach(th);
  }

  void Loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return !queue_.empty(); });
      Job* job = queue_.front();
      queue_.pop_front();
      lock.unlock();
      (*job->fn)();
      lock.lock();
      job->done = true;
      done_cv_.notify_all();
    }
  }

  bool started_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  std::deque<Job*> queue_;
};

void RunWithLargeStack(const std::function<void()>& fn) { LargeStackWorker::Get().Run(fn); }

struct CacheEntry {
  std::shared_ptr<const QueryTemplate> tmpl;
  std::vector<SlotSource> sources;
  bool reliable = false;
};

}  // namespace

// ---------------------------------------------------------------- Analyzer

struct Analyzer::Impl {
  AnalyzerOptions options;
  mutable std::shared_mutex mu;
  std::unordered_map<std::string, std::shared_ptr<const CacheEntry>> cache;
  std::atomic<uint64_t> parses{0};
  std::atomic<uint64_t> hits{0};

  // Builds and caches; returns the entry and this statement's literal values.
  std::shared_ptr<const CacheEntry> Build(const std::string& sql, const Scanned& sc,
                                          std::vector<std::optional<std::string>>* literal) {
    parses.fetch_add(1, std::memory_order_relaxed);
    Builder b(sql, sc, options);
    RunWithLargeStack([&] {
      b.Run();
      b.tmpl_->shape_id = Avalanche(FnvBytes(kFnvOffset, sc.key.data(), sc.key.size()));
      if (b.tmpl_->flags & kFlagUnparsable) {
        // Unparsable text: identity is the whole text (constants can't be trusted).
        b.tmpl_->shape_id = Avalanche(FnvBytes(kFnvOffset, sql.data(), sql.size()));
        b.tmpl_->fingerprint = b.tmpl_->shape_id;
        b.tmpl_->normalized_sql = sql;
      } else {
        internal::FingerprintResult fp(sql);  // recursive too: same thread
        b.tmpl_->fingerprint = fp.ok() ? fp.value() : b.tmpl_->shape_id;
        b.tmpl_->normalized_sql = NormalizedSql(sql, sc, b.sources_);
      }
    });
    auto entry = std::make_shared<CacheEntry>();
    entry->tmpl = b.tmpl_;
    entry->sources = std::move(b.sources_);
    entry->reliable = b.reliable_;
    if (literal) *literal = std::move(b.literal_values_);
    if (!(entry->tmpl->flags & kFlagUnparsable)) {
      std::unique_lock lock(mu);
      if (cache.size() >= options.max_cached_templates) cache.clear();
      cache[sc.key] = entry;
    }
    return entry;
  }

  std::shared_ptr<const CacheEntry> Lookup(const std::string& key) {
    std::shared_lock lock(mu);
    auto it = cache.find(key);
    if (it == cache.end()) return nullptr;
    hits.fetch_add(1, std::memory_order_relaxed);
    return it->second;
  }
};

Analyzer::Analyzer(AnalyzerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  if (impl_->options.max_cached_templates == 0) impl_->options.max_cached_templates = 1;
}

Analyzer::~Analyzer() = default;

namespace {
bool BlankKey(const Scanned& sc) {
  for (char c : sc.key) {
    if (c != ' ' && c != ';') return false;
  }
  return true;
}
}  // namespace

Result<std::shared_ptr<const QueryTemplate>> Analyzer::Analyze(std::string_view sql_view) {
  std::string sql(sql_view);
  Scanned sc = Scan(sql);
  if (sc.ok && BlankKey(sc)) return Status::InvalidArgument("empty statement");
  if (!sc.ok) {
    // The scanner itself rejected it (unterminated quote...): unparsable.
    Scanned empty;
    empty.ok = true;
    empty.key = sql;
    return impl_->Build(sql, empty, nullptr)->tmpl;
  }
  if (auto e = impl_->Lookup(sc.key)) return e->tmpl;
  return impl_->Build(sql, sc, nullptr)->tmpl;
}

Result<QueryInstance> Analyzer::Instantiate(std::string_view sql_view,
                                            const std::vector<std::optional<std::string>>& params) {
  std::string sql(sql_view);
  Scanned sc = Scan(sql);
  if (sc.ok && BlankKey(sc)) return Status::InvalidArgument("empty statement");
  if (!sc.ok) {
    Scanned empty;
    empty.ok = true;
    empty.key = sql;
    QueryInstance qi;
    qi.tmpl = impl_->Build(sql, empty, nullptr)->tmpl;
    return qi;
  }
  std::vector<std::optional<std::string>> literal;
  std::shared_ptr<const CacheEntry> e = impl_->Lookup(sc.key);
  bool have_literal = false;
  if (!e || !e->reliable) {
    e = impl_->Build(sql, sc, &literal);
    have_literal = true;
  }
  QueryInstance qi;
  qi.tmpl = e->tmpl;
  qi.values.resize(e->sources.size());
  for (size_t i = 0; i < e->sources.size(); ++i) {
    const SlotSource& s = e->sources[i];
    switch (s.kind) {
      case SlotKind::kParam:
        if (s.param < 1 || static_cast<size_t>(s.param) > params.size()) {
          return Status::InvalidArgument("$" + std::to_string(s.param) + " has no value (" +
                                         std::to_string(params.size()) + " given)");
        }
        qi.values[i] = params[s.param - 1];
        break;
      case SlotKind::kFixed:
        qi.values[i] = have_literal && i < literal.size() ? literal[i] : s.fixed;
        break;
      case SlotKind::kToken: {
        if (have_literal) {
          qi.values[i] = i < literal.size() ? literal[i] : std::nullopt;
          break;
        }
        const ValueToken& vt = sc.values[s.token];
        std::string_view text(sql.data() + vt.start, static_cast<size_t>(vt.end - vt.start));
        std::optional<std::string> v = DecodeToken(text, vt.type);
        if (v && s.negate) v = "-" + *v;
        qi.values[i] = std::move(v);
        break;
      }
    }
  }
  return qi;
}

Analyzer::Stats Analyzer::GetStats() const {
  Stats s;
  s.parses = impl_->parses.load();
  s.cache_hits = impl_->hits.load();
  return s;
}

// ---------------------------------------------------------------- Explain

namespace {

const char* OpText(CompareOp op) {
  switch (op) {
    case CompareOp::kEq:
      return "=";
    case CompareOp::kNe:
      return "<>";
    case CompareOp::kLt:
      return "<";
    case CompareOp::kLe:
      return "<=";
    case CompareOp::kGt:
      return ">";
    case CompareOp::kGe:
      return ">=";
    case CompareOp::kIn:
      return "IN";
    case CompareOp::kNotIn:
      return "NOT IN";
    case CompareOp::kBetween:
      return "BETWEEN";
    case CompareOp::kNotBetween:
      return "NOT BETWEEN";
    case CompareOp::kLike:
      return "LIKE";
    case CompareOp::kNotLike:
      return "NOT LIKE";
    case CompareOp::kILike:
      return "ILIKE";
    case CompareOp::kNotILike:
      return "NOT ILIKE";
    case CompareOp::kIsNull:
      return "IS NULL";
    case CompareOp::kIsNotNull:
      return "IS NOT NULL";
  }
  return "?";
}

std::string SlotText(const QueryTemplate& t, int slot) {
  for (const auto& [s, v] : t.fixed_slots) {
    if (s == slot) return v ? (*v == "t" ? "true" : *v == "f" ? "false" : *v) : "NULL";
  }
  return "$" + std::to_string(slot + 1);
}

}  // namespace

std::string PredicateToString(const QueryTemplate& t, const Predicate& p) {
  switch (p.kind) {
    case Predicate::Kind::kTrue:
      return "TRUE";
    case Predicate::Kind::kUnknown:
      return "?";
    case Predicate::Kind::kNot:
      return "NOT (" +
             (p.children.empty() ? std::string("?") : PredicateToString(t, p.children[0])) + ")";
    case Predicate::Kind::kAnd:
    case Predicate::Kind::kOr: {
      std::string out = "(";
      for (size_t i = 0; i < p.children.size(); ++i) {
        if (i) out += p.kind == Predicate::Kind::kAnd ? " AND " : " OR ";
        out += PredicateToString(t, p.children[i]);
      }
      return out + ")";
    }
    case Predicate::Kind::kCompare: {
      std::string out = p.column + " " + OpText(p.op);
      if (p.op == CompareOp::kIn || p.op == CompareOp::kNotIn) {
        out += " (";
        for (size_t i = 0; i < p.slots.size(); ++i) {
          if (i) out += ", ";
          out += SlotText(t, p.slots[i]);
        }
        out += ")";
      } else if (p.op == CompareOp::kBetween || p.op == CompareOp::kNotBetween) {
        if (p.slots.size() == 2)
          out += " " + SlotText(t, p.slots[0]) + " AND " + SlotText(t, p.slots[1]);
      } else if (!p.slots.empty()) {
        out += " " + SlotText(t, p.slots[0]);
      }
      return out;
    }
  }
  return "?";
}

std::string FlagsToString(uint32_t flags) {
  static const std::pair<uint32_t, const char*> kNames[] = {
      {kFlagSubquery, "subquery"},
      {kFlagCte, "cte"},
      {kFlagSetOperation, "set-operation"},
      {kFlagVolatileFunction, "volatile-function"},
      {kFlagUnknownFunction, "unknown-function"},
      {kFlagAggregate, "aggregate"},
      {kFlagLimit, "limit"},
      {kFlagWindow, "window"},
      {kFlagUnparsable, "unparsable"},
      {kFlagWrite, "write"},
      {kFlagOuterJoin, "outer-join"},
      {kFlagNonMonitoredSource, "non-monitored-source"},
      {kFlagMultiStatement, "multi-statement"},
      {kFlagUtility, "utility"}};
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if (flags & bit) {
      if (!out.empty()) out += ", ";
      out += name;
    }
  }
  return out.empty() ? "none" : out;
}

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kPrecise:
      return "precise";
    case Precision::kCoarse:
      return "coarse";
    case Precision::kNone:
      return "none";
  }
  return "?";
}

std::string Analyzer::Explain(const QueryTemplate& t) {
  std::string out;
  char fp[32];
  std::snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(t.fingerprint));
  out += "normalized:  " + t.normalized_sql + "\n";
  out += "fingerprint: " + std::string(fp) + "\n";
  out += "precision:   " + std::string(PrecisionName(t.precision));
  if (!t.coarse_reason.empty()) out += " (" + t.coarse_reason + ")";
  out += "\n";
  out += "flags:       " + FlagsToString(t.flags) + "\n";
  out += "read_only:   " + std::string(t.read_only ? "yes" : "no");
  if (!t.written_tables.empty()) {
    out += " (writes ";
    for (size_t i = 0; i < t.written_tables.size(); ++i) {
      out += (i ? ", " : "") + t.written_tables[i];
    }
    out += ")";
  }
  out += "\n";
  out += "slots:       " + std::to_string(t.num_slots);
  for (size_t i = 0; i < t.slot_param.size(); ++i) {
    if (t.slot_param[i] > 0) {
      out += " $" + std::to_string(i + 1) + "=param $" + std::to_string(t.slot_param[i]);
    }
  }
  out += "\n";
  if (t.tables.empty()) out += "tables:      (none)\n";
  for (const auto& tr : t.tables) {
    out += "table " + tr.table;
    if (tr.alias != tr.table && !tr.alias.empty()) out += " AS " + tr.alias;
    out += "\n  predicate: " + PredicateToString(t, tr.predicate) + "\n  columns:   ";
    if (tr.reads_all_columns) {
      out += "*";
    } else {
      for (size_t i = 0; i < tr.columns_read.size(); ++i)
        out += (i ? ", " : "") + tr.columns_read[i];
    }
    out += "\n";
  }
  for (const auto& j : t.joins) {
    auto name = [&](int i) {
      return i >= 0 && static_cast<size_t>(i) < t.tables.size() ? t.tables[i].alias : "?";
    };
    out += "join " + name(j.left_table) + "." + j.left_column + " = " + name(j.right_table) + "." +
           j.right_column + "\n";
  }
  return out;
}

}  // namespace cacheportal::sqlmap
