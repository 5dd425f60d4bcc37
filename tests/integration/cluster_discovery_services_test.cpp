// Discovery from a service ([cluster] discovery = dns | etcd | k8s): real
// ferryd nodes on loopback form one cluster from what the service says.
//
// - dns: Debian's dnsmasq on a loopback port with A and SRV records of the
//   nodes ([cluster.dns] server points the nodes at it). The nodes are
//   named ferry@127.x.y.N on a /24 of 127.0.0.0/8 picked at random per
//   test, each with its cluster port on its own address.
// - etcd: Debian's etcd, started by the test on its own loopback ports and
//   data directory; the nodes register under a lease.
// - k8s: no real API server can run here. A small HTTPS server in this
//   test answers GET /api/v1/namespaces/<ns>/endpoints/<service> as
//   Kubernetes does (the Endpoints object's recorded shape), checks the
//   bearer token, and its endpoints change while the nodes run.
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/cluster_fixture.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"

namespace ferry::testing {
namespace {

using std::chrono::seconds;

// "127.x.y." for a /24 of loopback addresses no other test uses.
std::string RandomLoopbackNet() {
  std::random_device rd;
  std::uniform_int_distribution<int> octet(16, 250);
  return "127." + std::to_string(octet(rd)) + "." + std::to_string(octet(rd)) + ".";
}

std::string UserName() {
  const passwd* pw = getpwuid(getuid());
  return pw != nullptr ? pw->pw_name : "root";
}

std::optional<Json> DiscoveryStatus(const NodeProcess& n) {
  return ParseJson(Ferryctl(n, {"cluster", "discovery", "status", "--json"}).out);
}

// ------------------------------------------------------------------- dns

class ClusterDnsDiscovery : public ClusterFixture {
 protected:
  void SetUp() override {
    if (RunCommand({"dnsmasq", "--version"}).status.code != 0) {
      GTEST_SKIP() << "dnsmasq is not installed (Debian: dnsmasq-base; scripts/test.sh installs it)";
    }
    net_ = RandomLoopbackNet();
    dns_port_ = FreePorts(1, "127.0.0.1")[0];
  }
  void TearDown() override {
    if (dnsmasq_) dnsmasq_->Terminate();
  }
  std::string Ip(int i) const { return net_ + std::to_string(i + 1); }
  std::string NodeName(int i) const { return "ferry@" + Ip(i); }

  // dnsmasq on 127.0.0.1:dns_port_ with `records` (its --host-record= and
  // --srv-host= options), answering nothing else.
  ::testing::AssertionResult StartDns(const std::vector<std::string>& records) {
    std::vector<std::string> argv = {
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
        "--port=" + std::to_string(dns_port_), "--listen-address=127.0.0.1", "--bind-interfaces",
        "--no-resolv", "--no-hosts", "--pid-file=", "--user=" + UserName(), "--log-facility=-"};
    argv.insert(argv.end(), records.begin(), records.end());
    dnsmasq_ = StartCommand(argv);
    if (!dnsmasq_) return ::testing::AssertionFailure() << "cannot start dnsmasq";
    return WaitFor([&] { return dnsmasq_->Stderr().find("started") != std::string::npos; },
                   seconds(10), "dnsmasq to start");
  }
  NodeProcess& Node(int i, const std::string& dns, uint16_t port = 4370) {
    return AddNamed(NodeName(i), "s3cret",
                    "[cluster]\nlisten = " + Ip(i) + ":" + std::to_string(port) +
                        "\ndiscovery = dns\n[cluster.dns]\n" + dns +
                        "server = 127.0.0.1:" + std::to_string(dns_port_) + "\n");
  }

  std::string net_;
  uint16_t dns_port_ = 0;
  std::unique_ptr<RunningCommand> dnsmasq_;
};

TEST_F(ClusterDnsDiscovery, ARecordsFormOneClusterOnceTheServerAnswers) {
  const std::string dns = "name = nodes.ferry.test\nrecord_type = a\napp = ferry\n";
  for (int i : {3, 2, 1}) Node(i, dns);
  // No DNS server yet: each node says so, keeps serving, and keeps asking.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto d = DiscoveryStatus(N(1));
        return d && (*d)["last_error"].get<std::string>().find("DNS a query for 'nodes.ferry.test'") !=
                        std::string::npos;
      },
      seconds(20), "the DNS error in discovery status"));
  EXPECT_TRUE(N(1).WaitForLog("discovery (dns): DNS a query"));

  std::vector<std::string> records;
  for (int i = 1; i <= 3; ++i) records.push_back("--host-record=nodes.ferry.test," + Ip(i));
  ASSERT_TRUE(StartDns(records));
  EXPECT_TRUE(AllTogether({NodeName(1), NodeName(2), NodeName(3)}));
  // nodes_ are in start order: N(1) is the node named last, which joined.
  auto d = DiscoveryStatus(N(1));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)["strategy"], "dns");
  EXPECT_EQ((*d)["found"].size(), 3u) << d->dump();
}

