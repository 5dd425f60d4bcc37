// UpstreamSession, the sans-I/O client side of a bridge link: packets in,
// events and packets out (bridge/upstream_session.h).
#include "bridge/upstream_session.h"

#include <gtest/gtest.h>

namespace ferry::bridge {
namespace {

using core::PacketType;
using core::ProtocolVersion;

class UpstreamSessionTest : public ::testing::Test {
 protected:
  UpstreamSession Make(ProtocolVersion v = ProtocolVersion::kV5) {
    UpstreamOptions o;
    o.version = v;
    o.client_id = "cloud.edge@h";
    o.node_name = "edge@h";
    o.keepalive_s = 10;
    o.max_inflight = 3;
    o.receive_maximum = 4;
    return UpstreamSession(o);
  }

  // Every packet the session queued since the last call, decoded.
  std::vector<core::Packet> Sent(UpstreamSession& s, ProtocolVersion v) {
    std::vector<core::Packet> out;
    std::string& bytes = s.output();
    size_t pos = 0;
    while (pos < bytes.size()) {
      std::span<const uint8_t> rest(reinterpret_cast<const uint8_t*>(bytes.data()) + pos,
                                    bytes.size() - pos);
      auto h = core::ParseFixedHeader(rest, 1 << 20);
      EXPECT_TRUE(h.ok() && h.value());
      if (!h.ok() || !h.value()) break;
      auto p = core::Decode(*h.value(), rest.subspan(h.value()->header_length,
                                                     h.value()->remaining_length), v);
      EXPECT_TRUE(p.ok()) << p.status().ToString();
      if (p.ok()) out.push_back(std::move(p).value());
      pos += h.value()->total_length();
    }
    bytes.clear();
    return out;
  }

