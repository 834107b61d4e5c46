// Binary encodings of sqlmap records (private to sqlmap). Little-endian
// varints and length-prefixed strings; every decoder checks bounds and
// returns false on malformed input (a Corruption for the caller), never reads
// past the buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sqlmap/query_template.h"

namespace cacheportal::sqlmap::codec {

inline void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
inline void PutString(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s.data(), s.size());
}
inline void PutFixed64BE(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
inline std::string Fixed64BE(uint64_t v) {
  std::string s;
  PutFixed64BE(&s, v);
  return s;
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return false;
      auto b = static_cast<unsigned char>(in_[pos_++]);
      *v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool Int(int* v) {
    uint64_t u;
    if (!Varint(&u)) return false;
    *v = static_cast<int>(static_cast<int64_t>(u));
    return true;
  }
  bool String(std::string* s) {
    uint64_t n;
    if (!Varint(&n) || n > in_.size() - pos_) return false;
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Fixed64BE(uint64_t* v) {
    if (in_.size() - pos_ < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v = (*v << 8) | static_cast<unsigned char>(in_[pos_++]);
    return true;
  }
  bool Done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

inline void PutOptString(std::string* out, const std::optional<std::string>& v) {
  if (!v) {
    out->push_back(0);
    return;
  }
  out->push_back(1);
  PutString(out, *v);
}
inline bool GetOptString(Reader* r, std::optional<std::string>* v) {
  uint64_t tag;
  if (!r->Varint(&tag) || tag > 1) return false;
  if (tag == 0) {
    v->reset();
    return true;
  }
  std::string s;
  if (!r->String(&s)) return false;
  *v = std::move(s);
  return true;
}

void EncodeTemplate(const QueryTemplate& t, std::string* out);
bool DecodeTemplate(std::string_view in, QueryTemplate* t);

}  // namespace cacheportal::sqlmap::codec
