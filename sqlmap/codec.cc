#include "sqlmap/codec.h"

namespace cacheportal::sqlmap::codec {

namespace {

constexpr uint64_t kTemplateVersion = 1;
constexpr int kMaxDepth = 200;

void EncodePredicate(const Predicate& p, std::string* out) {
  PutVarint(out, static_cast<uint64_t>(p.kind));
  switch (p.kind) {
    case Predicate::Kind::kAnd:
    case Predicate::Kind::kOr:
    case Predicate::Kind::kNot:
      PutVarint(out, p.children.size());
      for (const auto& c : p.children) EncodePredicate(c, out);
      break;
    case Predicate::Kind::kCompare:
      PutString(out, p.column);
      PutVarint(out, static_cast<uint64_t>(p.op));
      PutVarint(out, p.slots.size());
      for (int s : p.slots) PutVarint(out, static_cast<uint64_t>(s));
      break;
    default:
      break;
  }
}

bool DecodePredicate(Reader* r, Predicate* p, int depth) {
  if (depth > kMaxDepth) return false;
  uint64_t kind;
  if (!r->Varint(&kind) || kind > static_cast<uint64_t>(Predicate::Kind::kCompare)) return false;
  p->kind = static_cast<Predicate::Kind>(kind);
  switch (p->kind) {
    case Predicate::Kind::kAnd:
    case Predicate::Kind::kOr:
    case Predicate::Kind::kNot: {
      uint64_t n;
      if (!r->Varint(&n) || n > (1u << 20)) return false;
      p->children.resize(n);
      for (auto& c : p->children) {
        if (!DecodePredicate(r, &c, depth + 1)) return false;
      }
      return true;
    }
    case Predicate::Kind::kCompare: {
      uint64_t op, n;
      if (!r->String(&p->column) || !r->Varint(&op) ||
          op > static_cast<uint64_t>(CompareOp::kIsNotNull) || !r->Varint(&n) || n > (1u << 24)) {
        return false;
      }
      p->op = static_cast<CompareOp>(op);
      p->slots.resize(n);
      for (auto& s : p->slots) {
        if (!r->Int(&s)) return false;
      }
      return true;
    }
    default:
      return true;
  }
}

}  // namespace

void EncodeTemplate(const QueryTemplate& t, std::string* out) {
  PutVarint(out, kTemplateVersion);
  PutVarint(out, t.fingerprint);
  PutVarint(out, t.shape_id);
  PutString(out, t.normalized_sql);
  PutVarint(out, t.tables.size());
  for (const auto& tr : t.tables) {
    PutString(out, tr.table);
    PutString(out, tr.alias);
    EncodePredicate(tr.predicate, out);
    PutVarint(out, tr.columns_read.size());
    for (const auto& c : tr.columns_read) PutString(out, c);
    PutVarint(out, tr.reads_all_columns ? 1 : 0);
  }
  PutVarint(out, t.joins.size());
  for (const auto& j : t.joins) {
    PutVarint(out, static_cast<uint64_t>(j.left_table));
    PutString(out, j.left_column);
    PutVarint(out, static_cast<uint64_t>(j.right_table));
    PutString(out, j.right_column);
  }
  PutVarint(out, t.flags);
  PutVarint(out, static_cast<uint64_t>(t.precision));
  PutString(out, t.coarse_reason);
  PutVarint(out, static_cast<uint64_t>(t.num_slots));
  PutVarint(out, t.slot_param.size());
  for (int p : t.slot_param) PutVarint(out, static_cast<uint64_t>(p));
  PutVarint(out, t.fixed_slots.size());
  for (const auto& [slot, v] : t.fixed_slots) {
    PutVarint(out, static_cast<uint64_t>(slot));
    PutOptString(out, v);
  }
  PutVarint(out, t.read_only ? 1 : 0);
  PutVarint(out, t.written_tables.size());
  for (const auto& w : t.written_tables) PutString(out, w);
}

bool DecodeTemplate(std::string_view in, QueryTemplate* t) {
  Reader r(in);
  uint64_t version, n, v;
  if (!r.Varint(&version) || version != kTemplateVersion) return false;
  if (!r.Varint(&t->fingerprint) || !r.Varint(&t->shape_id) || !r.String(&t->normalized_sql)) {
    return false;
  }
  if (!r.Varint(&n) || n > (1u << 16)) return false;
  t->tables.resize(n);
  for (auto& tr : t->tables) {
    if (!r.String(&tr.table) || !r.String(&tr.alias) || !DecodePredicate(&r, &tr.predicate, 0)) {
      return false;
    }
    uint64_t nc;
    if (!r.Varint(&nc) || nc > (1u << 16)) return false;
    tr.columns_read.resize(nc);
    for (auto& c : tr.columns_read) {
      if (!r.String(&c)) return false;
    }
    if (!r.Varint(&v)) return false;
    tr.reads_all_columns = v != 0;
  }
  if (!r.Varint(&n) || n > (1u << 16)) return false;
  t->joins.resize(n);
  for (auto& j : t->joins) {
    if (!r.Int(&j.left_table) || !r.String(&j.left_column) || !r.Int(&j.right_table) ||
        !r.String(&j.right_column)) {
      return false;
    }
    if (j.left_table < 0 || j.right_table < 0 ||
        static_cast<size_t>(j.left_table) >= t->tables.size() ||
        static_cast<size_t>(j.right_table) >= t->tables.size()) {
      return false;
    }
  }
  if (!r.Varint(&v)) return false;
  t->flags = static_cast<uint32_t>(v);
  if (!r.Varint(&v) || v > static_cast<uint64_t>(Precision::kNone)) return false;
  t->precision = static_cast<Precision>(v);
  if (!r.String(&t->coarse_reason) || !r.Int(&t->num_slots) || t->num_slots < 0) return false;
  if (!r.Varint(&n) || n > (1u << 24)) return false;
  t->slot_param.resize(n);
  for (auto& p : t->slot_param) {
    if (!r.Int(&p)) return false;
  }
  if (!r.Varint(&n) || n > (1u << 24)) return false;
  t->fixed_slots.resize(n);
  for (auto& [slot, val] : t->fixed_slots) {
    if (!r.Int(&slot) || !GetOptString(&r, &val)) return false;
  }
  if (!r.Varint(&v)) return false;
  t->read_only = v != 0;
  if (!r.Varint(&n) || n > (1u << 16)) return false;
  t->written_tables.resize(n);
  for (auto& w : t->written_tables) {
    if (!r.String(&w)) return false;
  }
  // Every slot a predicate names must exist.
  for (const auto& tr : t->tables) {
    std::vector<const Predicate*> stack{&tr.predicate};
    while (!stack.empty()) {
      const Predicate* p = stack.back();
      stack.pop_back();
      for (int s : p->slots) {
        if (s < 0 || s >= t->num_slots) return false;
      }
      for (const auto& c : p->children) stack.push_back(&c);
    }
  }
  return r.Done();
}

}  // namespace cacheportal::sqlmap::codec
