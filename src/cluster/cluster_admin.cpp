#include "cluster/cluster_admin.h"

#include <chrono>
#include <map>
#include <memory>
#include <utility>

#include "cluster/cluster_node.h"
#include "core/admin.h"
#include "core/loop.h"

namespace ferry::cluster {
namespace {

using core::AdminCommand;
using core::AdminDone;
using core::AdminRequest;
using core::AdminResult;
using core::Json;

std::string ErlangList(const std::vector<std::string>& nodes) {
  std::string out = "[";
  for (const std::string& n : nodes) out += (out.size() > 1 ? "," : "") + ("'" + n + "'");
  return out + "]";
}

// "Cluster status: [{running_nodes,['a@h']},{stopped_nodes,['b@h']}]"
std::string StatusLine(const ClusterStatus& s) {
  std::string line = "Cluster status: [{running_nodes," + ErlangList(s.running_nodes()) + "}";
  if (!s.stopped_nodes().empty()) line += ",{stopped_nodes," + ErlangList(s.stopped_nodes()) + "}";
  return line + "]\n";
}

Json StatusJson(const ClusterStatus& s) {
  return Json{{"running_nodes", s.running_nodes()}, {"stopped_nodes", s.stopped_nodes()}};
}

std::string Uptime(uint64_t boot_ms) {
  const auto now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  uint64_t s = now > boot_ms ? (now - boot_ms) / 1000 : 0;
  const uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
  s %= 60;
  if (d > 0) return std::to_string(d) + "d" + std::to_string(h) + "h";
  if (h > 0) return std::to_string(h) + "h" + std::to_string(m) + "m";
  if (m > 0) return std::to_string(m) + "m" + std::to_string(s) + "s";
  return std::to_string(s) + "s";
}

std::string Pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

AdminResult NodesResult(const ClusterStatus& s) {
  Json rows = Json::array();
  std::vector<std::vector<std::string>> table = {
      {"NODE", "STATE", "ADDRESS", "UPTIME", "ROUTES", "SESSIONS", "RTT_MS", "MSGS_IN",
       "MSGS_OUT", "DROPPED"}};
  for (const MemberStatus& m : s.members) {
    const std::string address = m.host + ":" + std::to_string(m.port);
    const std::string state = m.running ? "running" : "stopped";
    char rtt[32];
    std::snprintf(rtt, sizeof rtt, "%.3f", static_cast<double>(m.rtt_us) / 1000.0);
    rows.push_back(Json{{"node", m.node},
                        {"state", state},
                        {"address", address},
                        {"boot_ms", m.boot_ms},
                        {"routes", m.routes},
                        {"sessions", m.sessions},
                        {"rtt_us", m.rtt_us},
                        {"forwarded_in", m.forwarded_in},
                        {"forwarded_out", m.forwarded_out},
                        {"forward_dropped", m.forward_dropped},
                        {"forward_unacked", m.forward_unacked},
                        {"down_since_ms", m.down_since_ms}});
    const bool self = m.node == s.self;
    // A member that is down: since when, instead of its uptime.
    table.push_back({m.node, state, address,
                     m.running ? Uptime(m.boot_ms)
                               : (m.down_since_ms != 0 ? "down " + Uptime(m.down_since_ms) : "-"),
                     std::to_string(m.routes), std::to_string(m.sessions),
                     m.rtt_us == 0 ? "-" : rtt,
                     self ? "-" : std::to_string(m.forwarded_in),
                     self ? "-" : std::to_string(m.forwarded_out),
                     self ? "-" : std::to_string(m.forward_dropped)});
  }
  std::vector<size_t> widths(table[0].size(), 0);
  for (const auto& row : table) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string text;
  for (const auto& row : table) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += i + 1 < row.size() ? Pad(row[i], widths[i] + 2) : row[i];
    }
    text += line + "\n";
  }
  return AdminResult::Value(std::move(rows), std::move(text));
}

// Answers on the main loop what the cluster thread found.
class Commands {
 public:
  Commands(core::Loop& loop, ClusterNode* node, std::string self, std::string why_disabled)
      : loop_(loop), node_(node), self_(std::move(self)), why_disabled_(std::move(why_disabled)) {}

