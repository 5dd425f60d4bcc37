// The payloads of forwarded messages and their acknowledgements: round
// trips, byte layout, every truncation and every field a peer may get wrong.
#include "cluster/forward.h"

#include <gtest/gtest.h>

#include <string>

#include "cluster/wire.h"

namespace ferry::cluster {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

core::Message RichMessage() {
  core::Message m;
  m.topic = "site/1/temp";
  m.payload = std::string("21.5\0C", 6);
  m.qos = 2;
  m.retain = true;
  m.expiry_at_ms = 1'900'000'000'000;
  m.received_at_ms = 1'800'000'000'000;
  m.origin_client = "sensor-7";
  m.props.content_type = "text/plain";
  m.props.correlation_data = std::string("\x01\x02", 2);
  m.props.user_properties = {{"k", "v"}, {"ferry-path", "edge@10.0.0.5"}};
  return m;
}

std::string Frame(uint64_t seq, const core::Message& m) {
  return EncodeForwardHead(seq) + EncodeForwardBody(m);
}

TEST(ForwardFrame, RoundTripKeepsEveryField) {
  const core::Message m = RichMessage();
  const std::string bytes = Frame(77, m);
  auto f = ParseForward(Bytes(bytes));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->seq, 77u);
  EXPECT_EQ(f->message.topic, m.topic);
  EXPECT_EQ(f->message.payload, m.payload);
  EXPECT_EQ(f->message.qos, 2);
  EXPECT_TRUE(f->message.retain);
  EXPECT_EQ(f->message.expiry_at_ms, m.expiry_at_ms);
  EXPECT_EQ(f->message.received_at_ms, m.received_at_ms);
  EXPECT_EQ(f->message.origin_client, "sensor-7");
  EXPECT_EQ(f->message.props, m.props);
  // The node path travels in the properties and is parsed from them.
  EXPECT_EQ(f->message.path, std::vector<std::string>{"edge@10.0.0.5"});
  EXPECT_TRUE(f->message.injected_by.empty());
}

TEST(ForwardFrame, HeadIsSeqBigEndianThenDelivery) {
  const std::string head = EncodeForwardHead(0x0102030405060708ull);
  EXPECT_EQ(head, std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x01\x00\x00", 11));
  core::Message m;
  m.topic = "t";
  const std::string body = EncodeForwardBody(m);
  // qos, flags, two u64 times, topic "t", empty origin, two empty blobs.
  EXPECT_EQ(body.size(), 1u + 1 + 8 + 8 + 3 + 2 + 4 + 4);
}

TEST(ForwardFrame, SharedGroupsTravelInTheHead) {
  const std::vector<std::string> groups{"$share/g/a/+", "$queue/b"};
  const std::string bytes = EncodeForwardHead(9, false, groups) + EncodeForwardBody(RichMessage());
  auto f = ParseForward(Bytes(bytes));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->seq, 9u);
  EXPECT_FALSE(f->plain);
  EXPECT_EQ(f->groups, groups);
  const std::vector<std::string> bad{"a/+"};  // no shared form
  EXPECT_FALSE(
      ParseForward(Bytes(EncodeForwardHead(9, false, bad) + EncodeForwardBody(RichMessage())))
          .ok());
  std::string reserved = bytes;
  reserved[8] = 0x02;
  EXPECT_FALSE(ParseForward(Bytes(reserved)).ok());
}

TEST(ForwardFrame, EveryTruncationFailsCleanly) {
  const std::string bytes = Frame(5, RichMessage());
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(ParseForward(Bytes(bytes.substr(0, n))).ok()) << n;
  }
  EXPECT_FALSE(ParseForward(Bytes(bytes + "x")).ok());
}

TEST(ForwardFrame, RefusesWhatAPeerMayGetWrong) {
  core::Message m = RichMessage();
  std::string bytes = Frame(1, m);
  bytes[11] = 3;  // QoS 3
  EXPECT_NE(ParseForward(Bytes(bytes)).status().message().find("QoS 3"), std::string::npos);
  bytes = Frame(1, m);
  bytes[12] = 0x02;  // a reserved flag
  EXPECT_FALSE(ParseForward(Bytes(bytes)).ok());
  m.topic = "a/+/b";  // a filter is no topic name
  EXPECT_FALSE(ParseForward(Bytes(Frame(1, m))).ok());
  m.topic = "";
  EXPECT_FALSE(ParseForward(Bytes(Frame(1, m))).ok());
}

TEST(ForwardAcks, RoundTripAndTruncations) {
  const ForwardAcks acks{{1, 0}, {2, 0x97}, {~0ull, 0x80}};
  const std::string bytes = EncodeForwardAcks(acks);
  auto back = ParseForwardAcks(Bytes(bytes));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, acks);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(ParseForwardAcks(Bytes(bytes.substr(0, n))).ok()) << n;
  }
  EXPECT_FALSE(ParseForwardAcks(Bytes(bytes + "x")).ok());
  EXPECT_TRUE(ParseForwardAcks(Bytes(EncodeForwardAcks({}))).ok());
}

}  // namespace
}  // namespace ferry::cluster
