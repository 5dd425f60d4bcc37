// Locks and sessions across nodes (CLUSTER.md, "Locks" and "Sessions
// across nodes").
//
// A CONNECT for client X on this node (N2) asks, through the session hook:
//  1. the lock "client:X" ([cluster] session_locking), and every running
//     peer whether it holds X's session (kSessionQuery), both at once. No
//     lock: CONNACK 0x89. No peer holds it: the CONNECT goes on as on a node
//     alone. Several do (only after a split): the copy connected last wins.
//  2. The holder N1 (kTakeover, with the lock's fencing token) closes X's
//     connection there with DISCONNECT 0x8E, and either ends the session
//     (clean start) or sends a copy of it (kTakeoverSession, then its
//     messages in kTakeoverMessages); it keeps its own, subscribed.
//  3. N2 installs the copy and answers the CONNECT: session present.
//  4. N2 tells N1 (kTakeoverEnd); N1 hands over what it took since the
//     export at once, and again after handoff_linger (messages routed by
//     peers that did not know the new route yet), then drops its
//     subscriptions and its delayed Will.
//  5. Once N2 stored everything it tells N1 (kTakeoverDone), which deletes
//     its copy; N2 lets go of the lock.
// If N1 does not answer in takeover_timeout, X starts afresh on N2 (N1 may
// be gone). If N2 goes silent after step 2, N1 puts its copy back as it was
// after 3 x takeover_timeout. When a control link comes up, both ends list
// their sessions (kSessionList): of two copies of one, the one connected
// later stays, and the other node drops its copy, counted and logged.
#include <algorithm>

#include "cluster/cluster_node_impl.h"
#include "cluster/session_wire.h"
#include "core/log.h"

namespace ferry::cluster {

namespace {

// Frames of messages stay well under the link's frame limit.
constexpr size_t kMessageChunkBytes = 1u << 20;
constexpr uint64_t kRenewEveryMs = kLockLeaseMs / 3;
constexpr uint64_t kAdminTimeoutMs = 10000;

// A frame's payload as parsed, or nullopt after one warning naming the
// peer and what was wrong.
template <typename T>
std::optional<T> Parsed(const std::string& peer, Result<T> r, const char* what) {
  if (r.ok()) return std::move(r).value();
  FERRY_WARN("cluster: bad %s from '%s': %s", what, peer.c_str(),
             r.status().ToString().c_str());
  return std::nullopt;
}

std::string ClientResource(std::string_view client_id) {
  return "client:" + std::string(client_id);
}

// Whether the old node `from` deletes its copy of `client`'s session, after
// the last messages it handed over were stored here with `st`: yes unless
// the store failed (then its copy is the one on disk). A session that is no
// longer here (it ended, or moved on) must not come back from the old copy.
bool HandedOver(const std::string& client, const std::string& from, const Status& st,
                size_t messages) {
  if (st.ok()) return true;
  if (st.code() == Status::Code::kNotFound) {
    if (messages > 0) {
      FERRY_WARN("cluster: %zu message(s) '%s' handed over for '%s' found its session gone from "
                 "here (it ended or moved on since); they are dropped",
                 messages, from.c_str(), client.c_str());
    }
    return true;
  }
  FERRY_WARN("cluster: session of '%s' from '%s' could not be stored here (%s); '%s' keeps its "
             "copy",
             client.c_str(), from.c_str(), st.ToString().c_str(), from.c_str());
  return false;
}

}  // namespace

// The core::SessionHook: CONNECTs ask here, on their worker threads.
class ClusterNode::Impl::Claims : public core::SessionHook {
 public:
  Claims(std::shared_ptr<Gate> gate, std::shared_ptr<RunningPeers> running)
      : gate_(std::move(gate)), running_(std::move(running)) {}

  std::optional<core::SessionClaim> Claim(const core::SessionClaimRequest& request,
                                          std::function<void(core::SessionClaim)> later) override {
    // A node without running peers has nobody to ask: its own sessions are
    // the only ones (a stale copy elsewhere is dropped when the link to it
    // comes back).
    if (running_->count.load(std::memory_order_relaxed) == 0) return core::SessionClaim{};
    const uint64_t id = next_.fetch_add(1, std::memory_order_relaxed);
    bool posted = gate_->Post([id, client = request.client_id, clean = request.clean_start,
                               later = std::move(later)](Impl& impl) mutable {
      impl.StartClaim(id, std::move(client), clean, std::move(later));
    });
    if (!posted) return core::SessionClaim{};  // the cluster stopped
    return std::nullopt;
  }

  void Connected(const std::string&, uint64_t claim_id, bool connected) override {
    if (claim_id == 0) return;
    gate_->Post([claim_id, connected](Impl& impl) { impl.ClaimConnected(claim_id, connected); });
  }