  void Reply(const AdminDone& done, AdminResult result) {
    auto r = std::make_shared<AdminResult>(std::move(result));
    loop_.Post([done, r] { done(std::move(*r)); });
  }
  bool Disabled(const AdminDone& done, const std::string& prefix = "") {
    if (node_ != nullptr) return false;
    done(AdminResult::Error(Status::Unavailable(prefix + why_disabled_)));
    return true;
  }
  // A status for a node that has no cluster: itself, running.
  ClusterStatus Alone() const {
    ClusterStatus s;
    s.self = self_;
    s.members.push_back(MemberStatus{self_, "", 0, true, 0, 0, 0});
    return s;
  }
  void WithStatus(const AdminDone& done, std::function<AdminResult(const ClusterStatus&)> fn) {
    if (node_ == nullptr) return done(fn(Alone()));
    node_->GetStatus([this, done, fn](ClusterStatus s) { Reply(done, fn(s)); });
  }

  void Join(const AdminRequest& req, AdminDone done) {
    if (Disabled(done, "Failed to join the cluster: ")) return;
    node_->Join(req.Arg("NODE"), [this, done](JoinResult r) {
      if (!r.status.ok()) {
        Status st =
            r.status.code() == Status::Code::kInvalidArgument
                ? Status::InvalidArgument("Failed to join the cluster: " + r.status.message())
                : Status::Unavailable("Failed to join the cluster: " + r.status.message());
        return Reply(done, AdminResult::Error(std::move(st)));
      }
      Json value = StatusJson(r.status_after);
      if (r.ignored) {
        value["ignored"] = true;
        return Reply(done, AdminResult::Value(std::move(value), "Ignore.\n"));
      }
      std::string text;
      if (!r.dropped.empty()) {
        value["dropped"] = r.dropped;
        text = "This node " + r.dropped + ".\n";
      }
      text += "Join the cluster successfully.\n" + StatusLine(r.status_after);
      Reply(done, AdminResult::Value(std::move(value), std::move(text)));
    });
  }

  void Leave(const AdminRequest&, AdminDone done) {
    if (Disabled(done)) return;
    node_->Leave(Then(done, "Leave the cluster successfully.\n"));
  }

  void DiscoveryStatusCmd(const AdminRequest&, AdminDone done) {
    if (Disabled(done)) return;
    node_->GetDiscovery([this, done](DiscoveryStatus d) { Reply(done, DiscoveryResult(d)); });
  }
  void Digest(const AdminRequest&, AdminDone done) {
    if (Disabled(done)) return;
    node_->GetDigest([this, done](ClusterDigest d) {
      Json j = {{"members", {{"digest", d.members}, {"count", d.member_count}}},
                {"routes", {{"digest", d.routes}, {"count", d.route_count}}},
                {"retained", {{"digest", d.retained}, {"count", d.retained_count}}}};
      std::string text = "members   " + d.members + "  " + std::to_string(d.member_count) +
                         "\nroutes    " + d.routes + "  " + std::to_string(d.route_count) +
                         "\nretained  " + d.retained + "  " + std::to_string(d.retained_count) +
                         "\n";
      Reply(done, AdminResult::Value(std::move(j), std::move(text)));
    });
  }
  void Locks(const AdminRequest&, AdminDone done) {
    if (Disabled(done)) return;
    node_->GetLocks([this, done](std::vector<LockStatus> locks) {
      Json rows = Json::array();
      std::string text;
      for (const LockStatus& l : locks) {
        std::string grantors;
        for (const std::string& g : l.grantors) grantors += (grantors.empty() ? "" : ",") + g;
        Json row = {{"resource", l.resource}, {"holder", l.holder}, {"token", l.token}};
        if (!l.type.empty()) {
          row["held"] = true;
          row["type"] = l.type;
          row["granted_by"] = l.grantors;
          text += l.resource + "  held by this node (" + l.type + ", granted by " + grantors +
                  ")  token " + std::to_string(l.token) + "\n";
        } else {
          row["held"] = false;
          row["expires_in_ms"] = l.expires_in_ms;
          text += l.resource + "  granted to " + l.holder + "  token " + std::to_string(l.token) +
                  "  lease " + std::to_string((l.expires_in_ms + 999) / 1000) + " s\n";
        }
        rows.push_back(std::move(row));
      }
      if (locks.empty()) text = "no locks\n";
      Reply(done, AdminResult::Value(Json{{"locks", std::move(rows)}}, std::move(text)));
    });
  }
  void DiscoveryEnable(const AdminRequest&, AdminDone done) { SetDiscovery(true, done); }
  void DiscoveryDisable(const AdminRequest&, AdminDone done) { SetDiscovery(false, done); }

  void ForceLeave(const AdminRequest& req, AdminDone done) {
    if (Disabled(done)) return;
    const std::string gone = req.Arg("NODE");
    node_->ForceLeave(
        gone, Then(done, "Remove the node '" + gone + "' from the cluster successfully.\n"));
  }

