// Authentication, authorization and configuration errors against a real
// ferryd: anonymous access, password files written by `ferryd --passwd` and
// by Debian's mosquitto_passwd, the ACL file (format in src/core/acl.h),
// SIGHUP reloads, and how a bad config file or environment override is
// reported.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "support/connect_helpers.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/paho_client.h"
#include "support/raw_client.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;

constexpr MqttVersion kBothVersions[] = {MqttVersion::kV311, MqttVersion::kV5};

// CONNACK codes for a refused login, 3.1.1 return code vs v5 reason code.
uint8_t BadCredentials(MqttVersion v) { return v == MqttVersion::kV5 ? 0x86 : 0x04; }
uint8_t NotAuthorized(MqttVersion v) { return v == MqttVersion::kV5 ? 0x87 : 0x05; }
// SUBACK code for a refused subscription: 0x80 Failure / 0x87 Not authorized.
uint8_t SubscribeRefused(MqttVersion v) { return v == MqttVersion::kV5 ? 0x87 : 0x80; }

class AuthTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (node_.Running()) {
      EXPECT_TRUE(node_.Stop());
    }
  }

  std::string Path(const std::string& name) const { return node_.dir() + "/" + name; }

  // `ferryd --passwd FILE USER`, the password on its standard input.
  static ::testing::AssertionResult FerrydPasswd(const std::string& file, const std::string& user,
                                                 const std::string& password) {
    const CommandResult r =
        RunCommand({"sh", "-c", "printf '%s\\n' \"$3\" | \"$0\" --passwd \"$1\" \"$2\"",
                    FerryBinary(), file, user, password});
    if (r.Succeeded()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "ferryd --passwd: " << r.ToString();
  }

  // `mosquitto_passwd -b FILE USER PASSWORD` (the file must exist).
  static ::testing::AssertionResult MosquittoPasswd(const std::string& file,
                                                    const std::string& user,
                                                    const std::string& password) {
    const CommandResult r = RunCommand({"mosquitto_passwd", "-b", file, user, password});
    if (r.Succeeded()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "mosquitto_passwd: " << r.ToString();
  }

  static wire::ConnectFields Login(MqttVersion v, std::string client_id,
                                   std::optional<std::string> user,
                                   std::optional<std::string> password) {
    wire::ConnectFields f;
    f.version = v;
    f.client_id = std::move(client_id);
    f.username = std::move(user);
    f.password = std::move(password);
    return f;
  }

  // Sends `f` and expects CONNACK `code` (then a close, unless it is 0).
  ::testing::AssertionResult Answered(const wire::ConnectFields& f, uint8_t code) {
    RawClient c;
    if (code == 0) return RawConnect(c, node_.port(), f);
    if (auto ok = c.Connect(node_.port()); !ok) return ok;
    if (auto ok = c.Send(wire::Connect(f)); !ok) return ok;
    return RefusedWith(c, f.version, code);
  }

  NodeProcess node_;
};

// ---------------------------------------------------------------------------
// Authentication

using Authentication = AuthTest;

TEST_F(Authentication, AnonymousClientIsRefusedWhenAnonymousAccessIsOff) {
  node_.config().Set("mqtt", "allow_anonymous", "false");
  ASSERT_TRUE(node_.Start());
  for (MqttVersion v : kBothVersions) {
    SCOPED_TRACE(VersionName(v));
    // 0x05 Not authorized (3.1.1) / 0x87 (5.0), then close [MQTT-3.2.2-5]
    // (3.1.1), [MQTT-3.2.2-7] (5.0).
    EXPECT_TRUE(Answered(Login(v, "anonymous", std::nullopt, std::nullopt), NotAuthorized(v)));
  }
}

TEST_F(Authentication, PasswordFileFromFerrydAndMosquittoPasswdChecksPasswords) {
  const std::string passwd = Path("passwd");
  ASSERT_TRUE(FerrydPasswd(passwd, "alice", "alice-secret"));
  ASSERT_TRUE(MosquittoPasswd(passwd, "bob", "bob secret"));  // mosquitto's own hash format
  node_.config().Set("mqtt", "allow_anonymous", "false");
  node_.config().Set("mqtt", "password_file", passwd);
  ASSERT_TRUE(node_.Start());

  for (MqttVersion v : kBothVersions) {
    SCOPED_TRACE(VersionName(v));
    EXPECT_TRUE(Answered(Login(v, "a1", "alice", "alice-secret"), 0x00));
    EXPECT_TRUE(Answered(Login(v, "b1", "bob", "bob secret"), 0x00));
    // 0x04 Bad user name or password (3.1.1) / 0x86 (5.0).
    EXPECT_TRUE(Answered(Login(v, "a2", "alice", "bob secret"), BadCredentials(v)));
    EXPECT_TRUE(Answered(Login(v, "b2", "bob", "Bob secret"), BadCredentials(v)));
    EXPECT_TRUE(Answered(Login(v, "c1", "carol", "alice-secret"), BadCredentials(v)));
    EXPECT_TRUE(Answered(Login(v, "a3", "alice", std::nullopt), BadCredentials(v)));
    EXPECT_TRUE(Answered(Login(v, "n1", std::nullopt, std::nullopt), NotAuthorized(v)));
  }

  // The same through real clients.
  PahoClient paho(node_.port(), "paho-alice", MqttVersion::kV5);
  PahoConnectOptions options;
  options.username = "alice";
  options.password = "alice-secret";
  EXPECT_TRUE(paho.Connect(options));
  const std::string port = std::to_string(node_.port());
  const CommandResult good =
      RunCommand({"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-u", "bob", "-P", "bob secret",
                  "-t", "t", "-m", "m", "-q", "1"});
  EXPECT_TRUE(good.Succeeded()) << good.ToString();
  const CommandResult bad = RunCommand({"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-u", "bob",
                                        "-P", "wrong", "-t", "t", "-m", "m", "-q", "1"});
  EXPECT_FALSE(bad.Succeeded()) << bad.ToString();
}

// ---------------------------------------------------------------------------
// Access control list

constexpr const char* kAcl = R"(# Anonymous clients may only read public/.
topic read public/#

user alice
topic readwrite sensors/#
topic deny sensors/secret/#
topic read public/#

user bob
topic read sensors/#
topic readwrite public/#

user carol
topic write sensors/#

pattern readwrite devices/%u/%c/#
pattern read inbox/%c
)";