 private:
  std::shared_ptr<Gate> gate_;
  std::shared_ptr<RunningPeers> running_;
  std::atomic<uint64_t> next_{1};
};

std::shared_ptr<core::SessionHook> ClusterNode::Impl::MakeClaims() {
  return std::make_shared<Claims>(gate_, running_peers_);
}

void ClusterNode::Impl::UpdateRunning() {
  std::vector<std::string> names = RunningNodes();
  running_peers_->count.store(names.size(), std::memory_order_relaxed);
  std::lock_guard lock(running_peers_->mu);
  running_peers_->names = std::move(names);
}

ClusterNode::Impl::Conn* ClusterNode::Impl::ControlOf(const std::string& node) {
  auto it = peers_.find(node);
  return it != peers_.end() && Running(it->second) ? it->second.control : nullptr;
}

bool ClusterNode::Impl::SendTo(const std::string& node, FrameType type, std::string_view payload) {
  Conn* c = ControlOf(node);
  return c != nullptr && Send(*c, type, payload);
}

// ---- locks

void ClusterNode::Impl::Lock(std::string resource, LockType type, LockDone done) {
  // Held here already (by the claim whose hand-off is still running): this
  // claim shares it, and it goes with the last of them.
  if (auto held = held_locks_.find(resource); held != held_locks_.end()) {
    ++held->second.users;
    done(true, held->second.token, self_.node);
    return;
  }
  std::vector<std::string> voters;
  switch (type) {
    case LockType::kLocal:
      voters = {self_.node};
      break;
    case LockType::kLeader: {
      const std::vector<std::string> running = RunningNodes();
      voters = {members_.Coordinator(running)};
      break;
    }
    case LockType::kQuorum:
    case LockType::kAll:
      voters = RunningNodes();
      voters.push_back(self_.node);
      break;
  }
  // Every node orders the voters of a resource alike (a hash ring) and asks
  // the first alone: of concurrent requests for one resource only one can
  // have it there, so one of them wins instead of each taking a share.
  std::hash<std::string> h;
  std::sort(voters.begin(), voters.end(), [&](const std::string& a, const std::string& b) {
    const size_t ha = h(resource + "\n" + a), hb = h(resource + "\n" + b);
    return ha != hb ? ha < hb : a < b;
  });
  const uint64_t req = next_request_++;
  LockRequest& r = lock_requests_[req];
  r.resource = resource;
  r.type = type;
  r.voters = voters.size();
  r.needed = type == LockType::kQuorum ? voters.size() / 2 + 1 : voters.size();
  r.deadline_ms = loop_.Now() + options_.takeover_timeout_ms;
  r.done = std::move(done);
  r.order = std::move(voters);
  AskVoters(req, 1);
}

void ClusterNode::Impl::AskVoters(uint64_t req, size_t upto) {
  auto it = lock_requests_.find(req);
  if (it == lock_requests_.end()) return;
  LockRequest& r = it->second;
  std::vector<std::string> ask(r.order.begin() + static_cast<ptrdiff_t>(r.asked),
                               r.order.begin() + static_cast<ptrdiff_t>(std::min(upto, r.order.size())));
  r.asked += ask.size();
  for (const std::string& v : ask) r.waiting.insert(v);
  const std::string resource = r.resource;
  for (const std::string& v : ask) {
    if (v == self_.node) {
      if (!MayGrant(resource) && lock_table_.Holder(resource) != self_.node) {
        LockVote(req, v, false, 0, "");
      } else {
        const LockTable::Lock& l = lock_table_.Acquire(resource, self_.node, loop_.Now());
        LockVote(req, v, l.holder == self_.node, l.token, l.holder);
      }
    } else if (!SendTo(v, FrameType::kLock, EncodeLock(LockFrame{req, resource}))) {
      LockVote(req, v, false, 0, "");
    }
    if (!lock_requests_.contains(req)) return;  // decided already
  }
}

void ClusterNode::Impl::LockVote(uint64_t req, const std::string& node, bool granted,
                                 uint64_t token, const std::string& holder) {
  auto it = lock_requests_.find(req);
  // A late answer to a request decided already: a win counted the voter
  // among those its Unlock tells, a loss told it to let go.
  if (it == lock_requests_.end() || it->second.waiting.erase(node) == 0) return;
  LockRequest& r = it->second;
  bool conflict = false;
  if (granted) {
    r.grantors.insert(node);
    r.token = std::max(r.token, token);
  } else {
    ++r.refused;
    // Another holder has it (not merely a voter that did not answer): no
    // use asking the others.
    conflict = !holder.empty();
    if (conflict) r.holder = holder;
  }
  const bool won = r.grantors.size() >= r.needed;
  const bool lost = conflict || r.refused > r.voters - r.needed;
  if (!won && !lost) {
    if (r.waiting.empty()) AskVoters(req, r.order.size());
    return;
  }
  LockRequest done = std::move(r);
  lock_requests_.erase(it);
  if (won) {
    HeldLock& held =
        held_locks_.try_emplace(done.resource, HeldLock{done.type, {}, 0, 0, {}}).first->second;
    ++held.users;
    held.grantors.insert(done.grantors.begin(), done.grantors.end());
    held.granted.insert(done.grantors.begin(), done.grantors.end());
    held.token = std::max(held.token, done.token);
    // Voters that answer later are told to let go when it is unlocked.
    for (const std::string& v : done.waiting) held.grantors.insert(v);
    done.done(true, done.token, self_.node);
    return;
  }
  for (const std::string& g : done.grantors) {
    if (g == self_.node) {
      lock_table_.Release(done.resource, self_.node);
    } else {
      SendTo(g, FrameType::kUnlock, EncodeUnlock(done.resource));
    }
  }
  // Late answers from the voters still waited for are released the same way.
  for (const std::string& v : done.waiting) {
    if (v != self_.node) SendTo(v, FrameType::kUnlock, EncodeUnlock(done.resource));
  }
  done.done(false, 0, done.holder);
}

void ClusterNode::Impl::Unlock(const std::string& resource) {
  auto it = held_locks_.find(resource);
  if (it == held_locks_.end() || --it->second.users > 0) return;
  for (const std::string& g : it->second.grantors) {
    if (g == self_.node) {
      lock_table_.Release(resource, self_.node);
    } else {
      SendTo(g, FrameType::kUnlock, EncodeUnlock(resource));
    }
  }
  held_locks_.erase(it);
}

bool ClusterNode::Impl::SeesEnoughFor(LockType type) const {
  const size_t members = members_.members().size();
  const size_t seen = RunningNodes().size() + 1;
  switch (type) {
    case LockType::kQuorum: return seen >= members / 2 + 1;
    case LockType::kAll: return seen >= members;
    case LockType::kLocal:
    case LockType::kLeader: return true;
  }
  return false;
}

void ClusterNode::Impl::LockBridge(const std::string& name,
                                   std::function<void(bool, std::string)> done) {
  const std::string resource = "bridge:" + name;
  if (held_locks_.contains(resource)) return done(true, self_.node);
  // Locks take a majority of the running members: one side of a split
  // could take one too. A bridge runs only where a majority of all members is.
  if (!SeesEnoughFor(options_.bridge_locking)) return done(false, "");
  Lock(resource, options_.bridge_locking,
       [done = std::move(done)](bool granted, uint64_t, const std::string& holder) {
         done(granted, holder);
       });
}

bool ClusterNode::Impl::BridgeHeld(const std::string& name) const {
  auto it = held_locks_.find("bridge:" + name);
  if (it == held_locks_.end()) return false;
  // Granted by enough of the cluster as it is now: a lock taken while this
  // node was alone (before it joined), or on one side of a split that has
  // healed, counts no more once the members are more.
  const std::vector<std::string> running = RunningNodes();
  const std::set<std::string>& granted = it->second.granted;
  size_t live = 0;
  for (const std::string& g : granted) {
    live += g == self_.node || std::find(running.begin(), running.end(), g) != running.end();
  }
  const size_t members = members_.members().size();
  switch (it->second.type) {
    case LockType::kQuorum: return live >= members / 2 + 1;
    case LockType::kAll: return live >= members;
    case LockType::kLeader: return granted.contains(members_.Coordinator(running));
    case LockType::kLocal: return true;
  }
  return false;
}

void ClusterNode::Impl::UnlockBridge(const std::string& name) { Unlock("bridge:" + name); }

bool ClusterNode::Impl::MayGrant(std::string_view resource) {
  return !resource.starts_with("bridge:") || loop_.Now() >= bridge_grants_from_ms_;
}

void ClusterNode::Impl::OnLock(Conn& c, const FrameView& f) {
  auto lock = Parsed(c.peer(), ParseLock(f.payload), "lock request");
  if (!lock) return;
  // A renewal (req 0) takes its grant back after a restart; a new request
  // for a bridge waits until the holders had the time to renew theirs.
  if (lock->req != 0 && !MayGrant(lock->resource) &&
      lock_table_.Holder(lock->resource) != c.peer()) {
    Send(c, FrameType::kLockReply, EncodeLockReply(LockReplyFrame{lock->req, false, 0, ""}));
    return;
  }
  const LockTable::Lock& l = lock_table_.Acquire(lock->resource, c.peer(), loop_.Now());
  if (lock->req == 0) return;  // a renewal
  lock_table_.Observe(l.token);
  Send(c, FrameType::kLockReply,
       EncodeLockReply(LockReplyFrame{lock->req, l.holder == c.peer(), l.token, l.holder}));
}

void ClusterNode::Impl::OnLockReply(Conn& c, const FrameView& f) {
  auto reply = Parsed(c.peer(), ParseLockReply(f.payload), "lock reply");
  if (!reply) return;
  lock_table_.Observe(reply->token);
  LockVote(reply->req, c.peer(), reply->granted, reply->token, reply->holder);
}

void ClusterNode::Impl::OnUnlock(Conn& c, const FrameView& f) {
  auto resource = ParseUnlock(f.payload);
  if (resource.ok()) lock_table_.Release(*resource, c.peer());
}

std::vector<LockStatus> ClusterNode::Impl::Locks() const {
  std::vector<LockStatus> out;
  for (const auto& [resource, held] : held_locks_) {
    LockStatus s;
    s.resource = resource;
    s.holder = self_.node;
    s.type = LockTypeName(held.type);
    s.grantors.assign(held.grantors.begin(), held.grantors.end());
    s.token = held.token;
    out.push_back(std::move(s));
  }
  const uint64_t now = const_cast<core::Loop&>(loop_).Now();
  for (const LockTable::Lock& l : lock_table_.List()) {
    LockStatus s;
    s.resource = l.resource;
    s.holder = l.holder;
    s.token = l.token;
    s.expires_in_ms = l.expires_ms > now ? l.expires_ms - now : 0;
    out.push_back(std::move(s));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const LockStatus& a, const LockStatus& b) { return a.resource < b.resource; });
  return out;
}

