// Will messages on a real node: published when the connection ends without a
// normal DISCONNECT (socket closed, keep alive run out, protocol error, v5
// DISCONNECT 0x04), not after a normal one; retained wills; and the v5 Will
// Delay Interval: the will waits, a reconnect cancels it, the end of the
// session sends it early.
//
// The client with the will is a RawSession, so that it can drop its socket
// without a DISCONNECT; the subscriber that watches for the will is Paho.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/mqtt_wire.h"
#include "support/paho_client.h"
#include "support/v5_helpers.h"
#include "support/v5_session.h"

namespace ferry::testing::v5 {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Strings = std::vector<std::string>;

// CONNECT fields of a client with a will on `topic`.
wire::ConnectFields WithWill(const std::string& client_id, const std::string& topic, int qos,
                             bool retain = false) {
  wire::ConnectFields f;
  f.client_id = client_id;
  f.will = wire::Will{topic, "will of " + client_id, qos, retain, {}};
  return f;
}

// The v5 properties of a will with a delay and a session that outlives the
// connection by `session_expiry_s`.
wire::ConnectFields WithDelayedWill(const std::string& client_id, const std::string& topic,
                                    uint32_t delay_s, uint32_t session_expiry_s) {
  wire::ConnectFields f = WithWill(client_id, topic, 1);
  AddU32(&f.will->properties, kWillDelayInterval, delay_s);
  AddU32(&f.properties, kSessionExpiryInterval, session_expiry_s);
  return f;
}

class Wills : public NodeTest<::testing::TestWithParam<MqttVersion>> {
 protected:
  MqttVersion version() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Versions, Wills, ::testing::Values(MqttVersion::kV311, MqttVersion::kV5),
                         [](const auto& info) { return std::string(VersionLabel(info.param)); });

class WillsV5 : public NodeTest<> {
 protected:
  // Connects watcher(), a Paho v5 subscriber to "w/#".
  void Watch() {
    watcher_ = std::make_unique<PahoClient>(port(), "will-watcher", MqttVersion::kV5);
    ASSERT_TRUE(watcher_->Connect());
    ASSERT_TRUE(watcher_->Subscribe("w/#", 2));
  }
  PahoClient& watcher() { return *watcher_; }

 private:
  std::unique_ptr<PahoClient> watcher_;
};

TEST_P(Wills, IsPublishedWhenTheConnectionClosesWithoutDisconnect) {
  PahoClient sub(port(), "will-sub", version());
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("w/#", 2));
  RawSession dying(port(), version());
  ASSERT_TRUE(dying.Connect(WithWill("dying", "w/a", 1)));
  dying.Drop();
  // [MQTT-3.1.2-8]: the connection closed without DISCONNECT.
  const std::optional<ReceivedMessage> m = sub.Receive();
  ASSERT_TRUE(m.has_value()) << "no will";
  EXPECT_EQ(m->topic, "w/a");
  EXPECT_EQ(m->payload, "will of dying");
  EXPECT_EQ(m->qos, 1);  // the will's QoS (the subscription allows 2)
  // Will Retain 0: published as a non-retained message [MQTT-3.1.2-16]
  // (3.1.1), [MQTT-3.1.2-14] (5.0).
  EXPECT_FALSE(m->retained);
}

TEST_P(Wills, RetainedWillIsKeptAsTheRetainedMessage) {
  RawSession live(port(), version());
  ASSERT_TRUE(live.Connect("will-live-sub"));
  ASSERT_EQ(live.Subscribe({{"w/#", 2}}), (Codes{2}));
  RawSession dying(port(), version());
  ASSERT_TRUE(dying.Connect(WithWill("dying-retained", "w/r", 2, /*retain=*/true)));
  dying.Drop();
  std::optional<wire::ReceivedPublish> m = live.Receive();
  ASSERT_TRUE(m.has_value()) << "no will";
  EXPECT_EQ(m->qos, 2);
  EXPECT_FALSE(m->retain);  // to an established subscription

  // Will Retain 1: published as a retained message [MQTT-3.1.2-17] (3.1.1),
  // [MQTT-3.1.2-15] (5.0), so a later subscriber is sent it.
  RawSession later(port(), version());
  ASSERT_TRUE(later.Connect("will-later-sub"));
  ASSERT_EQ(later.Subscribe({{"w/r", 2}}), (Codes{2}));
  m = later.Receive();
  ASSERT_TRUE(m.has_value()) << "the retained will is not stored";
  EXPECT_EQ(m->payload, "will of dying-retained");
  EXPECT_TRUE(m->retain);
  EXPECT_EQ(m->qos, 2);
}