 private:
  void SetDiscovery(bool enabled, AdminDone done) {
    if (Disabled(done)) return;
    node_->SetDiscovery(enabled, [this, done](Status st) {
      if (!st.ok()) return Reply(done, AdminResult::Error(st));
      node_->GetDiscovery([this, done](DiscoveryStatus d) { Reply(done, DiscoveryResult(d)); });
    });
  }
  static AdminResult DiscoveryResult(const DiscoveryStatus& d) {
    Json found = Json::array();
    for (const std::string& f : d.found) found.push_back(f);
    Json errors = Json::object();
    for (const auto& [source, error] : d.errors) errors[source.empty() ? "backend" : source] = error;
    Json value{{"strategy", d.strategy},
               {"enabled", d.enabled},
               {"found", found},
               {"found_at_ms", d.found_at_ms},
               {"last_error", d.last_error},
               {"error_at_ms", d.error_at_ms},
               {"errors", errors}};
    std::string text = "strategy: " + d.strategy + (d.enabled ? " (on)" : " (off)") + "\n";
    std::string names;
    for (const std::string& f : d.found) names += (names.empty() ? "" : ", ") + f;
    text += "found: " + (d.found_at_ms == 0 ? std::string("-") : names.empty() ? "nothing" : names);
    if (d.found_at_ms != 0) text += " (" + Uptime(d.found_at_ms) + " ago)";
    text += "\nlast error: " + (d.last_error.empty() ? std::string("-") : d.last_error);
    if (!d.last_error.empty()) text += " (" + Uptime(d.error_at_ms) + " ago)";
    text += "\n";
    for (const auto& [source, error] : d.errors) text += "  " + error + "\n";
    return AdminResult::Value(std::move(value), text);
  }

  // Answers a change: its error, or `first_line` and the status after it.
  std::function<void(Status)> Then(AdminDone done, std::string first_line) {
    return [this, done, first_line](Status st) {
      if (!st.ok()) return Reply(done, AdminResult::Error(st));
      node_->GetStatus([this, done, first_line](ClusterStatus s) {
        Reply(done, AdminResult::Value(StatusJson(s), first_line + StatusLine(s)));
      });
    };
  }

  core::Loop& loop_;
  ClusterNode* node_;
  std::string self_;
  std::string why_disabled_;
};

}  // namespace

