#include "invalidator/pgoutput.h"

#include <charconv>
#include <cstdio>

namespace cacheportal::invalidator {
namespace {

// Bounds-checked big-endian reader. Every getter returns false instead of
// reading past the end; the first failure records what was being read.
class Reader {
 public:
  Reader(std::string_view bytes, const char* what) : b_(bytes), what_(what) {}

  bool U8(uint8_t* v, const char* field) {
    if (!Need(1, field)) return false;
    *v = static_cast<uint8_t>(b_[pos_++]);
    return true;
  }
  bool U16(uint16_t* v, const char* field) {
    uint64_t x;
    if (!Be(2, &x, field)) return false;
    *v = static_cast<uint16_t>(x);
    return true;
  }
  bool U32(uint32_t* v, const char* field) {
    uint64_t x;
    if (!Be(4, &x, field)) return false;
    *v = static_cast<uint32_t>(x);
    return true;
  }
  bool I32(int32_t* v, const char* field) {
    uint32_t x;
    if (!U32(&x, field)) return false;
    *v = static_cast<int32_t>(x);
    return true;
  }
  bool U64(uint64_t* v, const char* field) { return Be(8, v, field); }
  bool I64(int64_t* v, const char* field) {
    uint64_t x;
    if (!Be(8, &x, field)) return false;
    *v = static_cast<int64_t>(x);
    return true;
  }
  // NUL-terminated string.
  bool Str(std::string* v, const char* field) {
    size_t nul = b_.find('\0', pos_);
    if (nul == std::string_view::npos) return Fail(field, "missing NUL terminator");
    v->assign(b_.substr(pos_, nul - pos_));
    pos_ = nul + 1;
    return true;
  }
  bool Bytes(size_t n, std::string* v, const char* field) {
    if (!Need(n, field)) return false;
    v->assign(b_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  bool Fail(const char* field, const char* why) {
    if (error_.empty()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " at offset %zu of %zu", pos_, b_.size());
      error_ = std::string(what_) + ": " + field + ": " + why + buf;
    }
    return false;
  }
  bool AtEnd() const { return pos_ == b_.size(); }
  size_t pos() const { return pos_; }
  std::string_view Rest() const { return b_.substr(pos_); }
  Status Error() const { return Status::Corruption(error_.empty() ? std::string(what_) : error_); }
  Status Finish() {
    if (!AtEnd()) {
      Fail("message", "trailing bytes");
      return Error();
    }
    return Status::OK();
  }

 private:
  bool Need(size_t n, const char* field) {
    if (b_.size() - pos_ < n) return Fail(field, "truncated");
    return true;
  }
  bool Be(size_t n, uint64_t* v, const char* field) {
    if (!Need(n, field)) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) x = (x << 8) | static_cast<uint8_t>(b_[pos_ + i]);
    pos_ += n;
    *v = x;
    return true;
  }

  std::string_view b_;
  const char* what_;
  size_t pos_ = 0;
  std::string error_;
};

class Writer {
 public:
  void U8(uint8_t v) { s_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Be(v, 2); }
  void U32(uint32_t v) { Be(v, 4); }
  void U64(uint64_t v) { Be(v, 8); }
  void Str(std::string_view v) {
    s_.append(v);
    s_.push_back('\0');
  }
  void Raw(std::string_view v) { s_.append(v); }
  std::string Take() { return std::move(s_); }