  std::vector<UpstreamEvent> Feed(UpstreamSession& s, const core::Packet& p, ProtocolVersion v,
                                  uint64_t now = 1000) {
    std::string bytes;
    core::Encode(p, v, bytes);
    std::vector<UpstreamEvent> events;
    Status st = s.Feed({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, now, events);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return events;
  }

  void Connect(UpstreamSession& s, ProtocolVersion v, core::Connack ack = {}) {
    s.Connect(1000);
    Sent(s, v);
    auto ev = Feed(s, ack, v);
    ASSERT_EQ(ev.size(), 1u);
    ASSERT_TRUE(std::holds_alternative<upstream::Connected>(ev[0]));
  }

  // The session sent exactly one PUBREL for `id`; a PUBCOMP for it
  // completes message `token`.
  void ExpectPubrelThenComplete(UpstreamSession& s, uint16_t id, uint64_t token) {
    auto rel = Sent(s, ProtocolVersion::kV5);
    ASSERT_EQ(rel.size(), 1u);
    EXPECT_EQ(std::get<core::PubAck>(rel[0]).type, PacketType::kPubrel);
    EXPECT_EQ(std::get<core::PubAck>(rel[0]).packet_id, id);
    auto ev = Feed(s, core::PubAck{PacketType::kPubcomp, id, ReasonCode::kSuccess, {}},
                   ProtocolVersion::kV5);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(std::get<upstream::Published>(ev[0]).token, token);
  }

  core::Message Msg(std::string topic, std::string payload = "x") {
    core::Message m;
    m.topic = std::move(topic);
    m.payload = std::move(payload);
    return m;
  }
};

TEST_F(UpstreamSessionTest, V311ConnectCarriesTheMosquittoBridgeBit) {
  auto s = Make(ProtocolVersion::kV311);
  s.Connect(0);
  const std::string& bytes = s.output();
  // 0x10 len 0x00 0x04 'M' 'Q' 'T' 'T' level: level is 4 | 0x80.
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(static_cast<uint8_t>(bytes[8]), 0x84);
  auto sent = Sent(s, ProtocolVersion::kV311);
  ASSERT_EQ(sent.size(), 1u);
  const auto& c = std::get<core::Connect>(sent[0]);
  EXPECT_TRUE(c.bridge);
  EXPECT_FALSE(c.clean_start);
  EXPECT_EQ(c.client_id, "cloud.edge@h");
  EXPECT_EQ(c.keepalive_s, 10);
}

TEST_F(UpstreamSessionTest, V311ConnectWithoutTheBridgeBitWhenTurnedOff) {
  auto s = Make(ProtocolVersion::kV311);
  s.mutable_options().bridge_bit = false;
  s.Connect(0);
  EXPECT_EQ(static_cast<uint8_t>(s.output()[8]), 0x04);
}

TEST_F(UpstreamSessionTest, V5ConnectNamesTheNodeAndItsReceiveMaximum) {
  auto s = Make();
  s.mutable_options().session_expiry_s = 600;
  s.Connect(0);
  auto sent = Sent(s, ProtocolVersion::kV5);
  const auto& c = std::get<core::Connect>(sent.at(0));
  EXPECT_FALSE(c.bridge);  // v5 bridges use subscription options instead
  EXPECT_EQ(c.props.receive_maximum, 4);
  EXPECT_EQ(c.props.session_expiry_interval, 600u);
  EXPECT_EQ(c.props.user_properties,
            (core::UserProperties{{"ferry-bridge", "edge@h"}}));
}

TEST_F(UpstreamSessionTest, ConnackSetsTheWindowAndNamesTheUpstreamNode) {
  auto s = Make();
  s.Connect(0);
  core::Connack ack;
  ack.props.receive_maximum = 2;
  ack.props.user_properties = {{"ferry-node", "hub@h"}};
  auto ev = Feed(s, ack, ProtocolVersion::kV5);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(std::get<upstream::Connected>(ev[0]).upstream_node, "hub@h");
  EXPECT_TRUE(s.connected());
  EXPECT_EQ(s.window(), 2);  // min(max_inflight 3, receive maximum 2)
}

TEST_F(UpstreamSessionTest, RefusedConnackIsAnEvent) {
  auto s = Make(ProtocolVersion::kV311);
  s.Connect(0);
  core::Connack ack;
  ack.reason = ReasonCode::kUnsupportedProtocolVersion;  // 3.1.1 return code 1
  auto ev = Feed(s, ack, ProtocolVersion::kV311);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(std::get<upstream::Refused>(ev[0]).reason, ReasonCode::kUnsupportedProtocolVersion);
  EXPECT_FALSE(s.connected());
}

TEST_F(UpstreamSessionTest, AnythingBeforeConnackIsAProtocolError) {
  auto s = Make();
  s.Connect(0);
  std::string bytes;
  core::Encode(core::Pingresp{}, ProtocolVersion::kV5, bytes);
  std::vector<UpstreamEvent> ev;
  Status st = s.Feed({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, 0, ev);
  EXPECT_EQ(st.reason(), ReasonCode::kProtocolError);
}

TEST_F(UpstreamSessionTest, MalformedBytesAreAnErrorWithItsReasonCode) {
  auto s = Make();
  s.Connect(0);
  const uint8_t garbage[] = {0x20, 0x02, 0x02, 0x00};  // CONNACK with reserved flags
  std::vector<UpstreamEvent> ev;
  Status st = s.Feed(garbage, 0, ev);
  EXPECT_EQ(st.reason(), ReasonCode::kMalformedPacket);
}

TEST_F(UpstreamSessionTest, Qos1CompletesOnPubackAndTheWindowLimitsInflight) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  core::Message m = Msg("a/b");
  for (uint64_t token = 1; token <= 3; ++token) {
    ASSERT_TRUE(s.CanSendQos());
    ASSERT_TRUE(s.Publish({token, &m, 1, false, {}}, 1000));
  }
  EXPECT_FALSE(s.CanSendQos());
  auto sent = Sent(s, ProtocolVersion::kV5);
  ASSERT_EQ(sent.size(), 3u);
  const auto& p = std::get<core::Publish>(sent[1]);
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(p.qos, 1);
  auto ev = Feed(s, core::PubAck{PacketType::kPuback, p.packet_id, ReasonCode::kSuccess, {}},
                 ProtocolVersion::kV5);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(std::get<upstream::Published>(ev[0]).token, 2u);
  EXPECT_TRUE(s.CanSendQos());
}

TEST_F(UpstreamSessionTest, Qos2CompletesOnPubcompAfterPubrecAndPubrel) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  core::Message m = Msg("a");
  ASSERT_TRUE(s.Publish({7, &m, 2, false, {}}, 1000));
  uint16_t id = std::get<core::Publish>(Sent(s, ProtocolVersion::kV5).at(0)).packet_id;
  EXPECT_TRUE(Feed(s, core::PubAck{PacketType::kPubrec, id, ReasonCode::kSuccess, {}},
                   ProtocolVersion::kV5).empty());
  ExpectPubrelThenComplete(s, id, 7);
}

// A queue message goes under the identifier its seq gives, with DUP when it
// may have gone before a restart; the PUBREL of a held QoS 2 message waits
// for Release() [MQTT-4.3.3].
TEST_F(UpstreamSessionTest, HeldQos2MessageIsReleasedOnlyWhenTold) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  core::Message m = Msg("a");
  OutgoingPublish p{9, &m, 2, false, {}, QueuePacketId(9), /*dup=*/true, /*hold_pubrel=*/true};
  ASSERT_TRUE(s.Publish(p, 1000));
  EXPECT_FALSE(s.PacketIdFree(9));
  const core::Publish sent = std::get<core::Publish>(Sent(s, ProtocolVersion::kV5).at(0));
  EXPECT_EQ(sent.packet_id, 9);
  EXPECT_TRUE(sent.dup);
  auto ev = Feed(s, core::PubAck{PacketType::kPubrec, 9, ReasonCode::kSuccess, {}},
                 ProtocolVersion::kV5);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(std::get<upstream::Received>(ev[0]).token, 9u);
  EXPECT_TRUE(Sent(s, ProtocolVersion::kV5).empty());  // no PUBREL yet
  s.Release(8, 9, 1000);  // not that message's: ignored
  EXPECT_TRUE(Sent(s, ProtocolVersion::kV5).empty());
  s.Release(9, 9, 1000);
  ExpectPubrelThenComplete(s, 9, 9);
}

// A message released before a restart goes as PUBREL alone; the upstream
// that completed it already answers "not found", which still completes it.
TEST_F(UpstreamSessionTest, MessageReleasedBeforeARestartGoesAsPubrelOnly) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  s.PublishReleased(70000, QueuePacketId(70000), 1000);
  auto rel = Sent(s, ProtocolVersion::kV5);
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(std::get<core::PubAck>(rel[0]).type, PacketType::kPubrel);
  EXPECT_EQ(std::get<core::PubAck>(rel[0]).packet_id, QueuePacketId(70000));
  auto ev = Feed(s, core::PubAck{PacketType::kPubcomp, QueuePacketId(70000),
                                 ReasonCode::kPacketIdentifierNotFound, {}},
                 ProtocolVersion::kV5);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(std::get<upstream::Published>(ev[0]).token, 70000u);
  EXPECT_EQ(std::get<upstream::Published>(ev[0]).reason, ReasonCode::kSuccess);
}

