// CONNECT and CONNACK against a real ferryd: validation of the CONNECT
// packet, client identifiers, CONNACK flags and properties, the connect
// timeout, keep alive, session takeover and shutdown. Raw bytes throughout,
// because these are exactly the packets and closes client libraries hide.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/connect_helpers.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/raw_client.h"
#include "support/subprocess.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr MqttVersion kBothVersions[] = {MqttVersion::kV311, MqttVersion::kV5};

class ConnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_.config().Set("mqtt", "connect_timeout", "1s");
    Configure(node_.config());
    ASSERT_TRUE(node_.Start());
  }

  void TearDown() override {
    if (node_.Running()) {
      EXPECT_TRUE(node_.Stop());
    }
  }

  // Per-suite config on top of the base one.
  virtual void Configure(IniConfig&) {}

  uint16_t port() { return node_.port(); }

  static wire::ConnectFields Fields(MqttVersion v, std::string client_id) {
    wire::ConnectFields f;
    f.version = v;
    f.client_id = std::move(client_id);
    return f;
  }

  static milliseconds Since(Clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
  }

  NodeProcess node_;
};

// ---------------------------------------------------------------------------
// CONNECT validation

class ConnectValidation : public ConnectTest {
 protected:
  // Opens a connection and sends `bytes` as its first packet.
  void SendFirst(RawClient& c, const Bytes& bytes) {
    ASSERT_TRUE(c.Connect(port()));
    ASSERT_TRUE(c.Send(bytes));
  }
};

TEST_F(ConnectValidation, WrongProtocolNameIsClosedWithoutConnack) {
  // [MQTT-3.1.2-1]: the server may close; ferryd does, without a CONNACK a
  // non-MQTT peer could not read (see codec_decode_connect.cpp).
  for (const ConnectHeader& h : {ConnectHeader{"MQTX", 4}, ConnectHeader{"mqtt", 5},
                                 ConnectHeader{"", 4}, ConnectHeader{"MQIsdpX", 3}}) {
    SCOPED_TRACE("protocol name '" + h.protocol_name + "'");
    RawClient c;
    SendFirst(c, HeaderConnect(h, {"bad-name"}));
    EXPECT_TRUE(ClosedSilently(c));
  }
  EXPECT_TRUE(NodeServesNewClients(port()));
}

TEST_F(ConnectValidation, UnknownProtocolLevelGetsReturnCode1ThenClose) {
  // [MQTT-3.1.2-2]: CONNACK 0x01 (unacceptable protocol level), then close.
  for (const ConnectHeader& h : {ConnectHeader{"MQTT", 3}, ConnectHeader{"MQTT", 6},
                                 ConnectHeader{"MQTT", 0}, ConnectHeader{"MQIsdp", 4}}) {
    SCOPED_TRACE(h.protocol_name + " level " + std::to_string(h.level));
    RawClient c;
    SendFirst(c, HeaderConnect(h, {"bad-level"}));
    EXPECT_TRUE(RefusedWith(c, MqttVersion::kV311, 0x01));
  }
  EXPECT_TRUE(NodeServesNewClients(port()));
}

TEST_F(ConnectValidation, ReservedConnectFlagClosesTheConnection) {
  for (MqttVersion v : kBothVersions) {
    SCOPED_TRACE(VersionName(v));
    RawClient c;
    // Clean session plus the reserved bit 0 [MQTT-3.1.2-3].
    SendFirst(c, HeaderConnect({"MQTT", static_cast<uint8_t>(v), 0x03}, {"reserved-flag"}));
    EXPECT_TRUE(ClosedWithoutAccepting(c, v));
  }
  EXPECT_TRUE(NodeServesNewClients(port()));
}