TEST_F(ClusterDnsDiscovery, SrvRecordsGiveHostsAndPorts) {
  const std::vector<uint16_t> ports = FreePorts(3, "127.0.0.1");
  std::vector<std::string> records;
  for (int i = 1; i <= 3; ++i) {
    records.push_back("--srv-host=_ferry._tcp.ferry.test," + Ip(i) + "," +
                      std::to_string(ports[i - 1]));
  }
  ASSERT_TRUE(StartDns(records));
  const std::string dns = "name = _ferry._tcp.ferry.test\nrecord_type = srv\n";
  for (int i = 1; i <= 3; ++i) Node(i, dns, ports[i - 1]);
  EXPECT_TRUE(AllTogether({NodeName(1), NodeName(2), NodeName(3)}));
  auto d = DiscoveryStatus(N(1));
  ASSERT_TRUE(d.has_value());
  EXPECT_NE(d->dump().find(NodeName(2) + ":" + std::to_string(ports[1])), std::string::npos)
      << d->dump();
}

// ------------------------------------------------------------------ etcd

class ClusterEtcdDiscovery : public ClusterFixture {
 protected:
  void SetUp() override {
    if (RunCommand({"etcd", "--version"}).status.code != 0) {
      GTEST_SKIP() << "etcd is not installed (Debian: etcd-server; scripts/test.sh installs it)";
    }
    const std::vector<uint16_t> ports = FreePorts(5);
    client_port_ = ports[0];
    peer_port_ = ports[1];
    for (int i = 1; i <= 3; ++i) node_ports_.push_back(ports[i + 1]);
  }
  void TearDown() override {
    for (auto& n : nodes_) n->Kill();  // before etcd, so none waits for it
    if (etcd_) etcd_->Terminate();
  }
  std::string Url() const {
    return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(client_port_);
  }

  // etcd on loopback; with TLS (UseTls) it wants a client certificate
  // from the test CA.
  ::testing::AssertionResult StartEtcd() {
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> argv = {
        "etcd", "--name", "e1", "--data-dir", dir_.File("etcd"), "--listen-client-urls", Url(),
        "--advertise-client-urls", Url(), "--listen-peer-urls", peer,
        "--initial-advertise-peer-urls", peer, "--initial-cluster", "e1=" + peer, "--log-level",
        "warn"};
    if (tls_) {
      // etcd's JSON gateway dials etcd itself with this certificate: it
      // must allow client use too.
      argv.insert(argv.end(), {"--cert-file", certs_.node_cert, "--key-file", certs_.node_key,
                               "--trusted-ca-file", certs_.ca, "--client-cert-auth"});
    }
    etcd_ = StartCommand(argv);
    if (!etcd_) return ::testing::AssertionFailure() << "cannot start etcd";
    return WaitFor([&] { return Etcdctl({"endpoint", "health"}).Succeeded(); }, seconds(20),
                   "etcd to answer");
  }
  ::testing::AssertionResult UseTls() {
    tls_ = true;
    return MakeTestCerts(dir_.path(), &certs_);
  }
  NodeProcess& Node(int i) {
    std::string tls;
    if (tls_) {
      tls = "cafile = " + certs_.ca + "\ncertfile = " + certs_.client_cert +
            "\nkeyfile = " + certs_.client_key + "\n";
    }
    return AddNamed(Name(i), "s3cret",
                    "[cluster]\nlisten = 127.0.0.1:" + std::to_string(node_ports_[i - 1]) +
                        "\ndiscovery = etcd\n[cluster.etcd]\nserver = " + Url() +
                        "\nprefix = ferrycl\nnode_ttl = 5s\n" + tls);
  }
  CommandResult Etcdctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"etcdctl", "--endpoints", Url()};
    if (tls_) {
      argv.insert(argv.end(), {"--cacert", certs_.ca, "--cert", certs_.client_cert, "--key",
                               certs_.client_key});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, {{"ETCDCTL_API", "3"}}, {}, "");
  }
  // The node names registered in etcd, from etcdctl.
  std::vector<std::string> Registered() {
    CommandResult r = Etcdctl({"get", "--prefix", "ferrycl/ferry/nodes/", "--keys-only"});
    std::vector<std::string> keys;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("ferrycl/ferry/nodes/")) keys.push_back(line.substr(20));
    }
    return keys;
  }
  ::testing::AssertionResult RegisteredAre(std::vector<std::string> want,
                                           seconds timeout = seconds(20)) {
    std::vector<std::string> got;
    auto ok = WaitFor(
        [&] {
          got = Registered();
          return got == want;
        },
        timeout, "the nodes registered in etcd");
    if (!ok) {
      std::string list;
      for (const auto& g : got) list += g + " ";
      return ok << "; registered: " << list;
    }
    return ok;
  }

  TempDir dir_;
  bool tls_ = false;
  TestCerts certs_;
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
  std::vector<uint16_t> node_ports_;
  std::unique_ptr<RunningCommand> etcd_;
};

