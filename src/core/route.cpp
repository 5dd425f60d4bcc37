// The life of a PUBLISH after it is accepted: retained store, route lookup,
// delivery on this worker and batched hand-off to the others.
#include <algorithm>
#include <atomic>

#include "core/broker.h"
#include "core/broker_internal.h"
#include "core/log.h"

namespace ferry::core {

namespace {

// One acknowledgement that waits for deliveries on several workers and for
// route hooks. The routing thread holds one share itself until it has handed
// the message to everyone, so the barrier cannot finish while the message is
// still being dispatched (e.g. before a local delivery reported that it
// wrote to the store).
struct AckBarrier {
  std::atomic<int> remaining{1};
  std::atomic<bool> durable{false};
  Worker* from = nullptr;  // nullptr: `done` runs on the thread that finishes
  std::function<void()> done;
};

// Runs `done` where the publisher wants it: on `from`'s loop, or right here.
void Answer(Worker* from, std::function<void()> done) {
  if (from != nullptr && !from->loop().IsLoopThread()) {
    from->loop().Post(std::move(done));
  } else {
    done();
  }
}

void ReleaseBarrier(BrokerContext& ctx, const std::shared_ptr<AckBarrier>& b) {
  if (b->remaining.fetch_sub(1) != 1) return;
  Worker* from = b->from;
  if (b->durable.load() && ctx.store) {
    // The publisher hears back only after the commit [durable_store.h].
    ctx.store->Sync([from, done = std::move(b->done)](const Status& st) mutable {
      if (!st.ok()) FERRY_WARN("store commit failed: %s", st.ToString().c_str());
      Answer(from, std::move(done));
    });
    return;
  }
  Answer(from, std::move(b->done));
}

bool PathNames(const std::vector<std::string>& path, std::string_view node) {
  return std::find(path.begin(), path.end(), node) != path.end();
}

}  // namespace

void BrokerContext::Route(const MessagePtr& message, Worker* from, std::function<void()> done) {
  if (!message->path.empty() && PathNames(message->path, options.node_name)) {
    // It was forwarded by this node before and came back round a cycle of
    // bridges: its subscribers here already have it.
    Inc(metrics.dropped_loop);
    FERRY_DEBUG("dropping message on '%s': it already passed through this node",
                message->topic.c_str());
    if (done) Answer(from, std::move(done));
    return;
  }
  std::vector<RouteTarget> targets;
  std::vector<HookTarget> hooks;
  router.Match(message->topic, message->origin_client, targets, hooks);
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
  if (targets.empty() && hooks.empty()) Inc(metrics.dropped_no_subscribers);

  // Group the targets by owning worker.
  std::vector<std::vector<RouteTarget>> by_worker(workers.size());
  for (RouteTarget& t : targets) {
    uint32_t w = t.worker < workers.size() ? t.worker : 0;
    by_worker[w].push_back(std::move(t));
  }
  std::shared_ptr<AckBarrier> barrier;
  if (done) {
    barrier = std::make_shared<AckBarrier>();
    barrier->from = from;
    barrier->done = std::move(done);
  }
  for (HookTarget& h : hooks) {
    RouteCompletion completion;
    if (barrier) {
      barrier->remaining.fetch_add(1);
      completion = RouteCompletion([this, barrier] { ReleaseBarrier(*this, barrier); });
    }
    h.hook->OnRoute(message, h.tags, std::move(completion));
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
    if (barrier) barrier->remaining.fetch_add(1);
    target->loop().Post([this, target, message, batch = std::move(by_worker[w]), barrier] {
      bool d = false;
      target->DeliverBatch(message, batch, &d);
      if (!barrier) return;
      if (d) barrier->durable = true;
      ReleaseBarrier(*this, barrier);
    });
  }
  if (!barrier) return;
  if (durable) barrier->durable = true;
  ReleaseBarrier(*this, barrier);  // the routing thread's own share
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