TEST_F(ConnectValidation, WillQosOrRetainWithoutWillFlagClosesTheConnection) {
  // Will flag 0 requires will QoS 0 and will retain 0: [MQTT-3.1.2-13] and
  // [MQTT-3.1.2-15] in 3.1.1, [MQTT-3.1.2-11] and [MQTT-3.1.2-13] in 5.0.
  for (MqttVersion v : kBothVersions) {
    for (uint8_t bits : {uint8_t{0x08}, uint8_t{0x10}, uint8_t{0x20}}) {
      SCOPED_TRACE(std::string(VersionName(v)) + " flags " + wire::Hex({bits}));
      RawClient c;
      SendFirst(c,
                HeaderConnect({"MQTT", static_cast<uint8_t>(v), static_cast<uint8_t>(0x02 | bits)},
                              {"will-bits"}));
      EXPECT_TRUE(ClosedWithoutAccepting(c, v));
    }
  }
  EXPECT_TRUE(NodeServesNewClients(port()));
}

TEST_F(ConnectValidation, PasswordWithoutUserNameClosesAV311Connection) {
  RawClient c;
  // Password flag without the user name flag [MQTT-3.1.2-22].
  SendFirst(c, HeaderConnect({"MQTT", 4, 0x42}, {"password-only", "secret"}));
  EXPECT_TRUE(ClosedSilently(c));
  EXPECT_TRUE(NodeServesNewClients(port()));
}

TEST_F(ConnectValidation, V5AcceptsAPasswordWithoutUserName) {
  // MQTT 5.0 section 3.1.2.9 allows a password without a user name; the
  // node allows anonymous clients, so this one is accepted.
  RawClient c;
  SendFirst(c, HeaderConnect({"MQTT", 5, 0x42}, {"password-only-v5", "secret"}));
  const std::optional<Bytes> raw = c.ReadPacket();
  ASSERT_TRUE(raw.has_value()) << c.error();
  const std::optional<ConnackFields> connack = ParseConnackFields(MqttVersion::kV5, *raw);
  ASSERT_TRUE(connack.has_value()) << wire::Hex(*raw);
  EXPECT_EQ(connack->code, 0x00);
}

TEST_F(ConnectValidation, FirstPacketOtherThanConnectClosesTheConnection) {
  // [MQTT-3.1.0-1]: the first packet from the client must be CONNECT.
  const std::vector<Bytes> firsts = {
      wire::PingReq(),
      wire::Subscribe(MqttVersion::kV311, 1, {{"a/b", 0}}),
      wire::Publish(MqttVersion::kV311, PublishOf("a/b", "early", 0)),
      wire::Disconnect(MqttVersion::kV311),
  };
  for (const Bytes& first : firsts) {
    SCOPED_TRACE(wire::Hex(first));
    RawClient c;
    SendFirst(c, first);
    EXPECT_TRUE(ClosedSilently(c));
  }
  EXPECT_TRUE(NodeServesNewClients(port()));
}

TEST_F(ConnectValidation, SecondConnectClosesTheConnection) {
  // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation; v5 clients are
  // told 0x82 (protocol error) first.
  for (MqttVersion v : kBothVersions) {
    SCOPED_TRACE(VersionName(v));
    RawClient c;
    const wire::ConnectFields f = Fields(v, std::string("twice-") + VersionName(v));
    ASSERT_TRUE(RawConnect(c, port(), f));
    ASSERT_TRUE(c.Send(wire::Connect(f)));
    if (v == MqttVersion::kV5) {
      EXPECT_TRUE(DisconnectedWith(c, 0x82));
    } else {
      EXPECT_TRUE(ClosedSilently(c));
    }
  }
  EXPECT_TRUE(NodeServesNewClients(port()));
}

// ---------------------------------------------------------------------------
// Client identifiers

using ClientIdentifier = ConnectTest;

TEST_F(ClientIdentifier, EmptyIdWithCleanSessionIsAcceptedInV311) {
  // [MQTT-3.1.3-6]: the server may accept an empty id with clean session 1
  // ([mqtt] allow_zero_length_clientid, on by default) and gives each such
  // client a unique id, so two of them do not take each other over.
  RawClient first, second;
  ASSERT_TRUE(RawConnect(first, port(), Fields(MqttVersion::kV311, "")));
  ASSERT_TRUE(RawConnect(second, port(), Fields(MqttVersion::kV311, "")));
  EXPECT_TRUE(PingPong(first));
  EXPECT_TRUE(PingPong(second));
}