// ---- claims (the new node)

void ClusterNode::Impl::StartClaim(uint64_t id, std::string client_id, bool clean_start,
                                   std::function<void(core::SessionClaim)> later) {
  if (stopping_) {
    core::SessionClaim busy;
    busy.outcome = core::SessionClaim::Outcome::kBusy;
    busy.why = "the node is stopping";
    later(std::move(busy));
    return;
  }
  Claim& claim = claims_[id];
  claim.client_id = client_id;
  claim.clean_start = clean_start;
  claim.later = std::move(later);
  claim.deadline_ms = UINT64_MAX;
  std::deque<uint64_t>& turns = claim_turns_[client_id];
  turns.push_back(id);
  if (turns.size() == 1) AskForSession(id);
}

void ClusterNode::Impl::AskForSession(uint64_t id) {
  Claim& claim = claims_.at(id);
  const std::string client_id = claim.client_id;
  claim.phase = Claim::Phase::kAsking;
  claim.deadline_ms = loop_.Now() + options_.takeover_timeout_ms;
  const std::string query = EncodeSessionQuery(SessionQueryFrame{id, client_id});
  for (const std::string& node : RunningNodes()) {
    if (SendTo(node, FrameType::kSessionQuery, query)) claim.asking.insert(node);
  }
  Lock(ClientResource(client_id), options_.session_locking,
       [this, id, resource = ClientResource(client_id)](bool granted, uint64_t token,
                                                         const std::string& holder) {
         auto it = claims_.find(id);
         if (it == claims_.end()) {
           if (granted) Unlock(resource);
           return;
         }
         it->second.lock_done = true;
         it->second.locked = granted;
         it->second.token = token;
         it->second.busy_holder = holder;
         CheckClaim(id);
       });
}

