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
  RouteDone done;
};

// Runs `done` where the publisher wants it: on `from`'s loop, or right here.
void Answer(Worker* from, RouteDone done, ReasonCode rc = ReasonCode::kSuccess) {
  if (from != nullptr && !from->loop().IsLoopThread()) {
    from->loop().Post([done = std::move(done), rc] { done(rc); });
  } else {
    done(rc);
  }
}

// Answers the publisher, after a store commit if the message was written to
// the store: the publisher hears back only then [durable_store.h], and is
// told of a failed commit, never that its message is safe.
void Acknowledge(BrokerContext& ctx, Worker* from, bool durable, RouteDone done) {
  if (durable && ctx.store) {
    ctx.store->Sync([from, done = std::move(done)](const Status& st) mutable {
      Answer(from, std::move(done), Worker::StoreFailureReason(st));
    });
    return;
  }
  Answer(from, std::move(done));
}

// One share of a barrier is done.
void ReleaseBarrier(BrokerContext& ctx, const std::shared_ptr<AckBarrier>& b) {
  if (b->remaining.fetch_sub(1) != 1) return;
  Acknowledge(ctx, b->from, b->durable.load(), std::move(b->done));
}

// Runs `then` once every session of `full` has room in its queue again (or
// lost its client). Sessions of one worker, on that worker's thread.
void AfterQueuesDrain(const std::vector<Session*>& full, std::function<void()> then) {
  struct Wait {
    size_t left;
    std::function<void()> then;
  };
  auto wait = std::make_shared<Wait>(Wait{full.size(), std::move(then)});
  for (Session* s : full) {
    s->WhenQueueHasRoom([wait] {
      if (--wait->left == 0) wait->then();
    });
  }
}

bool PathNames(const std::vector<std::string>& path, std::string_view node) {
  return std::find(path.begin(), path.end(), node) != path.end();
}

}  // namespace

void BrokerContext::NotifyRetained(const MessagePtr& message) {
  std::shared_ptr<RetainedObserver> observer;
  {
    std::lock_guard lock(retained_watch_mu);
    if (!retained_observer || message->injected_by == retained_owner || message->node_local) {
      return;
    }
    observer = retained_observer;
  }
  observer->OnRetained(message);
}

void BrokerContext::DeleteRetained(const std::vector<MessagePtr>& doomed, bool tell) {
  const uint64_t now = UnixNowMs();
  for (const MessagePtr& m : doomed) {
    auto tombstone = std::make_shared<Message>();
    tombstone->topic = m->topic;
    tombstone->retain = true;
    tombstone->received_at_ms = now;
    router.SetRetained(tombstone);
    if (store) store->DeleteRetained(m->topic);
    if (tell) NotifyRetained(tombstone);
  }
}

