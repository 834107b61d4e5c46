#include "sniffer/wire_framing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cacheportal::sniffer {
namespace {

void PutBe32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
void PutBe16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

std::string Typed(char type, const std::string& payload) {
  std::string out(1, type);
  PutBe32(out, static_cast<uint32_t>(payload.size() + 4));
  return out + payload;
}

std::string Untyped(uint32_t code, const std::string& payload) {
  std::string out;
  PutBe32(out, static_cast<uint32_t>(payload.size() + 8));
  PutBe32(out, code);
  return out + payload;
}

std::string Str(const std::string& s) { return s + std::string(1, '\0'); }

std::string BindBody() {
  std::string b = Str("portal1") + Str("stmt1");
  PutBe16(b, 1);  // one format code for all parameters
  PutBe16(b, 0);  // text
  PutBe16(b, 3);
  PutBe32(b, 2);
  b += "42";
  PutBe32(b, 0xFFFFFFFF);  // NULL
  PutBe32(b, 3);
  b += "abc";
  PutBe16(b, 0);
  return b;
}

struct Seen {
  char type;
  std::string body;
  std::string raw;
  bool operator==(const Seen&) const = default;
};

struct Recorder : MessageHandler {
  std::vector<Seen> seen;
  void OnMessage(const Message& m) override {
    seen.push_back({m.type, std::string(m.body), std::string(m.raw)});
  }
};

// A client stream: SSLRequest, StartupMessage, then typed traffic including
// a large CopyData that is not inspected.
struct ClientStream {
  std::string bytes;
  std::vector<Seen> expected;
  ClientStream() {
    auto add = [&](const std::string& raw, bool wanted, bool untyped) {
      bytes += raw;
      if (wanted) {
        expected.push_back({untyped ? '\0' : raw[0], raw.substr(untyped ? 4 : 5), raw});
      }
    };
    add(Untyped(kSslRequestCode, ""), true, true);
    add(Untyped(kProtocolV3, Str("user") + Str("postgres") + Str("database") + Str("db") + Str("")),
        true, true);
    add(Typed('p', "secret"), false, false);
    add(Typed('Q', Str("SELECT 1 /*traceparent='x'*/")), true, false);
    std::string parse = Str("stmt1") + Str("SELECT $1::int, $2, $3");
    PutBe16(parse, 0);
    add(Typed('P', parse), true, false);
    add(Typed('B', BindBody()), true, false);
    add(Typed('D', std::string("P") + Str("portal1")), false, false);
    std::string exec = Str("portal1");
    PutBe32(exec, 0);
    add(Typed('E', exec), true, false);
    add(Typed('S', ""), true, false);
    add(Typed('d', std::string(3000, 'x')), false, false);
    add(Typed('c', ""), false, false);
    add(Typed('X', ""), true, false);
  }
};

// Feeds `pieces` in order the way a session does: after an untyped packet
// the reader stops; the driver re-arms for another untyped packet after an
// SSLRequest and feeds the rest.
std::vector<Seen> FeedPieces(const std::vector<std::string>& pieces) {
  FrameReader r(1 << 20);
  r.ExpectUntyped();
  for (char t : {'Q', 'P', 'B', 'E', 'S', 'X'}) r.Want(t);
  Recorder rec;
  for (const auto& piece : pieces) {
    std::string_view rest = piece;
    while (!rest.empty()) {
      size_t before = rec.seen.size();
      auto consumed = r.Feed(rest, rec);
      EXPECT_TRUE(consumed.ok()) << consumed.status().ToString();
      if (!consumed.ok()) return rec.seen;
      if (rec.seen.size() > before && rec.seen.back().type == '\0') {
        Message m{'\0', rec.seen.back().body, rec.seen.back().raw};
        if (ClassifyStartup(m) == StartupKind::kSslRequest) r.ExpectUntyped();
      }
      rest.remove_prefix(*consumed);
    }
  }
  EXPECT_TRUE(r.AtBoundary());
  return rec.seen;
}

TEST(WireFraming, WholeStreamInOneFeed) {
  ClientStream s;
  EXPECT_EQ(FeedPieces({s.bytes}), s.expected);
}

TEST(WireFraming, SplitAtEveryOffset) {
  ClientStream s;
  for (size_t k = 0; k <= s.bytes.size(); ++k) {
    auto seen = FeedPieces({s.bytes.substr(0, k), s.bytes.substr(k)});
    ASSERT_EQ(seen, s.expected) << "split at " << k;
  }
}

TEST(WireFraming, SplitAtEveryPairOfOffsets) {
  ClientStream s;
  // Every (i, j) over the first 200 bytes (headers of all small messages)
  // plus a stride over the rest keeps the test quick yet exhaustive where
  // headers and bodies meet.
  for (size_t i = 0; i < s.bytes.size(); i += (i < 200 ? 1 : 97)) {
    for (size_t j = i; j <= s.bytes.size(); j += (j < 200 ? 1 : 89)) {
      auto seen = FeedPieces({s.bytes.substr(0, i), s.bytes.substr(i, j - i), s.bytes.substr(j)});
      ASSERT_EQ(seen, s.expected) << "split at " << i << "," << j;
    }
  }
}

TEST(WireFraming, OneByteAtATime) {
  ClientStream s;
  std::vector<std::string> pieces;
  for (char c : s.bytes) pieces.emplace_back(1, c);
  EXPECT_EQ(FeedPieces(pieces), s.expected);
}

TEST(WireFraming, UnwantedMessagesAreNotDelivered) {
  FrameReader r(1 << 20);
  Recorder rec;
  std::string data = Typed('D', std::string(100000, 'r')) + Typed('Z', "I");
  r.Want('Z');
  auto consumed = r.Feed(data, rec);
  ASSERT_TRUE(consumed.ok());
  EXPECT_EQ(*consumed, data.size());
  ASSERT_EQ(rec.seen.size(), 1u);
  EXPECT_EQ(rec.seen[0].type, 'Z');
  EXPECT_EQ(rec.seen[0].body, "I");
}

TEST(WireFraming, RejectsLengthAboveMaximum) {
  FrameReader r(1024);
  Recorder rec;
  std::string data = "Q";
  PutBe32(data, 1025);
  auto consumed = r.Feed(data, rec);
  ASSERT_FALSE(consumed.ok());
  EXPECT_TRUE(consumed.status().IsInvalidArgument());
  EXPECT_NE(consumed.status().message().find("invalid length 1025"), std::string::npos);
  // Framing is lost for good: later bytes are refused too.
  EXPECT_FALSE(r.Feed(Typed('S', ""), rec).ok());
}

TEST(WireFraming, RejectsLengthBelowHeader) {
  FrameReader r(1024);
  Recorder rec;
  std::string data = "S";
  PutBe32(data, 3);
  EXPECT_FALSE(r.Feed(data, rec).ok());
}

TEST(WireFraming, RejectsOversizeStartupPacket) {
  FrameReader r(1 << 30);
  r.ExpectUntyped();
  Recorder rec;
  std::string data;
  PutBe32(data, kMaxStartupPacketBytes + 1);
  PutBe32(data, kProtocolV3);
  auto consumed = r.Feed(data, rec);
  ASSERT_FALSE(consumed.ok());
  EXPECT_NE(consumed.status().message().find("startup packet"), std::string::npos);
}

TEST(WireFraming, TlsClientHelloIsNotAStartupPacket) {
  FrameReader r(1 << 30);
  r.ExpectUntyped();
  Recorder rec;
  std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01", 8);
  EXPECT_FALSE(r.Feed(hello, rec).ok());
}

TEST(WireFraming, ClassifiesStartupPackets) {
  auto classify = [](const std::string& raw) {
    Message m{'\0', std::string_view(raw).substr(4), raw};
    return ClassifyStartup(m);
  };
  EXPECT_EQ(classify(Untyped(kSslRequestCode, "")), StartupKind::kSslRequest);
  EXPECT_EQ(classify(Untyped(kGssEncRequestCode, "")), StartupKind::kGssEncRequest);
  EXPECT_EQ(classify(Untyped(kCancelRequestCode, "12345678")), StartupKind::kCancelRequest);
  EXPECT_EQ(classify(Untyped(kProtocolV3, Str(""))), StartupKind::kStartup);
  EXPECT_EQ(classify(Untyped(0x00020000, Str(""))), StartupKind::kUnknown);
}

TEST(WireFraming, CancelRequestRoundTrip) {
  CancelKey k{4242, std::string("\x01\x02\x03\x04", 4)};
  std::string raw = BuildCancelRequest(k);
  ASSERT_EQ(raw.size(), 16u);
  Message m{'\0', std::string_view(raw).substr(4), raw};
  auto parsed = ParseCancelRequest(m);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->pid, 4242);
  EXPECT_EQ(parsed->key, k.key);
  std::string kbody;
  PutBe32(kbody, 4242);
  kbody += k.key;
  auto bk = ParseBackendKeyData(kbody);
  ASSERT_TRUE(bk);
  EXPECT_EQ(bk->pid, 4242);
}

