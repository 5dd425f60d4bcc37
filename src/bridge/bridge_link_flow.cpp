// BridgeLink: the message flow. Queue events into the Outbox, the Outbox
// upstream (Pump), acknowledgements back into the Outbox and the queue's
// head, and messages pulled down into the local node.
#include <algorithm>

#include "bridge/bridge_link.h"
#include "core/log.h"

namespace ferry::bridge {

namespace {

using ferry::Status;

// Most bytes waiting in the socket before sending pauses (QoS 0 has no
// window of its own).
constexpr uint64_t kMaxPendingWrite = 4 << 20;

bool IsFailure(ReasonCode r) { return static_cast<uint8_t>(r) >= 0x80; }

}  // namespace

void BridgeLink::OnQueueEvents() {
  BridgeQueue::Events ev = queue_->Poll();
  // A load answers what was asked before these arrivals (outbox.h).
  if (ev.loaded) {
    outbox_.OnLoaded(ev.loaded->from, std::move(ev.loaded->messages), ev.loaded->upto);
  }
  if (ev.trimmed_head != 0) {
    uint64_t dropped = outbox_.OnTrimmed(ev.trimmed_head);
    if (dropped > 0) {
      dropped_overflow_ += dropped;
      FERRY_WARN("bridge %s: queue full (queue_max_bytes %llu or queue_max_age), dropped the "
                 "%llu oldest messages",
                 config_.name.c_str(), static_cast<unsigned long long>(config_.queue_max_bytes),
                 static_cast<unsigned long long>(dropped));
    }
  }
  if (!ev.arrived.empty()) outbox_.OnArrived(std::move(ev.arrived));
  for (uint64_t seq : ev.released) {
    // Recorded: the PUBREL may go (queue_log.h).
    if (seq < outbox_.head()) continue;  // trimmed meanwhile
    // Not if the session that sent the PUBREC is gone since (Unrelease).
    if (session_.Release(seq, QueuePacketId(seq), Now())) released_.insert(seq);
  }
  if (state_ == State::kIdle && !outbox_.empty()) Connect();  // lazy
  if (state_ == State::kConnected) Pump();
  if (outbox_.TakeHeadChanged()) queue_->SetHead(outbox_.head());
  Flush();
  UpdateStats();
}

void BridgeLink::Pump() {
  if (state_ != State::kConnected || !session_.connected() || transport_ == nullptr) return;
  const uint64_t now = Now();
  const uint64_t unix_now = core::UnixNowMs();
  const uint64_t too_old =
      config_.queue_max_age.count() > 0 ? unix_now - static_cast<uint64_t>(config_.queue_max_age.count()) : 0;
  if (config_.queue_replay_rate > 0) {
    // Token bucket: at most queue_replay_rate per second, bursts of one
    // housekeeping tick.
    tokens_ += static_cast<double>(now - tokens_at_) * config_.queue_replay_rate / 1000.0;
    tokens_ = std::min(tokens_, std::max(1.0, config_.queue_replay_rate / 10.0));
    tokens_at_ = now;
  }
  // v5 links carry the node path; this node joins it.
  const std::string_view via =
      session_.options().version == core::ProtocolVersion::kV5 ? std::string_view(ctx_.node_name)
                                                               : std::string_view();
  const uint64_t expired_before = outbox_.expired();
  while (transport_->pending_bytes() + session_.output().size() < kMaxPendingWrite) {
    if (config_.queue_replay_rate > 0 && tokens_ < 1.0) break;
    const QueuedMessage* next = outbox_.Next(unix_now, too_old);
    if (next == nullptr) break;
    const uint8_t qos = std::min(next->message->qos, session_.max_qos());
    if (qos > 0 && !session_.CanSendQos()) break;
    const uint16_t packet_id = qos > 0 ? QueuePacketId(next->seq) : 0;
    // Its identifier's previous user, kOwnPacketIdFirst - 1 messages
    // earlier, is still in flight: wait for it.
    if (qos > 0 && !session_.PacketIdFree(packet_id)) break;
    QueuedMessage m = outbox_.TakeNext();
    if (qos == 2 && released_.contains(m.seq)) {
      // The upstream session has it already (PUBREC before a restart): only
      // release it, never publish it again. released_ is empty unless the
      // session resumed.
      session_.PublishReleased(m.seq, packet_id, now);
      last_activity_ = now;
      continue;
    }
    OutgoingPublish p{m.seq,     m.message.get(), m.message->qos,
                      m.message->retain, via,     packet_id,
                      m.seq < dup_below_, /*hold_pubrel=*/true};
    if (!session_.Publish(p, now)) {
      // Larger than the upstream's maximum packet size: it can never go.
      ++dropped_other_;
      FERRY_WARN("bridge %s: message on '%s' too large for the upstream, dropped",
                 config_.name.c_str(), m.message->topic.c_str());
      outbox_.Done(m.seq);
      continue;
    }
    ++sent_;
    if (config_.queue_replay_rate > 0) tokens_ -= 1.0;
    if (qos == 0 && m.seq != 0) qos0_unwritten_.push_back(m.seq);
    last_activity_ = now;
  }
  dropped_expired_ += outbox_.expired() - expired_before;
  if (auto load = outbox_.WantLoad()) queue_->RequestLoad(load->first, load->second);
  if (outbox_.TakeHeadChanged()) queue_->SetHead(outbox_.head());
}

void BridgeLink::Flush() {
  if (transport_ == nullptr || !transport_->connected()) return;
  std::string& out = session_.output();
  if (out.empty()) return;
  uint64_t marker = 0;
  if (!qos0_unwritten_.empty()) {
    marker = next_marker_++;
    qos0_by_marker_.emplace(marker, std::move(qos0_unwritten_));
    qos0_unwritten_.clear();
  }
  transport_->Write(std::move(out), marker);
  out.clear();
}

void BridgeLink::OnWritten(uint64_t marker) {
  // QoS 0 messages leave the queue once written [queue.h].
  auto it = qos0_by_marker_.find(marker);
  if (it == qos0_by_marker_.end()) return;
  for (uint64_t seq : it->second) outbox_.Done(seq);
  qos0_by_marker_.erase(it);
  if (outbox_.TakeHeadChanged()) queue_->SetHead(outbox_.head());
  Pump();
  Flush();
  UpdateStats();
}

void BridgeLink::OnUpstreamEvents(std::vector<UpstreamEvent>& events) {
  for (UpstreamEvent& event : events) {
    if (auto* c = std::get_if<upstream::Connected>(&event)) {
      OnUpstreamConnected(*c);
    } else if (auto* r = std::get_if<upstream::Refused>(&event)) {
      std::string why = std::string("CONNACK refused: ") + ReasonCodeName(r->reason) +
                        (r->why.empty() ? "" : " (" + r->why + ")");
      FERRY_WARN("bridge %s: %s refused the connection: %s", config_.name.c_str(),
                 config_.addresses[address_index_].ToString().c_str(), why.c_str());
      if (r->reason == ReasonCode::kUnsupportedProtocolVersion && bridge_bit_ &&
          config_.proto_ver == 4) {
        // Like mosquitto's try_private: this upstream does not take the
        // bridge bit; go on without it.
        FERRY_INFO("bridge %s: retrying without the bridge bit", config_.name.c_str());
        bridge_bit_ = false;
      }
      if (transport_ != nullptr) transport_->Close();
      transport_ = nullptr;
      LinkDown(Status::Unavailable(why));
      return;
    } else if (auto* r = std::get_if<upstream::Received>(&event)) {
      // PUBREL only once the queue says the message is released; for one
      // recorded before (a resend) at once.
      if (released_.contains(r->token)) {
        session_.Release(r->token, r->packet_id, Now());
      } else {
        queue_->Release(r->token);
      }
    } else if (auto* p = std::get_if<upstream::Published>(&event)) {
      if (p->token & kControlBit) {
        control_.erase(p->token);
        continue;
      }
      released_.erase(p->token);
      if (IsFailure(p->reason)) {
        ++dropped_rejected_;
        FERRY_DEBUG("bridge %s: upstream refused message %llu: %s", config_.name.c_str(),
                    static_cast<unsigned long long>(p->token), ReasonCodeName(p->reason));
      }
      outbox_.Done(p->token);
    } else if (auto* m = std::get_if<upstream::Message>(&event)) {
      OnUpstreamMessage(std::move(m->publish));
    } else if (auto* s = std::get_if<upstream::Subscribed>(&event)) {
      for (size_t i = 0; i < s->reasons.size(); ++i) {
        if (!IsFailure(s->reasons[i])) continue;
        const std::string filter =
            i < config_.subscribe.size() ? config_.subscribe[i].RemoteFilter() : "?";
        FERRY_WARN("bridge %s: upstream refused subscription '%s': %s", config_.name.c_str(),
                   filter.c_str(), ReasonCodeName(s->reasons[i]));
        SetLastError("subscription '" + filter + "' refused: " + ReasonCodeName(s->reasons[i]));
      }
    } else if (auto* d = std::get_if<upstream::ServerDisconnect>(&event)) {
      std::string why = std::string("upstream sent DISCONNECT: ") + ReasonCodeName(d->reason) +
                        (d->why.empty() ? "" : " (" + d->why + ")");
      if (transport_ != nullptr) transport_->Close();
      transport_ = nullptr;
      LinkDown(Status::Unavailable(why));
      return;
    }
  }
  if (outbox_.TakeHeadChanged()) queue_->SetHead(outbox_.head());
}

void BridgeLink::OnUpstreamConnected(const upstream::Connected& c) {
  SetState(State::kConnected);
  backoff_.Reset();
  attempts_in_round_ = 0;
  ++connects_;
  connected_since_ms_ = core::UnixNowMs();
  next_probe_at_ = Now() + static_cast<uint64_t>(config_.primary_retry.count());
  tokens_at_ = Now();
  tokens_ = 1.0;
  upstream_node_ = c.upstream_node;
  {
    std::lock_guard lock(stats_mu_);
    upstream_node_stat_ = c.upstream_node;
    last_error_.clear();
  }
  FERRY_INFO("bridge %s: connected to %s%s (%s, session %s, %llu queued)", config_.name.c_str(),
             config_.addresses[address_index_].ToString().c_str(),
             c.upstream_node.empty() ? "" : (" (node " + c.upstream_node + ")").c_str(),
             config_.proto_ver == 5 ? "MQTT 5.0" : "MQTT 3.1.1",
             c.session_present ? "resumed" : "new",
             static_cast<unsigned long long>(outbox_.queued()));
  const UpstreamAddress& address = config_.addresses[address_index_];
  if (!address.node.empty() && !c.upstream_node.empty() && address.node != c.upstream_node) {
    FERRY_WARN("bridge %s: expected node %s at %s, found %s", config_.name.c_str(),
               address.node.c_str(), address.ToString().c_str(), c.upstream_node.c_str());
  }
  if (!c.session_present) {
    // A new session (another server after a failover, or ours was lost or
    // expired): the upstream has none of our QoS 2 messages. A PUBREL alone
    // would be answered "not found" and the message lost, so everything in
    // flight, released or not, is published again, as new (DUP 0: the
    // first attempt in this session). A message the old session delivered
    // may arrive twice; none is lost.
    if (!released_.empty()) {
      FERRY_WARN("bridge %s: the upstream did not keep our session; %zu QoS 2 messages it "
                 "received may be delivered again",
                 config_.name.c_str(), released_.size());
    }
    released_.clear();
    queue_->Unrelease();
    dup_below_ = 0;
    // The session forgot its control messages too; a new state message
    // follows below.
    control_.clear();
  }
  // What the upstream still holds in flight for us goes again as it was
  // [MQTT-4.4.0-1]; everything else goes again from the queue, in order.
  std::set<uint64_t> resent;
  const uint64_t now = Now();
  for (const UpstreamInflight& e : session_.InflightForResend()) {
    const core::Message* msg = nullptr;
    if (e.token & kControlBit) {
      auto it = control_.find(e.token);
      if (it != control_.end()) msg = it->second.get();
    } else if (const QueuedMessage* q = outbox_.InFlight(e.token)) {
      msg = q->message.get();
      resent.insert(e.token);
    }
    if (msg == nullptr) continue;
    const std::string_view via = config_.proto_ver == 5 ? std::string_view(ctx_.node_name)
                                                        : std::string_view();
    session_.Resend(e, {e.token, msg, e.qos, msg->retain, via}, now);
  }
  outbox_.OnLinkUp(resent);
  if (!config_.subscribe.empty() && !draining_) {
    std::vector<std::pair<std::string, uint8_t>> filters;
    for (const TopicRule& r : config_.subscribe) filters.emplace_back(r.RemoteFilter(), r.qos);
    session_.Subscribe(filters);
  }
  if (config_.notifications && !config_.notifications_local_only && !draining_ &&
      session_.CanSendQos()) {
    core::MessagePtr m = StateMessage(true);
    const uint64_t token = kControlBit | ++next_control_token_;
    if (session_.Publish({token, m.get(), 1, true, {}}, now)) control_.emplace(token, m);
  }
  PublishLocalState(true);
  Pump();
  Flush();
  UpdateStats();
}

void BridgeLink::OnUpstreamMessage(core::Publish&& p) {
  const uint16_t packet_id = p.packet_id;
  const uint8_t qos = p.qos;
  const uint64_t generation = generation_;
  auto acknowledge_now = [&] {
    if (qos > 0) session_.Acknowledge(packet_id);
  };
  const TopicRule* rule = SubscribeRuleFor(config_.subscribe, p.topic);
  std::optional<std::string> local = rule ? rule->ToLocal(p.topic) : std::nullopt;
  if (!local) {
    ++dropped_other_;
    FERRY_DEBUG("bridge %s: no subscribe rule maps '%s'; dropped", config_.name.c_str(),
                p.topic.c_str());
    return acknowledge_now();
  }
  auto msg = std::make_shared<core::Message>();
  msg->topic = std::move(*local);
  msg->payload = std::move(p.payload);
  msg->qos = qos;
  msg->retain = p.retain && !config_.strip_retain;
  msg->received_at_ms = core::UnixNowMs();
  msg->origin_client = identity_;
  // A bridge that runs on every node delivers to its node's subscribers; one
  // that runs for the cluster, to every node's.
  msg->node_local = config_.scope == BridgeScope::kNode;
  core::TakeMessageProperties(std::move(p.props), *msg);
  // The path so far, and the upstream that handed the message to us.
  if (!upstream_node_.empty()) msg->path.push_back(upstream_node_);
  core::SetNodePath(msg->props, msg->path);
  if (std::find(msg->path.begin(), msg->path.end(), ctx_.node_name) != msg->path.end() ||
      msg->path.size() > config_.max_hops) {
    counters_->dropped_loop.fetch_add(1, std::memory_order_relaxed);
    return acknowledge_now();
  }
  ++received_;
  last_activity_ = Now();
  if (qos == 0) {
    ctx_.broker.Publish(std::move(msg), nullptr);
    return;
  }
  // Acknowledge upstream only once the local node took it [queue.h].
  ctx_.broker.Publish(std::move(msg), [gate = ctx_.gate, find = ctx_.find, name = config_.name,
                                       packet_id, generation](ReasonCode rc) {
    gate->Post([find, name, packet_id, generation, rc] {
      if (BridgeLink* link = find(name)) link->OnLocalDelivery(packet_id, generation, rc);
    });
  });
}

void BridgeLink::OnLocalDelivery(uint16_t packet_id, uint64_t generation, ReasonCode rc) {
  if (generation != generation_ || state_ != State::kConnected) return;  // an old link's
  if (IsFailure(rc)) {
    // This node could not keep it (its durable store failed): no
    // acknowledgement, and a new connection, over which the upstream sends
    // it again (clean_start = false keeps it in the upstream's session).
    return LinkDown(Status::Unavailable(std::string("the local durable store could not keep a "
                                                    "message pulled down (") +
                                        ReasonCodeName(rc) + ")"));
  }
  session_.Acknowledge(packet_id);
  Flush();
}

void BridgeLink::UpdateStats() {
  queued_ = outbox_.queued();
  inflight_ = outbox_.inflight_count();
  dropped_volatile_ = outbox_.dropped_volatile();
}

BridgeStats BridgeLink::Stats() const {
  BridgeStats s;
  s.name = config_.name;
  s.scope = BridgeScopeName(config_.scope);
  s.origin = runtime_ ? "runtime" : config_.origin;
  {
    std::lock_guard lock(stats_mu_);
    s.state = standby_ && state_name_ == "stopped" ? "standby" : state_name_;
    s.draining = draining_;
    s.runs_on = runs_on_;
    s.address = address_in_use_;
    s.last_error = last_error_;
    s.upstream_node = upstream_node_stat_;
    s.held = held_;
    s.forward = forward_text_;
    s.subscribe = subscribe_text_;
  }
  QueueStats q = queue_->stats();
  s.queued = queued_;
  s.queued_bytes = q.bytes;
  s.inflight = inflight_;
  s.sent = sent_;
  s.received = received_;
  s.dropped_overflow = dropped_overflow_;
  s.dropped_expired = dropped_expired_;
  s.dropped_loop = counters_->dropped_loop;
  s.dropped_rejected = dropped_rejected_;
  s.dropped_other =
      dropped_other_ + dropped_volatile_ + counters_->dropped_other + q.dropped_too_large;
  s.dropped = s.dropped_overflow + s.dropped_expired + s.dropped_loop + s.dropped_rejected +
              s.dropped_other;
  s.connects = connects_;
  s.connected_since_ms = connected_since_ms_;
  if (s.last_error.empty() && !q.last_error.empty()) s.last_error = "queue: " + q.last_error;
  return s;
}

}  // namespace ferry::bridge