 private:
  void Be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) s_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string s_;
};

bool ReadTuple(Reader& r, TupleData* t) {
  uint16_t ncols;
  if (!r.U16(&ncols, "TupleData ncols")) return false;
  t->columns.clear();
  t->columns.reserve(ncols);
  for (uint16_t i = 0; i < ncols; ++i) {
    uint8_t kind;
    if (!r.U8(&kind, "TupleData column kind")) return false;
    ColumnValue v;
    switch (kind) {
      case 'n':
        v.kind = ColumnValue::Kind::kNull;
        break;
      case 'u':
        v.kind = ColumnValue::Kind::kUnchangedToast;
        break;
      case 't':
      case 'b': {
        v.kind = kind == 't' ? ColumnValue::Kind::kText : ColumnValue::Kind::kBinary;
        int32_t len;
        if (!r.I32(&len, "TupleData value length")) return false;
        if (len < 0) return r.Fail("TupleData value length", "negative");
        if (!r.Bytes(static_cast<size_t>(len), &v.data, "TupleData value")) return false;
        break;
      }
      default:
        return r.Fail("TupleData column kind", "unknown kind byte");
    }
    t->columns.push_back(std::move(v));
  }
  return true;
}

void WriteTuple(Writer& w, const TupleData& t) {
  w.U16(static_cast<uint16_t>(t.columns.size()));
  for (const auto& c : t.columns) {
    w.U8(static_cast<uint8_t>(c.kind));
    if (c.kind == ColumnValue::Kind::kText || c.kind == ColumnValue::Kind::kBinary) {
      w.U32(static_cast<uint32_t>(c.data.size()));
      w.Raw(c.data);
    }
  }
}

Status DecodeBody(char type, Reader& r, PgOutputMessage* out) {
  switch (type) {
    case 'B': {
      BeginMessage m;
      if (!r.U64(&m.final_lsn, "Begin final_lsn") || !r.I64(&m.commit_time, "Begin commit_time") ||
          !r.U32(&m.xid, "Begin xid"))
        return r.Error();
      *out = m;
      break;
    }
    case 'C': {
      CommitMessage m;
      if (!r.U8(&m.flags, "Commit flags") || !r.U64(&m.commit_lsn, "Commit commit_lsn") ||
          !r.U64(&m.end_lsn, "Commit end_lsn") || !r.I64(&m.commit_time, "Commit commit_time"))
        return r.Error();
      *out = m;
      break;
    }
    case 'O': {
      OriginMessage m;
      if (!r.U64(&m.origin_lsn, "Origin origin_lsn") || !r.Str(&m.name, "Origin name"))
        return r.Error();
      *out = std::move(m);
      break;
    }
    case 'R': {
      RelationMessage m;
      uint8_t ident;
      uint16_t ncols;
      if (!r.U32(&m.relid, "Relation relid") || !r.Str(&m.nspname, "Relation namespace") ||
          !r.Str(&m.relname, "Relation name") || !r.U8(&ident, "Relation replica identity") ||
          !r.U16(&ncols, "Relation ncols"))
        return r.Error();
      if (ident != 'd' && ident != 'f' && ident != 'i' && ident != 'n') {
        r.Fail("Relation replica identity", "unknown value");
        return r.Error();
      }
      m.replica_identity = static_cast<char>(ident);
      m.columns.reserve(ncols);
      for (uint16_t i = 0; i < ncols; ++i) {
        RelationColumn c;
        uint8_t flags;
        if (!r.U8(&flags, "Relation column flags") || !r.Str(&c.name, "Relation column name") ||
            !r.U32(&c.type_oid, "Relation column type") ||
            !r.I32(&c.typmod, "Relation column typmod"))
          return r.Error();
        c.key = (flags & 1) != 0;
        m.columns.push_back(std::move(c));
      }
      *out = std::move(m);
      break;
    }
    case 'Y': {
      TypeMessage m;
      if (!r.U32(&m.type_oid, "Type oid") || !r.Str(&m.nspname, "Type namespace") ||
          !r.Str(&m.name, "Type name"))
        return r.Error();
      *out = std::move(m);
      break;
    }
    case 'I': {
      InsertMessage m;
      uint8_t tag;
      if (!r.U32(&m.relid, "Insert relid") || !r.U8(&tag, "Insert tuple tag")) return r.Error();
      if (tag != 'N') {
        r.Fail("Insert tuple tag", "expected 'N'");
        return r.Error();
      }
      if (!ReadTuple(r, &m.new_tuple)) return r.Error();
      *out = std::move(m);
      break;
    }
    case 'U': {
      UpdateMessage m;
      uint8_t tag;
      if (!r.U32(&m.relid, "Update relid") || !r.U8(&tag, "Update tuple tag")) return r.Error();
      if (tag == 'K' || tag == 'O') {
        m.old_kind = static_cast<char>(tag);
        if (!ReadTuple(r, &m.old_tuple)) return r.Error();
        if (!r.U8(&tag, "Update new tuple tag")) return r.Error();
      }
      if (tag != 'N') {
        r.Fail("Update tuple tag", "expected 'K', 'O' or 'N'");
        return r.Error();
      }
      if (!ReadTuple(r, &m.new_tuple)) return r.Error();
      *out = std::move(m);
      break;
    }
    case 'D': {
      DeleteMessage m;
      uint8_t tag;
      if (!r.U32(&m.relid, "Delete relid") || !r.U8(&tag, "Delete tuple tag")) return r.Error();
      if (tag != 'K' && tag != 'O') {
        r.Fail("Delete tuple tag", "expected 'K' or 'O'");
        return r.Error();
      }
      m.old_kind = static_cast<char>(tag);
      if (!ReadTuple(r, &m.old_tuple)) return r.Error();
      *out = std::move(m);
      break;
    }
    case 'T': {
      TruncateMessage m;
      uint32_t nrels;
      if (!r.U32(&nrels, "Truncate nrels") || !r.U8(&m.flags, "Truncate flags")) return r.Error();
      // Guard the reservation against a forged count: each relid needs 4 bytes.
      if (nrels > r.Rest().size() / 4) {
        r.Fail("Truncate relids", "truncated");
        return r.Error();
      }
      m.relids.resize(nrels);
      for (auto& id : m.relids)
        if (!r.U32(&id, "Truncate relid")) return r.Error();
      *out = std::move(m);
      break;
    }
    case 'M': {
      LogicalMessage m;
      uint8_t flags;
      int32_t len;
      if (!r.U8(&flags, "Message flags") || !r.U64(&m.lsn, "Message lsn") ||
          !r.Str(&m.prefix, "Message prefix") || !r.I32(&len, "Message length"))
        return r.Error();
      if (len < 0) {
        r.Fail("Message length", "negative");
        return r.Error();
      }
      if (!r.Bytes(static_cast<size_t>(len), &m.content, "Message content")) return r.Error();
      m.transactional = (flags & 1) != 0;
      *out = std::move(m);
      break;
    }
    default: {
      char buf[96];
      std::snprintf(buf, sizeof buf,
                    "pgoutput: unknown message type 0x%02x (streaming/two-phase types need "
                    "proto_version > 1)",
                    static_cast<unsigned char>(type));
      return Status::Corruption(buf);
    }
  }
  return r.Finish();
}

}  // namespace

