// Peer frames and payload fields, byte-exact, with every truncation.
#include "cluster/wire.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ferry::cluster {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(PeerFrame, EncodesHeaderThenPayload) {
  std::string out;
  AppendFrame(out, FrameType::kHello, "abc", 0x0102, kFlagSkippable);
  const std::vector<uint8_t> expected{0, 0, 0, 3, 0x01, 0x01, 0x01, 0x02, 'a', 'b', 'c'};
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.end()), expected);
}

TEST(PeerFrame, ParsesWhatItEncodesAndNeedsEveryByte) {
  std::string out;
  AppendFrame(out, FrameType::kAuth, "payload", 7);
  for (size_t n = 0; n < out.size(); ++n) {
    auto f = ParseFrame(Bytes(out).subspan(0, n));
    ASSERT_TRUE(f.ok()) << n;
    EXPECT_FALSE(f.value().has_value()) << "a frame from " << n << " bytes";
  }
  auto f = ParseFrame(Bytes(out));
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f.value().has_value());
  EXPECT_EQ(f.value()->type, static_cast<uint8_t>(FrameType::kAuth));
  EXPECT_EQ(f.value()->channel, 7);
  EXPECT_FALSE(f.value()->skippable());
  EXPECT_EQ(f.value()->size(), out.size());
  EXPECT_EQ(std::string(f.value()->payload.begin(), f.value()->payload.end()), "payload");
}

TEST(PeerFrame, TwoFramesBackToBackParseOneAtATime) {
  std::string out;
  AppendFrame(out, FrameType::kHello, "one");
  AppendFrame(out, FrameType::kWelcome, "");
  auto first = ParseFrame(Bytes(out));
  ASSERT_TRUE(first.ok() && first.value());
  auto second = ParseFrame(Bytes(out).subspan(first.value()->size()));
  ASSERT_TRUE(second.ok() && second.value());
  EXPECT_EQ(second.value()->type, static_cast<uint8_t>(FrameType::kWelcome));
  EXPECT_TRUE(second.value()->payload.empty());
}

TEST(PeerFrame, OversizedLengthIsRefusedFromTheHeaderAlone) {
  const std::array<uint8_t, 8> header{0x00, 0x10, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00};
  auto f = ParseFrame(header, 1u << 20);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("larger than the limit"), std::string::npos);
  EXPECT_TRUE(
      ParseFrame(std::array<uint8_t, 8>{0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0}).status().code() ==
      Status::Code::kCorruption);
}

TEST(PeerFrame, ReservedFlagBitsAreRefused) {
  for (uint8_t flags = 2; flags != 0; flags = static_cast<uint8_t>(flags << 1)) {
    const std::array<uint8_t, 8> header{0, 0, 0, 0, 0x04, flags, 0, 0};
    EXPECT_FALSE(ParseFrame(header).ok()) << int{flags};
  }
}

TEST(PeerFields, RoundTripEveryKind) {
  std::string payload;
  FieldWriter w(payload);
  const std::array<uint8_t, 4> fixed{9, 8, 7, 6};
  w.U8(0xAB);
  w.U16(0xBEEF);
  w.U32(0xDEADBEEF);
  w.U64(0x0102030405060708ull);
  w.Str("ferry1@127.0.0.1");
  w.Str("");
  w.Fixed(fixed);

  FieldReader r(Bytes(payload));
  uint8_t a = 0;
  uint16_t b = 0;
  uint32_t c = 0;
  uint64_t d = 0;
  std::string s, empty = "x";
  std::array<uint8_t, 4> got{};
  EXPECT_TRUE(r.U8(a, "a") && r.U16(b, "b") && r.U32(c, "c") && r.U64(d, "d") && r.Str(s, "s") &&
              r.Str(empty, "empty") && r.Fixed(got, "fixed") && r.End());
  EXPECT_EQ(a, 0xAB);
  EXPECT_EQ(b, 0xBEEF);
  EXPECT_EQ(c, 0xDEADBEEFu);
  EXPECT_EQ(d, 0x0102030405060708ull);
  EXPECT_EQ(s, "ferry1@127.0.0.1");
  EXPECT_EQ(empty, "");
  EXPECT_EQ(got, fixed);
}

TEST(PeerFields, EveryTruncationFailsOnceAndNamesTheField) {
  std::string payload;
  FieldWriter w(payload);
  w.U32(1);
  w.Str("node");
  for (size_t n = 0; n < payload.size(); ++n) {
    FieldReader r(Bytes(payload).subspan(0, n));
    uint32_t v = 0;
    std::string s = "unchanged";
    const bool ok = r.U32(v, "count") && r.Str(s, "node name");
    EXPECT_FALSE(ok) << n;
    EXPECT_FALSE(r.End());
    EXPECT_EQ(s, "unchanged");
    EXPECT_NE(r.status().message().find(n < 4 ? "count" : "node name"), std::string::npos)
        << r.status().message();
  }
}

TEST(PeerFields, TrailingBytesFailEnd) {
  const std::array<uint8_t, 3> payload{0, 1, 2};
  FieldReader r(payload);
  uint16_t v = 0;
  EXPECT_TRUE(r.U16(v, "v"));
  EXPECT_FALSE(r.End());
  EXPECT_NE(r.status().message().find("trailing"), std::string::npos);
}

}  // namespace
}  // namespace ferry::cluster
