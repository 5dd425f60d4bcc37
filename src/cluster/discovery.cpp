#include "cluster/discovery.h"

#include <algorithm>
#include <set>
#include <utility>

#include "cluster/peer_address.h"

namespace ferry::cluster {
namespace {

class StaticDiscovery : public DiscoveryBackend {
 public:
  explicit StaticDiscovery(std::vector<std::string> seeds) : seeds_(std::move(seeds)) {}
  std::string_view strategy() const override { return "static"; }
  void Find(core::Loop& loop,
            std::function<void(Result<std::vector<std::string>>)> done) override {
    loop.Post([seeds = seeds_, done = std::move(done)] { done(seeds); });
  }

 private:
  std::vector<std::string> seeds_;
};

}  // namespace

std::shared_ptr<DiscoveryBackend> MakeStaticDiscovery(std::vector<std::string> seeds) {
  return std::make_shared<StaticDiscovery>(std::move(seeds));
}

std::shared_ptr<DiscoveryBackend> MakeDiscovery(const DiscoveryConfig& c) {
  if (c.strategy == "static") return MakeStaticDiscovery(c.static_seeds);
  if (c.strategy == "dns") return MakeDnsDiscovery(c.dns);
  if (c.strategy == "etcd") return MakeEtcdDiscovery(c.etcd);
  if (c.strategy == "k8s") return MakeK8sDiscovery(c.k8s);
  if (c.strategy == "mcast") return MakeMcastDiscovery(c.mcast);
  return nullptr;
}

std::vector<DiscoveryAttempt> DiscoveryOrder(const std::vector<std::string>& found,
                                             std::string_view self,
                                             std::vector<std::string>* bad) {
  std::vector<std::pair<std::string, std::string>> nodes;  // node name, target
  std::set<std::string> seen;
  for (const std::string& f : found) {
    auto address = ParsePeerAddress(f);
    if (!address.ok()) {
      if (bad != nullptr) bad->push_back(f);
      continue;
    }
    if (address->node == self || !seen.insert(address->node).second) continue;
    nodes.emplace_back(address->node, f);
  }
  std::sort(nodes.begin(), nodes.end());
  std::vector<DiscoveryAttempt> out;
  for (const auto& [node, target] : nodes) {
    if (node < self) out.push_back({target, false});
  }
  for (const auto& [node, target] : nodes) {
    if (node > self) out.push_back({target, true});
  }
  return out;
}

}  // namespace ferry::cluster