TEST(QueuePacketId, CyclesBelowTheSessionsOwnIdentifiers) {
  EXPECT_EQ(QueuePacketId(1), 1);
  EXPECT_EQ(QueuePacketId(kOwnPacketIdFirst - 1), kOwnPacketIdFirst - 1);
  EXPECT_EQ(QueuePacketId(kOwnPacketIdFirst), 1);
}

TEST_F(UpstreamSessionTest, UpstreamLimitsLowerQosDropRetainAndRefuseLargePackets) {
  auto s = Make();
  core::Connack ack;
  ack.props.maximum_qos = 1;
  ack.props.retain_available = 0;
  ack.props.maximum_packet_size = 64;
  Connect(s, ProtocolVersion::kV5, ack);
  core::Message m = Msg("a");
  ASSERT_TRUE(s.Publish({1, &m, 2, true, {}}, 1000));
  auto p = std::get<core::Publish>(Sent(s, ProtocolVersion::kV5).at(0));
  EXPECT_EQ(p.qos, 1);
  EXPECT_FALSE(p.retain);
  core::Message big = Msg("a", std::string(100, 'x'));
  EXPECT_FALSE(s.Publish({2, &big, 1, false, {}}, 1000));
  EXPECT_TRUE(Sent(s, ProtocolVersion::kV5).empty());
  EXPECT_EQ(s.inflight_count(), 1u);
}

