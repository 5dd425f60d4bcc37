// Sessions that move between nodes: the core's half of a cluster's takeover
// (broker.h, "Sessions across nodes").
//
// The node that had the session (the old node) exports a copy of it after
// closing its connection, and keeps it, offline and subscribed, so that
// whatever is routed to it while the new node sets up is kept. The new node
// installs the copy (Worker::Install), answers the CONNECT and holds the
// session's queue back. The old node then hands over what it took since the
// export: a first batch at once, which goes before what the new node
// delivered meanwhile, and a last one once every node has learnt the new
// route (a message that reached both nodes is delivered once: the new node
// remembers what it delivered since the import). The old node deletes its
// copy only once the new node has stored everything.
#include <algorithm>
#include <functional>

#include "core/broker_internal.h"
#include "core/log.h"

namespace ferry::core {


namespace {

// Seqs left free after an imported session's own, for the messages the old
// node hands over, so that they sort before what was delivered here.
constexpr uint64_t kHandedOverRoom = uint64_t{1} << 40;

// Tells the copies of one message apart from other messages: the old and
// the new node each got their own copy of a message published once.
uint64_t MessageIdentity(const Message& m) {
  std::hash<std::string_view> h;
  uint64_t v = h(m.topic);
  v = v * 1000003 ^ h(m.payload);
  v = v * 1000003 ^ h(m.origin_client);
  v = v * 1000003 ^ m.received_at_ms;
  return v;
}

void ForEachOwner(BrokerContext& ctx, const std::string& client_id, std::function<void(Worker&)> fn) {
  Worker* w = ctx.workers[ctx.OwnerOf(client_id)].get();
  w->loop().Post([w, fn = std::move(fn)] { fn(*w); });
}

}  // namespace

bool Session::HoldsQueue() const { return transfer_ != nullptr && transfer_->awaiting_first; }
bool Session::MovingAway() const { return transfer_ != nullptr && transfer_->exporting; }

void Session::StartImport() {
  transfer_ = std::make_unique<Transfer>();
  Transfer& t = *transfer_;
  t.importing = true;
  t.awaiting_first = true;
  t.handed_seq = next_seq_;
  next_seq_ += kHandedOverRoom;
  t.live_from = next_seq_;
}

bool Session::NoteTransferDelivery(const Message& m, bool connected) {
  if (transfer_ == nullptr || !transfer_->importing) return false;
  transfer_->seen.insert(MessageIdentity(m));
  return connected && transfer_->awaiting_first;
}

std::optional<StoredSession> Worker::ExportSession(const std::string& client_id,
                                                    bool clean_start) {
  Session* s = FindSession(client_id);
  if (s != nullptr && s->conn_ != nullptr) {
    FERRY_INFO("%s: session taken over on another node", s->conn_->Describe().c_str());
    DisconnectClient(*s->conn_, ReasonCode::kSessionTakenOver, "session taken over");
    s = FindSession(client_id);  // a session with expiry 0 ended just now
  }
  if (s == nullptr) return std::nullopt;
  if (clean_start) {
    if (s->pending_will_) PublishWill(*s->pending_will_, s->client_id_);
    DropSession(*s);
    return std::nullopt;
  }
  StoredSession out;
  out.client_id = s->client_id_;
  out.expiry_interval_s = s->expiry_interval_s_;
  out.disconnected_at_ms = s->disconnected_at_ms_;
  for (const auto& [filter, o] : s->subscriptions_) {
    out.subscriptions.push_back(StoredSubscription{filter, o.qos, o.no_local,
                                                   o.retain_as_published, o.retain_handling,
                                                   o.subscription_id});
  }
  if (const Session::Flight* f = s->flight_if_any(); f != nullptr) {
    for (const auto& [seq, m] : f->inflight) {
      out.messages.push_back(StoredMessage{seq, m.qos, m.packet_id, m.state, m.msg});
    }
  }
  s->queue_.ForEach([&](const OutMessage& m) {
    out.messages.push_back(StoredMessage{m.seq, m.qos, 0, StoredMessageState::kQueued, m.msg});
  });
  if (const Session::Flight* f = s->flight_if_any(); f != nullptr) {
    out.qos2_inbound.assign(f->qos2_inbound.begin(), f->qos2_inbound.end());
    std::sort(out.qos2_inbound.begin(), out.qos2_inbound.end());
  }
  s->transfer_ = std::make_unique<Session::Transfer>();
  s->transfer_->exporting = true;
  s->transfer_->exported_upto = s->next_seq_ - 1;
  return out;
}

std::vector<StoredMessage> Worker::HandOffSession(const std::string& client_id, bool final) {
  std::vector<StoredMessage> rest;
  Session* s = FindSession(client_id);
  if (s == nullptr || s->transfer_ == nullptr || !s->transfer_->exporting) return rest;
  Session::Transfer& t = *s->transfer_;
  s->queue_.ForEach([&](const OutMessage& m) {
    if (m.seq > t.exported_upto) {
      rest.push_back(StoredMessage{m.seq, m.qos, 0, StoredMessageState::kQueued, m.msg});
    }
  });
  if (!rest.empty()) t.exported_upto = rest.back().seq;
  if (final && !t.handed_off) {
    for (const auto& [filter, o] : s->subscriptions_) ctx_.router.Unsubscribe(s->client_id_, filter);
    t.handed_off = true;
    s->pending_will_.reset();  // resumed on the other node: no Will
  }
  return rest;
}

void Worker::FinishHandOff(const std::string& client_id, bool moved) {
  Session* s = FindSession(client_id);
  if (s == nullptr || s->transfer_ == nullptr || !s->transfer_->exporting) return;
  if (moved) {
    if (s->conn_ != nullptr) {
      DisconnectClient(*s->conn_, ReasonCode::kSessionTakenOver, "session taken over");
      s = FindSession(client_id);
      if (s == nullptr) return;
    }
    s->pending_will_.reset();
    DropSession(*s);
    return;
  }
  if (s->transfer_->handed_off) {
    for (const auto& [filter, o] : s->subscriptions_) ctx_.router.Subscribe(s->client_id_, filter, o);
  }
  s->transfer_.reset();
  s->Pump();
}

Result<bool> Worker::AppendTransferred(const std::string& client_id,
                                       std::vector<StoredMessage> messages, bool final) {
  Session* s = FindSession(client_id);
  if (s == nullptr || s->MovingAway()) {
    return Status::NotFound("no session of '" + client_id + "' here");
  }
  if (s->transfer_ == nullptr || !s->transfer_->importing) {
    // A batch that came after this node stopped waiting for it: delivered
    // all the same (a copy delivered here already goes twice: QoS 1).
    bool wrote = false;
    for (StoredMessage& m : messages) {
      wrote |= s->Deliver(m.message, m.qos, false, {}, OverLimit::kQueue);
    }
    return wrote;
  }
  Session::Transfer& t = *s->transfer_;
  DurableStore* store = s->persistent_ ? ctx_.store.get() : nullptr;
  bool wrote = false;
  if (t.awaiting_first) {
    // In front of what was delivered here since the import.
    std::deque<OutMessage> queued = s->queue_.TakeAll();
    auto live = std::find_if(queued.begin(), queued.end(),
                             [&](const OutMessage& m) { return m.seq >= t.live_from; });
    std::deque<OutMessage> rebuilt(std::make_move_iterator(queued.begin()),
                                   std::make_move_iterator(live));
    for (StoredMessage& m : messages) {
      if (!t.seen.insert(MessageIdentity(*m.message)).second) continue;
      OutMessage out;
      out.seq = t.handed_seq++;
      out.msg = std::move(m.message);
      out.qos = m.qos;
      if (out.qos == 0) ++s->queued_qos0_;
      if (store != nullptr) {
        store->PutMessage(s->client_id_, StoredMessage{out.seq, out.qos, 0,
                                                       StoredMessageState::kQueued, out.msg});
        wrote = true;
      }
      rebuilt.push_back(std::move(out));
    }
    for (auto it = live; it != queued.end(); ++it) rebuilt.push_back(std::move(*it));
    for (OutMessage& m : rebuilt) s->queue_.push_back(std::move(m));
    t.awaiting_first = false;
  } else {
    for (StoredMessage& m : messages) {
      if (!t.seen.insert(MessageIdentity(*m.message)).second) continue;
      wrote |= s->Deliver(m.message, m.qos, false, {}, OverLimit::kQueue);
    }
  }
  if (final) s->transfer_.reset();
  s->Pump();
  return wrote;
}

bool Worker::DiscardSession(const std::string& client_id) {
  Session* s = FindSession(client_id);
  if (s == nullptr) return false;
  if (s->conn_ != nullptr) {
    FERRY_INFO("%s: session taken over on another node", s->conn_->Describe().c_str());
    DisconnectClient(*s->conn_, ReasonCode::kSessionTakenOver,
                     "session taken over on another node");
    s = FindSession(client_id);
    if (s == nullptr) return true;
  }
  s->pending_will_.reset();
  DropSession(*s);
  return true;
}

std::vector<SessionBrief> Worker::SessionBriefs(const std::string* only) const {
  std::vector<SessionBrief> out;
  auto add = [&](const Session& s) {
    if (s.MovingAway()) return;  // the node it was exported to has it
    out.push_back(SessionBrief{s.client_id_, s.conn_ != nullptr, s.connected_at_ms_});
  };
  if (only != nullptr) {
    auto it = sessions_.find(*only);
    if (it != sessions_.end()) add(*it->second);
    return out;
  }
  out.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) add(*s);
  return out;
}

