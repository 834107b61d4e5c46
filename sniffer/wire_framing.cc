#include "sniffer/wire_framing.h"

#include <algorithm>
#include <cstring>

namespace cacheportal::sniffer {
namespace {

uint32_t Be32(const char* p) {
  auto u = [&](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return (u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3);
}

void PutBe32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

// Sequential reader over a message body; any overrun makes it !ok().
class BodyReader {
 public:
  explicit BodyReader(std::string_view b) : b_(b) {}
  bool ok() const { return ok_; }
  bool AtEnd() const { return pos_ == b_.size(); }
  std::string_view Str() {
    if (!ok_) return {};
    size_t nul = b_.find('\0', pos_);
    if (nul == std::string_view::npos) return Fail();
    std::string_view s = b_.substr(pos_, nul - pos_);
    pos_ = nul + 1;
    return s;
  }
  int32_t I32() {
    if (!ok_ || b_.size() - pos_ < 4) return Fail(), 0;
    int32_t v = static_cast<int32_t>(Be32(b_.data() + pos_));
    pos_ += 4;
    return v;
  }
  int16_t I16() {
    if (!ok_ || b_.size() - pos_ < 2) return Fail(), 0;
    auto hi = static_cast<unsigned char>(b_[pos_]);
    auto lo = static_cast<unsigned char>(b_[pos_ + 1]);
    pos_ += 2;
    return static_cast<int16_t>((hi << 8) | lo);
  }
  char Byte() {
    if (!ok_ || pos_ >= b_.size()) return Fail(), '\0';
    return b_[pos_++];
  }
  std::string_view Bytes(size_t n) {
    if (!ok_ || b_.size() - pos_ < n) return Fail();
    std::string_view s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view Rest() {
    std::string_view s = ok_ ? b_.substr(pos_) : std::string_view{};
    pos_ = b_.size();
    return s;
  }

 private:
  std::string_view Fail() {
    ok_ = false;
    return {};
  }
  std::string_view b_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

FrameReader::FrameReader(uint64_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

Result<size_t> FrameReader::Feed(std::string_view data, MessageHandler& handler) {
  if (failed_) return Status::InvalidArgument("framing lost earlier on this connection");
  size_t pos = 0;
  // Whether the current message's first byte is inside `data` (then a wanted
  // message can be handed out as a view without copying).
  bool starts_here = false;
  size_t msg_start = 0;
  while (pos < data.size()) {
    const size_t header_size = current_untyped_ || (header_len_ == 0 && untyped_) ? 8 : 5;
    if (remaining_ == 0 && header_len_ < header_size) {
      if (header_len_ == 0) {
        starts_here = true;
        msg_start = pos;
        current_untyped_ = untyped_;
      }
      size_t take = std::min(header_size - header_len_, data.size() - pos);
      std::memcpy(header_ + header_len_, data.data() + pos, take);
      header_len_ += take;
      pos += take;
      if (header_len_ < header_size) break;
      uint64_t len;
      if (current_untyped_) {
        len = Be32(header_);
        if (len < 8 || len > kMaxStartupPacketBytes) {
          failed_ = true;
          return Status::InvalidArgument("invalid startup packet length " + std::to_string(len));
        }
        type_ = '\0';
        remaining_ = len - 8;
        collecting_ = true;
      } else {
        type_ = header_[0];
        len = Be32(header_ + 1);
        if (len < 4 || len > max_message_bytes_) {
          failed_ = true;
          return Status::InvalidArgument("invalid length " + std::to_string(len) +
                                         " of message type '" + std::string(1, type_) + "'");
        }
        remaining_ = len - 4;
        collecting_ = wanted_.test(static_cast<unsigned char>(type_));
      }
      if (collecting_ && !starts_here) partial_.assign(header_, header_size);
    }
    size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size() - pos));
    if (collecting_ && !starts_here) partial_.append(data.data() + pos, take);
    pos += take;
    remaining_ -= take;
    if (remaining_ > 0) {
      if (collecting_ && starts_here) partial_.assign(data.data() + msg_start, pos - msg_start);
      break;
    }
    // Message complete.
    const bool was_untyped = current_untyped_;
    header_len_ = 0;
    current_untyped_ = false;
    if (collecting_) {
      std::string_view raw =
          starts_here ? data.substr(msg_start, pos - msg_start) : std::string_view(partial_);
      Message m;
      m.type = type_;
      m.raw = raw;
      m.body = raw.substr(was_untyped ? 4 : 5);
      if (was_untyped) untyped_ = false;
      handler.OnMessage(m);
      collecting_ = false;
      if (partial_.capacity() > (1u << 20)) {
        std::string().swap(partial_);
      } else {
        partial_.clear();
      }
    }
    starts_here = false;
    if (was_untyped) return pos;
  }
  return pos;
}

StartupKind ClassifyStartup(const Message& m) {
  if (m.type != '\0' || m.body.size() < 4) return StartupKind::kUnknown;
  uint32_t code = Be32(m.body.data());
  if (code == kSslRequestCode && m.body.size() == 4) return StartupKind::kSslRequest;
  if (code == kGssEncRequestCode && m.body.size() == 4) return StartupKind::kGssEncRequest;
  if (code == kCancelRequestCode) return StartupKind::kCancelRequest;
  if ((code >> 16) == 3) return StartupKind::kStartup;
  return StartupKind::kUnknown;
}

std::optional<CancelKey> ParseCancelRequest(const Message& m) {
  if (ClassifyStartup(m) != StartupKind::kCancelRequest) return std::nullopt;
  BodyReader r(m.body.substr(4));
  CancelKey k;
  k.pid = r.I32();
  k.key = std::string(r.Rest());
  if (!r.ok() || k.key.empty() || k.key.size() > 256) return std::nullopt;
  return k;
}

std::optional<CancelKey> ParseBackendKeyData(std::string_view body) {
  BodyReader r(body);
  CancelKey k;
  k.pid = r.I32();
  k.key = std::string(r.Rest());
  if (!r.ok() || k.key.empty() || k.key.size() > 256) return std::nullopt;
  return k;
}

std::optional<std::vector<std::pair<std::string, std::string>>> ParseStartupParameters(
    const Message& m) {
  if (ClassifyStartup(m) != StartupKind::kStartup) return std::nullopt;
  BodyReader r(m.body.substr(4));
  std::vector<std::pair<std::string, std::string>> out;
  while (r.ok()) {
    std::string_view name = r.Str();
    if (!r.ok()) return std::nullopt;
    if (name.empty()) break;
    std::string_view value = r.Str();
    if (!r.ok()) return std::nullopt;
    out.emplace_back(name, value);
  }
  if (!r.AtEnd()) return std::nullopt;
  return out;
}

std::optional<std::string_view> ParseQuery(std::string_view body) {
  BodyReader r(body);
  std::string_view sql = r.Str();
  if (!r.ok()) return std::nullopt;
  return sql;
}

std::optional<ParseMsg> ParseParse(std::string_view body) {
  BodyReader r(body);
  ParseMsg p;
  p.statement = r.Str();
  p.sql = r.Str();
  int16_t n = r.I16();
  if (!r.ok() || n < 0) return std::nullopt;
  p.param_types.reserve(n);
  for (int i = 0; i < n; ++i) p.param_types.push_back(static_cast<uint32_t>(r.I32()));
  if (!r.ok()) return std::nullopt;
  return p;
}

std::optional<std::pair<std::string_view, std::string_view>> ParseBindNames(std::string_view body) {
  BodyReader r(body);
  std::string_view portal = r.Str();
  std::string_view statement = r.Str();
  if (!r.ok()) return std::nullopt;
  return std::make_pair(portal, statement);
}

std::optional<BindMsg> ParseBind(std::string_view body) {
  BodyReader r(body);
  BindMsg b;
  b.portal = r.Str();
  b.statement = r.Str();
  int16_t nfmt = r.I16();
  if (!r.ok() || nfmt < 0) return std::nullopt;
  std::vector<int16_t> formats(nfmt);
  for (auto& f : formats) f = r.I16();
  int16_t nparams = r.I16();
  if (!r.ok() || nparams < 0) return std::nullopt;
  // 0 format codes = all text; 1 = applies to all; else one per parameter.
  if (nfmt > 1 && nfmt != nparams) return std::nullopt;
  b.params.reserve(nparams);
  b.param_is_binary.reserve(nparams);
  for (int i = 0; i < nparams; ++i) {
    int32_t len = r.I32();
    if (!r.ok() || len < -1) return std::nullopt;
    if (len == -1) {
      b.params.emplace_back(std::nullopt);
    } else {
      b.params.emplace_back(r.Bytes(static_cast<size_t>(len)));
    }
    int16_t fmt = nfmt == 0 ? 0 : (nfmt == 1 ? formats[0] : formats[i]);
    b.param_is_binary.push_back(fmt == 1);
  }
  int16_t nres = r.I16();
  if (!r.ok() || nres < 0) return std::nullopt;
  for (int i = 0; i < nres; ++i) r.I16();
  if (!r.ok()) return std::nullopt;
  return b;
}

std::optional<std::string_view> ParseExecute(std::string_view body) {
  BodyReader r(body);
  std::string_view portal = r.Str();
  r.I32();
  if (!r.ok()) return std::nullopt;
  return portal;
}

std::optional<CloseMsg> ParseClose(std::string_view body) {
  BodyReader r(body);
  CloseMsg c;
  c.kind = r.Byte();
  c.name = r.Str();
  if (!r.ok() || (c.kind != 'S' && c.kind != 'P')) return std::nullopt;
  return c;
}

std::optional<char> ParseReadyForQuery(std::string_view body) {
  if (body.size() != 1) return std::nullopt;
  char s = body[0];
  if (s != 'I' && s != 'T' && s != 'E') return std::nullopt;
  return s;
}

std::string BuildErrorResponse(std::string_view sqlstate, std::string_view message) {
  std::string payload;
  auto field = [&](char code, std::string_view v) {
    payload.push_back(code);
    payload.append(v.data(), v.size());
    payload.push_back('\0');
  };
  field('S', "FATAL");
  field('V', "FATAL");
  field('C', sqlstate);
  // A NUL inside the text would end the field early on the client.
  std::string m(message);
  std::replace(m.begin(), m.end(), '\0', ' ');
  field('M', m);
  payload.push_back('\0');
  std::string out;
  out.push_back('E');
  PutBe32(out, static_cast<uint32_t>(payload.size() + 4));
  out += payload;
  return out;
}

std::string BuildCancelRequest(const CancelKey& key) {
  std::string out;
  PutBe32(out, static_cast<uint32_t>(12 + key.key.size()));
  PutBe32(out, kCancelRequestCode);
  PutBe32(out, static_cast<uint32_t>(key.pid));
  out += key.key;
  return out;
}

std::string_view TerminateMessage() {
  static constexpr char kTerminate[] = {'X', 0, 0, 0, 4};
  return std::string_view(kTerminate, sizeof kTerminate);
}

}  // namespace cacheportal::sniffer
