// ClusterNode's member set: its exchange on control links, join, leave and
// force-leave (see cluster_node.h for the rules).
#include <algorithm>
#include <utility>

#include "cluster/cluster_messages.h"
#include "cluster/cluster_node_impl.h"
#include "core/log.h"

namespace ferry::cluster {
namespace {

constexpr int kMaxRedirects = 3;

std::string Plural(size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string Names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

void ClusterNode::Impl::SaveMembers() {
  if (Status st = members_.Save(members_path_); !st.ok()) {
    // The set in memory stays right; a restart would start from the old one.
    FERRY_ERROR("cluster: cannot save the member set: %s", st.ToString().c_str());
  }
}

void ClusterNode::Impl::SendMembers(Conn& c) { Send(c, FrameType::kMembers, members_.Encode()); }

void ClusterNode::Impl::PushMembers() {
  for (auto& [node, p] : peers_) {
    if (Running(p)) SendMembers(*p.control);
  }
}

std::vector<std::string> ClusterNode::Impl::RunningNodes() const {
  std::vector<std::string> running;
  for (const auto& [node, p] : peers_) {
    if (Running(p)) running.push_back(node);
  }
  return running;
}

void ClusterNode::Impl::Reconcile() {
  if (stopping_) return;
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (members_.IsMember(it->first)) {
      ++it;
      continue;
    }
    if (it->second.control != nullptr) {
      Conn* c = std::exchange(it->second.control, nullptr);
      c->link->Close("'" + it->first + "' is no longer a member");
    }
    PurgeRoutes(it->first);
    DropHeld(it->first, it->second, "is no longer a member");
    it = peers_.erase(it);
  }
  const uint64_t now = loop_.Now();
  for (const auto& [node, m] : members_.members()) {
    if (node == self_.node) continue;
    Peer& p = PeerOf(node);
    if (p.control != nullptr || now < p.redial_at_ms) continue;
    p.control = &Dial(PeerAddress{m.node, m.host, m.port}, kControlPurpose);
  }
}

// A peer's member set arrived on its control link (the first frame it sends
// there, and again whenever its set changes).
void ClusterNode::Impl::OnMembers(Conn& c, const FrameView& f) {
  auto theirs = Membership::Decode(f.payload);
  if (!theirs.ok() || theirs->self() != c.peer()) {
    const std::string why =
        theirs.ok() ? "a member set sent as '" + theirs->self() + "'" : theirs.status().message();
    FERRY_WARN("cluster: bad member set from '%s': %s", c.peer().c_str(), why.c_str());
    return c.link->Close("bad member set: " + why);
  }
  const std::string& peer = c.peer();
  c.set_seen = true;
  if (options_.autoheal && !join_ && !members_.IsMember(peer) && !theirs->IsMember(self_.node)) {
    // Two parts of the cluster that left each other out meet again.
    DecideMerge(c, *theirs);
    return c.link->Close("autoheal: '" + peer + "' is in another part of the cluster");
  }
  // A node alone enters a cluster only by a join it makes.
  const bool may_adopt = members_.members().size() > 1 || join_.has_value();
  if (may_adopt && theirs->epoch() > members_.epoch() && theirs->members().size() > 1) {
    if (!theirs->IsMember(self_.node)) {
      if (members_.IsMember(peer) && !join_) {
        const bool removed = theirs->IsRemoved(self_.node);
        FERRY_WARN("cluster: '%s' no longer lists this node (%s)", peer.c_str(),
                   removed ? "removed by force-leave" : "dropped");
        GoAlone(removed ? "removed by force-leave" : "dropped by the cluster", false);
      } else {
        c.link->Close("'" + self_.node + "' is not a member of this cluster");
      }
      return;
    }
    members_.Adopt(*theirs);
    SaveMembers();
    FERRY_INFO("cluster: member set of epoch %llu from '%s' (%zu members)",
               static_cast<unsigned long long>(members_.epoch()), peer.c_str(),
               members_.members().size());
    return OnMembersChanged();
  }
  if (!members_.IsMember(peer)) {
    if (members_.members().size() == 1 && !join_) {
      // The peer still counts this node in (it left while the peer was away).
      std::string reason;
      FieldWriter(reason).Str("in no cluster");
      Send(c, FrameType::kLeave, reason);
    } else {
      SendMembers(c);  // the newer set, without the peer: it learns it is out
    }
    c.link->Close("'" + peer + "' is not a member of this node's cluster");
    return;
  }
  // A peer that lists only itself has not caught up yet (it is joining): it
  // sends its set again once it has ours, or kLeave if it left.
  if (theirs->members().size() == 1) return;
  // Its own record is its word: a restart may have moved its port.
  if (members_.Refresh(theirs->members().at(peer))) SaveMembers();
  if (!c.members_received) Attach(c);
  CheckJoinDone();
}

void ClusterNode::Impl::OnMembersChanged() {
  PushMembers();
  // Links whose peer's set arrived before this node listed it.
  std::vector<Conn*> waiting;
  for (auto& c : conns_) {
    if (c->set_seen && !c->members_received && c->control() && c->link->established() &&
        members_.IsMember(c->peer())) {
      waiting.push_back(c.get());
    }
  }
  for (Conn* c : waiting) {
    SendMembers(*c);
    Attach(*c);
  }
  Reconcile();
  CheckJoinDone();
}

void ClusterNode::Impl::OnPeerLeft(Conn& c) {
  const std::string peer = c.peer();
  FERRY_INFO("cluster: '%s' left the cluster", peer.c_str());
  c.link->Close("left");
  if (members_.Remove(peer, false)) {
    SaveMembers();
    OnMembersChanged();
  }
}

std::string ClusterNode::Impl::GoAlone(std::string_view why, bool tell_peers) {
  std::vector<std::string> others;
  size_t routes = 0, origins = 0;
  for (auto& [node, p] : peers_) {
    others.push_back(node);
    const size_t n = PurgeRoutes(node);
    routes += n;
    origins += n > 0 ? 1 : 0;
    DropHeld(node, p, "this node left");
    if (p.control == nullptr) continue;
    if (tell_peers && p.control->link->established()) {
      std::string reason;
      FieldWriter(reason).Str(why);
      Send(*p.control, FrameType::kLeave, reason);
    }
    p.control->link->Close(std::string(why));
  }
  peers_.clear();
  members_.Reset();
  SaveMembers();
  std::string dropped;
  if (!others.empty()) dropped = "left cluster '" + options_.cluster + "' (" + Names(others) + ")";
  if (routes > 0) {
    dropped += (dropped.empty() ? "" : "; ") + std::string("dropped ") + Plural(routes, "route") +
               " of " + Plural(origins, "node");
  }
  if (!dropped.empty()) FERRY_INFO("cluster: %s", dropped.c_str());
  return dropped;
}

// ---------------------------------------------------------------- join

void ClusterNode::Impl::Join(std::string target, std::function<void(JoinResult)> done) {
  if (left_) {
    left_ = false;
    SaveCleaned();
  }
  StartJoin(std::move(target), false, false, std::move(done));
}

void ClusterNode::Impl::StartJoin(std::string target, bool only_if_clustered, bool quiet,
                                  std::function<void(JoinResult)> done) {
  auto to = ParsePeerAddress(target);
  if (!to.ok()) return done(JoinResult{to.status(), false, "", CurrentStatus()});
  if (to->node == self_.node) return done(JoinResult{Status::Ok(), true, "", CurrentStatus()});
  if (join_) {
    return done(
        JoinResult{Status::Busy("a join is already under way"), false, "", CurrentStatus()});
  }
  if (members_.IsMember(to->node)) {
    // Already together: nothing to leave or drop.
    return done(JoinResult{Status::Ok(), true, "", CurrentStatus()});
  }
  join_.emplace(std::move(done), to->node);
  join_->only_if_clustered = only_if_clustered;
  join_->quiet = quiet;
  if (members_.members().size() > 1) join_->dropped = GoAlone("left to join another cluster", true);
  DialJoin(*to);
}

void ClusterNode::Impl::DialJoin(const PeerAddress& to) {
  if (join_->quiet) {
    FERRY_DEBUG("cluster: discovery asks '%s' (%s:%u) to let this node into cluster '%s'",
                to.node.c_str(), to.host.c_str(), unsigned{to.port}, options_.cluster.c_str());
    join_->target = to.node;
    join_->conn = &Dial(to, kJoinPurpose);
    return;
  }
  FERRY_INFO("cluster: asking '%s' (%s:%u) to let this node into cluster '%s'", to.node.c_str(),
             to.host.c_str(), unsigned{to.port}, options_.cluster.c_str());
  join_->target = to.node;
  join_->conn = &Dial(to, kJoinPurpose);
}

void ClusterNode::Impl::OnJoinRequest(Conn& c, const FrameView& f) {
  auto request = ParseJoinRequest(f.payload);
  auto reply = [&](const JoinReply& r) { Send(c, FrameType::kJoinReply, EncodeJoinReply(r)); };
  if (!request.ok() || request->member.node != c.peer()) {
    return reply(JoinReply{JoinReply::Kind::kRefused, "", {}, "malformed join request"});
  }
  if (request->only_if_clustered && members_.members().size() <= 1) {
    // A discovery probe: this node is alone, and the asking one (whose name
    // sorts first) will be joined by it, not the other way round.
    return reply(JoinReply{JoinReply::Kind::kRefused, "", {}, "alone"});
  }
  const std::vector<std::string> running = RunningNodes();
  const std::string coordinator = members_.Coordinator(running);
  if (coordinator != self_.node) {
    FERRY_INFO("cluster: '%s' asks to join; sent to the coordinator '%s'", c.peer().c_str(),
               coordinator.c_str());
    return reply(JoinReply{JoinReply::Kind::kRedirect, "", members_.members().at(coordinator), ""});
  }
  const std::string& node = request->member.node;
  members_.Add(request->member);
  members_.RaiseEpochAbove(request->epoch);
  SaveMembers();
  PurgeRoutes(node);  // it starts afresh; its snapshot follows
  FERRY_INFO("cluster: '%s' joined cluster '%s' (epoch %llu)", node.c_str(),
             options_.cluster.c_str(), static_cast<unsigned long long>(members_.epoch()));
  reply(JoinReply{JoinReply::Kind::kAccepted, members_.Encode(), {}, ""});
  OnMembersChanged();
}

void ClusterNode::Impl::OnJoinReply(Conn& c, const FrameView& f) {
  if (!join_ || join_->conn != &c) return c.link->Close("no join under way");
  join_->conn = nullptr;
  c.link->Close("join answered");
  auto reply = ParseJoinReply(f.payload);
  if (!reply.ok()) {
    return FinishJoin(
        Status::Corruption("bad join reply from '" + c.peer() + "': " + reply.status().message()));
  }
  switch (reply->kind) {
    case JoinReply::Kind::kRefused:
      return FinishJoin(Status::InvalidArgument("refused by '" + c.peer() + "': " + reply->reason));
    case JoinReply::Kind::kRedirect:
      if (++join_->redirects > kMaxRedirects) {
        return FinishJoin(Status::Unavailable("no coordinator answered after " +
                                              std::to_string(kMaxRedirects) + " redirects"));
      }
      return DialJoin(
          PeerAddress{reply->coordinator.node, reply->coordinator.host, reply->coordinator.port});
    case JoinReply::Kind::kAccepted:
      break;
  }
  auto set = Membership::Decode(
      std::span(reinterpret_cast<const uint8_t*>(reply->members.data()), reply->members.size()));
  if (!set.ok() || set->cluster() != options_.cluster || !set->IsMember(self_.node)) {
    return FinishJoin(Status::Corruption("bad member set from '" + c.peer() + "'"));
  }
  members_.Replace(*set);
  SaveMembers();
  if (core_.clear_retained && !join_->merge) {
    // The cluster's retained messages replace this node's own.
    if (const size_t n = core_.clear_retained(); n > 0) {
      join_->dropped += (join_->dropped.empty() ? "" : "; ") + std::string("dropped ") +
                        Plural(n, "retained message");
      FERRY_INFO("cluster: dropped %s to take the cluster's", Plural(n, "retained message").c_str());
    }
  }
  FERRY_INFO("cluster: joined cluster '%s' through '%s' (epoch %llu, %zu members)",
             options_.cluster.c_str(), c.peer().c_str(),
             static_cast<unsigned long long>(members_.epoch()), members_.members().size());
  join_->accepted = true;
  join_->deadline_ms = loop_.Now() + options_.join_timeout_ms;
  OnMembersChanged();
}

void ClusterNode::Impl::CheckJoinDone() {
  if (!join_ || !join_->accepted) return;
  for (const auto& [node, m] : members_.members()) {
    if (node == self_.node) continue;
    auto p = peers_.find(node);
    if (p == peers_.end() || !Running(p->second)) return;
  }
  FinishJoin(Status::Ok());
}

void ClusterNode::Impl::FinishJoin(ferry::Status st) {
  PendingJoin join = std::move(*join_);
  join_.reset();
  if (join.conn != nullptr) join.conn->link->Close("join abandoned");
  join.done(JoinResult{std::move(st), false, std::move(join.dropped), CurrentStatus()});
}

// ---------------------------------------------------------------- leave

void ClusterNode::Impl::Leave(std::function<void(Status)> done) {
  if (members_.members().size() <= 1 && cleaned_.empty()) {
    return done(Status::NotFound("this node is in no cluster"));
  }
  // Autoheal does not bring it back either: it forgets the nodes autoclean
  // removed, and does not join when they find it, until `cluster join`.
  left_ = true;
  cleaned_.clear();
  SaveCleaned();
  if (members_.members().size() <= 1) return done(Status::Ok());
  GoAlone("left the cluster", true);
  if (options_.discovery && discovery_.enabled) {
    // Else it would find its old cluster and rejoin at once.
    discovery_.enabled = false;
    SaveDiscovery();
    FERRY_INFO("cluster: discovery (%s) is off until `ferryctl cluster discovery enable`",
               discovery_.strategy.c_str());
  }
  done(Status::Ok());
}

void ClusterNode::Impl::ForceLeave(std::string node, std::function<void(Status)> done) {
  if (node == self_.node) {
    return done(Status::InvalidArgument("cannot force-leave this node itself; use leave"));
  }
  if (!members_.IsMember(node)) {
    return done(
        Status::NotFound("'" + node + "' is not a member of cluster '" + options_.cluster + "'"));
  }
  // Every member makes the same change (the order does not matter), and
  // the coordinator's set, which has every change it was told of, supersedes
  // the others by its epoch: a change made here at the same time as another
  // one at the coordinator ends the same on every member.
  std::string op;
  FieldWriter(op).Str(node);
  for (auto& [name, p] : peers_) {
    if (name != node && Running(p)) Send(*p.control, FrameType::kForceLeave, op);
  }
  RemoveByForce(node, "here");
  done(Status::Ok());
}

void ClusterNode::Impl::OnForceLeave(Conn& c, const FrameView& f) {
  FieldReader r(f.payload);
  std::string node;
  if (!r.Str(node, "node") || !r.End())
    return c.link->Close("bad force-leave: " + r.status().message());
  if (node == self_.node) return;  // its set, not this, tells a removed node
  if (!members_.IsRemoved(node)) RemoveByForce(node, "on '" + c.peer() + "'");
}

void ClusterNode::Impl::RemoveByForce(const std::string& node, const std::string& where) {
  members_.Remove(node, true);
  SaveMembers();
  PurgeRoutes(node);
  FERRY_INFO("cluster: '%s' removed by force-leave %s (epoch %llu)", node.c_str(), where.c_str(),
             static_cast<unsigned long long>(members_.epoch()));
  auto p = peers_.find(node);
  if (p != peers_.end() && p->second.control != nullptr) {
    // The node learns it is out from the new set, then the link closes.
    Conn* c = std::exchange(p->second.control, nullptr);
    if (c->link->established()) SendMembers(*c);
    c->link->Close("removed by force-leave");
  }
  OnMembersChanged();
}

}  // namespace ferry::cluster