// ---- Broker: each call runs on the worker that owns the client id.

void Broker::SetSessionHook(std::shared_ptr<SessionHook> hook) {
  ctx_->session_hook.store(std::move(hook), std::memory_order_release);
}

void Broker::LookupSession(std::string client_id,
                           std::function<void(std::optional<SessionBrief>)> done) {
  ForEachOwner(*ctx_, client_id, [client_id, done = std::move(done)](Worker& w) {
    std::vector<SessionBrief> found = w.SessionBriefs(&client_id);
    done(found.empty() ? std::nullopt : std::optional<SessionBrief>(std::move(found.front())));
  });
}

void Broker::ListSessions(std::function<void(std::vector<SessionBrief>)> done) {
  struct Gather {
    std::mutex mu;
    std::vector<SessionBrief> all;
    size_t left = 0;
    std::function<void(std::vector<SessionBrief>)> done;
  };
  auto g = std::make_shared<Gather>();
  g->left = ctx_->workers.size();
  g->done = std::move(done);
  for (auto& worker : ctx_->workers) {
    Worker* w = worker.get();
    w->loop().Post([w, g] {
      std::vector<SessionBrief> mine = w->SessionBriefs(nullptr);
      std::unique_lock lock(g->mu);
      g->all.insert(g->all.end(), std::make_move_iterator(mine.begin()),
                    std::make_move_iterator(mine.end()));
      if (--g->left > 0) return;
      lock.unlock();
      g->done(std::move(g->all));
    });
  }
}

