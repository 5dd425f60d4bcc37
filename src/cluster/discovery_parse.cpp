// The pure parts of discovery: what a multicast datagram says and which
// nodes a Kubernetes Endpoints object lists (bytes from the network, so
// fuzzed: tests/fuzz/fuzz_discovery.cpp).
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "cluster/discovery.h"
#include "cluster/handshake.h"
#include "cluster/json_fields.h"
#include "cluster/peer_address.h"

namespace ferry::cluster {
namespace {

constexpr std::string_view kMagic = "ferry-mcast/1";
constexpr int64_t kMaxSkewMs = 60'000;

std::string Hex(const Digest& d) {
  std::string out;
  char b[3];
  for (uint8_t c : d) {
    std::snprintf(b, sizeof b, "%02x", c);
    out += b;
  }
  return out;
}

}  // namespace

std::string McastDatagram(char kind, const DiscoverySelf& self, int64_t unix_ms) {
  std::string body = std::string(kMagic) + " " + kind + " " + self.cluster + " " + self.node + " " +
                     std::to_string(self.port) + " " + std::to_string(unix_ms);
  const Digest key = CookieKey(self.cookie);
  return body + " " + Hex(HmacSha256(key, body));
}

Result<McastHeard> ParseMcastDatagram(std::string_view datagram, const DiscoverySelf& self,
                                      int64_t now_ms) {
  const size_t mac_at = datagram.rfind(' ');
  if (datagram.size() > kMcastMaxDatagram || mac_at == std::string_view::npos) {
    return Status::InvalidArgument("not a ferry announcement");
  }
  const std::string_view body = datagram.substr(0, mac_at);
  const Digest key = CookieKey(self.cookie);
  if (Hex(HmacSha256(key, body)) != datagram.substr(mac_at + 1)) {
    return Status::InvalidArgument("bad MAC (another cookie, or not ferry's)");
  }
  std::istringstream in{std::string(body)};
  std::string magic, kind, cluster;
  McastHeard heard;
  int64_t at = 0;
  unsigned port = 0;
  if (!(in >> magic >> kind >> cluster >> heard.node >> port >> at) || magic != kMagic ||
      (kind != "a" && kind != "q") || port == 0 || port > 65535) {
    return Status::InvalidArgument("malformed announcement");
  }
  if (cluster != self.cluster) return Status::InvalidArgument("of cluster '" + cluster + "'");
  if (at < now_ms - kMaxSkewMs || at > now_ms + kMaxSkewMs) {
    return Status::InvalidArgument("too old or from the future (clocks apart, or a replay)");
  }
  // A node name: name@host, no port.
  if (auto a = ParsePeerAddress(heard.node); !a.ok() || a->node != heard.node) {
    return Status::InvalidArgument("bad node name");
  }
  heard.query = kind == "q";
  heard.target = heard.node + ":" + std::to_string(port);
  return heard;
}

Result<std::vector<std::string>> K8sEndpointNodes(const std::string& body,
                                                  const K8sDiscoveryOptions& o) {
  Json endpoints = Json::parse(body, nullptr, false);
  if (endpoints.is_discarded() || !endpoints.is_object()) {
    return Status::Unavailable("k8s: the Endpoints answer is no JSON object");
  }
  std::vector<std::string> out;
  auto subsets = endpoints.find("subsets");
  if (subsets == endpoints.end() || !subsets->is_array()) return out;  // no ready pod yet
  for (const Json& subset : *subsets) {
    if (!subset.is_object()) continue;
    auto addresses = subset.find("addresses");
    if (addresses == subset.end() || !addresses->is_array()) continue;
    for (const Json& a : *addresses) {
      const std::string ip = JsonString(a, "ip");
      if (ip.empty()) continue;
      std::string host;
      if (o.address_type == "ip") {
        host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
      } else if (o.address_type == "dns") {
        std::string dashed = ip;
        std::replace(dashed.begin(), dashed.end(), '.', '-');
        std::replace(dashed.begin(), dashed.end(), ':', '-');
        host = dashed + "." + o.name_space + "." + o.suffix;
      } else {
        const std::string hostname = JsonString(a, "hostname");
        if (hostname.empty()) continue;  // only pods with a hostname have such a name
        host = hostname + "." + o.service_name + "." + o.name_space + "." + o.suffix;
      }
      out.push_back(o.app_name + "@" + host);
    }
  }
  return out;
}

}  // namespace ferry::cluster