TEST_P(Wills, IsNotPublishedAfterANormalDisconnect) {
  PahoClient sub(port(), "will-sub", version());
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("w/#", 1));
  RawSession leaving(port(), version());
  ASSERT_TRUE(leaving.Connect(WithWill("leaving", "w/a", 1)));
  ASSERT_TRUE(leaving.Disconnect());
  // [MQTT-3.14.4-3]: the will is discarded. The node decides before it
  // closes the socket, so a message published after the close comes after
  // any will.
  RawSession pub(port(), version());
  ASSERT_TRUE(pub.Connect("will-sentinel"));
  ASSERT_TRUE(pub.Publish("w/end", "sentinel", 1));
  EXPECT_EQ(Topics(ReceiveThrough(sub, "w/end")), (Strings{"w/end"}));
}

TEST_P(Wills, IsPublishedWhenTheKeepAliveRunsOut) {
  PahoClient sub(port(), "will-sub", version());
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("w/#", 1));
  RawSession silent(port(), version());
  wire::ConnectFields f = WithWill("silent", "w/k", 1);
  f.keepalive_s = 1;
  const auto start = Clock::now();
  ASSERT_TRUE(silent.Connect(f));
  // Closed after one and a half times the keep alive [MQTT-3.1.2-24]
  // (3.1.1), [MQTT-3.1.2-22] (5.0); v5 first hears DISCONNECT 0x8D.
  EXPECT_TRUE(silent.ExpectDisconnect(0x8D, milliseconds(5000)));
  EXPECT_GE(Clock::now() - start, milliseconds(1400));
  const std::optional<ReceivedMessage> m = sub.Receive();
  ASSERT_TRUE(m.has_value()) << "no will after the keep alive timeout";
  EXPECT_EQ(m->topic, "w/k");
}

TEST_P(Wills, IsPublishedWhenTheServerClosesForAProtocolError) {
  PahoClient sub(port(), "will-sub", version());
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("w/#", 1));
  RawSession rude(port(), version());
  ASSERT_TRUE(rude.Connect(WithWill("rude", "w/p", 0)));
  wire::ConnectFields again;
  again.version = version();
  again.client_id = "rude";
  ASSERT_TRUE(rude.Send(wire::Connect(again)));  // a second CONNECT [MQTT-3.1.0-2]
  EXPECT_TRUE(rude.ExpectDisconnect(0x82));
  // [MQTT-3.1.2-8]: a connection the server closes for a protocol error.
  const std::optional<ReceivedMessage> m = sub.Receive();
  ASSERT_TRUE(m.has_value()) << "no will after a protocol error";
  EXPECT_EQ(m->topic, "w/p");
}

TEST_F(WillsV5, DisconnectWithReason0x04PublishesTheWill) {
  Watch();
  RawSession leaving(port(), MqttVersion::kV5);
  ASSERT_TRUE(leaving.Connect(WithWill("leaving-04", "w/d", 1)));
  ASSERT_TRUE(leaving.Disconnect(0x04));  // Disconnect with Will Message
  // [MQTT-3.14.4-3] discards the will only for reason 0x00.
  const std::optional<ReceivedMessage> m = watcher().Receive();
  ASSERT_TRUE(m.has_value()) << "no will after DISCONNECT 0x04";
  EXPECT_EQ(m->topic, "w/d");
}

TEST_F(WillsV5, CarriesItsPropertiesToSubscribers) {
  RawSession sub(port(), MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect("will-props-sub"));
  ASSERT_EQ(sub.Subscribe({{"w/#", 1}}), (Codes{1}));
  wire::ConnectFields f = WithWill("will-props", "w/props", 1);
  Bytes& props = f.will->properties;
  AddByte(&props, kPayloadFormatIndicator, 1);
  AddString(&props, kContentType, "text/plain");
  AddString(&props, kResponseTopic, "w/reply");
  AddString(&props, kCorrelationData, std::string("\x00\x01\xff", 3));
  AddUserProperty(&props, "b", "1");
  AddUserProperty(&props, "a", "2");
  RawSession dying(port(), MqttVersion::kV5);
  ASSERT_TRUE(dying.Connect(f));
  dying.Drop();
  const std::optional<wire::ReceivedPublish> m = sub.Receive();
  ASSERT_TRUE(m.has_value()) << "no will";
  const PropertyList got = PublishProperties(m->properties);
  EXPECT_EQ(got.Number(kPayloadFormatIndicator), 1u);
  EXPECT_EQ(got.Text(kContentType), "text/plain");
  EXPECT_EQ(got.Text(kResponseTopic), "w/reply");
  EXPECT_EQ(got.Text(kCorrelationData), std::string("\x00\x01\xff", 3));
  EXPECT_EQ(got.User(), (UserProperties{{"b", "1"}, {"a", "2"}}));  // [MQTT-3.3.2-18]
}

