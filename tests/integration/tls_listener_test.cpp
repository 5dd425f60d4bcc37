// MQTT over TLS: [listener.ssl.NAME] with certificates made by the test.
// Real clients (mosquitto_sub/mosquitto_pub, Paho, libmosquitto) connect,
// with and without client certificates; wrong CAs and broken handshakes are
// refused, and only the one connection is closed.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "support/connect_helpers.h"
#include "support/mosq_client.h"
#include "support/node_process.h"
#include "support/paho_client.h"
#include "support/raw_client.h"
#include "support/round_trip.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

using std::chrono::milliseconds;

class TlsListenerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(MakeTestCerts(certs_dir_.path(), &certs_)); }

  // A node with [listener.ssl.tls] on a free port, plus `keys` in that
  // section and `extra` INI after it.
  ::testing::AssertionResult StartNode(const std::string& keys = "",
                                       const std::string& extra = "") {
    NodeOptions o;
    o.extra_config = "[listener.ssl.tls]\nbind = 127.0.0.1:0\ncertfile = " + certs_.server_cert +
                     "\nkeyfile = " + certs_.server_key + "\ncafile = " + certs_.ca + "\n" + keys +
                     extra;
    node_ = std::make_unique<NodeProcess>(o);
    return node_->Start();
  }
  uint16_t tls_port() const { return node_->port("ssl.tls"); }
  std::string tls_port_str() const { return std::to_string(tls_port()); }

  // mosquitto_pub over TLS with `args` after the connection options.
  CommandResult Pub(const std::vector<std::string>& tls_args, const std::string& message) {
    std::vector<std::string> argv = {"mosquitto_pub", "-h", "127.0.0.1", "-p", tls_port_str(),
                                     "-t", "tls/pub", "-q", "1", "-m", message};
    argv.insert(argv.end(), tls_args.begin(), tls_args.end());
    return RunCommand(argv);
  }

  // A fresh client still gets through over TLS and plain TCP.
  ::testing::AssertionResult StillServes() {
    MosqClient c(tls_port(), "still-serves");
    MosqConnectOptions o;
    o.tls = certs_.AsClient1();  // good enough for every listener here
    if (auto ok = c.Connect(o); !ok) return ok;
    if (auto ok = c.Disconnect(); !ok) return ok;
    return anonymous_ ? NodeServesNewClients(node_->port()) : ::testing::AssertionSuccess();
  }

  void TearDown() override {
    if (!node_ || !node_->Running()) return;
    EXPECT_TRUE(StillServes());
    EXPECT_TRUE(node_->Stop());
  }

  TempDir certs_dir_;
  TestCerts certs_;
  std::unique_ptr<NodeProcess> node_;
  bool anonymous_ = true;  // the node lets anonymous clients in
};

TEST_F(TlsListenerTest, MosquittoClientsWithCafileExchangeAMessage) {
  ASSERT_TRUE(StartNode());
  auto sub = StartCommand({"stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p",
                           tls_port_str(), "--cafile", certs_.ca, "-t", "tls/pub", "-q", "1",
                           "-C", "1", "-d"});
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(sub->WaitForOutput("Subscribed (mid:"));
  CommandResult pub = Pub({"--cafile", certs_.ca}, "over tls");
  ASSERT_TRUE(pub.Succeeded()) << pub.ToString();
  CommandResult got = sub->Wait();
  ASSERT_TRUE(got.Succeeded()) << got.ToString();
  EXPECT_NE(got.out.find("over tls"), std::string::npos) << got.out;
}