TEST_F(ClientIdentifier, EmptyIdWithoutCleanSessionIsRefusedWith0x02) {
  wire::ConnectFields f = Fields(MqttVersion::kV311, "");
  f.clean_start = false;
  RawClient c;
  ASSERT_TRUE(c.Connect(port()));
  ASSERT_TRUE(c.Send(wire::Connect(f)));
  EXPECT_TRUE(RefusedWith(c, MqttVersion::kV311, 0x02));  // [MQTT-3.1.3-8]
  EXPECT_TRUE(NodeServesNewClients(port()));
}

TEST_F(ClientIdentifier, V5EmptyIdGetsAnAssignedClientIdentifier) {
  // [MQTT-3.1.3-6]: a unique id is assigned; [MQTT-3.1.3-7]: it is returned
  // in the CONNACK as Assigned Client Identifier.
  RawClient first, second;
  const std::optional<ConnackFields> a =
      ConnectAndReadConnack(first, port(), Fields(MqttVersion::kV5, ""));
  const std::optional<ConnackFields> b =
      ConnectAndReadConnack(second, port(), Fields(MqttVersion::kV5, ""));
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->code, 0x00);
  EXPECT_EQ(b->code, 0x00);
  const std::optional<std::string> id_a = a->props.Text(prop::kAssignedClientIdentifier);
  const std::optional<std::string> id_b = b->props.Text(prop::kAssignedClientIdentifier);
  ASSERT_TRUE(id_a.has_value() && id_b.has_value());
  EXPECT_FALSE(id_a->empty());
  EXPECT_NE(*id_a, *id_b);
  EXPECT_TRUE(PingPong(first));
  EXPECT_TRUE(PingPong(second));

  // A client that chose its id is not sent one.
  RawClient named;
  const std::optional<ConnackFields> c =
      ConnectAndReadConnack(named, port(), Fields(MqttVersion::kV5, "named-v5"));
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(c->props.Has(prop::kAssignedClientIdentifier));
}

TEST_F(ClientIdentifier, Mqtt31ClientConnectsAndReceivesMessages) {
  // MQTT 3.1: protocol name "MQIsdp", level 3, same packet layout as 3.1.1.
  RawClient v31;
  ASSERT_TRUE(v31.Connect(port()));
  ASSERT_TRUE(v31.Send(HeaderConnect({"MQIsdp", 3, 0x02}, {"mqtt31-client"})));
  const std::optional<Bytes> connack = v31.ReadPacket();
  ASSERT_TRUE(connack.has_value()) << v31.error();
  EXPECT_EQ(wire::Hex(*connack), "20 02 00 00");
  const std::optional<std::vector<uint8_t>> codes =
      RawSubscribe(v31, MqttVersion::kV311, 1, {{"v31/topic", 1}});
  ASSERT_TRUE(codes.has_value());
  EXPECT_EQ(*codes, std::vector<uint8_t>{1});

  // mosquitto_pub speaking 3.1 itself, to the 3.1 subscriber.
  const CommandResult pub =
      RunCommand({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port()), "-V", "mqttv31",
                  "-i", "mqtt31-pub", "-t", "v31/topic", "-q", "1", "-m", "from 3.1"});
  ASSERT_TRUE(pub.Succeeded()) << pub.ToString();
  const std::optional<wire::ReceivedPublish> p = NextPublish(v31, MqttVersion::kV311);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->topic, "v31/topic");
  EXPECT_EQ(p->payload, "from 3.1");
  EXPECT_EQ(p->qos, 1);
  EXPECT_TRUE(v31.Send(wire::PublishAck(wire::kPuback, MqttVersion::kV311, p->packet_id)));
  EXPECT_TRUE(PingPong(v31));
}