TEST_F(UpstreamSessionTest, V5PublishCarriesThePathAndRemainingExpiry) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  core::Message m = Msg("a");
  m.props.user_properties = {{"k", "v"}, {"ferry-path", "origin@h"}};
  m.path = {"origin@h"};
  m.expiry_at_ms = UINT64_MAX / 2;
  ASSERT_TRUE(s.Publish({1, &m, 0, false, "edge@h"}, 1000));
  auto p = std::get<core::Publish>(Sent(s, ProtocolVersion::kV5).at(0));
  EXPECT_EQ(p.props.user_properties,
            (core::UserProperties{{"k", "v"}, {"ferry-path", "origin@h,edge@h"}}));
  EXPECT_TRUE(p.props.message_expiry_interval.has_value());
  // A message with no properties of its own: just the path.
  core::Message plain = Msg("b");
  plain.path = {"x@h"};
  ASSERT_TRUE(s.Publish({2, &plain, 0, false, "edge@h"}, 1000));
  p = std::get<core::Publish>(Sent(s, ProtocolVersion::kV5).at(0));
  EXPECT_EQ(p.props.user_properties, (core::UserProperties{{"ferry-path", "x@h,edge@h"}}));
  core::Message local = Msg("c");
  ASSERT_TRUE(s.Publish({3, &local, 0, false, "edge@h"}, 1000));
  p = std::get<core::Publish>(Sent(s, ProtocolVersion::kV5).at(0));
  EXPECT_EQ(p.props.user_properties, (core::UserProperties{{"ferry-path", "edge@h"}}));
}

TEST_F(UpstreamSessionTest, IncomingMessagesAreAcknowledgedInArrivalOrder) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  for (uint16_t id : {11, 12, 13}) {
    core::Publish p;
    p.topic = "in";
    p.qos = id == 13 ? 2 : 1;
    p.packet_id = id;
    auto ev = Feed(s, p, ProtocolVersion::kV5);
    ASSERT_EQ(ev.size(), 1u);
  }
  s.Acknowledge(12);
  s.Acknowledge(13);
  EXPECT_TRUE(Sent(s, ProtocolVersion::kV5).empty());  // 11 first [MQTT-4.6.0-2]
  s.Acknowledge(11);
  auto acks = Sent(s, ProtocolVersion::kV5);
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(std::get<core::PubAck>(acks[0]).packet_id, 11);
  EXPECT_EQ(std::get<core::PubAck>(acks[1]).packet_id, 12);
  EXPECT_EQ(std::get<core::PubAck>(acks[2]).type, PacketType::kPubrec);
}

TEST_F(UpstreamSessionTest, Qos2ReceivedAgainBeforePubrelIsNotDeliveredTwice) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  core::Publish p;
  p.topic = "in";
  p.qos = 2;
  p.packet_id = 5;
  EXPECT_EQ(Feed(s, p, ProtocolVersion::kV5).size(), 1u);
  p.dup = true;
  EXPECT_TRUE(Feed(s, p, ProtocolVersion::kV5).empty());  // still being delivered
  s.Acknowledge(5);
  Sent(s, ProtocolVersion::kV5);
  EXPECT_TRUE(Feed(s, p, ProtocolVersion::kV5).empty());  // [MQTT-4.3.3-10]
  auto again = Sent(s, ProtocolVersion::kV5);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(std::get<core::PubAck>(again[0]).type, PacketType::kPubrec);
  Feed(s, core::PubAck{PacketType::kPubrel, 5, ReasonCode::kSuccess, {}}, ProtocolVersion::kV5);
  auto comp = Sent(s, ProtocolVersion::kV5);
  ASSERT_EQ(comp.size(), 1u);
  EXPECT_EQ(std::get<core::PubAck>(comp[0]).type, PacketType::kPubcomp);
}

