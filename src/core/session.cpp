// Session: the MQTT state of one client id, delivered to whether or not a
// connection is attached. Lives on its owning worker's thread.
#include <algorithm>
#include <optional>

#include "core/broker_internal.h"
#include "core/log.h"

namespace ferry::core {

Session::Session(Worker& worker, std::string client_id)
    : worker_(worker), client_id_(std::move(client_id)) {}

Session::~Session() {
  // Normally released when the client disconnected; never leave a publisher
  // waiting for a session that is gone.
  if (flight_ == nullptr) return;
  if (!flight_->queue_waiters.empty()) worker_.queue_waits().Release(client_id_);
  for (auto& fn : flight_->queue_waiters) worker_.loop().Post(std::move(fn));
}

bool Session::ForgetQos2Received(uint16_t packet_id) {
  if (flight_ == nullptr || flight_->qos2_inbound.erase(packet_id) == 0) return false;
  TrimFlight();
  return true;
}

void Session::TrimFlight() {
  if (flight_ != nullptr && flight_->inflight.empty() && flight_->qos2_inbound.empty() &&
      flight_->queue_waiters.empty()) {
    flight_.reset();
  }
}

bool Session::QueueFull() const {
  const uint32_t limit = worker_.ctx().options.max_queued_messages;
  return limit != 0 && queue_.size() >= limit;
}

void Session::WhenQueueHasRoom(std::function<void()> fn) {
  std::vector<std::function<void()>>& waiters = flight().queue_waiters;
  if (waiters.empty()) worker_.StartQueueWait(*this);
  waiters.push_back(std::move(fn));
}

void Session::ReleaseQueueWaiters() {
  if (flight_ == nullptr || flight_->queue_waiters.empty()) return;
  std::vector<std::function<void()>> waiters;
  waiters.swap(flight_->queue_waiters);
  worker_.queue_waits().Release(client_id_);
  TrimFlight();
  for (auto& fn : waiters) fn();
}

bool Session::CanHoldPublishers() const {
  return !shedding_ && worker_.ctx().options.max_queue_wait_ms > 0;
}

void Session::Shed() {
  shedding_ = true;
  ReleaseQueueWaiters();
}

bool Session::Deliver(const MessagePtr& msg, uint8_t qos, bool retain,
                      std::vector<uint32_t> subscription_ids, OverLimit over) {
  OutMessage m;
  m.msg = msg;
  m.qos = qos;
  m.retain = retain;
  m.subscription_ids = std::move(subscription_ids);
  Metrics& metrics = worker_.ctx().metrics;
  const bool connected = conn_ != nullptr && conn_->state() == Connection::State::kConnected;
  if (transfer_ != nullptr && NoteTransferDelivery(*msg, connected)) {
    return Enqueue(std::move(m), over);
  }
  if (connected) {
    if (qos == 0) {
      // Queued QoS 0 messages (retained ones for a new subscription) go
      // first: same topic, same QoS, same order [MQTT-4.6.0-5].
      if (queued_qos0_ == 0) {
        if (conn_->PendingBytes() <= worker_.ctx().options.max_output_buffer) {
          SendPublish(m);
          return false;
        }
        // A slow reader's backlog is bounded: QoS 0 beyond it is dropped.
        if (over == OverLimit::kDrop) {
          Inc(metrics.dropped_slow_client);
          return false;
        }
      }
      return Enqueue(std::move(m), over);
    }
    uint32_t window = std::min<uint32_t>(worker_.ctx().options.max_inflight,
                                         conn_->client_receive_max_);
    if (queue_.empty() && InflightCount() < window) {
      m.seq = next_seq_++;
      SendPublish(m);
      if (m.packet_id == 0) return false;  // dropped (too large for the client)
      bool durable = false;
      if (persistent_ && worker_.ctx().store) {
        worker_.ctx().store->PutMessage(client_id_, StoredMessage{m.seq, m.qos, m.packet_id,
                                                                  m.state, m.msg});
        durable = true;
      }
      Flight& f = flight();
      f.inflight_ids[m.packet_id] = m.seq;
      f.inflight.emplace(m.seq, std::move(m));
      return durable;
    }
  } else if (qos == 0 && !(persistent_ && worker_.ctx().options.queue_qos0)) {
    return false;
  }
  // Only a connected client drains its queue; an offline one keeps the limit.
  return Enqueue(std::move(m), connected ? over : OverLimit::kDrop);
}

bool Session::Enqueue(OutMessage m, OverLimit over) {
  if (over == OverLimit::kDrop && QueueFull()) {
    Metrics& metrics = worker_.ctx().metrics;
    Inc(shedding_ && conn_ != nullptr ? metrics.dropped_queue_wait
                                      : metrics.dropped_queue_full);
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
  if (m.qos == 0) ++queued_qos0_;
  queue_.push_back(std::move(m));
  return durable;
}

uint16_t Session::NextPacketId() {
  // [MQTT-2.2.1-4]: never reuse an identifier still in flight.
  for (;;) {
    uint16_t id = next_packet_id_++;
    if (next_packet_id_ == 0) next_packet_id_ = 1;
    if (id != 0 && (flight_ == nullptr || !flight_->inflight_ids.contains(id))) return id;
  }
}

void Session::SendPublish(OutMessage& m) {
  Connection& c = *conn_;
  const Message& msg = *m.msg;
  Metrics& metrics = worker_.ctx().metrics;
  // The clock is read only for a message that can expire.
  const uint64_t now = msg.expiry_at_ms != 0 ? UnixNowMs() : 0;
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
  std::optional<Properties> extra;  // built only when this delivery adds some
  uint16_t new_alias = 0;  // registered only once the packet is really sent
  if (IsV5(c.version_)) {
    // A message without properties (most are) encodes an empty property
    // list without visiting every field. Message::props only ever holds the
    // five properties that travel with a message (message.h).
    const Properties& mp = msg.props;
    const bool bare = !mp.payload_format_indicator && !mp.content_type && !mp.response_topic &&
                      !mp.correlation_data && mp.user_properties.empty();
    p.props = bare ? nullptr : &msg.props;
    bool alias = c.client_topic_alias_max_ > 0;
    if (msg.expiry_at_ms != 0 || !m.subscription_ids.empty() || alias) {
      extra.emplace(msg.props);
      p.props = &*extra;
      if (msg.expiry_at_ms != 0) {
        // [MQTT-3.3.2-6]: the expiry interval sent is what remains of it.
        extra->message_expiry_interval =
            static_cast<uint32_t>((msg.expiry_at_ms - now + 999) / 1000);
      }
      extra->subscription_identifiers = m.subscription_ids;
    }
    if (alias) {
      auto& out_aliases = c.aliases().out;
      auto it = out_aliases.find(msg.topic);
      if (it != out_aliases.end()) {
        extra->topic_alias = it->second;
        p.topic = {};  // the alias names the topic
      } else if (out_aliases.size() < c.client_topic_alias_max_) {
        new_alias = static_cast<uint16_t>(out_aliases.size() + 1);
        extra->topic_alias = new_alias;
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
  if (new_alias != 0) c.aliases().out.emplace(msg.topic, new_alias);
  if (m.qos > 0) m.state = StoredMessageState::kSent;
  Inc(metrics.publish_sent);
  Inc(metrics.publish_sent_qos[std::min<uint8_t>(m.qos, 2)]);
  c.SendPublish(p);
}

void Session::Pump() {
  if (conn_ == nullptr || conn_->state() != Connection::State::kConnected || HoldsQueue()) return;
  DurableStore* store = persistent_ ? worker_.ctx().store.get() : nullptr;
  const uint32_t window =
      std::min<uint32_t>(worker_.ctx().options.max_inflight, conn_->client_receive_max_);
  while (!queue_.empty()) {
    OutMessage& m = queue_.front();
    if (m.qos > 0 && InflightCount() >= window) break;
    if (m.qos == 0 && conn_->PendingBytes() > worker_.ctx().options.max_output_buffer) break;
    OutMessage out = std::move(m);
    queue_.pop_front();
    if (out.qos == 0 && queued_qos0_ > 0) --queued_qos0_;
    SendPublish(out);
    if (out.qos == 0 || out.packet_id == 0) {
      if (store) store->DeleteMessage(client_id_, out.seq);
      continue;
    }
    if (store) store->UpdateMessage(client_id_, out.seq, out.state, out.packet_id);
    Flight& f = flight();
    f.inflight_ids[out.packet_id] = out.seq;
    f.inflight.emplace(out.seq, std::move(out));
  }
  if (!QueueFull()) {
    shedding_ = false;  // it reads again: back to slowing its publishers down
    ReleaseQueueWaiters();
  }
}

void Session::ResendInflight() {
  // [MQTT-4.4.0-1]: on a resumed session, unacknowledged PUBLISH packets go
  // out again with DUP set, and PUBRELs again, in their original order.
  if (flight_ == nullptr) return;
  Flight& f = *flight_;
  std::vector<uint64_t> gone;
  for (auto& [seq, m] : f.inflight) {
    if (m.state == StoredMessageState::kReleased) {
      conn_->SendAck(PacketType::kPubrel, m.packet_id);
      continue;
    }
    uint16_t id = m.packet_id;
    SendPublish(m);
    if (m.packet_id == 0) {
      f.inflight_ids.erase(id);
      gone.push_back(seq);
    }
  }
  for (uint64_t seq : gone) {
    if (persistent_ && worker_.ctx().store) worker_.ctx().store->DeleteMessage(client_id_, seq);
    f.inflight.erase(seq);
  }
  TrimFlight();
}

OutMessage* Session::FindInflight(uint16_t packet_id) {
  if (flight_ == nullptr) return nullptr;
  auto id = flight_->inflight_ids.find(packet_id);
  if (id == flight_->inflight_ids.end()) return nullptr;
  auto it = flight_->inflight.find(id->second);
  return it == flight_->inflight.end() ? nullptr : &it->second;
}

void Session::Complete(uint16_t packet_id) {
  OutMessage* m = FindInflight(packet_id);
  if (m == nullptr) return;
  const uint64_t seq = m->seq;
  flight_->inflight_ids.erase(packet_id);
  flight_->inflight.erase(seq);
  if (persistent_ && worker_.ctx().store) worker_.ctx().store->DeleteMessage(client_id_, seq);
  Pump();
  TrimFlight();
}

void Session::OnPuback(const PubAck& ack) {
  const OutMessage* m = FindInflight(ack.packet_id);
  if (m == nullptr || m->qos != 1) return;
  Complete(ack.packet_id);
}

void Session::OnPubrec(const PubAck& ack) {
  OutMessage* found = FindInflight(ack.packet_id);
  if (found == nullptr) {
    // An unknown identifier still gets a PUBREL, with 0x92 for v5 clients.
    conn_->Send(PubAck{PacketType::kPubrel, ack.packet_id,
                       ReasonCode::kPacketIdentifierNotFound, {}});
    return;
  }
  OutMessage& m = *found;
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
  conn_->SendAck(PacketType::kPubrel, ack.packet_id);
}

void Session::OnPubcomp(const PubAck& ack) {
  const OutMessage* m = FindInflight(ack.packet_id);
  if (m == nullptr || m->state != StoredMessageState::kReleased) return;
  Complete(ack.packet_id);
}

}  // namespace ferry::core
