// The life of a PUBLISH after it is accepted: retained store, route lookup,
// delivery on this worker and batched hand-off to the others.
#include <atomic>

#include "core/broker_internal.h"
#include "core/log.h"

namespace ferry::core {

namespace {

// Tracks one acknowledgement that waits for deliveries on several workers.
struct AckBarrier {
  std::atomic<int> remaining;
  std::atomic<bool> durable{false};
  Worker* from;
  std::function<void()> done;
};

void FinishBarrier(BrokerContext& ctx, const std::shared_ptr<AckBarrier>& b) {
  Worker* from = b->from;
  if (b->durable.load() && ctx.store) {
    // The publisher hears back only after the commit [durable_store.h].
    ctx.store->Sync([from, done = std::move(b->done)](const Status& st) mutable {
      if (!st.ok()) FERRY_WARN("store commit failed: %s", st.ToString().c_str());
      from->loop().Post(std::move(done));
    });
    return;
  }
  from->loop().Post(std::move(b->done));
}

}  // namespace

void BrokerContext::Route(const MessagePtr& message, Worker* from, std::function<void()> done) {
  std::vector<RouteTarget> targets;
  router.Match(message->topic, message->origin_client, targets);
  bool durable = false;
  if (message->retain) {
    // [MQTT-3.3.1-5] store, [MQTT-3.3.1-6] an empty payload deletes.
    router.SetRetained(message);
    // $SYS values are rebuilt every interval; they need no disk.
    if (store && !message->topic.starts_with("$SYS/")) {
      if (message->payload.empty()) {
        store->DeleteRetained(message->topic);
      } else {
        store->PutRetained(message);
      }
      durable = true;
    }
  }
  if (targets.empty()) Inc(metrics.dropped_no_subscribers);

  // Group the targets by owning worker.
  std::vector<std::vector<RouteTarget>> by_worker(workers.size());
  for (RouteTarget& t : targets) {
    uint32_t w = t.worker < workers.size() ? t.worker : 0;
    by_worker[w].push_back(std::move(t));
  }
  int remote = 0;
  for (size_t w = 0; w < workers.size(); ++w) {
    if (!by_worker[w].empty() && workers[w].get() != from) ++remote;
  }
  std::shared_ptr<AckBarrier> barrier;
  if (done && remote > 0) {
    barrier = std::make_shared<AckBarrier>();
    barrier->remaining = remote;
    barrier->from = from;
    barrier->done = std::move(done);
  }
  for (size_t w = 0; w < workers.size(); ++w) {
    if (by_worker[w].empty()) continue;
    Worker* target = workers[w].get();
    if (target == from) {
      bool d = false;
      target->DeliverBatch(message, by_worker[w], &d);
      durable = durable || d;
      continue;
    }
    target->loop().Post([this, target, message, batch = std::move(by_worker[w]), barrier] {
      bool d = false;
      target->DeliverBatch(message, batch, &d);
      if (!barrier) return;
      if (d) barrier->durable = true;
      if (barrier->remaining.fetch_sub(1) == 1) FinishBarrier(*this, barrier);
    });
  }
  if (barrier) {
    if (durable) barrier->durable = true;
    return;
  }
  if (!done) return;
  if (durable && store) {
    store->Sync([from, done = std::move(done)](const Status& st) mutable {
      if (!st.ok()) FERRY_WARN("store commit failed: %s", st.ToString().c_str());
      from->loop().Post(std::move(done));
    });
    return;
  }
  done();
}

void Worker::RouteMessage(MessagePtr msg, std::function<void()> done) {
  ctx_.Route(msg, this, std::move(done));
}

void Worker::DeliverBatch(const MessagePtr& msg, const std::vector<RouteTarget>& targets,
                          bool* durable) {
  auto acl = ctx_.GetAcl();
  for (const RouteTarget& t : targets) {
    Session* s = FindSession(t.client_id);
    if (s == nullptr) continue;  // the session ended after the lookup
    if (acl && !acl->CanReceive(s->username_, s->client_id_, msg->topic)) {
      Inc(ctx_.metrics.dropped_not_authorized);
      continue;
    }
    // [MQTT-3.8.4-8]: delivered at the lower of the published and granted QoS.
    // [MQTT-3.3.1-12] [MQTT-3.3.1-13]: RETAIN is kept only for Retain As Published.
    uint8_t qos = std::min(msg->qos, t.qos);
    bool retain = t.retain_as_published && msg->retain;
    if (s->Deliver(msg, qos, retain, t.subscription_ids)) *durable = true;
  }
}

void Worker::Restore(StoredSession stored) {
  auto owned = std::make_unique<Session>(*this, stored.client_id);
  Session& s = *owned;
  s.persistent_ = true;
  s.stored_ = true;
  s.expiry_interval_s_ = stored.expiry_interval_s;
  // A session whose client was connected when the node stopped counts as
  // disconnected from the restart.
  s.disconnected_at_ms_ =
      stored.disconnected_at_ms != 0 ? stored.disconnected_at_ms : UnixNowMs();
  for (const StoredSubscription& sub : stored.subscriptions) {
    SubscriptionOptions o;
    o.qos = sub.qos;
    o.no_local = sub.no_local;
    o.retain_as_published = sub.retain_as_published;
    o.retain_handling = sub.retain_handling;
    o.subscription_id = sub.subscription_id;
    o.worker = index_;
    ctx_.router.Subscribe(s.client_id_, sub.filter, o);
    s.subscriptions_[sub.filter] = o;
  }
  for (StoredMessage& m : stored.messages) {
    OutMessage out;
    out.seq = m.seq;
    out.msg = std::move(m.message);
    out.qos = m.qos;
    out.packet_id = m.packet_id;
    out.state = m.state;
    s.next_seq_ = std::max(s.next_seq_, m.seq + 1);
    if (m.state == StoredMessageState::kQueued || m.packet_id == 0) {
      out.state = StoredMessageState::kQueued;
      out.packet_id = 0;
      s.queue_.push_back(std::move(out));
    } else {
      s.inflight_ids_[out.packet_id] = out.seq;
      s.inflight_.emplace(out.seq, std::move(out));
    }
  }
  for (uint16_t id : stored.qos2_inbound) s.qos2_inbound_.insert(id);
  IncGauge(ctx_.metrics.sessions, ctx_.metrics.sessions_max);
  AddSession(std::move(owned));
}

}  // namespace ferry::core