class Acl : public AuthTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFile(Path("acl"), kAcl));
    node_.config().Set("mqtt", "acl_file", Path("acl"));
    ASSERT_TRUE(node_.Start());
  }

  // A connected raw client; no password file is configured, so any user
  // name is accepted and only the ACL decides.
  void Open(RawClient& c, MqttVersion v, const std::string& client_id,
            std::optional<std::string> user) {
    ASSERT_TRUE(RawConnect(c, node_.port(), Login(v, client_id, std::move(user), std::nullopt)));
  }

  // Publishes at QoS 1 and returns the PUBACK's reason code.
  static std::optional<uint8_t> PublishQos1(RawClient& c, MqttVersion v, const std::string& topic,
                                            uint16_t packet_id) {
    if (!c.Send(wire::Publish(v, PublishOf(topic, "payload", 1, packet_id)))) return std::nullopt;
    const std::optional<Bytes> raw = c.ReadPacket();
    if (!raw) return std::nullopt;
    const std::optional<AckFields> ack = ParseAck(v, *raw);
    if (!ack || ack->type != wire::kPuback || ack->packet_id != packet_id) {
      ADD_FAILURE() << "expected PUBACK " << packet_id << ", got " << wire::Hex(*raw);
      return std::nullopt;
    }
    return ack->reason;
  }
};

TEST_F(Acl, DeniedSubscriptionsGetAFailureCodeInTheirPlace) {
  for (MqttVersion v : kBothVersions) {
    SCOPED_TRACE(VersionName(v));
    RawClient alice;
    Open(alice, v, std::string("alice-sub-") + VersionName(v), "alice");
    const std::optional<std::vector<uint8_t>> codes =
        RawSubscribe(alice, v, 1,
                     {{"sensors/+/temp", 1},    // granted: sensors/# covers it
                      {"public/#", 1},          // granted: read
                      {"bob/#", 1},             // nothing grants it
                      {"sensors/secret/#", 1},  // deny covers it
                      {"#", 0}});               // nothing covers every topic
    ASSERT_TRUE(codes.has_value());
    // One code per filter, in order [MQTT-3.9.3-1].
    const uint8_t no = SubscribeRefused(v);
    EXPECT_EQ(*codes, (std::vector<uint8_t>{1, 1, no, no, no}));
  }
}