void ClusterNode::Impl::OnSessionQuery(Conn& c, const FrameView& f) {
  auto q = Parsed(c.peer(), ParseSessionQuery(f.payload), "session query");
  if (!q) return;
  auto reply = [gate = gate_, node = c.peer(), req = q->req](
                   std::optional<core::SessionBrief> brief) {
    SessionQueryReplyFrame r{req, brief.has_value(), brief && brief->connected,
                             brief ? brief->connected_at_ms : 0};
    gate->Post([node, r](Impl& impl) {
      impl.SendTo(node, FrameType::kSessionQueryReply, EncodeSessionQueryReply(r));
    });
  };
  if (!core_.lookup_session) return reply(std::nullopt);
  core_.lookup_session(q->client_id, std::move(reply));
}

void ClusterNode::Impl::OnSessionQueryReply(Conn& c, const FrameView& f) {
  auto r = Parsed(c.peer(), ParseSessionQueryReply(f.payload), "session query reply");
  if (!r) return;
  auto it = claims_.find(r->req);
  if (it == claims_.end() || it->second.asking.erase(c.peer()) == 0) return;
  Claim& claim = it->second;
  if (r->found && (claim.from.empty() || r->connected_at_ms > claim.from_connected_at ||
                   (r->connected_at_ms == claim.from_connected_at && c.peer() < claim.from))) {
    claim.from = c.peer();
    claim.from_connected_at = r->connected_at_ms;
  }
  CheckClaim(r->req);
}

void ClusterNode::Impl::CheckClaim(uint64_t id) {
  auto it = claims_.find(id);
  if (it == claims_.end()) return;
  Claim& claim = it->second;
  if (claim.phase != Claim::Phase::kAsking || !claim.lock_done || !claim.asking.empty()) return;
  if (!claim.locked) {
    core::SessionClaim busy;
    busy.outcome = core::SessionClaim::Outcome::kBusy;
    busy.why = claim.busy_holder.empty()
                   ? "the cluster could not lock the client id"
                   : "a connection of this client is being set up on " + claim.busy_holder;
    AnswerClaim(id, std::move(busy));
    const std::string client_id = claim.client_id;
    claims_.erase(id);
    ClaimSettled(id, client_id);
    return;
  }
  if (claim.from.empty()) {
    claim.phase = Claim::Phase::kConnecting;
    core::SessionClaim local;
    local.id = id;
    AnswerClaim(id, std::move(local));
    return;
  }
  claim.phase = Claim::Phase::kTakingOver;
  claim.deadline_ms = loop_.Now() + options_.takeover_timeout_ms;
  if (!SendTo(claim.from, FrameType::kTakeover,
              EncodeTakeover(TakeoverFrame{id, claim.client_id, claim.clean_start, claim.token}))) {
    SessionPeerDown(claim.from);
  }
}

void ClusterNode::Impl::AnswerClaim(uint64_t id, core::SessionClaim answer) {
  auto it = claims_.find(id);
  if (it == claims_.end() || !it->second.later) return;
  auto later = std::move(it->second.later);
  it->second.later = nullptr;
  later(std::move(answer));
}

void ClusterNode::Impl::ClaimSettled(uint64_t id, const std::string& client_id) {
  auto it = claim_turns_.find(client_id);
  if (it == claim_turns_.end() || it->second.empty() || it->second.front() != id) return;
  it->second.pop_front();
  if (it->second.empty()) {
    claim_turns_.erase(it);
    return;
  }
  AskForSession(it->second.front());
}

void ClusterNode::Impl::EndClaim(uint64_t id) {
  auto it = claims_.find(id);
  if (it == claims_.end()) return;
  const std::string client_id = it->second.client_id;
  if (it->second.phase != Claim::Phase::kQueued) Unlock(ClientResource(client_id));
  claims_.erase(it);
  ClaimSettled(id, client_id);
}

void ClusterNode::Impl::OnTakeoverSession(Conn& c, const FrameView& f) {
  auto s = Parsed(c.peer(), ParseTakeoverSession(f.payload), "session");
  if (!s) return;
  auto it = claims_.find(s->req);
  if (it == claims_.end() || it->second.phase != Claim::Phase::kTakingOver ||
      it->second.from != c.peer()) {
    return;
  }
  Claim& claim = it->second;
  if (s->refused) {
    // The holder served a takeover with a newer lock since: another CONNECT
    // of this client id won, and this one is refused rather than start a
    // second session.
    core::SessionClaim busy;
    busy.outcome = core::SessionClaim::Outcome::kBusy;
    busy.why = "a newer connection of this client took its session on " + claim.from;
    AnswerClaim(s->req, std::move(busy));
    EndClaim(s->req);
    return;
  }
  if (!s->session || s->session->client_id != claim.client_id) {
    // Ended there (clean start), or gone meanwhile: a new session here.
    claim.phase = Claim::Phase::kConnecting;
    core::SessionClaim local;
    local.id = s->req;
    AnswerClaim(s->req, std::move(local));
    return;
  }
  claim.session = std::move(s->session);
  claim.deadline_ms = loop_.Now() + options_.takeover_timeout_ms;
}