void Broker::ExportSession(std::string client_id, bool clean_start,
                           std::function<void(std::optional<StoredSession>)> done) {
  ForEachOwner(*ctx_, client_id, [client_id, clean_start, done = std::move(done)](Worker& w) {
    done(w.ExportSession(client_id, clean_start));
  });
}

void Broker::HandOffSession(std::string client_id, bool final,
                            std::function<void(std::vector<StoredMessage>)> done) {
  ForEachOwner(*ctx_, client_id, [client_id, final, done = std::move(done)](Worker& w) {
    done(w.HandOffSession(client_id, final));
  });
}

void Broker::FinishHandOff(std::string client_id, bool moved) {
  ForEachOwner(*ctx_, client_id,
               [client_id, moved](Worker& w) { w.FinishHandOff(client_id, moved); });
}

void Broker::AppendTransferred(std::string client_id, std::vector<StoredMessage> messages,
                               bool final, std::function<void(Status)> done) {
  BrokerContext* ctx = ctx_.get();
  ForEachOwner(*ctx_, client_id,
               [ctx, client_id, messages = std::move(messages), final,
                done = std::move(done)](Worker& w) mutable {
                 // The last batch waits for every write of the import too:
                 // the other node deletes its copy once this one is safe.
                 Result<bool> wrote = w.AppendTransferred(client_id, std::move(messages), final);
                 if (!wrote.ok()) return done(wrote.status());
                 if (!ctx->store || (!wrote.value() && !final)) return done(Status::Ok());
                 ctx->store->Sync([done = std::move(done)](const Status& st) { done(st); });
               });
}

void Broker::DisconnectClients(ReasonCode reason, std::string why,
                               std::function<void(size_t)> done) {
  struct Tally {
    std::atomic<size_t> closed{0};
    std::atomic<size_t> left{0};
    std::function<void(size_t)> done;
  };
  auto tally = std::make_shared<Tally>();
  tally->left = ctx_->workers.size();
  tally->done = std::move(done);
  for (auto& worker : ctx_->workers) {
    Worker* w = worker.get();
    w->loop().Post([w, tally, reason, why] {
      tally->closed += w->DisconnectClients(reason, why);
      if (--tally->left == 0 && tally->done) tally->done(tally->closed.load());
    });
  }
}

void Broker::DiscardSession(std::string client_id, std::function<void(bool)> done) {
  ForEachOwner(*ctx_, client_id, [client_id, done = std::move(done)](Worker& w) {
    done(w.DiscardSession(client_id));
  });
}

}  // namespace ferry::core
