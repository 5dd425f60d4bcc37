// TLS on the links between cluster members ([cluster] ssl = on): members
// with certificates from the cluster's CA join and forward as over plain
// TCP; a node whose certificate another CA signed is kept out, with the
// reason logged; bad TLS settings stop a node from starting, saying why.
#include <gtest/gtest.h>

#include <string>

#include "support/cluster_fixture.h"
#include "support/mosq_client.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

class ClusterTls : public ClusterFixture {
 protected:
  void SetUp() override { ASSERT_TRUE(MakeTestCerts(certs_dir_.path(), &certs_)); }
  std::string Tls(const std::string& cert, const std::string& key) const {
    return "ssl = on\ncertfile = " + cert + "\nkeyfile = " + key + "\ncafile = " + certs_.ca +
           "\n";
  }
  std::string Tls() const { return Tls(certs_.node_cert, certs_.node_key); }

  TempDir certs_dir_;
  TestCerts certs_;
};

TEST_F(ClusterTls, MembersJoinAndForwardOverTls) {
  Joined(2, Tls());
  MosqClient sub(N(2).port(), "sub");
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(sub.Subscribe("tls/#", 1));
  ASSERT_TRUE(RoutesKnown(2, 1));
  MosqClient pub(N(1).port(), "pub");
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("tls/a", "over tls", 1));
  auto m = sub.Receive(seconds(10));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "over tls");
}

TEST_F(ClusterTls, ANodeWithACertificateFromAnotherCaIsKeptOut) {
  NodeProcess& n1 = Add(1, "s3cret", Tls());
  NodeProcess& n2 = Add(2, "s3cret", Tls(certs_.other_node_cert, certs_.other_node_key));
  CommandResult j = Ctl(n2, {"cluster", "join", Target(n1)});
  EXPECT_FALSE(j.Succeeded()) << j.ToString();
  EXPECT_NE(j.err.find("Failed to join the cluster"), std::string::npos) << j.ToString();
  // The reason on both sides.
  EXPECT_TRUE(n1.WaitForLog("TLS handshake failed: peer certificate refused"));
  EXPECT_NE(j.err.find("TLS handshake failed"), std::string::npos) << j.ToString();
  EXPECT_TRUE(StatusIs(n1, StatusLine({Name(1)})));
  // A plain-TCP node is kept out too: its bytes are no TLS record.
  NodeProcess& n3 = Add(3, "s3cret");
  EXPECT_FALSE(Ctl(n3, {"cluster", "join", Target(n1)}).Succeeded());
  EXPECT_TRUE(StatusIs(n1, StatusLine({Name(1)})));
}

TEST_F(ClusterTls, BadTlsSettingsStopTheNodeWithTheReason) {
  NodeOptions o;
  o.name = Name(1);
  o.extra_config = "[cluster]\nlisten = 127.0.0.1:0\nssl = on\ncertfile = " + certs_.node_cert +
                   "\n";
  o.overrides.emplace_back("node", "cookie", "s3cret");
  NodeProcess missing(o);
  EXPECT_FALSE(missing.Start());
  EXPECT_NE(missing.Log().find("keyfile: required with ssl = on"), std::string::npos)
      << missing.Log();

  o.extra_config = "[cluster]\nlisten = 127.0.0.1:0\n" +
                   Tls(certs_.node_cert, certs_.other_node_key);  // a key of another cert
  NodeProcess mismatched(o);
  EXPECT_FALSE(mismatched.Start());
  EXPECT_NE(mismatched.Log().find("cannot load keyfile"), std::string::npos)
      << mismatched.Log();
}

}  // namespace
}  // namespace ferry::testing