TEST_F(WillsV5, WillDelayPostponesTheWill) {
  Watch();
  RawSession dying(port(), MqttVersion::kV5);
  ASSERT_TRUE(dying.Connect(WithDelayedWill("delayed", "w/delay", 2, 10)));
  const auto closed = Clock::now();
  dying.Drop();
  // MQTT 5.0 section 3.1.3.2.2: published once the delay has passed.
  const std::optional<ReceivedMessage> m = watcher().Receive(milliseconds(6000));
  ASSERT_TRUE(m.has_value()) << "no will within 6 s of a 2 s delay";
  EXPECT_EQ(m->topic, "w/delay");
  EXPECT_GE(Clock::now() - closed, milliseconds(1900)) << "the will did not wait";
}

TEST_F(WillsV5, ReconnectingWithinTheWillDelayCancelsTheWill) {
  Watch();
  RawSession dying(port(), MqttVersion::kV5);
  ASSERT_TRUE(dying.Connect(WithDelayedWill("comeback", "w/cancel", 2, 10)));
  const auto closed = Clock::now();
  dying.Drop();
  RawSession back(port(), MqttVersion::kV5);
  wire::ConnectFields f;
  f.client_id = "comeback";
  f.clean_start = false;
  AddU32(&f.properties, kSessionExpiryInterval, 10);
  ASSERT_TRUE(back.Connect(f));
  ASSERT_TRUE(back.connack()->session_present);
  // [MQTT-3.1.3-9]: a new connection to the session within the delay: no
  // will. Waiting out the delay, with margin, is the test.
  const auto deadline = closed + milliseconds(3500);
  const std::optional<ReceivedMessage> m =
      watcher().Receive(std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
  EXPECT_FALSE(m.has_value()) << "will published on " << m->topic;
  ASSERT_TRUE(back.Disconnect());
}

TEST_F(WillsV5, SessionEndingBeforeTheDelaySendsTheWill) {
  Watch();
  RawSession dying(port(), MqttVersion::kV5);
  ASSERT_TRUE(dying.Connect(WithDelayedWill("short-session", "w/expiry", 10, 1)));
  const auto closed = Clock::now();
  dying.Drop();
  // The earlier of the will delay (10 s) and the session's end (1 s)
  // [MQTT-3.1.3-9].
  const std::optional<ReceivedMessage> m = watcher().Receive(milliseconds(5000));
  ASSERT_TRUE(m.has_value()) << "no will within 5 s of a 1 s session expiry";
  EXPECT_EQ(m->topic, "w/expiry");
  EXPECT_GE(Clock::now() - closed, milliseconds(900));
}

TEST_F(WillsV5, CleanStartReconnectEndsTheSessionAndSendsTheDelayedWill) {
  Watch();
  RawSession dying(port(), MqttVersion::kV5);
  ASSERT_TRUE(dying.Connect(WithDelayedWill("restarting", "w/clean", 10, 60)));
  const auto closed = Clock::now();
  dying.Drop();
  RawSession back(port(), MqttVersion::kV5);
  ASSERT_TRUE(back.Connect("restarting"));  // Clean Start 1 ends the old session
  const std::optional<ReceivedMessage> m = watcher().Receive(milliseconds(5000));
  ASSERT_TRUE(m.has_value()) << "no will when the session ended";
  EXPECT_EQ(m->topic, "w/clean");
  EXPECT_LT(Clock::now() - closed, milliseconds(5000)) << "waited for the 10 s delay";
}

TEST_F(WillsV5, SessionThatEndsWithItsConnectionSendsADelayedWillAtOnce) {
  // Session expiry 0, given or absent: the session ends when the connection
  // closes, and with it the wait: the Will goes at once, whatever its delay
  // [MQTT-3.1.3-9] (MQTT 5.0 section 3.1.2.11.2).
  Watch();
  for (bool given : {true, false}) {
    SCOPED_TRACE(given ? "session expiry 0" : "no session expiry");
    wire::ConnectFields f = WithWill(given ? "expiry-zero" : "expiry-absent", "w/now", 1);
    AddU32(&f.will->properties, kWillDelayInterval, 60);
    if (given) AddU32(&f.properties, kSessionExpiryInterval, 0);
    RawSession dying(port(), MqttVersion::kV5);
    ASSERT_TRUE(dying.Connect(f));
    dying.Drop();
    const std::optional<ReceivedMessage> m = watcher().Receive(milliseconds(5000));
    ASSERT_TRUE(m.has_value()) << "the will waited for its 60 s delay";
    EXPECT_EQ(m->topic, "w/now");
  }
}

}  // namespace
}  // namespace ferry::testing::v5