TEST_F(UpstreamSessionTest, MoreThanTheReceiveMaximumIsAnError) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  for (uint16_t id = 1; id <= 4; ++id) {
    core::Publish p;
    p.topic = "in";
    p.qos = 1;
    p.packet_id = id;
    Feed(s, p, ProtocolVersion::kV5);
  }
  core::Publish p;
  p.topic = "in";
  p.qos = 1;
  p.packet_id = 99;
  std::string bytes;
  core::Encode(p, ProtocolVersion::kV5, bytes);
  std::vector<UpstreamEvent> ev;
  Status st = s.Feed({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, 0, ev);
  EXPECT_EQ(st.reason(), ReasonCode::kReceiveMaximumExceeded);
}

TEST_F(UpstreamSessionTest, AResumedSessionResendsWithDupAndPubrel) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  core::Message m = Msg("a");
  ASSERT_TRUE(s.Publish({1, &m, 1, false, {}}, 1000));
  ASSERT_TRUE(s.Publish({2, &m, 2, false, {}}, 1000));
  auto sent = Sent(s, ProtocolVersion::kV5);
  uint16_t id2 = std::get<core::Publish>(sent[1]).packet_id;
  Feed(s, core::PubAck{PacketType::kPubrec, id2, ReasonCode::kSuccess, {}}, ProtocolVersion::kV5);
  Sent(s, ProtocolVersion::kV5);
  // The link drops; the next connection resumes the session.
  s.Connect(2000);
  Sent(s, ProtocolVersion::kV5);
  core::Connack ack;
  ack.session_present = true;
  Feed(s, ack, ProtocolVersion::kV5);
  auto resend = s.InflightForResend();
  ASSERT_EQ(resend.size(), 2u);
  EXPECT_EQ(resend[0].token, 1u);
  EXPECT_FALSE(resend[0].released);
  EXPECT_TRUE(resend[1].released);
  for (const auto& e : resend) s.Resend(e, {e.token, &m, e.qos, false, {}}, 2000);
  auto again = Sent(s, ProtocolVersion::kV5);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_TRUE(std::get<core::Publish>(again[0]).dup);
  EXPECT_EQ(std::get<core::Publish>(again[0]).packet_id, std::get<core::Publish>(sent[0]).packet_id);
  EXPECT_EQ(std::get<core::PubAck>(again[1]).type, PacketType::kPubrel);
}

TEST_F(UpstreamSessionTest, ASessionThatDidNotResumeForgetsWhatWasInFlight) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  core::Message m = Msg("a");
  ASSERT_TRUE(s.Publish({1, &m, 1, false, {}}, 1000));
  s.Connect(2000);
  Feed(s, core::Connack{}, ProtocolVersion::kV5);  // session_present = false
  EXPECT_TRUE(s.InflightForResend().empty());
  EXPECT_EQ(s.inflight_count(), 0u);
}

// Message 9 (QoS 2) and an incoming QoS 2 message 5 are half way through
// their exchanges when the link drops: the upstream sent PUBREC for 9 and we
// released it; we sent PUBREC for 5. Then the session reconnects.
class UpstreamSessionLostLinkTest : public UpstreamSessionTest {
 protected:
  void SetUp() override {
    Connect(s_, ProtocolVersion::kV5);
    ASSERT_TRUE(s_.Publish(Held(/*dup=*/false), 1000));
    Sent(s_, ProtocolVersion::kV5);
    auto ev = Feed(s_, core::PubAck{PacketType::kPubrec, 9, ReasonCode::kSuccess, {}},
                   ProtocolVersion::kV5);
    ASSERT_EQ(ev.size(), 1u);
    ASSERT_TRUE(s_.Release(9, 9, 1000));
    core::Publish in;
    in.topic = "down";
    in.qos = 2;
    in.packet_id = 5;
    ASSERT_EQ(Feed(s_, in, ProtocolVersion::kV5).size(), 1u);
    s_.Acknowledge(5);
    Sent(s_, ProtocolVersion::kV5);  // PUBREL 9, PUBREC 5
    s_.Connect(2000);
    Sent(s_, ProtocolVersion::kV5);
  }