TEST(WireFraming, ParsesStartupParameters) {
  std::string raw =
      Untyped(kProtocolV3, Str("user") + Str("alice") + Str("database") + Str("shop") + Str(""));
  Message m{'\0', std::string_view(raw).substr(4), raw};
  auto p = ParseStartupParameters(m);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].second, "alice");
  EXPECT_EQ((*p)[1].second, "shop");
}

TEST(WireFraming, ParsesBindWithNullAndSharedFormat) {
  const std::string body = BindBody();  // the views point into it
  auto b = ParseBind(body);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->portal, "portal1");
  EXPECT_EQ(b->statement, "stmt1");
  ASSERT_EQ(b->params.size(), 3u);
  EXPECT_EQ(*b->params[0], "42");
  EXPECT_FALSE(b->params[1]);
  EXPECT_EQ(*b->params[2], "abc");
  EXPECT_EQ(b->param_is_binary, (std::vector<bool>{false, false, false}));
}

TEST(WireFraming, ParsesBindWithPerParameterFormats) {
  std::string b = Str("") + Str("");
  PutBe16(b, 2);
  PutBe16(b, 1);
  PutBe16(b, 0);
  PutBe16(b, 2);
  PutBe32(b, 4);
  PutBe32(b, 7);
  PutBe32(b, 1);
  b += "t";
  PutBe16(b, 1);
  PutBe16(b, 1);
  auto parsed = ParseBind(b);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->param_is_binary, (std::vector<bool>{true, false}));
  EXPECT_EQ(parsed->params[0]->size(), 4u);
}