TEST_F(Acl, DeniedPublishIsAcknowledgedAndDroppedInV311AndRefusedInV5) {
  RawClient bob;
  Open(bob, MqttVersion::kV311, "bob-reader", "bob");
  ASSERT_TRUE(RawSubscribe(bob, MqttVersion::kV311, 1, {{"public/#", 1}, {"sensors/#", 1}}));
  for (MqttVersion v : kBothVersions) {
    SCOPED_TRACE(VersionName(v));
    RawClient alice;
    Open(alice, v, std::string("alice-pub-") + VersionName(v), "alice");
    // alice may only read public/. 3.1.1 has no way to refuse a PUBLISH, so
    // it is acknowledged and dropped; v5 answers 0x87 Not authorized.
    EXPECT_EQ(PublishQos1(alice, v, "public/news", 10), v == MqttVersion::kV5 ? 0x87 : 0x00);
    ASSERT_TRUE(alice.Send(wire::Publish(v, PublishOf("public/qos2", "payload", 2, 11))));
    const std::optional<Bytes> pubrec = alice.ReadPacket();
    ASSERT_TRUE(pubrec.has_value()) << alice.error();
    const std::optional<AckFields> rec = ParseAck(v, *pubrec);
    ASSERT_TRUE(rec.has_value() && rec->type == wire::kPubrec) << wire::Hex(*pubrec);
    EXPECT_EQ(rec->reason, v == MqttVersion::kV5 ? 0x87 : 0x00);
    if (v == MqttVersion::kV311) {
      ASSERT_TRUE(alice.Send(wire::PublishAck(wire::kPubrel, v, 11)));
      const std::optional<Bytes> pubcomp = alice.ReadPacket();
      ASSERT_TRUE(pubcomp.has_value()) << alice.error();
      EXPECT_EQ(wire::Hex(*pubcomp), "70 02 00 0b");
    }
    // A permitted publish after them is the first thing bob sees.
    EXPECT_EQ(PublishQos1(alice, v, "sensors/ok", 12), 0x00);
    const std::optional<wire::ReceivedPublish> got = NextPublish(bob, MqttVersion::kV311);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->topic, "sensors/ok");
    ASSERT_TRUE(bob.Send(wire::PublishAck(wire::kPuback, MqttVersion::kV311, got->packet_id)));
    EXPECT_TRUE(NothingArrives(bob, milliseconds(200)));
  }
}

TEST_F(Acl, PatternsSubstituteTheUserNameAndClientId) {
  const MqttVersion v = MqttVersion::kV5;
  RawClient bob;
  Open(bob, v, "bob-phone", "bob");
  const uint8_t no = SubscribeRefused(v);
  const std::optional<std::vector<uint8_t>> codes =
      RawSubscribe(bob, v, 1,
                   {{"devices/bob/bob-phone/#", 1},    // %u and %c both match
                    {"devices/bob/bob-laptop/#", 1},   // another client id
                    {"devices/alice/bob-phone/#", 1},  // another user name
                    {"inbox/bob-phone", 1},            // %c alone, read
                    {"inbox/alice-phone", 1}});
  ASSERT_TRUE(codes.has_value());
  EXPECT_EQ(*codes, (std::vector<uint8_t>{1, no, no, 1, no}));
  EXPECT_EQ(PublishQos1(bob, v, "inbox/bob-phone", 2), 0x87);  // read only
  // readwrite: bob's own message comes back to him through his subscription.
  ASSERT_TRUE(bob.Send(wire::Publish(v, PublishOf("devices/bob/bob-phone/state", "on", 1, 3))));
  bool acked = false, delivered = false;
  for (int i = 0; i < 2; ++i) {
    const std::optional<Bytes> raw = bob.ReadPacket();
    ASSERT_TRUE(raw.has_value()) << bob.error();
    const std::optional<AckFields> ack = ParseAck(v, *raw);
    const std::optional<wire::ReceivedPublish> p = wire::ParsePublish(v, *raw);
    if (ack && ack->type == wire::kPuback && ack->packet_id == 3 && ack->reason == 0) acked = true;
    if (p && p->topic == "devices/bob/bob-phone/state") delivered = true;
  }
  EXPECT_TRUE(acked && delivered);

  // Without a user name the %u pattern applies to nobody; %c still does.
  RawClient anonymous;
  Open(anonymous, v, "anon-1", std::nullopt);
  const std::optional<std::vector<uint8_t>> anon_codes = RawSubscribe(
      anonymous, v, 1, {{"devices/anon-1/anon-1/#", 1}, {"inbox/anon-1", 1}, {"public/#", 1}});
  ASSERT_TRUE(anon_codes.has_value());
  EXPECT_EQ(*anon_codes, (std::vector<uint8_t>{no, 1, 1}));
  EXPECT_EQ(PublishQos1(anonymous, v, "public/x", 2), 0x87);  // the anonymous block only reads
}

