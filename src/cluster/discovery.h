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
// Thread: a backend's Find runs on the cluster thread and calls back there.
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

class DiscoveryBackend {
 public:
  virtual ~DiscoveryBackend() = default;
  // "static", "dns", ...
  virtual std::string_view strategy() const = 0;
  // The nodes it finds ("name@host" or "name@host:port", this node possibly
  // among them). `done` runs once, on `loop`'s thread, never inside Find.
  virtual void Find(core::Loop& loop,
                    std::function<void(Result<std::vector<std::string>>)> done) = 0;
};

// [cluster.static] seeds: the list as it is.
std::shared_ptr<DiscoveryBackend> MakeStaticDiscovery(std::vector<std::string> seeds);

// What `cluster discovery status` shows.
struct DiscoveryStatus {
  std::string strategy = "manual";
  bool enabled = false;             // on, and not turned off by `cluster leave`
  std::vector<std::string> found;   // what the backend last found
  uint64_t found_at_ms = 0;         // Unix ms of that; 0 = never
  std::string last_error;           // the backend's, or the last join attempt's; "" = none
  uint64_t error_at_ms = 0;
  // What each source says now: "" for the backend, else a node found.
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
