// Discovery: where a node alone looks for the other members of its cluster
// ([cluster] discovery), so that nodes form a cluster without anyone typing
// `cluster join`.
//
// The loop (ClusterNode, every discovery_interval while the node is alone
// and discovery is on): ask the backend for the nodes it knows, then try
// them in name order. A node whose name sorts before this node's is joined
// outright; one that sorts after it only if it is in a cluster already (the
// join request says so: JoinRequest::only_if_clustered). So the node that
// sorts first among those that are up is the one the others join, and two
// nodes that find each other at the same moment never make each other
// join: they form one cluster, never two. A node that starts late joins the
// cluster the others formed, whatever its name.
//
// `cluster leave` turns discovery off on that node (it would rejoin at
// once); `cluster discovery enable` turns it on again. The setting is kept
// in data_dir across restarts.
//
// Strategies (one file each): static (the seed list), dns (A, AAAA or SRV
// records through c-ares), etcd (the v3 JSON API, where each node also
// registers itself under a lease), k8s (a Service's Endpoints), mcast
// (cookie-authenticated announcements on a multicast group).
//
// Thread: a backend's Start, Stop and Find run on the cluster thread and
// call back there.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/loop.h"
#include "core/status.h"

namespace ferry::cluster {

// This node as a backend registers or announces it.
struct DiscoverySelf {
  std::string cluster;  // [cluster] name
  std::string node;     // name@host
  std::string host;     // where its cluster port is, as peers dial it
  uint16_t port = 0;    // its cluster port
  std::string cookie;   // for strategies that authenticate what they hear
};

class DiscoveryBackend {
 public:
  virtual ~DiscoveryBackend() = default;
  // "static", "dns", ...
  virtual std::string_view strategy() const = 0;
  // Once the node listens: strategies that make this node known (etcd's
  // key under a lease, mcast's announcements) start doing so, whether or
  // not the node is alone, until Stop(). `report` gets what goes wrong
  // with that ("" once it works again), on `loop`'s thread.
  virtual void Start(core::Loop& loop, const DiscoverySelf& self,
                     std::function<void(std::string)> report) {
    (void)loop, (void)self, (void)report;
  }
  // Before the loop stops: no callback runs afterwards. A registration is
  // withdrawn when that can be done quickly (etcd's lease is revoked).
  virtual void Stop() {}
  // The nodes it finds ("name@host" or "name@host:port", this node possibly
  // among them). `done` runs once, on `loop`'s thread, never inside Find.
  virtual void Find(core::Loop& loop,
                    std::function<void(Result<std::vector<std::string>>)> done) = 0;
};

// [cluster.static] seeds: the list as it is.
std::shared_ptr<DiscoveryBackend> MakeStaticDiscovery(std::vector<std::string> seeds);

// [cluster.dns] (discovery_dns.cpp): A or AAAA records of `name` give
// `app@IP` (the cluster port by the rule of the node name); SRV records
// give `app@target:port`. Asked of `servers` ("host:port" or
// "[v6]:port", comma separated), or of the system's resolvers when empty,
// through c-ares on the cluster loop.
struct DnsDiscoveryOptions {
  std::string name;
  std::string app = "ferry";
  std::string record_type = "a";  // a | aaaa | srv
  std::string servers;
};
std::shared_ptr<DiscoveryBackend> MakeDnsDiscovery(DnsDiscoveryOptions options);

// TLS files of an HTTPS client; empty = not used (the system CAs verify).
struct HttpTlsFiles {
  std::string cafile;
  std::string certfile;
  std::string keyfile;
};

// [cluster.etcd] (discovery_etcd.cpp): each node puts
// `<prefix>/<cluster>/nodes/<node>` = "node@host:port" under a lease of
// `node_ttl`, kept alive every third of it and revoked when the node
// stops; Find lists the keys under `<prefix>/<cluster>/nodes/`. The v3
// JSON gateway (etcd 3.4 and later) over HTTP or HTTPS; `servers` are
// tried in turn.
struct EtcdDiscoveryOptions {
  std::vector<std::string> servers = {"http://127.0.0.1:2379"};
  std::string prefix = "ferrycl";
  uint64_t node_ttl_ms = 60000;
  HttpTlsFiles tls;
};
std::shared_ptr<DiscoveryBackend> MakeEtcdDiscovery(EtcdDiscoveryOptions options);

// [cluster.k8s] (discovery_k8s.cpp): the ready addresses of the Endpoints
// of `service_name` in `namespace`, from the API server, with the service
// account's bearer token and CA. Node names: `app_name@10.1.2.3` (ip),
// `app_name@10-1-2-3.<namespace>.<suffix>` (dns), or
// `app_name@<hostname>.<service_name>.<namespace>.<suffix>` (hostname).
struct K8sDiscoveryOptions {
  std::string apiserver = "https://kubernetes.default.svc:443";
  std::string service_name = "ferry";
  std::string address_type = "ip";  // ip | dns | hostname
  std::string app_name = "ferry";
  std::string name_space = "default";
  std::string suffix = "pod.cluster.local";
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string cafile = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
};
std::shared_ptr<DiscoveryBackend> MakeK8sDiscovery(K8sDiscoveryOptions options);
// The node names of an Endpoints object (the API's JSON), by `o`'s naming.
Result<std::vector<std::string>> K8sEndpointNodes(const std::string& body,
                                                  const K8sDiscoveryOptions& o);

// [cluster.mcast] (discovery_mcast.cpp): every node announces itself on
// the group `addr`, to each of `ports`, when it starts and whenever one
// asks; a datagram carries the cluster name, the node and its port, the
// time, and an HMAC-SHA256 under the cookie, so that clusters with other
// cookies on one segment never mix and an old datagram replayed is not
// taken. Find asks, then returns what it heard in the last minute.
struct McastDiscoveryOptions {
  std::string addr = "239.192.0.1";
  std::vector<uint16_t> ports = {4369, 4370};
  std::string iface = "0.0.0.0";
  int ttl = 255;
  bool loop = true;
};
std::shared_ptr<DiscoveryBackend> MakeMcastDiscovery(McastDiscoveryOptions options);
// A datagram of kind 'a' (announce) or 'q' (query) from `self`, and what
// one heard says, checked against this node's cluster, cookie and clock
// (InvalidArgument, with why it is dropped).
inline constexpr size_t kMcastMaxDatagram = 1024;
std::string McastDatagram(char kind, const DiscoverySelf& self, int64_t unix_ms);
struct McastHeard {
  bool query = false;
  std::string node;    // name@host
  std::string target;  // name@host:port
};
Result<McastHeard> ParseMcastDatagram(std::string_view datagram, const DiscoverySelf& self,
                                      int64_t now_ms);

// [cluster] discovery with the options of each strategy: the backend, or
// null for manual.
struct DiscoveryConfig {
  std::string strategy = "manual";
  std::vector<std::string> static_seeds;
  DnsDiscoveryOptions dns;
  EtcdDiscoveryOptions etcd;
  K8sDiscoveryOptions k8s;
  McastDiscoveryOptions mcast;
};
std::shared_ptr<DiscoveryBackend> MakeDiscovery(const DiscoveryConfig& config);

// What `cluster discovery status` shows.
struct DiscoveryStatus {
  std::string strategy = "manual";
  bool enabled = false;             // on, and not turned off by `cluster leave`
  std::vector<std::string> found;   // what the backend last found
  uint64_t found_at_ms = 0;         // Unix ms of that; 0 = never
  std::string last_error;           // the backend's, or the last join attempt's; "" = none
  uint64_t error_at_ms = 0;
  // What each source says now: "" for the backend's Find, "registration"
  // for its Start (etcd's key, mcast's socket), else a node found.
  std::map<std::string, std::string> errors;
};

// The order a node alone tries `found` in (this node and duplicates left
// out): those whose node name sorts before `self` first, joined outright;
// then the others, joined only if they are in a cluster. Entries that are
// no node address are dropped (and named in `bad`, if given).
struct DiscoveryAttempt {
  std::string target;  // as found
  bool only_if_clustered = false;
};
std::vector<DiscoveryAttempt> DiscoveryOrder(const std::vector<std::string>& found,
                                             std::string_view self,
                                             std::vector<std::string>* bad = nullptr);

}  // namespace ferry::cluster
