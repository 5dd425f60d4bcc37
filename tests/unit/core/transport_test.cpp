// Transport stacks (core/transport.h) driven in memory: the bytes a client
// sends are fed in pieces of every size, and what comes out above and below
// is checked. TLS runs against an OpenSSL client in the same process, with a
// certificate made here.
#include "core/transport.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <string>

namespace ferry::core {
namespace {

using namespace std::string_literals;

// A self-signed EC certificate and key, in a server SSL_CTX.
SSL_CTX* ServerContext() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_sign(cert, key, EVP_sha256());
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(ctx, cert);
  SSL_CTX_use_PrivateKey(ctx, key);
  X509_free(cert);
  EVP_PKEY_free(key);
  return ctx;
}

// An OpenSSL client over memory BIOs that does not check the certificate.
class TlsClient {
 public:
  TlsClient() : ctx_(SSL_CTX_new(TLS_client_method())), ssl_(SSL_new(ctx_)) {
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
  }
  ~TlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  // Takes the server's bytes; returns the client's next bytes.
  std::string Step(const std::string& from_server) {
    if (!from_server.empty()) BIO_write(in_, from_server.data(), static_cast<int>(from_server.size()));
    SSL_do_handshake(ssl_);
    char buf[4096];
    int n;
    while ((n = SSL_read(ssl_, buf, sizeof buf)) > 0) plaintext_.append(buf, static_cast<size_t>(n));
    return Drain();
  }
  std::string Encrypt(const std::string& plaintext) {
    SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size()));
    return Drain();
  }
  bool Established() const { return SSL_is_init_finished(ssl_); }
  bool ReceivedCloseNotify() const { return (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0; }
  std::string CloseNotify() {
    SSL_shutdown(ssl_);
    return Drain();
  }
  const std::string& plaintext() const { return plaintext_; }

 private:
  std::string Drain() {
    std::string out;
    char buf[4096];
    int n;
    while ((n = BIO_read(out_, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  SSL_CTX* ctx_;
  SSL* ssl_;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
  std::string plaintext_;
};

// Feeds `bytes` to `t` in pieces of `piece` bytes; collects what comes out.
Status FeedInPieces(Transport& t, const std::string& bytes, size_t piece, std::string* app,
                    std::string* wire) {
  for (size_t i = 0; i < bytes.size(); i += piece) {
    if (Status st = t.Receive(std::string_view(bytes).substr(i, piece), app, wire); !st.ok()) {
      return st;
    }
  }
  return Status::Ok();
}

const std::string kUpgrade =
    "GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\n\r\n";
// A masked binary frame carrying a PINGREQ (RFC 6455 section 5.3, key 0).
const std::string kPingreqFrame = "\x82\x82\x00\x00\x00\x00\xc0\x00"s;

ListenerOptions Listener(std::string type, bool proxy) {
  ListenerOptions o;
  o.type = std::move(type);
  o.proxy_protocol = proxy;
  return o;
}

TEST(Transport, PlainTcpNeedsNone) {
  auto f = TransportFactory::Create(Listener("tcp", false));
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE((*f)->needed());
}

TEST(Transport, ProxyThenWebSocketInPiecesOfEverySize) {
  auto f = TransportFactory::Create(Listener("ws", true));
  ASSERT_TRUE(f.ok());
  const std::string input =
      "PROXY TCP4 203.0.113.7 10.0.0.1 51234 8083\r\n" + kUpgrade + kPingreqFrame;
  for (size_t piece = 1; piece <= input.size(); ++piece) {
    std::unique_ptr<Transport> t = (*f)->Make();
    EXPECT_STREQ(t->Stage(), "PROXY header");
    std::string app, wire;
    ASSERT_TRUE(FeedInPieces(*t, input, piece, &app, &wire).ok()) << piece;
    EXPECT_TRUE(t->Established());
    EXPECT_EQ(app, "\xc0\x00"s) << piece;
    EXPECT_EQ(wire.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u) << piece;
    EXPECT_EQ(t->TakeProxiedSource(), "203.0.113.7:51234");
    EXPECT_EQ(t->TakeProxiedSource(), std::nullopt);  // taken once
    wire.clear();
    t->Send("\xd0\x00"s, &wire);  // PINGRESP, in a server frame
    EXPECT_EQ(wire, "\x82\x02\xd0\x00"s);
    wire.clear();
    t->Close(&wire);
    EXPECT_EQ(wire, "\x88\x02\x03\xe8"s);
  }
}

TEST(Transport, BytesSentBeforeTheHandshakeWaitForIt) {
  auto f = TransportFactory::Create(Listener("ws", false));
  std::unique_ptr<Transport> t = (*f)->Make();
  std::string app, wire;
  t->Send("\x40\x02\x00\x01\xd0\x00"s, &wire);  // PUBACK and PINGRESP
  EXPECT_EQ(wire, "");
  ASSERT_TRUE(t->Receive(kUpgrade, &app, &wire).ok());
  // One frame per packet.
  EXPECT_NE(wire.find("\r\n\r\n\x82\x04\x40\x02\x00\x01\x82\x02\xd0\x00"s), std::string::npos);
}

TEST(Transport, FailuresCarryTheirAnswerBelow) {
  auto f = TransportFactory::Create(Listener("ws", true));
  std::unique_ptr<Transport> t = (*f)->Make();
  std::string app, wire;
  Status st = t->Receive("PROXY TCP4 203.0.113.7 10.0.0.1 51234 8083\r\nGET /x HTTP/1.1\r\n\r\n",
                         &app, &wire);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "WebSocket upgrade refused: path is not /mqtt");
  EXPECT_EQ(t->handshake_failure(), Refusal::kWebSocketUpgrade);
  EXPECT_EQ(wire.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
  wire.clear();
  t->Close(&wire);  // nothing more after a refusal
  EXPECT_EQ(wire, "");
}

// The listener's refusal counters learn which handshake failed.
TEST(Transport, AFailedHandshakeNamesItsRefusal) {
  auto f = TransportFactory::Create(Listener("ws", true));
  std::unique_ptr<Transport> t = (*f)->Make();
  std::string app, wire;
  EXPECT_FALSE(t->Receive("GET /mqtt HTTP/1.1\r\n\r\n", &app, &wire).ok());
  EXPECT_EQ(t->handshake_failure(), Refusal::kProxyHeader);

  // A WebSocket stream that breaks after the upgrade is no refusal.
  t = (*f)->Make();
  ASSERT_TRUE(t->Receive("PROXY TCP4 203.0.113.7 10.0.0.1 51234 8083\r\n" + kUpgrade, &app, &wire)
                  .ok());
  EXPECT_EQ(t->handshake_failure(), std::nullopt);
  Status st = t->Receive("\x82\x02\xc0\x00"s, &app, &wire);  // a frame without a mask
  EXPECT_EQ(st.message(), "WebSocket: client frame not masked");
  EXPECT_EQ(t->handshake_failure(), std::nullopt);
}

// A wss listener whose certificate and key this fixture writes to files.
class TlsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-transport-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    SSL_CTX* ctx = ServerContext();
    ListenerOptions o = Listener("wss", false);
    o.tls.certfile = dir_ + "/cert.pem";
    o.tls.keyfile = dir_ + "/key.pem";
    FILE* f = fopen(o.tls.certfile.c_str(), "w");
    PEM_write_X509(f, SSL_CTX_get0_certificate(ctx));
    fclose(f);
    f = fopen(o.tls.keyfile.c_str(), "w");
    PEM_write_PrivateKey(f, SSL_CTX_get0_privatekey(ctx), nullptr, nullptr, 0, nullptr, nullptr);
    fclose(f);
    SSL_CTX_free(ctx);
    auto factory = TransportFactory::Create(o);
    ASSERT_TRUE(factory.ok()) << factory.status().ToString();
    factory_ = std::move(factory).value();
  }
  void TearDown() override {
    std::remove((dir_ + "/cert.pem").c_str());
    std::remove((dir_ + "/key.pem").c_str());
    rmdir(dir_.c_str());
  }

  // Runs the TLS handshake, the client's bytes fed in pieces of `piece`.
  ::testing::AssertionResult Handshake(TlsClient& client, Transport& t, size_t piece) {
    std::string to_server = client.Step("");
    for (int round = 0; round < 10; ++round) {
      std::string app, wire;
      if (Status st = FeedInPieces(t, to_server, piece, &app, &wire); !st.ok()) {
        return ::testing::AssertionFailure() << st.ToString();
      }
      to_server = client.Step(wire);
      if (client.Established() && to_server.empty()) return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "no handshake after 10 rounds";
  }

  std::string dir_;
  std::unique_ptr<TransportFactory> factory_;
};

TEST_F(TlsTransportTest, WebSocketOverTlsInPiecesOfEverySize) {
  for (size_t piece : {1, 2, 3, 7, 64, 1000, 100000}) {
    SCOPED_TRACE(piece);
    std::unique_ptr<Transport> t = factory_->Make();
    EXPECT_STREQ(t->Stage(), "TLS handshake");
    TlsClient client;
    ASSERT_TRUE(Handshake(client, *t, piece));
    EXPECT_STREQ(t->Stage(), "WebSocket handshake");
    std::string app, wire;
    ASSERT_TRUE(FeedInPieces(*t, client.Encrypt(kUpgrade + kPingreqFrame), piece, &app, &wire).ok());
    EXPECT_EQ(t->Stage(), nullptr);
    EXPECT_EQ(app, "\xc0\x00"s);
    client.Step(wire);
    EXPECT_EQ(client.plaintext().rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
    wire.clear();
    t->Send("\xd0\x00"s, &wire);
    t->Close(&wire);
    client.Step(wire);
    // PINGRESP in a frame, then the WebSocket close, then TLS close_notify.
    EXPECT_TRUE(client.plaintext().ends_with("\r\n\r\n\x82\x02\xd0\x00\x88\x02\x03\xe8"s));
    EXPECT_TRUE(client.ReceivedCloseNotify());
  }
}

TEST_F(TlsTransportTest, PeerCloseNotifyEndsTheStream) {
  std::unique_ptr<Transport> t = factory_->Make();
  TlsClient client;
  ASSERT_TRUE(Handshake(client, *t, 1000));
  std::string app, wire;
  ASSERT_TRUE(t->Receive(client.CloseNotify(), &app, &wire).ok());
  EXPECT_TRUE(t->PeerClosed());
}

TEST_F(TlsTransportTest, GarbageFailsTheHandshake) {
  std::unique_ptr<Transport> t = factory_->Make();
  std::string app, wire;
  Status st = t->Receive("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"s, &app, &wire);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("TLS handshake failed: ", 0), 0u) << st.message();
  EXPECT_EQ(t->handshake_failure(), Refusal::kTlsHandshake);
  EXPECT_EQ(app, "");
  // Further bytes are ignored, and no close_notify follows a failure.
  EXPECT_TRUE(t->Receive("more", &app, &wire).ok());
  std::string after;
  t->Close(&after);
  EXPECT_EQ(after, "");
}

}  // namespace
}  // namespace ferry::core