std::string FormatLsn(Lsn lsn) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                static_cast<unsigned>(lsn & 0xffffffffu));
  return buf;
}

Result<Lsn> ParseLsn(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size())
    return Status::InvalidArgument("LSN '" + std::string(text) + "' is not of the form X/X");
  uint32_t hi = 0, lo = 0;
  auto a = std::from_chars(text.data(), text.data() + slash, hi, 16);
  auto b = std::from_chars(text.data() + slash + 1, text.data() + text.size(), lo, 16);
  if (a.ec != std::errc() || a.ptr != text.data() + slash || b.ec != std::errc() ||
      b.ptr != text.data() + text.size())
    return Status::InvalidArgument("LSN '" + std::string(text) + "' is not of the form X/X");
  return (static_cast<Lsn>(hi) << 32) | lo;
}

Status DecodeCopyData(std::string_view bytes, CopyMessage* out) {
  if (bytes.empty()) return Status::Corruption("CopyData: empty message");
  Reader r(bytes.substr(1), bytes[0] == 'w' ? "XLogData" : "keepalive");
  switch (bytes[0]) {
    case 'w':
      out->kind = CopyMessage::Kind::kXLogData;
      if (!r.U64(&out->xlog.data_start, "dataStart") || !r.U64(&out->xlog.wal_end, "walEnd") ||
          !r.I64(&out->xlog.send_time, "sendTime"))
        return r.Error();
      out->xlog.payload = r.Rest();
      if (out->xlog.payload.empty()) return Status::Corruption("XLogData: empty payload");
      return Status::OK();
    case 'k': {
      out->kind = CopyMessage::Kind::kKeepalive;
      uint8_t reply;
      if (!r.U64(&out->keepalive.wal_end, "walEnd") ||
          !r.I64(&out->keepalive.send_time, "sendTime") || !r.U8(&reply, "replyRequested"))
        return r.Error();
      out->keepalive.reply_requested = reply != 0;
      return r.Finish();
    }
    default: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "CopyData: unknown message type 0x%02x",
                    static_cast<unsigned char>(bytes[0]));
      return Status::Corruption(buf);
    }
  }
}

std::string EncodeStandbyStatus(Lsn write, Lsn flush, Lsn apply, int64_t client_time,
                                bool reply_requested) {
  Writer w;
  w.U8('r');
  w.U64(write);
  w.U64(flush);
  w.U64(apply);
  w.U64(static_cast<uint64_t>(client_time));
  w.U8(reply_requested ? 1 : 0);
  return w.Take();
}