  OutgoingPublish Held(bool dup) {
    return {9, &m_, 2, false, {}, QueuePacketId(9), dup, /*hold_pubrel=*/true};
  }

  core::Message m_ = Msg("a");
  UpstreamSession s_ = Make();
};

// The upstream kept our session: the released message goes as PUBREL alone,
// "not found" completes it (the upstream completed it before), and message
// 5 sent again is not delivered twice [MQTT-4.3.3].
TEST_F(UpstreamSessionLostLinkTest, SessionPresentResumesWithPubrel) {
  core::Connack ack;
  ack.session_present = true;
  ASSERT_EQ(Feed(s_, ack, ProtocolVersion::kV5).size(), 1u);
  EXPECT_TRUE(s_.resumed());
  auto resend = s_.InflightForResend();
  ASSERT_EQ(resend.size(), 1u);
  EXPECT_TRUE(resend[0].released);
  s_.Resend(resend[0], Held(true), 2000);
  auto rel = Sent(s_, ProtocolVersion::kV5);
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(std::get<core::PubAck>(rel[0]).type, PacketType::kPubrel);
  auto ev = Feed(s_, core::PubAck{PacketType::kPubcomp, 9, ReasonCode::kPacketIdentifierNotFound, {}},
                 ProtocolVersion::kV5);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(std::get<upstream::Published>(ev[0]).token, 9u);
  EXPECT_EQ(std::get<upstream::Published>(ev[0]).reason, ReasonCode::kSuccess);
  core::Publish again;
  again.topic = "down";
  again.qos = 2;
  again.dup = true;
  again.packet_id = 5;
  EXPECT_TRUE(Feed(s_, again, ProtocolVersion::kV5).empty());
  auto rec = Sent(s_, ProtocolVersion::kV5);
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(std::get<core::PubAck>(rec[0]).type, PacketType::kPubrec);
}

// A new session (failover, or the upstream lost ours) knows nothing of
// message 9: nothing is left in flight, the release reported late does not
// apply, and message 9 goes as a new PUBLISH (DUP 0). A PUBCOMP "not found"
// before its PUBREC is no delivery; after the PUBREC of this exchange the
// PUBREL waits for Release() again. Incoming identifier 5 is a new message.
TEST_F(UpstreamSessionLostLinkTest, NoSessionPresentPublishesEverythingAgain) {
  ASSERT_EQ(Feed(s_, core::Connack{}, ProtocolVersion::kV5).size(), 1u);
  EXPECT_FALSE(s_.resumed());
  EXPECT_TRUE(s_.InflightForResend().empty());
  EXPECT_TRUE(s_.PacketIdFree(9));
  EXPECT_FALSE(s_.Release(9, 9, 2000));
  ASSERT_TRUE(s_.Publish(Held(/*dup=*/false), 2000));
  auto sent = Sent(s_, ProtocolVersion::kV5);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(std::get<core::Publish>(sent[0]).packet_id, 9);
  EXPECT_FALSE(std::get<core::Publish>(sent[0]).dup);
  EXPECT_FALSE(s_.Release(9, 9, 2000));  // no PUBREC yet in this session
  EXPECT_TRUE(Sent(s_, ProtocolVersion::kV5).empty());
  EXPECT_TRUE(Feed(s_, core::PubAck{PacketType::kPubcomp, 9,
                                    ReasonCode::kPacketIdentifierNotFound, {}},
                   ProtocolVersion::kV5).empty());
  EXPECT_FALSE(s_.PacketIdFree(9));
  auto ev = Feed(s_, core::PubAck{PacketType::kPubrec, 9, ReasonCode::kSuccess, {}},
                 ProtocolVersion::kV5);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(std::get<upstream::Received>(ev[0]).token, 9u);
  EXPECT_TRUE(Sent(s_, ProtocolVersion::kV5).empty());
  ASSERT_TRUE(s_.Release(9, 9, 2000));
  ExpectPubrelThenComplete(s_, 9, 9);
  core::Publish fresh;
  fresh.topic = "down";
  fresh.qos = 2;
  fresh.packet_id = 5;
  EXPECT_EQ(Feed(s_, fresh, ProtocolVersion::kV5).size(), 1u);
}