TEST_F(TlsListenerTest, PahoAndLibmosquittoTalkOverTls) {
  ASSERT_TRUE(StartNode());
  PahoClient paho("ssl://127.0.0.1:" + tls_port_str(), "paho-tls", MqttVersion::kV5);
  PahoConnectOptions po;
  po.tls = certs_.Trusting();
  ASSERT_TRUE(paho.Connect(po));
  ASSERT_TRUE(paho.Subscribe("tls/#", 1));
  MosqClient mosq(tls_port(), "mosq-tls", MqttVersion::kV311);
  MosqConnectOptions mo;
  mo.tls = certs_.Trusting();
  mo.host = "localhost";  // checked against the certificate's DNS name
  ASSERT_TRUE(mosq.Connect(mo));
  ASSERT_TRUE(mosq.Publish("tls/a", std::string(100000, 'x'), 1));  // many TLS records
  std::optional<ReceivedMessage> m = paho.Receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->topic, "tls/a");
  EXPECT_EQ(m->payload.size(), 100000u);
  EXPECT_TRUE(paho.Disconnect());
}

TEST_F(TlsListenerTest, ClientTrustingAnotherCaRefusesTheServer) {
  ASSERT_TRUE(StartNode());
  CommandResult pub = Pub({"--cafile", certs_.other_ca}, "x");
  EXPECT_FALSE(pub.Succeeded()) << pub.ToString();
  EXPECT_TRUE(node_->WaitForLog("TLS handshake failed"));
}

TEST_F(TlsListenerTest, MutualTlsAcceptsOurClientAndRefusesOthers) {
  ASSERT_TRUE(StartNode("verify_peer = true\nfail_if_no_peer_cert = true\n"));
  CommandResult ok = Pub({"--cafile", certs_.ca, "--cert", certs_.client_cert, "--key",
                          certs_.client_key},
                         "with a certificate");
  EXPECT_TRUE(ok.Succeeded()) << ok.ToString();

  // A certificate from an unrelated CA [the wrong CA], and none at all.
  CommandResult intruder = Pub({"--cafile", certs_.ca, "--cert", certs_.other_client_cert,
                                "--key", certs_.other_client_key},
                               "x");
  EXPECT_FALSE(intruder.Succeeded()) << intruder.ToString();
  EXPECT_TRUE(node_->WaitForLog("certificate verify failed"));
  CommandResult none = Pub({"--cafile", certs_.ca}, "x");
  EXPECT_FALSE(none.Succeeded()) << none.ToString();

  PahoClient paho("ssl://127.0.0.1:" + tls_port_str(), "paho-mtls", MqttVersion::kV311);
  PahoConnectOptions po;
  po.tls = certs_.AsClient1();
  EXPECT_TRUE(paho.Connect(po));
  PahoClient bad("ssl://127.0.0.1:" + tls_port_str(), "paho-intruder", MqttVersion::kV311);
  po.tls = certs_.AsIntruder();
  po.timeout = milliseconds(3000);
  EXPECT_FALSE(bad.Connect(po));
}

TEST_F(TlsListenerTest, OptionalClientCertificateLetsBothIn) {
  ASSERT_TRUE(StartNode("verify_peer = true\n"));
  EXPECT_TRUE(Pub({"--cafile", certs_.ca}, "anonymous").Succeeded());
  EXPECT_TRUE(Pub({"--cafile", certs_.ca, "--cert", certs_.client_cert, "--key",
                   certs_.client_key},
                  "with a certificate")
                  .Succeeded());
  // A certificate that is presented must still verify.
  EXPECT_FALSE(Pub({"--cafile", certs_.ca, "--cert", certs_.other_client_cert, "--key",
                    certs_.other_client_key},
                   "x")
                   .Succeeded());
}