void BrokerContext::Route(const MessagePtr& message, Worker* from, RouteDone done,
                          const ForwardedDelivery* forwarded) {
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
  const MatchScope scope{message->origin_client, message->injected_by, forwarded == nullptr};
  if (forwarded == nullptr || forwarded->plain) router.Match(message->topic, scope, targets, hooks);
  if (!hooks.empty()) {
    std::erase_if(hooks, [&](const HookTarget& h) {
      return (forwarded != nullptr && !h.hook->TakesForwarded()) ||
             (message->node_local && h.hook->CarriesToPeers());
    });
  }
  if (forwarded != nullptr) {
    for (const std::string& group : forwarded->groups) {
      if (!router.PickShared(group, message->origin_client, targets)) {
        // Its last member here left since the sender chose this node.
        Inc(metrics.dropped_no_subscribers);
      }
    }
  }
  bool durable = false;
  if (message->retain && (forwarded == nullptr || forwarded->plain)) {
    // [MQTT-3.3.1-5] store, [MQTT-3.3.1-6] an empty payload deletes. A
    // forwarded one (sent again after a lost link, say) is kept only if no
    // newer one replicated meanwhile: last writer wins, as StoreRetained.
    const bool kept = forwarded == nullptr ? (router.SetRetained(message), true)
                                           : router.SetRetainedIfNewer(message);
    // $SYS values are rebuilt every interval; they need no disk.
    if (kept && !message->topic.starts_with("$SYS/")) NotifyRetained(message);
    if (kept && store && !message->topic.starts_with("$SYS/")) {
      if (message->payload.empty()) {
        store->DeleteRetained(message->topic);
      } else {
        store->PutRetained(message);
      }
      durable = true;
    }
  }
  if (targets.empty() && hooks.empty()) Inc(metrics.dropped_no_subscribers);

  // Group the targets by owning worker. Most messages go to subscribers of
  // one worker only; then `targets` is that worker's batch as it is.
  auto owner = [&](const RouteTarget& t) { return t.worker < workers.size() ? t.worker : 0u; };
  const bool one_worker =
      std::all_of(targets.begin(), targets.end(),
                  [&](const RouteTarget& t) { return owner(t) == owner(targets.front()); });
  std::vector<std::vector<RouteTarget>> by_worker;
  if (!one_worker) {
    by_worker.resize(workers.size());
    for (RouteTarget& t : targets) by_worker[owner(t)].push_back(std::move(t));
  }
  // The targets on worker w; null if there are none.
  auto batch_for = [&](size_t w) -> std::vector<RouteTarget>* {
    if (!one_worker) return by_worker[w].empty() ? nullptr : &by_worker[w];
    return !targets.empty() && owner(targets.front()) == w ? &targets : nullptr;
  };
  bool remote = false;
  for (size_t w = 0; w < workers.size() && !remote; ++w) {
    remote = batch_for(w) != nullptr && workers[w].get() != from;
  }
  // The acknowledgement waits for every worker with targets and every hook.
  // Only local deliveries: no barrier, the common case.
  std::shared_ptr<AckBarrier> barrier;
  if (done && (remote || !hooks.empty())) {
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
    if (h.shared.empty()) {
      h.hook->OnRoute(message, h.tags, std::move(completion));
    } else {
      h.hook->OnRouteShared(message, h.tags, h.shared, std::move(completion));
    }
  }
  std::vector<Session*> full;
  std::vector<Session*>* hold = (done || barrier) ? &full : nullptr;
  for (size_t w = 0; w < workers.size(); ++w) {
    std::vector<RouteTarget>* batch = batch_for(w);
    if (batch == nullptr) continue;
    Worker* target = workers[w].get();
    if (target == from) {
      bool d = false;
      target->DeliverBatch(message, *batch, &d, hold);
      durable = durable || d;
      continue;
    }
    if (barrier) barrier->remaining.fetch_add(1);
    target->loop().Post([this, target, message, batch = std::move(*batch), barrier] {
      bool d = false;
      std::vector<Session*> held;
      target->DeliverBatch(message, batch, &d, barrier ? &held : nullptr);
      if (!barrier) return;
      if (d) barrier->durable = true;
      if (held.empty()) return ReleaseBarrier(*this, barrier);
      AfterQueuesDrain(held, [this, barrier] { ReleaseBarrier(*this, barrier); });
    });
  }
  if (barrier) {
    if (durable) barrier->durable = true;
    // The routing thread's own share.
    if (full.empty()) return ReleaseBarrier(*this, barrier);
    AfterQueuesDrain(full, [this, barrier] { ReleaseBarrier(*this, barrier); });
    return;
  }
  if (!done) return;
  if (full.empty()) return Acknowledge(*this, from, durable, std::move(done));
  AfterQueuesDrain(full, [this, from, durable, done = std::move(done)]() mutable {
    Acknowledge(*this, from, durable, std::move(done));
  });
}

void Worker::RouteMessage(MessagePtr msg, RouteDone done) {
  ctx_.Route(msg, this, std::move(done));
}

void Worker::DeliverBatch(const MessagePtr& msg, const std::vector<RouteTarget>& targets,
                          bool* durable, std::vector<Session*>* full) {
  const Acl* acl = CurrentAcl();
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
    // A QoS 1/2 publisher is slowed down rather than its message dropped,
    // unless this subscriber has held its publishers for max_queue_wait.
    const bool hold = full != nullptr && qos > 0 && s->CanHoldPublishers();
    if (s->Deliver(msg, qos, retain, t.subscription_ids,
                   hold ? OverLimit::kQueue : OverLimit::kDrop)) {
      *durable = true;
    }
    if (hold && s->connection() != nullptr && s->QueueFull()) full->push_back(s);
  }
}

void Worker::Restore(StoredSession stored) {
  // A session whose client was connected when the node stopped counts as
  // disconnected from the restart.
  const uint64_t disconnected_at =
      stored.disconnected_at_ms != 0 ? stored.disconnected_at_ms : UnixNowMs();
  Session& s = Install(std::move(stored), /*write=*/false);
  s.stored_ = true;
  s.disconnected_at_ms_ = disconnected_at;
}

Session& Worker::Install(StoredSession stored, bool write) {
  auto owned = std::make_unique<Session>(*this, stored.client_id);
  Session& s = *owned;
  DurableStore* store = write ? ctx_.store.get() : nullptr;
  s.persistent_ = true;
  s.expiry_interval_s_ = stored.expiry_interval_s;
  s.disconnected_at_ms_ = stored.disconnected_at_ms;
  if (store != nullptr) {
    store->PutSession(s.client_id_, s.expiry_interval_s_, s.disconnected_at_ms_);
    s.stored_ = true;
  }
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
    if (store != nullptr) store->PutSubscription(s.client_id_, sub);
  }
  for (StoredMessage& m : stored.messages) {
    if (store != nullptr) store->PutMessage(s.client_id_, m);
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
      if (out.qos == 0) ++s.queued_qos0_;
      s.queue_.push_back(std::move(out));
    } else {
      Session::Flight& f = s.flight();
      f.inflight_ids[out.packet_id] = out.seq;
      f.inflight.emplace(out.seq, std::move(out));
    }
  }
  for (uint16_t id : stored.qos2_inbound) {
    s.flight().qos2_inbound.insert(id);
    if (store != nullptr) store->PutQos2Inbound(s.client_id_, id);
  }
  IncGauge(ctx_.metrics.sessions, ctx_.metrics.sessions_max);
  return AddSession(std::move(owned));
}

}  // namespace ferry::core