TEST_F(Acl, DenyWinsOverAGrant) {
  const MqttVersion v = MqttVersion::kV5;
  RawClient alice;
  Open(alice, v, "alice-deny", "alice");
  // readwrite sensors/# grants both, topic deny sensors/secret/# takes them back.
  const std::optional<std::vector<uint8_t>> codes =
      RawSubscribe(alice, v, 1, {{"sensors/secret/#", 1}, {"sensors/secret/x", 1}});
  ASSERT_TRUE(codes.has_value());
  EXPECT_EQ(*codes, (std::vector<uint8_t>{0x87, 0x87}));
  EXPECT_EQ(PublishQos1(alice, v, "sensors/secret/x", 2), 0x87);
  EXPECT_EQ(PublishQos1(alice, v, "sensors/open", 3), 0x00);
}

TEST_F(Acl, AMessageOnATopicTheSubscriberMayNotReadIsNotDelivered) {
  for (MqttVersion v : kBothVersions) {
    SCOPED_TRACE(VersionName(v));
    RawClient alice, carol;
    Open(alice, v, std::string("alice-recv-") + VersionName(v), "alice");
    Open(carol, v, std::string("carol-send-") + VersionName(v), "carol");
    // Granted: the deny rule only overlaps sensors/#.
    const std::optional<std::vector<uint8_t>> codes = RawSubscribe(alice, v, 1, {{"sensors/#", 1}});
    ASSERT_TRUE(codes.has_value());
    EXPECT_EQ(*codes, std::vector<uint8_t>{1});
    EXPECT_EQ(PublishQos1(carol, v, "sensors/secret/door", 1), 0x00);
    EXPECT_EQ(PublishQos1(carol, v, "sensors/open/door", 2), 0x00);
    const std::optional<wire::ReceivedPublish> got = NextPublish(alice, v);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->topic, "sensors/open/door");
    ASSERT_TRUE(alice.Send(wire::PublishAck(wire::kPuback, v, got->packet_id)));
    EXPECT_TRUE(NothingArrives(alice, milliseconds(200)));
  }
}

// ---------------------------------------------------------------------------
// SIGHUP

using Reload = AuthTest;