void ClusterNode::Impl::OnTakeoverMessages(Conn& c, const FrameView& f) {
  auto m = Parsed(c.peer(), ParseTakeoverMessages(f.payload), "session messages");
  if (!m) return;
  const uint64_t id = m->req;
  auto it = claims_.find(id);
  if (it == claims_.end() || it->second.from != c.peer() ||
      it->second.client_id != m->client_id) {
    if ((m->flags & kMessagesHanded) != 0) LateHandOff(c.peer(), std::move(m).value());
    return;
  }
  Claim& claim = it->second;
  const bool last = (m->flags & kMessagesLast) != 0;
  if ((m->flags & kMessagesHanded) == 0) {
    if (claim.phase != Claim::Phase::kTakingOver || !claim.session) return;
    claim.deadline_ms = loop_.Now() + options_.takeover_timeout_ms;  // it is coming
    auto& into = claim.session->messages;
    into.insert(into.end(), std::make_move_iterator(m->messages.begin()),
                std::make_move_iterator(m->messages.end()));
    if (!last) return;
    claim.phase = Claim::Phase::kConnecting;
    claim.imported = true;
    ++sessions_imported_;
    FERRY_DEBUG("cluster: session of '%s' comes from '%s' with %zu messages",
                claim.client_id.c_str(), claim.from.c_str(), claim.session->messages.size());
    core::SessionClaim imported;
    imported.outcome = core::SessionClaim::Outcome::kImported;
    imported.session = std::move(claim.session);
    imported.id = id;
    claim.session.reset();
    AnswerClaim(id, std::move(imported));
    return;
  }
  if (claim.phase != Claim::Phase::kHandingOver) return;
  if (claim.deadline_ms != UINT64_MAX) {
    claim.deadline_ms = loop_.Now() + options_.takeover_timeout_ms + options_.handoff_linger_ms;
  }
  claim.batch.insert(claim.batch.end(), std::make_move_iterator(m->messages.begin()),
                     std::make_move_iterator(m->messages.end()));
  if (!last) return;
  const bool final = (m->flags & kMessagesFinal) != 0;
  std::vector<core::StoredMessage> batch = std::move(claim.batch);
  claim.batch.clear();
  if (final) claim.deadline_ms = UINT64_MAX;  // the store answers
  if (!core_.append_transferred) {
    if (final) EndClaim(id);
    return;
  }
  const size_t count = batch.size();
  core_.append_transferred(
      claim.client_id, std::move(batch), final,
      [gate = gate_, id, final, count, from = claim.from, client = claim.client_id](Status st) {
        if (!final) return;
        gate->Post([id, from, client, st, count](Impl& impl) {
          impl.SendTo(from, FrameType::kTakeoverDone,
                      EncodeTakeoverStep(TakeoverStepFrame{id, client, HandedOver(client, from, st, count)}));
          impl.EndClaim(id);
        });
      });
}

void ClusterNode::Impl::LateHandOff(const std::string& from, TakeoverMessagesFrame m) {
  auto& batch = late_batches_[{from, m.req}];
  batch.insert(batch.end(), std::make_move_iterator(m.messages.begin()),
               std::make_move_iterator(m.messages.end()));
  if ((m.flags & kMessagesLast) == 0) return;
  std::vector<core::StoredMessage> all = std::move(batch);
  late_batches_.erase({from, m.req});
  if ((m.flags & kMessagesFinal) == 0 && all.empty()) return;
  if (!core_.append_transferred) return;
  FERRY_INFO("cluster: '%s' handed over %zu messages of the session of '%s' after this node "
             "stopped waiting; they are delivered",
             from.c_str(), all.size(), m.client_id.c_str());
  const size_t count = all.size();
  core_.append_transferred(
      m.client_id, std::move(all), true,
      [gate = gate_, from, req = m.req, client = m.client_id, count,
       final = (m.flags & kMessagesFinal) != 0](Status st) {
        if (!final) return;
        gate->Post([from, req, client, st, count](Impl& impl) {
          impl.SendTo(from, FrameType::kTakeoverDone,
                      EncodeTakeoverStep(TakeoverStepFrame{req, client, HandedOver(client, from, st, count)}));
        });
      });
}

void ClusterNode::Impl::ClaimConnected(uint64_t id, bool connected) {
  auto it = claims_.find(id);
  if (it == claims_.end()) return;
  Claim& claim = it->second;
  (void)connected;  // an imported session stays here either way
  if (!claim.imported) {
    EndClaim(id);
    return;
  }
  const std::string client_id = claim.client_id;
  claim.phase = Claim::Phase::kHandingOver;
  claim.deadline_ms = loop_.Now() + options_.takeover_timeout_ms + options_.handoff_linger_ms;
  if (!SendTo(claim.from, FrameType::kTakeoverEnd,
              EncodeTakeoverStep(TakeoverStepFrame{id, claim.client_id, false}))) {
    SessionPeerDown(claim.from);
  }
  ClaimSettled(id, client_id);
}

// ---- exports (the old node)

void ClusterNode::Impl::OnTakeover(Conn& c, const FrameView& f) {
  auto t = Parsed(c.peer(), ParseTakeover(f.payload), "takeover request");
  if (!t) return;
  const std::string node = c.peer();
  lock_table_.Observe(t->token);
  uint64_t& served = served_tokens_[t->client_id];
  if (t->token < served) {
    FERRY_WARN("cluster: '%s' asks for the session of '%s' with fencing token %llu, older than "
               "%llu already served; refused",
               node.c_str(), t->client_id.c_str(), static_cast<unsigned long long>(t->token),
               static_cast<unsigned long long>(served));
    Send(c, FrameType::kTakeoverSession,
         EncodeTakeoverSession(TakeoverSessionFrame{t->req, {}, /*refused=*/true}));
    return;
  }
  served = t->token;
  if (!core_.export_session) {
    Send(c, FrameType::kTakeoverSession, EncodeTakeoverSession(TakeoverSessionFrame{t->req, {}}));
    return;
  }
  core_.export_session(
      t->client_id, t->clean_start,
      [gate = gate_, node, req = t->req, client = t->client_id](
          std::optional<core::StoredSession> session) mutable {
        gate->Post([node, req, client, session = std::move(session)](Impl& impl) mutable {
          std::vector<core::StoredMessage> messages;
          if (session) {
            messages = std::move(session->messages);
            session->messages.clear();
            Export& e = impl.exports_[{node, req}];
            e.client_id = client;
            e.deadline_ms = impl.loop_.Now() + 3 * impl.options_.takeover_timeout_ms;
            ++impl.sessions_exported_;
            FERRY_DEBUG("cluster: session of '%s' goes to '%s'", client.c_str(), node.c_str());
          }
          const bool found = session.has_value();
          impl.SendTo(node, FrameType::kTakeoverSession,
                      EncodeTakeoverSession(TakeoverSessionFrame{req, std::move(session)}));
          if (found) impl.SendMessages(node, req, client, 0, messages);
        });
      });
}

