// Forwarding: messages matched here for peers' routes go out on the peer's
// control link, one copy per peer; those the peers forward here are routed
// to this node's subscribers and acknowledged (CLUSTER.md, "Forwarding").
//
// QoS 1/2 forwards are numbered per peer and held until the peer
// acknowledges them, which it does once its own subscribers (and its store,
// where a persistent session took the message) have them; the publisher's
// acknowledgement waits for that. After a lost link they go again on the
// next one, and the peer drops what it already routed. A peer down longer
// than peer_down_after, or removed, lets go of what it held: the publishers
// are acknowledged and the drops counted (ferry_cluster_forward_dropped).
#include <algorithm>
#include <map>
#include <utility>

#include "cluster/cluster_node_impl.h"
#include "cluster/forward.h"
#include "core/log.h"

namespace ferry::cluster {
namespace {

// Seqs received out of order that a receiver remembers per peer; gaps
// older than that (forwards the sender let go of) are forgotten.
constexpr size_t kMaxReceivedAhead = 100000;
constexpr uint64_t kTombstoneMs = 24ull * 3600 * 1000;  // how long a delete is remembered
constexpr uint64_t kTombstonePruneMs = 60000;

}  // namespace

void ClusterNode::Impl::ForwardOut(const std::vector<uint32_t>& tags,
                                   const std::vector<core::SharedPick>& shared, uint8_t qos,
                                   const std::shared_ptr<const std::string>& body,
                                   const std::shared_ptr<core::RouteCompletion>& done) {
  if (stopping_) {
    if (done) done->Abandon();  // sent again by its publisher, as in Shutdown
    return;
  }
  // One frame per peer: its plain routes matched, and the shared groups it
  // was chosen for.
  std::map<uint32_t, std::pair<bool, std::vector<std::string>>> deliveries;
  for (uint32_t tag : tags) deliveries[tag].first = true;
  for (const core::SharedPick& pick : shared) deliveries[pick.tag].second.push_back(pick.group);
  const bool fits = FitsFrame(body->size(), "forwarded");
  for (const auto& [tag, delivery] : deliveries) {
    if (tag >= tag_nodes_.size()) continue;
    auto it = peers_.find(tag_nodes_[tag]);
    if (it == peers_.end()) continue;  // no longer a member: nobody to deliver to there
    Peer& p = it->second;
    if (!fits) {
      ++p.forward_dropped;
      // Not acknowledged: its publisher hears nothing rather than a lie.
      if (done) done->Abandon();
      continue;
    }
    const auto& [plain, groups] = delivery;
    if (qos == 0) {
      // At most once: past the link's cap (or with the link down) it is
      // dropped and counted, never queued without bound.
      if (Running(p) && p.control->link->Send(FrameType::kForward,
                                              EncodeForwardHead(0, plain, groups), *body)) {
        ++p.forwarded_out;
      } else {
        ++p.forward_dropped;
      }
      continue;
    }
    // Numbered per peer name for the life of the process, across a leave
    // and a rejoin: the peer's record of what it routed stays valid.
    uint64_t& next = next_seq_[it->first];
    const uint64_t seq = ++next;
    p.unacked.emplace(seq, Held{EncodeForwardHead(seq, plain, groups), body, done});
    PumpForwards(p);
  }
}

bool ClusterNode::Impl::FitsFrame(size_t body_size, std::string_view what) const {
  // Room for a head with a few shared groups.
  if (body_size + 4096 <= options_.link.max_payload) return true;
  FERRY_WARN("cluster: a message of %zu bytes is larger than a peer frame (%u bytes); not %.*s",
             body_size, options_.link.max_payload, static_cast<int>(what.size()), what.data());
  return false;
}

void ClusterNode::Impl::PumpForwards(Peer& p) {
  if (!Running(p)) return;
  PeerLink& link = *p.control->link;
  const size_t high_water = options_.link.max_buffered_bytes / 2;
  for (auto it = p.unacked.upper_bound(p.sent_upto); it != p.unacked.end(); ++it) {
    const Held& held = it->second;
    const size_t size = kFrameHeaderSize + held.head.size() + held.body->size();
    if (link.buffered_bytes() > 0 && link.buffered_bytes() + size > high_water) return;
    if (!link.Send(FrameType::kForward, held.head, *held.body)) return;
    p.sent_upto = it->first;
    ++p.forwarded_out;
  }
}

void ClusterNode::Impl::ResumeForwards(Peer& p) {
  p.down_at_ms = 0;
  p.sent_upto = 0;
  PumpForwards(p);
}

void ClusterNode::Impl::OnDrained(Conn& c) {
  if (!c.backlog.empty()) DrainBacklog(c);
  if (!c.control() || !c.members_received) return;
  auto it = peers_.find(c.peer());
  if (it != peers_.end() && it->second.control == &c) PumpForwards(it->second);
}

void ClusterNode::Impl::DropHeld(const std::string& node, Peer& p, std::string_view why) {
  if (p.unacked.empty()) return;
  FERRY_WARN("cluster: %zu forwarded messages not acknowledged by '%s', which %.*s; their "
             "publishers are acknowledged",
             p.unacked.size(), node.c_str(), static_cast<int>(why.size()), why.data());
  p.forward_dropped += p.unacked.size();
  p.sent_upto = std::max(p.sent_upto, p.unacked.rbegin()->first);
  p.unacked.clear();  // each completion completes once no other peer holds it
}

void ClusterNode::Impl::ExpireHeld() {
  const uint64_t now = loop_.Now();
  for (auto& [node, p] : peers_) {
    if (p.unacked.empty() || Running(p) || p.down_at_ms == 0) continue;
    if (now - p.down_at_ms >= options_.link.down_after_ms) {
      DropHeld(node, p,
               "is down for " + std::to_string(options_.link.down_after_ms / 1000) + " s");
    }
  }
}

void ClusterNode::Impl::OnForward(Conn& c, const FrameView& f) {
  auto frame = ParseForward(f.payload);
  if (!frame.ok()) {
    FERRY_WARN("cluster: bad forwarded message from '%s': %s; closing the link", c.peer().c_str(),
               frame.status().message().c_str());
    return c.link->Close("bad forwarded message: " + frame.status().message());
  }
  const std::string& node = c.peer();
  const uint64_t incarnation = c.link->peer().incarnation;
  Inbound& in = inbound_[node];
  if (in.incarnation != incarnation) {
    // The peer restarted: its numbering starts again.
    in.incarnation = incarnation;
    in.floor = 0;
    in.ahead.clear();
    in.routing.clear();
  }
  ++in.received;
  const uint64_t seq = frame->seq;
  if (seq != 0) {
    if (seq <= in.floor || in.ahead.contains(seq)) {
      // Sent again after a lost link: routed here already. Acknowledge it
      // now unless it is still being routed (its ack follows then).
      if (!in.routing.contains(seq)) {
        c.link->Send(FrameType::kForwardAck, EncodeForwardAcks({{seq, 0}}));
      }
      return;
    }
    in.ahead.insert(seq);
    while (!in.ahead.empty() && *in.ahead.begin() == in.floor + 1) {
      in.floor = *in.ahead.begin();
      in.ahead.erase(in.ahead.begin());
    }
    if (in.ahead.size() > kMaxReceivedAhead) {
      in.floor = *in.ahead.begin();
      in.ahead.erase(in.ahead.begin());
    }
    in.routing.insert(seq);
  }
  if (!core_.publish) {
    if (seq != 0) OnForwarded(node, incarnation, seq, ReasonCode::kSuccess);
    return;
  }
  auto message = std::make_shared<core::Message>(std::move(frame->message));
  message->injected_by = std::string(kClusterOwner);
  core::ForwardedDelivery delivery{frame->plain, std::move(frame->groups)};
  core::RouteDone done;
  if (seq != 0) {
    done = [gate = gate_, node, incarnation, seq](ReasonCode rc) {
      gate->Post([node, incarnation, seq, rc](Impl& impl) {
        impl.OnForwarded(node, incarnation, seq, rc);
      });
    };
  }
  core_.publish(std::move(message), std::move(delivery), std::move(done));
}

void ClusterNode::Impl::OnForwarded(const std::string& node, uint64_t incarnation, uint64_t seq,
                                    ReasonCode rc) {
  if (stopping_) return;
  auto in = inbound_.find(node);
  if (in == inbound_.end() || in->second.incarnation != incarnation) return;
  in->second.routing.erase(seq);
  auto p = peers_.find(node);
  // Without a link the peer sends it again on the next one, and hears then.
  if (p == peers_.end() || !Running(p->second)) return;
  p->second.control->link->Send(FrameType::kForwardAck,
                                EncodeForwardAcks({{seq, static_cast<uint8_t>(rc)}}));
}

void ClusterNode::Impl::OnForwardAcks(Conn& c, const FrameView& f) {
  auto acks = ParseForwardAcks(f.payload);
  if (!acks.ok()) {
    FERRY_WARN("cluster: bad forward acknowledgement from '%s': %s; closing the link",
               c.peer().c_str(), acks.status().message().c_str());
    return c.link->Close("bad forward acknowledgement: " + acks.status().message());
  }
  auto p = peers_.find(c.peer());
  if (p == peers_.end()) return;
  for (const auto& [seq, reason] : *acks) {
    auto held = p->second.unacked.find(seq);
    if (held == p->second.unacked.end()) continue;  // acknowledged twice, or let go of
    if (reason != 0 && held->second.done) {
      // The peer could not keep it (e.g. its disk is full): the publisher
      // is not acknowledged and sends it again.
      FERRY_WARN("cluster: '%s' could not keep a forwarded message (reason 0x%02x)",
                 c.peer().c_str(), unsigned{reason});
      held->second.done->Abandon();
    }
    p->second.unacked.erase(held);
  }
}

// ---------------------------------------------------------------- retained

void ClusterNode::Impl::Tombstone(const std::string& topic, uint64_t deleted_at_ms) {
  uint64_t& at = retained_deleted_[topic];
  at = std::max(at, deleted_at_ms);
}

void ClusterNode::Impl::PruneTombstones() {
  const uint64_t now = core::UnixNowMs();
  if (now - tombstones_pruned_ms_ < kTombstonePruneMs) return;
  tombstones_pruned_ms_ = now;
  std::erase_if(retained_deleted_,
                [now](const auto& t) { return now > t.second && now - t.second > kTombstoneMs; });
}

void ClusterNode::Impl::OnLocalRetained(const std::shared_ptr<const std::string>& body,
                                        const std::string& topic, uint64_t received_at_ms,
                                        bool deleted) {
  if (stopping_) return;
  if (deleted) {
    Tombstone(topic, received_at_ms);
  } else if (auto t = retained_deleted_.find(topic);
             t != retained_deleted_.end() && t->second <= received_at_ms) {
    retained_deleted_.erase(t);
  }
  if (!FitsFrame(body->size(), "replicated")) return;
  // A peer that is not linked now gets every retained message when it is.
  const std::string payload = EncodeForwardHead(0) + *body;
  for (auto& [node, p] : peers_) {
    if (Running(p)) QueueFrame(*p.control, FrameType::kRetained, payload);
  }
}

void ClusterNode::Impl::SendRetained(Conn& c) {
  if (!core_.watch_retained) return;
  // Last writer wins on the receiving side: sending what it has already is
  // harmless, and a link that comes back after a split merges both ways.
  for (const core::MessagePtr& m : core_.watch_retained(retained_watch_)) {
    std::string body = EncodeForwardBody(*m);
    if (FitsFrame(body.size(), "replicated")) {
      QueueFrame(c, FrameType::kRetained, EncodeForwardHead(0) + body);
    }
  }
  // And what was deleted, with when: a copy the peer kept through a split
  // goes if it is older.
  for (const auto& [topic, at] : retained_deleted_) {
    core::Message deleted;
    deleted.topic = topic;
    deleted.retain = true;
    deleted.received_at_ms = at;
    QueueFrame(c, FrameType::kRetained, EncodeForwardHead(0) + EncodeForwardBody(deleted));
  }
}

void ClusterNode::Impl::OnRetained(Conn& c, const FrameView& f) {
  auto frame = ParseForward(f.payload);
  if (!frame.ok() || frame->seq != 0 || !frame->message.retain || !frame->groups.empty()) {
    const std::string why = frame.ok() ? "not a retained message" : frame.status().message();
    FERRY_WARN("cluster: bad retained message from '%s': %s; closing the link", c.peer().c_str(),
               why.c_str());
    return c.link->Close("bad retained message: " + why);
  }
  if (!core_.store_retained) return;
  core::Message& m = frame->message;
  if (m.payload.empty()) {
    Tombstone(m.topic, m.received_at_ms);
  } else if (auto t = retained_deleted_.find(m.topic); t != retained_deleted_.end()) {
    if (t->second > m.received_at_ms) return;  // deleted here after it was set there
    retained_deleted_.erase(t);
  }
  auto message = std::make_shared<core::Message>(std::move(frame->message));
  message->injected_by = std::string(kClusterOwner);
  core_.store_retained(std::move(message));
}

}  // namespace ferry::cluster