TEST_F(Reload, SighupAppliesNewPasswordsAndAclWithoutDroppingClients) {
  const std::string passwd = Path("passwd");
  const std::string acl = Path("acl");
  ASSERT_TRUE(FerrydPasswd(passwd, "alice", "old-password"));
  ASSERT_TRUE(WriteFile(acl, "user alice\ntopic readwrite a/#\n"));
  node_.config().Set("mqtt", "allow_anonymous", "false");
  node_.config().Set("mqtt", "password_file", passwd);
  node_.config().Set("mqtt", "acl_file", acl);
  ASSERT_TRUE(node_.Start());

  const MqttVersion v = MqttVersion::kV5;
  RawClient old_alice;
  ASSERT_TRUE(RawConnect(old_alice, node_.port(), Login(v, "alice-old", "alice", "old-password")));
  ASSERT_TRUE(RawSubscribe(old_alice, v, 1, {{"a/x", 1}}));
  EXPECT_TRUE(Answered(Login(v, "bob-early", "bob", "bob-password"), 0x86));

  ASSERT_TRUE(FerrydPasswd(passwd, "alice", "new-password"));   // changes alice
  ASSERT_TRUE(MosquittoPasswd(passwd, "bob", "bob-password"));  // adds bob
  ASSERT_TRUE(WriteFile(acl, "user alice\ntopic readwrite b/#\nuser bob\ntopic readwrite #\n"));
  ASSERT_TRUE(node_.Signal(SIGHUP));
  ASSERT_TRUE(node_.WaitForLog("reloaded"));

  // New connections see the new password file.
  EXPECT_TRUE(Answered(Login(v, "alice-2", "alice", "old-password"), 0x86));
  EXPECT_TRUE(Answered(Login(v, "alice-3", "alice", "new-password"), 0x00));
  EXPECT_TRUE(Answered(Login(v, "bob-late", "bob", "bob-password"), 0x00));

  // The connected client stayed connected, and its next operations follow the new ACL.
  EXPECT_TRUE(PingPong(old_alice));
  const std::optional<std::vector<uint8_t>> codes =
      RawSubscribe(old_alice, v, 2, {{"a/y", 1}, {"b/y", 1}});
  ASSERT_TRUE(codes.has_value());
  EXPECT_EQ(*codes, (std::vector<uint8_t>{0x87, 1}));
  // Its old subscription to a/x no longer delivers what it may not read.
  RawClient bob;
  ASSERT_TRUE(RawConnect(bob, node_.port(), Login(v, "bob-pub", "bob", "bob-password")));
  ASSERT_TRUE(bob.Send(wire::Publish(v, PublishOf("a/x", "hidden", 1, 1))));
  ASSERT_TRUE(bob.Send(wire::Publish(v, PublishOf("b/y", "visible", 1, 2))));
  const std::optional<wire::ReceivedPublish> got = NextPublish(old_alice, v);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->topic, "b/y");
}

TEST_F(Reload, SighupWithABrokenAclKeepsTheRunningRules) {
  const std::string acl = Path("acl");
  ASSERT_TRUE(WriteFile(acl, "topic readwrite a/#\n"));
  node_.config().Set("mqtt", "acl_file", acl);
  ASSERT_TRUE(node_.Start());
  const MqttVersion v = MqttVersion::kV5;
  RawClient before;
  ASSERT_TRUE(RawConnect(before, node_.port(), Login(v, "before", std::nullopt, std::nullopt)));

  ASSERT_TRUE(WriteFile(acl, "topic readwrite b/#\ntopik read c/#\n"));
  ASSERT_TRUE(node_.Signal(SIGHUP));
  // The error names the file and line; the node keeps running on the old rules.
  EXPECT_TRUE(node_.WaitForLog(acl + ":2"));
  EXPECT_TRUE(PingPong(before));
  RawClient after;
  ASSERT_TRUE(RawConnect(after, node_.port(), Login(v, "after", std::nullopt, std::nullopt)));
  const std::optional<std::vector<uint8_t>> codes =
      RawSubscribe(after, v, 1, {{"a/x", 0}, {"b/x", 0}});
  ASSERT_TRUE(codes.has_value());
  EXPECT_EQ(*codes, (std::vector<uint8_t>{0, 0x87}));
}

// ---------------------------------------------------------------------------
// Configuration errors

class ConfigErrors : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    EXPECT_TRUE(WriteFile(path, text));
    return path;
  }

  std::string GoodConfig() {
    return "[node]\n"
           "name = cfg@127.0.0.1\n"
           "data_dir = " +
           dir_.File("data") +
           "\n"
           "[listener.tcp.default]\n"
           "bind = 127.0.0.1:0\n";
  }

  TempDir dir_;
};