std::string EncodeXLogData(Lsn data_start, Lsn wal_end, int64_t send_time,
                           std::string_view payload) {
  Writer w;
  w.U8('w');
  w.U64(data_start);
  w.U64(wal_end);
  w.U64(static_cast<uint64_t>(send_time));
  w.Raw(payload);
  return w.Take();
}

std::string EncodeKeepalive(Lsn wal_end, int64_t send_time, bool reply_requested) {
  Writer w;
  w.U8('k');
  w.U64(wal_end);
  w.U64(static_cast<uint64_t>(send_time));
  w.U8(reply_requested ? 1 : 0);
  return w.Take();
}

Status DecodePgOutput(std::string_view bytes, PgOutputMessage* out) {
  if (bytes.empty()) return Status::Corruption("pgoutput: empty message");
  char type = bytes[0];
  const char* what = "pgoutput";
  switch (type) {
    case 'B':
      what = "pgoutput Begin";
      break;
    case 'C':
      what = "pgoutput Commit";
      break;
    case 'O':
      what = "pgoutput Origin";
      break;
    case 'R':
      what = "pgoutput Relation";
      break;
    case 'Y':
      what = "pgoutput Type";
      break;
    case 'I':
      what = "pgoutput Insert";
      break;
    case 'U':
      what = "pgoutput Update";
      break;
    case 'D':
      what = "pgoutput Delete";
      break;
    case 'T':
      what = "pgoutput Truncate";
      break;
    case 'M':
      what = "pgoutput Message";
      break;
    default:
      break;
  }
  Reader r(bytes.substr(1), what);
  return DecodeBody(type, r, out);
}

std::string EncodePgOutput(const PgOutputMessage& message) {
  Writer w;
  std::visit(
      [&w](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, BeginMessage>) {
          w.U8('B');
          w.U64(m.final_lsn);
          w.U64(static_cast<uint64_t>(m.commit_time));
          w.U32(m.xid);
        } else if constexpr (std::is_same_v<T, CommitMessage>) {
          w.U8('C');
          w.U8(m.flags);
          w.U64(m.commit_lsn);
          w.U64(m.end_lsn);
          w.U64(static_cast<uint64_t>(m.commit_time));
        } else if constexpr (std::is_same_v<T, OriginMessage>) {
          w.U8('O');
          w.U64(m.origin_lsn);
          w.Str(m.name);
        } else if constexpr (std::is_same_v<T, RelationMessage>) {
          w.U8('R');
          w.U32(m.relid);
          w.Str(m.nspname);
          w.Str(m.relname);
          w.U8(static_cast<uint8_t>(m.replica_identity));
          w.U16(static_cast<uint16_t>(m.columns.size()));
          for (const auto& c : m.columns) {
            w.U8(c.key ? 1 : 0);
            w.Str(c.name);
            w.U32(c.type_oid);
            w.U32(static_cast<uint32_t>(c.typmod));
          }
        } else if constexpr (std::is_same_v<T, TypeMessage>) {
          w.U8('Y');
          w.U32(m.type_oid);
          w.Str(m.nspname);
          w.Str(m.name);
        } else if constexpr (std::is_same_v<T, InsertMessage>) {
          w.U8('I');
          w.U32(m.relid);
          w.U8('N');
          WriteTuple(w, m.new_tuple);
        } else if constexpr (std::is_same_v<T, UpdateMessage>) {
          w.U8('U');
          w.U32(m.relid);
          if (m.old_kind == 'K' || m.old_kind == 'O') {
            w.U8(static_cast<uint8_t>(m.old_kind));
            WriteTuple(w, m.old_tuple);
          }
          w.U8('N');
          WriteTuple(w, m.new_tuple);
        } else if constexpr (std::is_same_v<T, DeleteMessage>) {
          w.U8('D');
          w.U32(m.relid);
          w.U8(static_cast<uint8_t>(m.old_kind));
          WriteTuple(w, m.old_tuple);
        } else if constexpr (std::is_same_v<T, TruncateMessage>) {
          w.U8('T');
          w.U32(static_cast<uint32_t>(m.relids.size()));
          w.U8(m.flags);
          for (uint32_t id : m.relids) w.U32(id);
        } else if constexpr (std::is_same_v<T, LogicalMessage>) {
          w.U8('M');
          w.U8(m.transactional ? 1 : 0);
          w.U64(m.lsn);
          w.Str(m.prefix);
          w.U32(static_cast<uint32_t>(m.content.size()));
          w.Raw(m.content);
        }
      },
      message);
  return w.Take();
}

}  // namespace cacheportal::invalidator
