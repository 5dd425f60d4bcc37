// Session: the MQTT state of one client id, delivered to whether or not a
// connection is attached. Lives on its owning worker's thread.
#include <algorithm>

#include "core/broker_internal.h"
#include "core/log.h"

namespace ferry::core {

Session::Session(Worker& worker, std::string client_id)
    : worker_(worker), client_id_(std::move(client_id)) {}

Session::~Session() = default;

bool Session::Deliver(const MessagePtr& msg, uint8_t qos, bool retain,
                      std::vector<uint32_t> subscription_ids) {
  OutMessage m;
  m.msg = msg;
  m.qos = qos;
  m.retain = retain;
  m.subscription_ids = std::move(subscription_ids);
  Metrics& metrics = worker_.ctx().metrics;
  if (conn_ != nullptr && conn_->state() == Connection::State::kConnected) {
    if (qos == 0) {
      // A slow reader's backlog is bounded: QoS 0 beyond it is dropped.
      if (conn_->PendingBytes() > worker_.ctx().options.max_output_buffer) {
        Inc(metrics.dropped_slow_client);
        return false;
      }
      SendPublish(m);
      return false;
    }
    uint32_t window = std::min<uint32_t>(worker_.ctx().options.max_inflight,
                                         conn_->client_receive_max_);
    if (queue_.empty() && inflight_.size() < window) {
      m.seq = next_seq_++;
      SendPublish(m);
      if (m.packet_id == 0) return false;  // dropped (too large for the client)
      bool durable = false;
      if (persistent_ && worker_.ctx().store) {
        worker_.ctx().store->PutMessage(client_id_, StoredMessage{m.seq, m.qos, m.packet_id,
                                                                  m.state, m.msg});
        durable = true;
      }
      inflight_ids_[m.packet_id] = m.seq;
      inflight_.emplace(m.seq, std::move(m));
      return durable;
    }
  } else if (qos == 0 && !(persistent_ && worker_.ctx().options.queue_qos0)) {
    return false;
  }
  return Enqueue(std::move(m));
}

bool Session::Enqueue(OutMessage m) {
  const BrokerOptions& opt = worker_.ctx().options;
  if (opt.max_queued_messages != 0 && queue_.size() >= opt.max_queued_messages) {
    Inc(worker_.ctx().metrics.dropped_queue_full);
    FERRY_DEBUG("queue of '%s' full, dropping message on '%s'", client_id_.c_str(),
                m.msg->topic.c_str());
    return false;
  }
  m.seq = next_seq_++;
  m.state = StoredMessageState::kQueued;
  bool durable = false;
  if (persistent_ && worker_.ctx().store) {
    worker_.ctx().store->PutMessage(client_id_, StoredMessage{m.seq, m.qos, 0, m.state, m.msg});
    durable = true;
  }
  queue_.push_back(std::move(m));
  return durable;
}

uint16_t Session::NextPacketId() {
  // [MQTT-2.2.1-4]: never reuse an identifier still in flight.
  for (;;) {
    uint16_t id = next_packet_id_++;
    if (next_packet_id_ == 0) next_packet_id_ = 1;
    if (id != 0 && !inflight_ids_.contains(id)) return id;
  }
}

void Session::SendPublish(OutMessage& m) {
  Connection& c = *conn_;
  const Message& msg = *m.msg;
  Metrics& metrics = worker_.ctx().metrics;
  const uint64_t now = UnixNowMs();
  if (msg.expiry_at_ms != 0 && msg.expiry_at_ms <= now) {
    Inc(metrics.dropped_expired);
    m.packet_id = 0;
    return;
  }
  PublishView p;
  p.qos = m.qos;
  p.retain = m.retain;
  p.dup = m.state != StoredMessageState::kQueued && m.packet_id != 0;
  p.payload = msg.payload;
  p.topic = msg.topic;
  // The message's own properties are sent as they are unless this delivery
  // adds its own (remaining expiry, subscription identifiers, topic alias).
  Properties extra;
  uint16_t new_alias = 0;  // registered only once the packet is really sent
  if (IsV5(c.version_)) {
    p.props = &msg.props;
    bool alias = c.client_topic_alias_max_ > 0;
    if (msg.expiry_at_ms != 0 || !m.subscription_ids.empty() || alias) {
      extra = msg.props;
      p.props = &extra;
    }
    if (msg.expiry_at_ms != 0) {
      // [MQTT-3.3.2-6]: the expiry interval sent is what remains of it.
      extra.message_expiry_interval = static_cast<uint32_t>((msg.expiry_at_ms - now + 999) / 1000);
    }
    extra.subscription_identifiers = m.subscription_ids;
    if (alias) {
      auto it = c.out_aliases_.find(msg.topic);
      if (it != c.out_aliases_.end()) {
        extra.topic_alias = it->second;
        p.topic = {};  // the alias names the topic
      } else if (c.out_aliases_.size() < c.client_topic_alias_max_) {
        new_alias = static_cast<uint16_t>(c.out_aliases_.size() + 1);
        extra.topic_alias = new_alias;
      }
    }
  }
  if (m.qos > 0) {
    if (m.packet_id == 0) m.packet_id = NextPacketId();
    p.packet_id = m.packet_id;
  }
  // [MQTT-3.1.2-24]: never send a client a packet larger than its maximum;
  // such a message is discarded as if it had been delivered.
  if (c.client_max_packet_ < worker_.ctx().options.max_packet_size + 1024u &&
      EncodedPublishSize(p, c.version_) > c.client_max_packet_) {
    Inc(metrics.dropped_too_large);
    m.packet_id = 0;
    return;
  }
  if (new_alias != 0) c.out_aliases_.emplace(msg.topic, new_alias);
  if (m.qos > 0) m.state = StoredMessageState::kSent;
  Inc(metrics.publish_sent);
  Inc(metrics.publish_sent_qos[std::min<uint8_t>(m.qos, 2)]);
  c.SendPublish(p);
}

void Session::Pump() {
  if (conn_ == nullptr || conn_->state() != Connection::State::kConnected) return;
  DurableStore* store = persistent_ ? worker_.ctx().store.get() : nullptr;
  const uint32_t window =
      std::min<uint32_t>(worker_.ctx().options.max_inflight, conn_->client_receive_max_);
  while (!queue_.empty()) {
    OutMessage& m = queue_.front();
    if (m.qos > 0 && inflight_.size() >= window) break;
    if (m.qos == 0 && conn_->PendingBytes() > worker_.ctx().options.max_output_buffer) break;
    OutMessage out = std::move(m);
    queue_.pop_front();
    SendPublish(out);
    if (out.qos == 0 || out.packet_id == 0) {
      if (store) store->DeleteMessage(client_id_, out.seq);
      continue;
    }
    if (store) store->UpdateMessage(client_id_, out.seq, out.state, out.packet_id);
    inflight_ids_[out.packet_id] = out.seq;
    inflight_.emplace(out.seq, std::move(out));
  }
}

void Session::ResendInflight() {
  // [MQTT-4.4.0-1]: on a resumed session, unacknowledged PUBLISH packets go
  // out again with DUP set, and PUBRELs again, in their original order.
  std::vector<uint64_t> gone;
  for (auto& [seq, m] : inflight_) {
    if (m.state == StoredMessageState::kReleased) {
      conn_->Send(PubAck{PacketType::kPubrel, m.packet_id, ReasonCode::kSuccess, {}});
      continue;
    }
    uint16_t id = m.packet_id;
    SendPublish(m);
    if (m.packet_id == 0) {
      inflight_ids_.erase(id);
      gone.push_back(seq);
    }
  }
  for (uint64_t seq : gone) {
    if (persistent_ && worker_.ctx().store) worker_.ctx().store->DeleteMessage(client_id_, seq);
    inflight_.erase(seq);
  }
}

void Session::Complete(uint16_t packet_id) {
  auto it = inflight_ids_.find(packet_id);
  if (it == inflight_ids_.end()) return;
  uint64_t seq = it->second;
  inflight_ids_.erase(it);
  inflight_.erase(seq);
  if (persistent_ && worker_.ctx().store) worker_.ctx().store->DeleteMessage(client_id_, seq);
  Pump();
}

void Session::OnPuback(const PubAck& ack) {
  auto it = inflight_ids_.find(ack.packet_id);
  if (it == inflight_ids_.end()) return;
  if (inflight_[it->second].qos != 1) return;
  Complete(ack.packet_id);
}

void Session::OnPubrec(const PubAck& ack) {
  auto it = inflight_ids_.find(ack.packet_id);
  if (it == inflight_ids_.end()) {
    // An unknown identifier still gets a PUBREL, with 0x92 for v5 clients.
    conn_->Send(PubAck{PacketType::kPubrel, ack.packet_id,
                       ReasonCode::kPacketIdentifierNotFound, {}});
    return;
  }
  OutMessage& m = inflight_[it->second];
  if (m.qos != 2) return;
  if (static_cast<uint8_t>(ack.reason) >= 0x80) {
    // The receiver refused it; the exchange ends here [MQTT-4.3.3-4].
    Complete(ack.packet_id);
    return;
  }
  m.state = StoredMessageState::kReleased;
  if (persistent_ && worker_.ctx().store) {
    worker_.ctx().store->UpdateMessage(client_id_, m.seq, m.state, m.packet_id);
  }
  conn_->Send(PubAck{PacketType::kPubrel, ack.packet_id, ReasonCode::kSuccess, {}});
}

void Session::OnPubcomp(const PubAck& ack) {
  auto it = inflight_ids_.find(ack.packet_id);
  if (it == inflight_ids_.end()) return;
  if (inflight_[it->second].state != StoredMessageState::kReleased) return;
  Complete(ack.packet_id);
}

}  // namespace ferry::core