TEST_F(ClientIdentifier, Mqtt31RefusesAnEmptyClientIdWith0x02) {
  // MQTT 3.1 requires 1 to 23 characters; otherwise CONNACK 2.
  RawClient c;
  ASSERT_TRUE(c.Connect(port()));
  ASSERT_TRUE(c.Send(HeaderConnect({"MQIsdp", 3, 0x02}, {""})));
  EXPECT_TRUE(RefusedWith(c, MqttVersion::kV311, 0x02));
}

// ---------------------------------------------------------------------------
// CONNACK

class Connack : public ConnectTest {
 protected:
  void Configure(IniConfig& config) override {
    config.Set("mqtt", "receive_maximum", "20");
    config.Set("mqtt", "max_packet_size", "65536");
    config.Set("mqtt", "topic_alias_maximum", "7");
  }

  // Connects `id` with `clean`, returns Session Present, and disconnects.
  bool SessionPresent(MqttVersion v, const std::string& id, bool clean) {
    wire::ConnectFields f = Fields(v, id);
    f.clean_start = clean;
    // v5: a session that outlives the connection only without clean start,
    // as with 3.1.1's clean session.
    if (v == MqttVersion::kV5 && !clean) {
      v5::AddU32(&f.properties, prop::kSessionExpiryInterval, 60);
    }
    RawClient c;
    const std::optional<ConnackFields> connack = ConnectAndReadConnack(c, port(), f);
    if (!connack) return false;
    EXPECT_EQ(connack->code, 0x00);
    // Bits 7-1 of the acknowledge flags are reserved and 0 [MQTT-3.2.2-1] (5.0).
    EXPECT_EQ(connack->flags & 0xFE, 0) << "flags " << int{connack->flags};
    EXPECT_TRUE(c.Send(wire::Disconnect(v)));
    EXPECT_TRUE(c.IsClosed());
    return (connack->flags & 0x01) != 0;
  }
};

TEST_F(Connack, V5ConnackAnnouncesTheNodeLimits) {
  RawClient c;
  const std::optional<ConnackFields> connack =
      ConnectAndReadConnack(c, port(), Fields(MqttVersion::kV5, "limits"));
  ASSERT_TRUE(connack.has_value());
  EXPECT_EQ(connack->code, 0x00);
  EXPECT_EQ(connack->props.Number(prop::kReceiveMaximum), 20u);
  EXPECT_EQ(connack->props.Number(prop::kMaximumPacketSize), 65536u);
  EXPECT_EQ(connack->props.Number(prop::kTopicAliasMaximum), 7u);
}

TEST_F(Connack, SessionPresentFollowsCleanSessionAndStoredState) {
  for (MqttVersion v : kBothVersions) {
    SCOPED_TRACE(VersionName(v));
    const std::string id = std::string("session-present-") + VersionName(v);
    // Clean session/start 1: always 0 [MQTT-3.2.2-1] (3.1.1), [MQTT-3.2.2-2] (5.0).
    EXPECT_FALSE(SessionPresent(v, id, true));
    // Clean 0 without a stored session: 0 [MQTT-3.2.2-3] (3.1.1).
    EXPECT_FALSE(SessionPresent(v, id, false));
    // Clean 0 with the session kept from last time: 1 [MQTT-3.2.2-2]
    // (3.1.1), [MQTT-3.2.2-3] (5.0).
    EXPECT_TRUE(SessionPresent(v, id, false));
    // Clean 1 discards it, so the next clean 0 finds none.
    EXPECT_FALSE(SessionPresent(v, id, true));
    EXPECT_FALSE(SessionPresent(v, id, false));
  }
}

// ---------------------------------------------------------------------------
// Connect timeout ([mqtt] connect_timeout = 1s in this file's config)

using ConnectTimeout = ConnectTest;