TEST_F(TlsListenerTest, CommonNameBecomesTheUsername) {
  // No anonymous clients and no password file: only the certificate's CN
  // can make a client known. The ACL lets client1 publish to its own topic.
  TempDir acl_dir;
  const std::string acl = acl_dir.File("acl");
  std::ofstream(acl) << "user client1\ntopic readwrite own/#\n";
  anonymous_ = false;
  ASSERT_TRUE(StartNode("verify_peer = true\nfail_if_no_peer_cert = true\nuse_cn_as_username = true\n",
                        "[mqtt]\nallow_anonymous = false\nacl_file = " + acl + "\n"));
  MosqClient c(tls_port(), "cn-client", MqttVersion::kV5);
  MosqConnectOptions o;
  o.tls = certs_.AsClient1();
  o.username = "someone-else";  // ignored: the certificate says who it is
  o.password = "wrong";
  ASSERT_TRUE(c.Connect(o));
  EXPECT_TRUE(RoundTrip(c, "own/x", "mine", 1));
  EXPECT_TRUE(c.Disconnect());
}

TEST_F(TlsListenerTest, ManyClientsMoveToTheirSessionsWorkerWithTheirTlsState) {
  // workers = 2: a connection accepted on one worker whose client id hashes
  // to the other moves there after CONNECT, SSL object and all. With 16
  // clients both directions happen; every client must go on working.
  ASSERT_TRUE(StartNode());
  MosqConnectOptions o;
  o.tls = certs_.Trusting();
  std::vector<std::unique_ptr<MosqClient>> clients;
  for (int i = 0; i < 16; ++i) {
    clients.push_back(std::make_unique<MosqClient>(tls_port(), "tls-" + std::to_string(i),
                                                   i % 2 ? MqttVersion::kV5 : MqttVersion::kV311));
    ASSERT_TRUE(clients.back()->Connect(o)) << i;
    ASSERT_TRUE(clients.back()->Subscribe("all/tls", 1)) << i;
  }
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(clients[static_cast<size_t>(i)]->Publish("all/tls", "from " + std::to_string(i), 1));
  }
  for (auto& c : clients) {
    for (int i = 0; i < 16; ++i) ASSERT_TRUE(c->Receive()) << "message " << i;
  }
  for (auto& c : clients) EXPECT_TRUE(c->Disconnect());
  EXPECT_NE(node_->Log().find("to worker 0, which owns its session"), std::string::npos);
  EXPECT_NE(node_->Log().find("to worker 1, which owns its session"), std::string::npos);
}

// ------------------------------------------------------------- bad input

TEST_F(TlsListenerTest, GarbageBeforeTheHandshakeClosesThatConnection) {
  ASSERT_TRUE(StartNode());
  RawClient raw;
  ASSERT_TRUE(raw.Connect(tls_port()));
  // A plain MQTT CONNECT where a ClientHello belongs.
  wire::ConnectFields plain;
  plain.client_id = "plain-on-tls";
  ASSERT_TRUE(raw.Send(wire::Connect(plain)));
  EXPECT_TRUE(raw.IsClosed());
  EXPECT_TRUE(node_->WaitForLog("TLS handshake failed"));
  RawClient junk;
  ASSERT_TRUE(junk.Connect(tls_port()));
  ASSERT_TRUE(junk.Send(Bytes(300, 0xFF)));
  EXPECT_TRUE(junk.IsClosed());
}

TEST_F(TlsListenerTest, TruncatedHandshakeClosesThatConnection) {
  ASSERT_TRUE(StartNode());
  const Bytes hello = TlsClientHello();
  ASSERT_GT(hello.size(), 10u);
  RawClient raw;
  ASSERT_TRUE(raw.Connect(tls_port()));
  ASSERT_TRUE(raw.Send(Bytes(hello.begin(), hello.begin() + static_cast<long>(hello.size() / 2))));
  raw.ShutdownWrite();  // and the client goes away mid-record
  EXPECT_TRUE(raw.IsClosed());
  // The node never mixed it up with anyone else's.
  EXPECT_TRUE(StillServes());
}