std::string ClusterPrometheusMetrics(const ClusterStatus& s) {
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  // Node names are name@host: no character needs escaping in a label.
  auto per_member = [&](const char* name, const char* type, const char* help, auto value) {
    family(name, type, help);
    for (const MemberStatus& m : s.members) {
      out += std::string(name) + "{node=\"" + m.node + "\"} " + value(m) + "\n";
    }
  };
  family("ferry_cluster_members", "gauge", "Members of this node's cluster, itself included.");
  out += "ferry_cluster_members " + std::to_string(s.members.size()) + "\n";
  family("ferry_cluster_epoch", "gauge", "Epoch of the member set as this node knows it.");
  out += "ferry_cluster_epoch " + std::to_string(s.epoch) + "\n";
  family("ferry_cluster_members_unreachable", "gauge",
         "Members unreachable for [cluster] peer_down_after or longer.");
  out += "ferry_cluster_members_unreachable " + std::to_string(s.unreachable.size()) + "\n";
  family("ferry_cluster_alarm_active", "gauge",
         "1 while the alarm is raised: cluster_partition (a member unreachable).");
  out += std::string("ferry_cluster_alarm_active{alarm=\"cluster_partition\"} ") +
         (s.alarm_since_ms != 0 ? "1" : "0") + "\n";
  family("ferry_cluster_sessions_imported_total", "counter",
         "Sessions that moved to this node from another (a client reconnected here).");
  out += "ferry_cluster_sessions_imported_total " + std::to_string(s.sessions_imported) + "\n";
  family("ferry_cluster_sessions_exported_total", "counter",
         "Sessions that moved from this node to another.");
  out += "ferry_cluster_sessions_exported_total " + std::to_string(s.sessions_exported) + "\n";
  family("ferry_cluster_sessions_discarded_total", "counter",
         "Copies of sessions dropped here because their client connected to another node "
         "later (after a split, or while this node was down).");
  out += "ferry_cluster_sessions_discarded_total " + std::to_string(s.sessions_discarded) + "\n";
  family("ferry_cluster_locks_held", "gauge", "Cluster locks this node holds.");
  out += "ferry_cluster_locks_held " + std::to_string(s.locks_held) + "\n";
  family("ferry_cluster_locks_granted", "gauge", "Cluster locks this node granted to any node.");
  out += "ferry_cluster_locks_granted " + std::to_string(s.locks_granted) + "\n";
  per_member("ferry_cluster_member_up", "gauge",
             "1 for this node and each member whose control link is up.",
             [](const MemberStatus& m) { return std::string(m.running ? "1" : "0"); });
  per_member("ferry_cluster_member_rtt_seconds", "gauge",
             "Last heartbeat round trip of the control link (0 before the first).",
             [](const MemberStatus& m) {
               char v[32];
               std::snprintf(v, sizeof v, "%.6f", static_cast<double>(m.rtt_us) / 1e6);
               return std::string(v);
             });
  per_member("ferry_cluster_member_routes", "gauge",
             "Routes each member owns, as this node knows them.",
             [](const MemberStatus& m) { return std::to_string(m.routes); });
  per_member("ferry_cluster_member_sessions", "gauge",
             "Sessions (connected and offline) on each member, as it last said.",
             [](const MemberStatus& m) { return std::to_string(m.sessions); });
  // Forwarding, per peer (this node's own row stays 0).
  per_member("ferry_cluster_forwarded_out_total", "counter",
             "Messages this node sent to each peer for its subscribers (QoS 1/2 resends "
             "after a lost link included).",
             [](const MemberStatus& m) { return std::to_string(m.forwarded_out); });
  per_member("ferry_cluster_forwarded_in_total", "counter",
             "Messages each peer forwarded to this node.",
             [](const MemberStatus& m) { return std::to_string(m.forwarded_in); });
  per_member("ferry_cluster_forward_dropped_total", "counter",
             "Messages for each peer's subscribers this node dropped: QoS 0 past the link's "
             "byte cap or while the link was down, QoS 1/2 held for it when it was declared "
             "down or removed, messages larger than a peer frame.",
             [](const MemberStatus& m) { return std::to_string(m.forward_dropped); });
  per_member("ferry_cluster_forward_unacked", "gauge",
             "QoS 1/2 messages forwarded to each peer and not acknowledged by it yet.",
             [](const MemberStatus& m) { return std::to_string(m.forward_unacked); });
  return out;
}

namespace {

// Runs on this node the admin commands peers ask for (`clients show ID
// --local` ...), on the main loop, as ferryctl would. A listing is kept
// between its pages for a minute at most.
class PeerAdmin : public std::enable_shared_from_this<PeerAdmin> {
 public:
  PeerAdmin(core::AdminRegistry& registry, core::Loop& loop) : registry_(registry), loop_(loop) {}

  // Any thread; `done` runs on the main loop.
  void Serve(AdminCallFrame call, std::function<void(AdminReplyFrame)> done) {
    loop_.Post([self = shared_from_this(), call = std::move(call), done = std::move(done)]() mutable {
      self->OnMain(std::move(call), std::move(done));
    });
  }

 private:
  static constexpr uint64_t kListingIdleMs = 60000;
  struct Listing {
    core::AdminPageSource source;
    uint64_t used_ms = 0;
  };

  static AdminReplyFrame Error(const Status& st) {
    return AdminReplyFrame{0, core::AdminErrorKind(st), st.message(), "", 0};
  }
  static std::string Dump(const core::Json& j) {
    return j.dump(-1, ' ', false, core::Json::error_handler_t::replace);
  }

  void OnMain(AdminCallFrame call, std::function<void(AdminReplyFrame)> done) {
    const uint64_t now = loop_.Now();
    std::erase_if(listings_, [&](const auto& kv) { return now - kv.second.used_ms > kListingIdleMs; });
    if (call.max_rows > 0 && call.cursor != 0) {
      if (!listings_.contains(call.cursor)) {
        return done(Error(Status::NotFound("the listing ended or was idle too long")));
      }
      return Pull(call.cursor, call.max_rows, std::move(done));
    }
    registry_.Dispatch(call.words, [self = shared_from_this(), max = call.max_rows,
                                    done = std::move(done)](core::AdminResult r) mutable {
      if (!r.ok()) return done(Error(r.status()));
      if (!r.is_list()) return done(AdminReplyFrame{0, "", "", Dump(r.value()), 0});
      if (max == 0) return done(Error(Status::InvalidArgument("a listing is read page by page")));
      const uint64_t id = self->next_++;
      self->listings_[id] = Listing{std::move(r.source()), self->loop_.Now()};
      self->Pull(id, max, std::move(done));
    });
  }

