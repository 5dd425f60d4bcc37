// The `cluster` admin commands (ferryctl and the HTTP API), in the seeds'
// words and output:
//
//   cluster join NODE          Join the cluster successfully.
//                              Cluster status: [{running_nodes,['a@h','b@h']}]
//   cluster leave              this node leaves
//   cluster force-leave NODE   removes another node for good (`remove` too)
//   cluster status             Cluster status: [{running_nodes,[...]},{stopped_nodes,[...]}]
//                              (--json: {"running_nodes":[...],"stopped_nodes":[...]})
//   cluster nodes              a table: state, address, uptime (or since when it is
//                              down), routes, sessions, round trip, messages
//   cluster digest             a hash of the member set, routes and retained messages
//   cluster discovery status|enable|disable
//
// Errors are one line; a failed join reads "Failed to join the cluster: why".
//
// Thread: Register on the main loop; handlers run there and hand the
// ClusterNode's answers back to it.
#pragma once

#include <string>

#include "core/status.h"

namespace ferry::core {
class AdminRegistry;
class Loop;
}  // namespace ferry::core

namespace ferry::cluster {

class ClusterNode;
struct ClusterStatus;

// The ferry_cluster_* series of /metrics (Prometheus text format 0.0.4):
// members, epoch, unreachable members and the partition alarm, and per
// member whether its link is up, its round trip, the routes it owns as known
// here and what was forwarded.
std::string ClusterPrometheusMetrics(const ClusterStatus& status);

// Registers the commands. `node` may be null (the node has no cookie): the
// commands then say `why_disabled`, and status lists this node alone as
// `self`. Borrows `main_loop` and `node`, which must outlive the registry's
// use of them. Errors: a command path already registered.
Status RegisterClusterCommands(core::AdminRegistry& registry, core::Loop& main_loop,
                               ClusterNode* node, std::string self, std::string why_disabled);

}  // namespace ferry::cluster