TEST_F(TlsListenerTest, ClientsThatStallTheHandshakeAreTimedOut) {
  ASSERT_TRUE(StartNode("", "[mqtt]\nconnect_timeout = 500ms\n"));
  const Bytes hello = TlsClientHello();
  RawClient silent, half, hello_only;
  ASSERT_TRUE(silent.Connect(tls_port()));   // says nothing
  ASSERT_TRUE(half.Connect(tls_port()));     // half a ClientHello
  ASSERT_TRUE(half.Send(Bytes(hello.begin(), hello.begin() + 5)));
  ASSERT_TRUE(hello_only.Connect(tls_port()));  // never answers the ServerHello
  ASSERT_TRUE(hello_only.Send(hello));
  // Meanwhile a well-behaved client is served.
  EXPECT_TRUE(StillServes());
  EXPECT_TRUE(silent.IsClosed(milliseconds(5000)));
  EXPECT_TRUE(half.IsClosed(milliseconds(5000)));
  EXPECT_TRUE(hello_only.IsClosed(milliseconds(5000)));
  EXPECT_TRUE(node_->WaitForLog("did not complete its TLS handshake in time"));
}

TEST_F(TlsListenerTest, BadCertificateFilesStopTheNodeWithTheirNames) {
  NodeOptions o;
  o.extra_config = "[listener.ssl.tls]\nbind = 127.0.0.1:0\ncertfile = " + certs_.server_cert +
                   "\nkeyfile = " + certs_.client_key + "\n";
  NodeProcess node(o);
  EXPECT_FALSE(node.Start());
  EXPECT_NE(node.Log().find("listener ssl.tls: keyfile '" + certs_.client_key + "'"),
            std::string::npos)
      << node.Log();
  NodeOptions missing;
  missing.extra_config = "[listener.ssl.tls]\nbind = 127.0.0.1:0\ncertfile = /nonexistent.pem\n"
                         "keyfile = /nonexistent.key\n";
  NodeProcess node2(missing);
  EXPECT_FALSE(node2.Start());
  EXPECT_NE(node2.Log().find("listener ssl.tls: certfile '/nonexistent.pem'"), std::string::npos)
      << node2.Log();
  // --check-config (the unit's ExecStartPre) finds it too.
  CommandResult check = RunCommand({FerryBinary(), "--check-config", "-c", node2.config_path()});
  EXPECT_TRUE(check.status.exited && check.status.code == 1) << check.ToString();
  EXPECT_NE(check.err.find("certfile '/nonexistent.pem'"), std::string::npos) << check.ToString();
}

TEST_F(TlsListenerTest, SighupReloadsTheCertificate) {
  ASSERT_TRUE(StartNode());
  // Rotate to a certificate from the other CA: new clients must trust it.
  TestCerts rotated;
  TempDir dir;
  ASSERT_TRUE(MakeTestCerts(dir.path(), &rotated));
  std::string conf = ReadFileOrEmpty(node_->config_path());
  for (auto [from, to] : {std::pair{certs_.server_cert, rotated.server_cert},
                          std::pair{certs_.server_key, rotated.server_key}}) {
    conf.replace(conf.find(from), from.size(), to);
  }
  std::ofstream(node_->config_path()) << conf;
  ASSERT_TRUE(node_->Signal(SIGHUP));
  ASSERT_TRUE(node_->WaitForLog("reloaded"));
  EXPECT_TRUE(Pub({"--cafile", rotated.ca}, "new CA").Succeeded());
  EXPECT_FALSE(Pub({"--cafile", certs_.ca}, "old CA").Succeeded());
  // Put the original back for the teardown check.
  conf = ReadFileOrEmpty(node_->config_path());
  for (auto [from, to] : {std::pair{rotated.server_cert, certs_.server_cert},
                          std::pair{rotated.server_key, certs_.server_key}}) {
    conf.replace(conf.find(from), from.size(), to);
  }
  std::ofstream(node_->config_path()) << conf;
  ASSERT_TRUE(node_->Signal(SIGHUP));
  EXPECT_TRUE(WaitFor([&] { return Pub({"--cafile", certs_.ca}, "back").Succeeded(); },
                      milliseconds(5000), "the original certificate to be back"));
}

}  // namespace
}  // namespace ferry::testing