  void Pull(uint64_t id, uint32_t max, std::function<void(AdminReplyFrame)> done) {
    Listing& l = listings_[id];
    l.used_ms = loop_.Now();
    l.source(max, [self = shared_from_this(), id, done = std::move(done)](
                      Result<core::AdminPage> p) mutable {
      self->loop_.Post([self, id, done = std::move(done), p = std::move(p)]() mutable {
        if (!p.ok()) {
          self->listings_.erase(id);
          return done(Error(p.status()));
        }
        if (p.value().last) self->listings_.erase(id);
        done(AdminReplyFrame{0, "", "", Dump(p.value().rows), p.value().last ? 0 : id});
      });
    });
  }

  core::AdminRegistry& registry_;
  core::Loop& loop_;
  std::map<uint64_t, Listing> listings_;
  uint64_t next_ = 1;
};

}  // namespace

Status RegisterClusterCommands(core::AdminRegistry& registry, core::Loop& main_loop,
                               ClusterNode* node, std::string self, std::string why_disabled) {
  auto commands =
      std::make_shared<Commands>(main_loop, node, std::move(self), std::move(why_disabled));
  auto bind = [commands](void (Commands::*fn)(const AdminRequest&, AdminDone)) {
    return [commands, fn](const AdminRequest& req, AdminDone done) {
      ((*commands).*fn)(req, std::move(done));
    };
  };
  const std::string force_leave_help =
      "The node is dropped by every member and refused if it comes back, until it joins "
      "again itself.";
  std::vector<AdminCommand> list = {
      {"cluster status",
       "",
       {},
       "running and stopped members of this node's cluster",
       "",
       core::AdminAccess::kRead,
       [commands](const AdminRequest&, AdminDone done) {
         commands->WithStatus(done, [](const ClusterStatus& s) {
           return AdminResult::Value(StatusJson(s), StatusLine(s));
         });
       }},
      {"cluster nodes",
       "",
       {},
       "each member: state, address, uptime, routes, sessions, link round trip, messages "
       "forwarded in, out and dropped",
       "",
       core::AdminAccess::kRead,
       [commands](const AdminRequest&, AdminDone done) {
         commands->WithStatus(done, NodesResult);
       }},
      {"cluster digest",
       "",
       {},
       "a short hash and count of the member set, every node's routes and the retained "
       "messages as this node holds them: equal on every node once the cluster agrees",
       "",
       core::AdminAccess::kRead,
       bind(&Commands::Digest)},
      {"cluster locks",
       "",
       {},
       "the locks this node holds and those it granted (a CONNECT locks its client id)",
       "",
       core::AdminAccess::kRead,
       bind(&Commands::Locks)},
      {"cluster join",
       "NODE",
       {},
       "join the cluster NODE (name@host or name@host:port) is in",
       "",
       core::AdminAccess::kWrite,
       bind(&Commands::Join)},
      {"cluster leave",
       "",
       {},
       "this node leaves its cluster and goes on alone",
       "",
       core::AdminAccess::kWrite,
       bind(&Commands::Leave)},
      {"cluster force-leave",
       "NODE",
       {},
       "remove NODE from the cluster, running or not",
       force_leave_help,
       core::AdminAccess::kWrite,
       bind(&Commands::ForceLeave)},
      {"cluster remove",
       "NODE",
       {},
       "the same as force-leave",
       force_leave_help,
       core::AdminAccess::kWrite,
       bind(&Commands::ForceLeave)},
      {"cluster discovery status",
       "",
       {},
       "the discovery strategy, whether it is on, what it last found and its last error",
       "",
       core::AdminAccess::kRead,
       bind(&Commands::DiscoveryStatusCmd)},
      {"cluster discovery enable",
       "",
       {},
       "turn discovery on again (after `cluster leave` turned it off)",
       "",
       core::AdminAccess::kWrite,
       bind(&Commands::DiscoveryEnable)},
      {"cluster discovery disable",
       "",
       {},
       "turn discovery off on this node (kept across restarts)",
       "",
       core::AdminAccess::kWrite,
       bind(&Commands::DiscoveryDisable)},
  };
  for (AdminCommand& c : list) {
    if (Status st = registry.Register(std::move(c)); !st.ok()) return st;
  }
  if (node != nullptr) {
    auto peers = std::make_shared<PeerAdmin>(registry, main_loop);
    node->SetAdminServer([peers](AdminCallFrame call, std::function<void(AdminReplyFrame)> done) {
      peers->Serve(std::move(call), std::move(done));
    });
  }
  return Status::Ok();
}

}  // namespace ferry::cluster