void ClusterNode::Impl::SendMessages(const std::string& node, uint64_t req,
                                     const std::string& client_id, uint8_t flags,
                                     const std::vector<core::StoredMessage>& messages) {
  for (const std::string& frame :
       EncodeTakeoverMessages(req, client_id, flags, messages, kMessageChunkBytes)) {
    if (!SendTo(node, FrameType::kTakeoverMessages, frame)) return;
  }
}

void ClusterNode::Impl::OnTakeoverEnd(Conn& c, const FrameView& f) {
  auto step = ParseTakeoverStep(f.payload);
  if (!step.ok()) return;
  auto it = exports_.find({c.peer(), step->req});
  if (it == exports_.end() || it->second.ended) return;
  it->second.ended = true;
  it->second.final_at_ms = loop_.Now() + options_.handoff_linger_ms;
  it->second.deadline_ms = loop_.Now() + 3 * options_.takeover_timeout_ms;
  HandOff(c.peer(), step->req, /*final=*/false);
}

void ClusterNode::Impl::HandOff(const std::string& node, uint64_t req, bool final) {
  auto it = exports_.find({node, req});
  if (it == exports_.end() || !core_.hand_off_session) return;
  if (final) it->second.final_sent = true;
  core_.hand_off_session(
      it->second.client_id, final,
      [gate = gate_, node, req, final, client = it->second.client_id](
          std::vector<core::StoredMessage> rest) {
        gate->Post([node, req, final, client, rest = std::move(rest)](Impl& impl) {
          const uint8_t flags = kMessagesHanded | (final ? kMessagesFinal : 0);
          impl.SendMessages(node, req, client, flags, rest);
        });
      });
}

void ClusterNode::Impl::OnTakeoverDone(Conn& c, const FrameView& f) {
  auto step = ParseTakeoverStep(f.payload);
  if (!step.ok()) return;
  auto it = exports_.find({c.peer(), step->req});
  if (it == exports_.end()) return;
  if (core_.finish_hand_off) core_.finish_hand_off(it->second.client_id, step->moved);
  served_tokens_.erase(it->second.client_id);
  exports_.erase(it);
}

// ---- timers and peers going away

void ClusterNode::Impl::SessionPeerDown(const std::string& node) {
  std::erase_if(late_batches_, [&](const auto& kv) { return kv.first.first == node; });
  for (auto it = admin_calls_.begin(); it != admin_calls_.end();) {
    if (it->second.node != node) {
      ++it;
      continue;
    }
    auto done = std::move(it->second.done);
    it = admin_calls_.erase(it);
    done(Status::Unavailable("the link to '" + node + "' was lost"));
  }
  std::vector<uint64_t> waiting;
  for (auto& [id, r] : lock_requests_) {
    if (r.waiting.contains(node)) waiting.push_back(id);
  }
  for (uint64_t id : waiting) LockVote(id, node, false, 0, "");
  std::vector<uint64_t> claims;
  for (auto& [id, claim] : claims_) claims.push_back(id);
  for (uint64_t id : claims) {
    auto it = claims_.find(id);
    if (it == claims_.end()) continue;
    Claim& claim = it->second;
    if (claim.phase == Claim::Phase::kAsking && claim.asking.erase(node) > 0) {
      CheckClaim(id);
    } else if (claim.from == node && claim.phase == Claim::Phase::kTakingOver) {
      FERRY_WARN("cluster: '%s' did not hand over the session of '%s'; it starts afresh here",
                 node.c_str(), claim.client_id.c_str());
      claim.phase = Claim::Phase::kConnecting;
      core::SessionClaim local;
      local.id = id;
      AnswerClaim(id, std::move(local));
    } else if (claim.from == node && claim.phase == Claim::Phase::kHandingOver &&
               claim.deadline_ms != UINT64_MAX) {
      FERRY_WARN("cluster: '%s' did not hand over the rest of the session of '%s'",
                 node.c_str(), claim.client_id.c_str());
      claim.deadline_ms = UINT64_MAX;
      if (core_.append_transferred) {
        core_.append_transferred(claim.client_id, {}, true, [](Status) {});
      }
      EndClaim(id);
    }
  }
}