TEST_F(ConnectTimeout, ASocketThatSendsNoConnectIsClosedAfterTheTimeout) {
  const Clock::time_point start = Clock::now();
  RawClient silent, partial;
  ASSERT_TRUE(silent.Connect(port()));
  ASSERT_TRUE(partial.Connect(port()));
  // Half a CONNECT is no better than none.
  const Bytes connect = wire::Connect(Fields(MqttVersion::kV311, "half"));
  ASSERT_TRUE(partial.Send(Bytes(connect.begin(), connect.begin() + 6)));
  EXPECT_TRUE(ClosedSilently(silent, milliseconds(4000)));
  const milliseconds elapsed = Since(start);
  EXPECT_TRUE(ClosedSilently(partial, milliseconds(4000)));
  EXPECT_GE(elapsed.count(), 800) << "closed before connect_timeout";
  EXPECT_LE(elapsed.count(), 3000) << "closed long after connect_timeout";
  EXPECT_TRUE(NodeServesNewClients(port()));
}

// ---------------------------------------------------------------------------
// Keep alive

using KeepAlive = ConnectTest;

// Connects with keep alive 1 s, stays silent, and returns how long after the
// CONNACK the server closed the connection (after `expect_disconnect`, a v5
// DISCONNECT reason code, if set).
milliseconds SilentUntilClosed(uint16_t port, MqttVersion v,
                               std::optional<uint8_t> expect_disconnect) {
  wire::ConnectFields f;
  f.version = v;
  f.client_id = std::string("silent-") + VersionName(v);
  f.keepalive_s = 1;
  RawClient c;
  EXPECT_TRUE(RawConnect(c, port, f));
  const Clock::time_point connected = Clock::now();
  if (expect_disconnect) {
    EXPECT_TRUE(DisconnectedWith(c, *expect_disconnect, milliseconds(5000)));
  } else {
    EXPECT_TRUE(ClosedSilently(c, milliseconds(5000)));
  }
  return std::chrono::duration_cast<milliseconds>(Clock::now() - connected);
}

TEST_F(KeepAlive, V311ClientSilentForOneAndAHalfKeepAlivesIsClosed) {
  // [MQTT-3.1.2-24]: closed once 1.5 x keep alive passes without a packet.
  const milliseconds elapsed = SilentUntilClosed(port(), MqttVersion::kV311, std::nullopt);
  EXPECT_GE(elapsed.count(), 1400);
  EXPECT_LE(elapsed.count(), 3000);
  EXPECT_TRUE(NodeServesNewClients(port()));
}

TEST_F(KeepAlive, V5ClientSilentForOneAndAHalfKeepAlivesGetsDisconnect0x8D) {
  // [MQTT-3.1.2-22] (5.0 numbering of the 1.5 x rule); reason 0x8D is
  // Keep Alive timeout.
  const milliseconds elapsed = SilentUntilClosed(port(), MqttVersion::kV5, 0x8D);
  EXPECT_GE(elapsed.count(), 1400);
  EXPECT_LE(elapsed.count(), 3000);
  EXPECT_TRUE(NodeServesNewClients(port()));
}

TEST_F(KeepAlive, PingreqsKeepTheConnectionAlive) {
  RawClient clients[2];
  for (int i = 0; i < 2; ++i) {
    wire::ConnectFields f =
        Fields(kBothVersions[i], std::string("pinger-") + VersionName(kBothVersions[i]));
    f.keepalive_s = 1;
    ASSERT_TRUE(RawConnect(clients[i], port(), f));
  }
  // Three seconds, twice the 1.5 s limit, with a PINGREQ every half second.
  for (int round = 0; round < 6; ++round) {
    for (RawClient& c : clients) EXPECT_TRUE(PingPong(c)) << "round " << round;  // [MQTT-3.12.4-1]
    for (RawClient& c : clients) EXPECT_TRUE(NothingArrives(c, milliseconds(250)));
  }
}

class ServerKeepAlive : public ConnectTest {
 protected:
  void Configure(IniConfig& config) override { config.Set("mqtt", "max_keepalive", "10"); }
};