TEST_F(ClusterEtcdDiscovery, NodesRegisterFormOneClusterAndOutliveAnEtcdRestart) {
  // Started before etcd: they say what is wrong and keep trying.
  for (int i : {2, 3, 1}) Node(i);
  EXPECT_TRUE(WaitFor(
      [&] {
        auto d = DiscoveryStatus(N(1));
        return d && (*d)["last_error"].get<std::string>().find("etcd") != std::string::npos;
      },
      seconds(20), "the etcd error in discovery status"));
  ASSERT_TRUE(StartEtcd());
  EXPECT_TRUE(AllTogether({Name(1), Name(2), Name(3)}));
  EXPECT_TRUE(RegisteredAre({Name(1), Name(2), Name(3)}));

  // A node killed: its key goes when its lease runs out (node_ttl = 5s).
  N(2).Kill();  // ferry3
  EXPECT_TRUE(RegisteredAre({Name(1), Name(2)}, seconds(15)));
  // A node stopped: its lease is revoked on the way out.
  ASSERT_TRUE(N(1).Stop());  // ferry2
  EXPECT_TRUE(RegisteredAre({Name(1)}, seconds(3)));

  // etcd restarted under the running node: nothing breaks, and the
  // registration is there again afterwards.
  etcd_->Terminate();
  auto d = DiscoveryStatus(N(3));
  ASSERT_TRUE(d.has_value());
  ASSERT_TRUE(StartEtcd());
  EXPECT_TRUE(RegisteredAre({Name(1)}));
  EXPECT_TRUE(WaitFor(
      [&] {
        auto s = DiscoveryStatus(N(3));
        return s && !(*s)["errors"].contains("registration");
      },
      seconds(20), "registration to work again"));
  // The others come back into the one cluster.
  ASSERT_TRUE(N(1).Start());
  ASSERT_TRUE(N(2).Start());
  EXPECT_TRUE(AllTogether({Name(1), Name(2), Name(3)}));
  EXPECT_TRUE(RegisteredAre({Name(1), Name(2), Name(3)}));
}

TEST_F(ClusterEtcdDiscovery, OverTlsWithAClientCertificate) {
  ASSERT_TRUE(UseTls());
  ASSERT_TRUE(StartEtcd());
  for (int i : {2, 1}) Node(i);
  EXPECT_TRUE(AllTogether({Name(1), Name(2)}));
  EXPECT_TRUE(RegisteredAre({Name(1), Name(2)}));
}

// ------------------------------------------------------------------- k8s