void ClusterNode::Impl::SessionHousekeeping() {
  const uint64_t now = loop_.Now();
  UpdateRunning();
  // Grants: leases run out; a holder declared down loses them at once.
  lock_table_.Expire(now);
  for (const auto& [node, p] : peers_) {
    if (p.down_at_ms != 0 && now - p.down_at_ms >= options_.link.down_after_ms) {
      lock_table_.DropHolder(node);
    }
  }
  if (now - locks_renewed_ms_ >= kRenewEveryMs) {
    locks_renewed_ms_ = now;
    for (const auto& [resource, held] : held_locks_) {
      for (const std::string& g : held.grantors) {
        if (g == self_.node) {
          lock_table_.Acquire(resource, self_.node, now);
        } else {
          SendTo(g, FrameType::kLock, EncodeLock(LockFrame{0, resource}));
        }
      }
    }
  }
  for (auto it = admin_calls_.begin(); it != admin_calls_.end();) {
    if (it->second.deadline_ms > now) {
      ++it;
      continue;
    }
    auto done = std::move(it->second.done);
    const std::string node = it->second.node;
    it = admin_calls_.erase(it);
    done(Status::Unavailable("'" + node + "' did not answer in time"));
  }
  std::vector<std::pair<uint64_t, std::string>> late_votes;
  for (const auto& [id, r] : lock_requests_) {
    if (r.deadline_ms <= now) {
      for (const std::string& v : r.waiting) late_votes.emplace_back(id, v);
    }
  }
  for (const auto& [id, v] : late_votes) LockVote(id, v, false, 0, "");
  std::vector<std::pair<uint64_t, std::string>> late;
  for (const auto& [id, claim] : claims_) {
    if (claim.deadline_ms > now) continue;
    if (claim.phase == Claim::Phase::kAsking) {
      for (const std::string& n : claim.asking) late.emplace_back(id, n);
    } else if (claim.phase != Claim::Phase::kConnecting) {
      late.emplace_back(id, claim.from);
    }
  }
  for (const auto& [id, node] : late) {
    auto it = claims_.find(id);
    if (it == claims_.end()) continue;
    if (it->second.phase == Claim::Phase::kAsking) {
      FERRY_WARN("cluster: '%s' did not say in time whether it holds the session of '%s'",
                 node.c_str(), it->second.client_id.c_str());
      it->second.asking.erase(node);
      CheckClaim(id);
    } else {
      SessionPeerDown(node);
    }
  }
  std::vector<std::pair<std::string, uint64_t>> due;
  std::vector<std::pair<std::string, uint64_t>> expired;
  for (const auto& [key, e] : exports_) {
    if (e.deadline_ms <= now) {
      expired.push_back(key);
    } else if (e.ended && !e.final_sent && e.final_at_ms <= now) {
      due.push_back(key);
    }
  }
  for (const auto& [node, req] : due) HandOff(node, req, /*final=*/true);
  for (const auto& key : expired) {
    Export& e = exports_[key];
    FERRY_WARN("cluster: '%s' did not finish taking the session of '%s'; it stays here",
               key.first.c_str(), e.client_id.c_str());
    if (core_.finish_hand_off) core_.finish_hand_off(e.client_id, false);
    // The other node may have kept the session all the same (and died, or
    // its confirmation was lost): the running nodes compare their copies
    // with this one, and the one connected later stays.
    if (core_.lookup_session) {
      core_.lookup_session(e.client_id, [gate = gate_](std::optional<core::SessionBrief> b) {
        if (!b) return;
        gate->Post([b = *b](Impl& impl) {
          const std::string frame = EncodeSessionList(std::span(&b, 1), SIZE_MAX).front();
          for (const std::string& node : impl.RunningNodes()) {
            impl.SendTo(node, FrameType::kSessionList, frame);
          }
        });
      });
    }
    served_tokens_.erase(e.client_id);
    exports_.erase(key);
  }
}

// ---- two copies of one session

void ClusterNode::Impl::SendSessionList(Conn& c) {
  if (!core_.list_sessions) return;
  core_.list_sessions([gate = gate_, node = c.peer()](std::vector<core::SessionBrief> all) {
    gate->Post([node, all = std::move(all)](Impl& impl) {
      for (const std::string& frame : EncodeSessionList(all, kMessageChunkBytes)) {
        if (!impl.SendTo(node, FrameType::kSessionList, frame)) return;
      }
    });
  });
}

void ClusterNode::Impl::OnSessionList(Conn& c, const FrameView& f) {
  auto theirs = Parsed(c.peer(), ParseSessionList(f.payload), "session list");
  if (!theirs) return;
  if (theirs->empty() || !core_.list_sessions || !core_.discard_session) return;
  std::map<std::string, core::SessionBrief, std::less<>> by_id;
  for (core::SessionBrief& s : *theirs) {
    std::string id = s.client_id;
    by_id.emplace(std::move(id), std::move(s));
  }
  core_.list_sessions([gate = gate_, node = c.peer(), self = self_.node,
                       by_id = std::move(by_id)](std::vector<core::SessionBrief> mine) {
    // Mine loses where the client connected there later (a tie goes to
    // the node whose name sorts first). Where mine wins, the other node is
    // told, in case it did not list its copy to this one (it only asked).
    std::vector<std::string> lost;
    std::vector<core::SessionBrief> won;
    for (const core::SessionBrief& s : mine) {
      auto it = by_id.find(s.client_id);
      if (it == by_id.end()) continue;
      const uint64_t there = it->second.connected_at_ms;
      if (there > s.connected_at_ms || (there == s.connected_at_ms && node < self)) {
        lost.push_back(s.client_id);
      } else {
        won.push_back(s);
      }
    }
    if (lost.empty() && won.empty()) return;
    gate->Post([node, lost = std::move(lost), won = std::move(won)](Impl& impl) {
      if (!won.empty()) {
        for (const std::string& frame : EncodeSessionList(won, kMessageChunkBytes)) {
          impl.SendTo(node, FrameType::kSessionList, frame);
        }
      }
      if (!lost.empty()) impl.DiscardSessions(node, lost);
    });
  });
}

void ClusterNode::Impl::DiscardSessions(const std::string& node, std::vector<std::string> ids) {
  struct Tally {
    std::mutex mu;
    std::vector<std::string> dropped;
    size_t left = 0;
  };
  auto tally = std::make_shared<Tally>();
  tally->left = ids.size();
  for (const std::string& id : ids) {
    core_.discard_session(id, [gate = gate_, tally, node, id](bool dropped) {
      std::unique_lock lock(tally->mu);
      if (dropped) tally->dropped.push_back(id);
      if (--tally->left > 0 || tally->dropped.empty()) return;
      std::vector<std::string> all = std::move(tally->dropped);
      lock.unlock();
      gate->Post([node, all = std::move(all)](Impl& impl) {
        impl.sessions_discarded_ += all.size();
        std::string some;
        for (size_t i = 0; i < all.size() && i < 5; ++i) some += (i ? ", " : "") + all[i];
        FERRY_WARN("cluster: dropped %zu session%s that %s connected to '%s' since (%s%s)",
                   all.size(), all.size() == 1 ? "" : "s",
                   all.size() == 1 ? "its client" : "their clients", node.c_str(), some.c_str(),
                   all.size() > 5 ? ", ..." : "");
      });
    });
  }
}

