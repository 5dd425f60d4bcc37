// Partitions on the cluster thread: autoclean removes a member unreachable
// for [cluster] autoclean and remembers it; autoheal probes what was
// removed and, when two sides that left each other out meet again, makes
// the smaller one join the other. A node that `cluster leave` took out
// stays out until `cluster join`.
//
// The decision is the same on both sides of a link, from what each side's
// member set says: the side with fewer members joins the other; on a tie,
// the side whose first member name sorts later does. So a 2-node split
// (1|1) heals the same way whoever sees the other first, and the nodes of a
// side that loses each join, one after the other, as each of them meets
// the winning side (the first to go leaves its side smaller still).
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "cluster/cluster_node_impl.h"
#include "core/atomic_file.h"
#include "core/log.h"

namespace ferry::cluster {
namespace {

constexpr const char* kCleanedFile = "/cluster_cleaned.json";

std::string Seconds(uint64_t ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

std::string Target(const MemberRecord& m) { return m.node + ":" + std::to_string(m.port); }

}  // namespace

void ClusterNode::Impl::LoadCleaned() {
  cleaned_path_ = options_.data_dir + kCleanedFile;
  cleaned_.clear();
  std::ifstream in(cleaned_path_);
  if (!in) return;
  std::stringstream text;
  text << in.rdbuf();
  auto file = nlohmann::json::parse(text.str(), nullptr, false);
  if (!file.is_object() || !file.contains("nodes") || !file["nodes"].is_array()) {
    FERRY_WARN("cluster: %s is unreadable; the nodes autoclean removed are forgotten",
               cleaned_path_.c_str());
    return;
  }
  left_ = file.contains("left") && file["left"].is_boolean() && file["left"].get<bool>();
  for (const auto& e : file["nodes"]) {
    if (!e.is_object() || !e.contains("node") || !e["node"].is_string() || !e.contains("host") ||
        !e["host"].is_string() || !e.contains("port") || !e["port"].is_number_unsigned()) {
      continue;
    }
    MemberRecord m;
    m.node = e["node"].get<std::string>();
    m.host = e["host"].get<std::string>();
    m.port = static_cast<uint16_t>(e["port"].get<unsigned>());
    if (m.node != self_.node) cleaned_[m.node] = m;
  }
}

void ClusterNode::Impl::SaveCleaned() {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& [node, m] : cleaned_) {
    nodes.push_back({{"node", m.node}, {"host", m.host}, {"port", m.port}});
  }
  const nlohmann::json file = {{"left", left_}, {"nodes", nodes}};
  if (Status st = core::WriteFileAtomically(cleaned_path_, file.dump(2) + "\n"); !st.ok()) {
    FERRY_ERROR("cluster: cannot save the nodes autoclean removed: %s", st.ToString().c_str());
  }
}

void ClusterNode::Impl::AutoClean() {
  // Members are forgotten here once they are back.
  bool forgot = false;
  for (auto it = cleaned_.begin(); it != cleaned_.end();) {
    if (members_.IsMember(it->first) || members_.IsRemoved(it->first)) {
      it = cleaned_.erase(it);
      forgot = true;
    } else {
      ++it;
    }
  }
  if (forgot) SaveCleaned();
  if (options_.autoclean_ms == 0) return;
  const uint64_t now = loop_.Now();
  std::vector<std::string> gone;
  for (const auto& [node, p] : peers_) {
    if (members_.IsMember(node) && !Running(p) && p.down_at_ms != 0 &&
        now - p.down_at_ms >= options_.autoclean_ms) {
      gone.push_back(node);
    }
  }
  if (gone.empty()) return;
  for (const std::string& node : gone) {
    cleaned_[node] = members_.members().at(node);
    members_.Remove(node, false);
    FERRY_WARN("cluster: autoclean removed '%s' from cluster '%s': unreachable for %s or more "
               "(epoch %llu)%s",
               node.c_str(), options_.cluster.c_str(), Seconds(options_.autoclean_ms).c_str(),
               static_cast<unsigned long long>(members_.epoch()),
               options_.autoheal ? "; it is probed, and merged back when it is reachable again"
                                 : "");
  }
  SaveCleaned();
  SaveMembers();
  OnMembersChanged();  // purges their routes, releases what was held for them
}

void ClusterNode::Impl::ProbeCleaned() {
  if (!options_.autoheal || join_ || cleaned_.empty()) return;
  const uint64_t now = loop_.Now();
  if (now < next_probe_ms_) return;
  next_probe_ms_ = now + options_.probe_interval_ms;
  for (const auto& [node, m] : cleaned_) {
    if (members_.IsMember(node) || probes_.contains(node)) continue;
    FERRY_DEBUG("cluster: probing '%s' (%s:%u), removed by autoclean", node.c_str(),
                m.host.c_str(), unsigned{m.port});
    probes_[node] = &Dial(PeerAddress{m.node, m.host, m.port}, kControlPurpose);
  }
}

void ClusterNode::Impl::DecideMerge(Conn& c, const Membership& theirs) {
  const std::string& peer = c.peer();
  auto there = theirs.members().find(peer);
  if (there == theirs.members().end() || members_.members().empty()) return;  // not a peer's set
  const size_t mine = members_.members().size();
  const size_t other = theirs.members().size();
  const std::string& my_first = members_.members().begin()->first;
  const std::string& their_first = theirs.members().begin()->first;
  const bool we_join = mine < other || (mine == other && my_first > their_first);
  std::string why = mine != other ? (mine < other ? "it has more members (" : "this side has more (") +
                                        std::to_string(std::max(mine, other)) + " to " +
                                        std::to_string(std::min(mine, other)) + ")"
                                  : "as many members on each side, and '" +
                                        std::min(my_first, their_first) + "' sorts first";
  if (!we_join) {
    FERRY_INFO("cluster: autoheal: '%s' is reachable again, in another part of cluster '%s'; "
               "that side joins this one: %s",
               peer.c_str(), options_.cluster.c_str(), why.c_str());
    return;
  }
  if (left_) {
    FERRY_DEBUG("cluster: autoheal: '%s' would have this node join its part of cluster '%s', but "
               "this node left it (`ferryctl cluster join` takes it back)",
               peer.c_str(), options_.cluster.c_str());
    return;
  }
  if (heal_ && heal_->target == Target(there->second)) return;  // already decided
  heal_ = PendingHeal{Target(there->second), loop_.Now() + options_.autoheal_delay_ms};
  FERRY_WARN("cluster: autoheal: '%s' is reachable again, in another part of cluster '%s' "
             "(%zu members, this side %zu); this side joins it in %s: %s",
             peer.c_str(), options_.cluster.c_str(), other, mine,
             Seconds(options_.autoheal_delay_ms).c_str(), why.c_str());
}

void ClusterNode::Impl::RunPendingHeal() {
  if (!heal_ || join_ || loop_.Now() < heal_->due_ms) return;
  const std::string target = heal_->target;
  heal_.reset();
  auto to = ParsePeerAddress(target);
  if (!to.ok() || members_.IsMember(to->node)) return;  // merged meanwhile
  StartJoin(target, false, true, [this, target](const JoinResult& r) {
    if (r.status.ok()) {
      FERRY_INFO("cluster: autoheal done: joined '%s'; cluster '%s' has %zu members", target.c_str(),
                 options_.cluster.c_str(), members_.members().size());
      if (options_.autoheal_restart && core_.disconnect_clients) {
        core_.disconnect_clients(
            "the node rejoined its cluster after a split (autoheal_mode = restart)",
            [](size_t closed) {
              FERRY_INFO("cluster: autoheal_mode = restart: closed %zu client connection%s; "
                         "their sessions stay",
                         closed, closed == 1 ? "" : "s");
            });
      }
    } else {
      FERRY_WARN("cluster: autoheal: joining '%s' failed: %s; tried again on the next probe",
                 target.c_str(), r.status.message().c_str());
    }
  });
  // Both parts' retained messages live on: they meet by last writer wins.
  if (join_) join_->merge = true;
}

}  // namespace ferry::cluster