TEST_F(ConfigErrors, BadConfigStopsFerrydNamingFileLineAndKey) {
  // Line 7: a misspelt key; line 8: a value out of range. Both are reported.
  const std::string path = Write("bad.conf", GoodConfig() +
                                                 "[mqtt]\n"
                                                 "max_inflght = 8\n"
                                                 "max_inflight = abc\n");
  const CommandResult r = RunCommand({FerryBinary(), "-c", path}, milliseconds(10000));
  EXPECT_FALSE(r.timed_out) << "ferryd started on a bad config";
  EXPECT_TRUE(r.status.exited && r.status.code != 0) << r.ToString();
  EXPECT_NE(r.err.find(path + ":7: [mqtt] unknown key 'max_inflght'"), std::string::npos)
      << r.ToString();
  EXPECT_NE(r.err.find(path + ":8: [mqtt] max_inflight"), std::string::npos) << r.ToString();
}

// Issue 9: a second [mqtt] used to be merged into the first silently.
TEST_F(ConfigErrors, DuplicateSectionStopsFerrydNamingBothLines) {
  const std::string path =
      Write("dup.conf", GoodConfig() + "[mqtt]\nmax_qos = 1\n[mqtt]\nmax_qos = 2\n");
  const CommandResult r = RunCommand({FerryBinary(), "--check-config", "-c", path});
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.ToString();
  EXPECT_NE(r.err.find(path + ":8: duplicate section [mqtt] (first at line 6)"), std::string::npos)
      << r.ToString();
}

// Issue 9: a listener whose port is taken names its section's file:line.
TEST_F(ConfigErrors, ListenerWhosePortIsInUseNamesItsFileLine) {
  const int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(busy, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(busy, 1), 0);
  ASSERT_EQ(getsockname(busy, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  const std::string path = Write("busy.conf", GoodConfig() +
                                                  "[admin]\n"
                                                  "http_bind =\n"
                                                  "[listener.tcp.busy]\n"
                                                  "bind = 127.0.0.1:" + port + "\n");
  const CommandResult r = RunCommand({FerryBinary(), "-c", path}, milliseconds(10000));
  close(busy);
  EXPECT_FALSE(r.timed_out) << "ferryd started on a port in use";
  EXPECT_TRUE(r.status.exited && r.status.code != 0) << r.ToString();
  EXPECT_NE(r.err.find(path + ":8: listener tcp.busy: cannot bind 127.0.0.1:" + port +
                       ": Address already in use"),
            std::string::npos)
      << r.ToString();
}

TEST_F(ConfigErrors, CheckConfigExitsZeroOnAGoodFileAndOneOnABadOne) {
  const std::string good = Write("good.conf", GoodConfig());
  const std::string bad = Write("bad.conf", GoodConfig() + "[mqtt]\nmax_qos = 3\n");
  const CommandResult ok = RunCommand({FerryBinary(), "--check-config", "-c", good});
  EXPECT_TRUE(ok.Succeeded()) << ok.ToString();
  const CommandResult no = RunCommand({FerryBinary(), "--check-config", "-c", bad});
  EXPECT_TRUE(no.status.exited && no.status.code == 1) << no.ToString();
  EXPECT_NE(no.err.find(bad + ":7: [mqtt] max_qos"), std::string::npos) << no.ToString();
}

TEST_F(ConfigErrors, BadEnvironmentOverrideIsReportedByItsName) {
  const std::string good = Write("good.conf", GoodConfig());
  const CommandResult check = RunCommand(
      {"env", "FERRY_MQTT__MAX_INFLIGHT=abc", FerryBinary(), "--check-config", "-c", good});
  EXPECT_TRUE(check.status.exited && check.status.code == 1) << check.ToString();
  EXPECT_NE(check.err.find("FERRY_MQTT__MAX_INFLIGHT"), std::string::npos) << check.ToString();

  // The daemon itself refuses to start, naming the variable.
  NodeOptions options;
  options.env = {{"FERRY_MQTT__MAX_INFLIGHT", "abc"}};
  NodeProcess node(options);
  EXPECT_FALSE(node.Start());
  ASSERT_TRUE(node.exit_status().has_value());
  EXPECT_FALSE(node.exit_status()->Clean()) << node.exit_status()->ToString();
  EXPECT_NE(node.Log().find("FERRY_MQTT__MAX_INFLIGHT"), std::string::npos) << node.Log();
}

}  // namespace
}  // namespace ferry::testing