TEST_F(ServerKeepAlive, CapsTheKeepAliveAV5ClientAsksFor) {
  wire::ConnectFields f = Fields(MqttVersion::kV5, "asks-60");
  f.keepalive_s = 60;
  RawClient capped;
  const std::optional<ConnackFields> a = ConnectAndReadConnack(capped, port(), f);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->code, 0x00);
  // [MQTT-3.2.2-21]: the client must use the Server Keep Alive it is sent.
  EXPECT_EQ(a->props.Number(prop::kServerKeepAlive), 10u);

  // Within the limit nothing is sent, and the client's value holds [MQTT-3.2.2-22].
  f.client_id = "asks-5";
  f.keepalive_s = 5;
  RawClient within;
  const std::optional<ConnackFields> b = ConnectAndReadConnack(within, port(), f);
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(b->props.Has(prop::kServerKeepAlive));
}

// ---------------------------------------------------------------------------
// Session takeover, authentication method, shutdown

using SessionTakeover = ConnectTest;

TEST_F(SessionTakeover, ANewConnectionWithTheSameIdClosesTheOldOne) {
  // [MQTT-3.1.4-3]: the server disconnects the existing client; a v5 client
  // is told 0x8E (session taken over).
  const std::pair<MqttVersion, MqttVersion> cases[] = {
      {MqttVersion::kV311, MqttVersion::kV311},
      {MqttVersion::kV5, MqttVersion::kV5},
      {MqttVersion::kV5, MqttVersion::kV311},
      {MqttVersion::kV311, MqttVersion::kV5},
  };
  int n = 0;
  for (const auto& [old_v, new_v] : cases) {
    SCOPED_TRACE(std::string("old ") + VersionName(old_v) + ", new " + VersionName(new_v));
    const std::string id = "taken-over-" + std::to_string(n++);
    RawClient old_conn, new_conn;
    ASSERT_TRUE(RawConnect(old_conn, port(), Fields(old_v, id)));
    ASSERT_TRUE(RawConnect(new_conn, port(), Fields(new_v, id)));
    if (old_v == MqttVersion::kV5) {
      EXPECT_TRUE(DisconnectedWith(old_conn, 0x8E));
    } else {
      EXPECT_TRUE(ClosedSilently(old_conn));
    }
    EXPECT_TRUE(PingPong(new_conn));
  }
}

using AuthenticationMethod = ConnectTest;

TEST_F(AuthenticationMethod, V5ConnectWithAnAuthenticationMethodIsRefusedWith0x8C) {
  // [MQTT-4.12.0-1]: an unsupported method gets 0x8C (or 0x87), then close.
  wire::ConnectFields f = Fields(MqttVersion::kV5, "scram");
  v5::AddString(&f.properties, prop::kAuthenticationMethod, "SCRAM-SHA-1");
  RawClient c;
  ASSERT_TRUE(c.Connect(port()));
  ASSERT_TRUE(c.Send(wire::Connect(f)));
  EXPECT_TRUE(RefusedWith(c, MqttVersion::kV5, 0x8C));
  EXPECT_TRUE(NodeServesNewClients(port()));
}

using Shutdown = ConnectTest;

TEST_F(Shutdown, SigtermSendsV5ClientsDisconnect0x8BAndExitsCleanly) {
  RawClient v5_a, v5_b, v311;
  ASSERT_TRUE(RawConnect(v5_a, port(), Fields(MqttVersion::kV5, "shutdown-a")));
  ASSERT_TRUE(RawConnect(v5_b, port(), Fields(MqttVersion::kV5, "shutdown-b")));
  ASSERT_TRUE(RawConnect(v311, port(), Fields(MqttVersion::kV311, "shutdown-c")));
  ASSERT_TRUE(node_.Stop());  // SIGTERM, then exit code 0
  ASSERT_TRUE(node_.exit_status().has_value());
  EXPECT_TRUE(node_.exit_status()->Clean()) << node_.exit_status()->ToString();
  // 0x8B: server shutting down. 3.1.1 has no DISCONNECT from the server.
  EXPECT_TRUE(DisconnectedWith(v5_a, 0x8B));
  EXPECT_TRUE(DisconnectedWith(v5_b, 0x8B));
  EXPECT_TRUE(ClosedSilently(v311));
}

}  // namespace
}  // namespace ferry::testing