// QoS 1 in flight is forgotten with the session too: the caller publishes it
// again as new.
TEST_F(UpstreamSessionTest, NoSessionPresentForgetsQos1InFlight) {
  auto s = Make(ProtocolVersion::kV311);
  Connect(s, ProtocolVersion::kV311);
  core::Message m = Msg("a");
  ASSERT_TRUE(s.Publish({3, &m, 1, false, {}, QueuePacketId(3)}, 1000));
  Sent(s, ProtocolVersion::kV311);
  s.Connect(2000);
  Sent(s, ProtocolVersion::kV311);
  Feed(s, core::Connack{}, ProtocolVersion::kV311);
  EXPECT_TRUE(s.InflightForResend().empty());
  EXPECT_TRUE(Feed(s, core::PubAck{PacketType::kPuback, 3, ReasonCode::kSuccess, {}},
                   ProtocolVersion::kV311).empty());
  ASSERT_TRUE(s.Publish({3, &m, 1, false, {}, QueuePacketId(3)}, 2000));
  auto sent = Sent(s, ProtocolVersion::kV311);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_FALSE(std::get<core::Publish>(sent[0]).dup);
  auto ev = Feed(s, core::PubAck{PacketType::kPuback, 3, ReasonCode::kSuccess, {}},
                 ProtocolVersion::kV311);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(std::get<upstream::Published>(ev[0]).token, 3u);
}

TEST_F(UpstreamSessionTest, SubscribeAsksForNoLocalAndRetainAsPublished) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  uint16_t id = s.Subscribe({{"cmd/#", 1}, {"x", 2}});
  auto sent = Sent(s, ProtocolVersion::kV5);
  const auto& sub = std::get<core::Subscribe>(sent.at(0));
  EXPECT_EQ(sub.packet_id, id);
  ASSERT_EQ(sub.topics.size(), 2u);
  EXPECT_TRUE(sub.topics[0].no_local);
  EXPECT_TRUE(sub.topics[0].retain_as_published);
  EXPECT_EQ(sub.topics[1].qos, 2);
  auto ev = Feed(s, core::Suback{id, {ReasonCode::kGrantedQos1, ReasonCode::kNotAuthorized}, {}},
                 ProtocolVersion::kV5);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(std::get<upstream::Subscribed>(ev[0]).reasons[1], ReasonCode::kNotAuthorized);
}

TEST_F(UpstreamSessionTest, KeepAlivePingsWhenQuietAndGivesUpWithoutAnAnswer) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);  // at t = 1000, keep alive 10 s
  EXPECT_TRUE(s.Tick(5000));
  EXPECT_TRUE(Sent(s, ProtocolVersion::kV5).empty());
  EXPECT_TRUE(s.Tick(11000));
  auto ping = Sent(s, ProtocolVersion::kV5);
  ASSERT_EQ(ping.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<core::Pingreq>(ping[0]));
  EXPECT_TRUE(s.Tick(15000));
  Feed(s, core::Pingresp{}, ProtocolVersion::kV5, 15000);
  EXPECT_TRUE(s.Tick(25000));  // pings again
  Sent(s, ProtocolVersion::kV5);
  EXPECT_FALSE(s.Tick(35001));  // no PINGRESP for a keep alive
}

TEST_F(UpstreamSessionTest, ServerDisconnectIsAnEvent) {
  auto s = Make();
  Connect(s, ProtocolVersion::kV5);
  core::Disconnect d;
  d.reason = ReasonCode::kSessionTakenOver;
  auto ev = Feed(s, d, ProtocolVersion::kV5);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(std::get<upstream::ServerDisconnect>(ev[0]).reason, ReasonCode::kSessionTakenOver);
}

}  // namespace
}  // namespace ferry::bridge