// ---- admin commands across nodes (`clients show`, `kick`, `list --cluster`)

void ClusterNode::Impl::CallAdmin(const std::string& node, AdminCallFrame call,
                                  std::function<void(Result<AdminReplyFrame>)> done) {
  call.req = next_request_++;
  if (!SendTo(node, FrameType::kAdminCall, EncodeAdminCall(call))) {
    return done(Status::Unavailable("'" + node + "' is not running"));
  }
  admin_calls_[call.req] =
      PendingAdmin{node, std::move(done), loop_.Now() + kAdminTimeoutMs};
}

void ClusterNode::Impl::OnAdminCall(Conn& c, const FrameView& f) {
  auto call = Parsed(c.peer(), ParseAdminCall(f.payload), "admin call");
  if (!call) return;
  auto reply = [gate = gate_, node = c.peer()](AdminReplyFrame r) {
    gate->Post([node, r = std::move(r)](Impl& impl) {
      impl.SendTo(node, FrameType::kAdminReply, EncodeAdminReply(r));
    });
  };
  const uint64_t req = call->req;
  // A peer may only look at and kick clients here, and start or stop a
  // bridge of scope cluster here alone, nothing else.
  const std::vector<std::string>& w = call->words;
  const bool bridge_here = w.size() == 4 && w[0] == "bridges" &&
                           (w[1] == "start" || w[1] == "stop") && w[3] == "--local";
  if (!admin_server_ || w.empty() || (w[0] != "clients" && !bridge_here)) {
    return reply(AdminReplyFrame{req, "bad_argument", "not a command a peer may run", "", 0});
  }
  admin_server_(std::move(call).value(), [reply, req](AdminReplyFrame r) {
    r.req = req;
    reply(std::move(r));
  });
}

void ClusterNode::Impl::OnAdminReply(Conn& c, const FrameView& f) {
  auto r = Parsed(c.peer(), ParseAdminReply(f.payload), "admin reply");
  if (!r) return;
  auto it = admin_calls_.find(r->req);
  if (it == admin_calls_.end() || it->second.node != c.peer()) return;
  auto done = std::move(it->second.done);
  admin_calls_.erase(it);
  done(std::move(r).value());
}

namespace {

// A peer's error, as the admin kind it named (core/admin.h).
Status AdminError(const std::string& kind, const std::string& message) {
  if (kind == "not_found") return Status::NotFound(message);
  if (kind == "bad_argument") return Status::InvalidArgument(message);
  return Status::Unavailable(message);
}

class ClientDirectoryImpl : public core::RemoteClientDirectory {
 public:
  ClientDirectoryImpl(std::shared_ptr<ClusterNode::Impl::Gate> gate,
                      std::shared_ptr<ClusterNode::Impl::RunningPeers> running)
      : gate_(std::move(gate)), running_(std::move(running)) {}

  std::vector<std::string> Nodes() override {
    std::lock_guard lock(running_->mu);
    return running_->names;
  }
  void Call(std::string node, std::vector<std::string> words,
            std::function<void(Result<std::string>)> done) override {
    Run(std::move(node), AdminCallFrame{0, 0, 0, std::move(words)},
        [done](Result<AdminReplyFrame> r) {
          if (!r.ok()) return done(r.status());
          done(std::move(r.value().json));
        });
  }
  void List(std::string node, std::vector<std::string> words, uint64_t cursor, size_t max_rows,
            std::function<void(Result<Page>)> done) override {
    const uint32_t max = static_cast<uint32_t>(std::clamp<size_t>(max_rows, 1, 10000));
    Run(std::move(node), AdminCallFrame{0, cursor, max, std::move(words)},
        [done](Result<AdminReplyFrame> r) {
          if (!r.ok()) return done(r.status());
          done(Page{std::move(r.value().json), r.value().next});
        });
  }

 private:
  void Run(std::string node, AdminCallFrame call,
           std::function<void(Result<AdminReplyFrame>)> done) {
    auto answer = [done](Result<AdminReplyFrame> r) {
      if (r.ok() && !r.value().error.empty()) {
        return done(AdminError(r.value().error, r.value().message));
      }
      done(std::move(r));
    };
    const bool posted = gate_->Post([node, call = std::move(call), answer](ClusterNode::Impl& impl) mutable {
      impl.CallAdmin(node, std::move(call), answer);
    });
    if (!posted) done(Status::Unavailable("the cluster is stopping"));
  }

  std::shared_ptr<ClusterNode::Impl::Gate> gate_;
  std::shared_ptr<ClusterNode::Impl::RunningPeers> running_;
};

}  // namespace

// ---- ClusterNode

std::shared_ptr<core::RemoteClientDirectory> ClusterNode::ClientDirectory() const {
  return std::make_shared<ClientDirectoryImpl>(impl_->gate(), impl_->running_peers());
}

void ClusterNode::LockBridge(std::string name, std::function<void(bool, std::string)> done) {
  impl_->gate()->Post([name = std::move(name), done](Impl& impl) mutable {
    impl.LockBridge(name, std::move(done));
  });
}

void ClusterNode::BridgeHeld(std::string name, std::function<void(bool)> done) {
  impl_->gate()->Post([name = std::move(name), done](Impl& impl) { done(impl.BridgeHeld(name)); });
}

void ClusterNode::UnlockBridge(std::string name) {
  impl_->gate()->Post([name = std::move(name)](Impl& impl) { impl.UnlockBridge(name); });
}

void ClusterNode::SetAdminServer(AdminServer server) {
  impl_->gate()->Post(
      [server = std::move(server)](Impl& impl) mutable { impl.SetAdminServer(std::move(server)); });
}

void ClusterNode::GetLocks(std::function<void(std::vector<LockStatus>)> done) {
  impl_->loop().Post([impl = impl_.get(), done = std::move(done)] { done(impl->Locks()); });
}

}  // namespace ferry::cluster