// GET /api/v1/namespaces/default/endpoints/ferry over TLS, as the API
// server answers it: 401 without the bearer token, 404 for another path,
// else an Endpoints object whose addresses the test sets.
class FakeKubernetesApi {
 public:
  FakeKubernetesApi(const TestCerts& certs, std::string token) : token_(std::move(token)) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(ctx_, certs.server_cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx_, certs.server_key.c_str(), SSL_FILETYPE_PEM);
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 16);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeKubernetesApi() {
    stop_ = true;
    thread_.join();
    close(fd_);
    SSL_CTX_free(ctx_);
  }
  uint16_t port() const { return port_; }
  int unauthorized() const { return unauthorized_; }

  // The ready pods: {ip, hostname}.
  void SetAddresses(const std::vector<std::pair<std::string, std::string>>& pods) {
    Json addresses = Json::array();
    for (const auto& [ip, hostname] : pods) {
      Json a = {{"ip", ip}, {"targetRef", {{"kind", "Pod"}, {"namespace", "default"}}}};
      if (!hostname.empty()) a["hostname"] = hostname;
      addresses.push_back(a);
    }
    Json endpoints = {
        {"kind", "Endpoints"},
        {"apiVersion", "v1"},
        {"metadata", {{"name", "ferry"}, {"namespace", "default"}, {"resourceVersion", "4711"}}},
        {"subsets",
         Json::array({{{"addresses", addresses},
                       {"notReadyAddresses", Json::array({{{"ip", "10.9.9.9"}}})},
                       {"ports", Json::array({{{"name", "cluster"},
                                               {"port", 4370},
                                               {"protocol", "TCP"}}})}}})}};
    std::lock_guard lock(mu_);
    body_ = endpoints.dump();
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{2, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) == 1) Answer(ssl);
      SSL_shutdown(ssl);
      SSL_free(ssl);
      close(c);
    }
  }
  void Answer(SSL* ssl) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) return;
      request.append(buf, static_cast<size_t>(n));
    }
    int status = 200;
    std::string body;
    if (request.find("\r\nAuthorization: Bearer " + token_ + "\r\n") == std::string::npos) {
      ++unauthorized_;
      status = 401;
      body = R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})";
    } else if (!request.starts_with("GET /api/v1/namespaces/default/endpoints/ferry ")) {
      status = 404;
      body = R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"endpoints \"x\" not found","reason":"NotFound","code":404})";
    } else {
      std::lock_guard lock(mu_);
      body = body_;
    }
    const std::string reply = "HTTP/1.1 " + std::to_string(status) +
                              (status == 200 ? " OK" : " Error") +
                              "\r\nContent-Type: application/json\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    SSL_write(ssl, reply.data(), static_cast<int>(reply.size()));
  }

  std::string token_;
  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> unauthorized_{0};
  std::mutex mu_;
  std::string body_ = R"({"kind":"Endpoints","apiVersion":"v1","metadata":{"name":"ferry"}})";
  std::thread thread_;
};

class ClusterK8sDiscovery : public ClusterFixture {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeTestCerts(dir_.path(), &certs_));
    std::ofstream(dir_.File("token")) << "t0ken-of-the-service-account\n";
    api_ = std::make_unique<FakeKubernetesApi>(certs_, "t0ken-of-the-service-account");
    net_ = RandomLoopbackNet();
  }
  std::string Ip(int i) const { return net_ + std::to_string(i + 1); }
  std::string NodeName(int i) const { return "ferry@" + Ip(i); }
  NodeProcess& Node(int i, const std::string& token_file) {
    return AddNamed(NodeName(i), "s3cret",
                    "[cluster]\nlisten = " + Ip(i) +
                        ":4370\ndiscovery = k8s\n[cluster.k8s]\napiserver = https://127.0.0.1:" +
                        std::to_string(api_->port()) +
                        "\nservice_name = ferry\nnamespace = default\naddress_type = ip\n"
                        "app_name = ferry\ntoken_file = " + token_file +
                        "\ncafile = " + certs_.ca + "\n");
  }

  TempDir dir_;
  TestCerts certs_;
  std::unique_ptr<FakeKubernetesApi> api_;
  std::string net_;
};

TEST_F(ClusterK8sDiscovery, EndpointsThatChangeWhileNodesRunFormOneCluster) {
  api_->SetAddresses({{Ip(3), ""}});
  for (int i = 1; i <= 3; ++i) Node(i, dir_.File("token"));
  // Only node 3 is an endpoint so far: the others would join it only if it
  // were in a cluster, and it finds nobody but itself.
  std::this_thread::sleep_for(seconds(6));
  for (int i = 1; i <= 3; ++i) EXPECT_TRUE(StatusIs(N(i), StatusLine({NodeName(i)})));
  // The other pods become ready.
  api_->SetAddresses({{Ip(1), ""}, {Ip(2), ""}, {Ip(3), ""}});
  EXPECT_TRUE(AllTogether({NodeName(1), NodeName(2), NodeName(3)}));
  auto d = DiscoveryStatus(N(2));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)["strategy"], "k8s");
  EXPECT_EQ((*d)["found"].size(), 3u) << d->dump();
  EXPECT_EQ(api_->unauthorized(), 0);
}

TEST_F(ClusterK8sDiscovery, AWrongTokenIsReported) {
  std::ofstream(dir_.File("bad-token")) << "not-the-token\n";
  api_->SetAddresses({{Ip(1), ""}, {Ip(2), ""}});
  NodeProcess& n = Node(1, dir_.File("bad-token"));
  EXPECT_TRUE(n.WaitForLog("discovery (k8s): k8s: endpoints of service 'ferry' in namespace "
                           "'default': HTTP 401: Unauthorized"));
  EXPECT_GT(api_->unauthorized(), 0);
}

}  // namespace
}  // namespace ferry::testing