TEST(WireFraming, MalformedBodiesAreRejectedNotTrusted) {
  std::string bind = BindBody();
  for (size_t cut = 0; cut < bind.size(); ++cut) {
    EXPECT_FALSE(ParseBind(bind.substr(0, cut))) << cut;
  }
  EXPECT_FALSE(ParseQuery("no terminator"));
  EXPECT_FALSE(ParseExecute(Str("p")));  // max rows missing
  EXPECT_FALSE(ParseClose(std::string("Q") + Str("x")));
  EXPECT_FALSE(ParseReadyForQuery("X"));
  EXPECT_EQ(ParseReadyForQuery("T"), 'T');
  std::string parse = Str("s") + Str("SELECT 1");
  PutBe16(parse, 2);
  PutBe32(parse, 23);
  EXPECT_FALSE(ParseParse(parse));  // claims two types, carries one
}

TEST(WireFraming, ErrorResponseIsAWellFormedFatal08P01) {
  std::string e = BuildErrorResponse("08P01", "bad length");
  FrameReader r(1 << 20);
  r.Want('E');
  Recorder rec;
  auto consumed = r.Feed(e, rec);
  ASSERT_TRUE(consumed.ok());
  ASSERT_EQ(rec.seen.size(), 1u);
  const std::string& body = rec.seen[0].body;
  EXPECT_NE(body.find(Str("SFATAL")), std::string::npos);
  EXPECT_NE(body.find(Str("C08P01")), std::string::npos);
  EXPECT_NE(body.find(Str("Mbad length")), std::string::npos);
  EXPECT_EQ(body.back(), '\0');
}

}  // namespace
}  // namespace cacheportal::sniffer
