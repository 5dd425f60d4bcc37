// libFuzzer target: bytes a discovery backend reads from the network. The
// input is taken as a multicast announcement (what anybody on the segment
// may send to a node with discovery = mcast) and as the body of a
// Kubernetes Endpoints answer, under each naming. Nothing may crash, leak
// or read out of bounds; an announcement that parses must name a node
// whose target parses, and one made by the same cookie must read back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cluster/discovery.h"
#include "cluster/peer_address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::cluster;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const DiscoverySelf self{"ferry", "ferry1@10.0.0.1", "10.0.0.1", 4371, "s3cret"};
  constexpr int64_t kNow = 1'800'000'000'000;
  auto heard = ParseMcastDatagram(bytes, self, kNow);
  if (heard.ok() && !ParsePeerAddress(heard->target).ok()) std::abort();
  // The same fields, signed with the right cookie, read back.
  // (Whitespace would split the fields; such a name is no node name either.)
  if (!bytes.empty() && bytes.find_first_of(" \t\n\v\f\r") == std::string::npos &&
      bytes.size() < 200) {
    DiscoverySelf other = self;
    other.node = "n@" + bytes;
    auto back = ParseMcastDatagram(McastDatagram('a', other, kNow), self, kNow);
    auto address = ParsePeerAddress(other.node);
    const bool is_node_name = address.ok() && address->node == other.node;
    if (back.ok() != is_node_name) std::abort();
  }
  K8sDiscoveryOptions o;
  for (const char* type : {"ip", "dns", "hostname"}) {
    o.address_type = type;
    (void)K8sEndpointNodes(bytes, o);
  }
  return 0;
}
