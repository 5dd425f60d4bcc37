// ClusterNode's insides, on the cluster thread: private to src/cluster.
// cluster_node.cpp has the lifecycle, the links and the route streams;
// cluster_members.cpp the member set, join, leave and force-leave;
// cluster_forward.cpp the messages forwarded to peers and from them.
#pragma once

#include <uv.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/cluster_node.h"
#include "cluster/local_routes.h"
#include "cluster/locks.h"
#include "cluster/membership.h"
#include "cluster/peer_link.h"
#include "cluster/remote_routes.h"
#include "cluster/session_wire.h"
#include "core/backoff.h"
#include "core/loop.h"

namespace ferry::cluster {

class ClusterNode::Impl {
 public:
  Impl(ClusterOptions options, CoreSeams core, MemberRecord self);
  ~Impl();

  // Before the thread starts, on the caller's thread: loads the member set,
  // binds the port. Then Run() on the cluster thread.
  Status Prepare(uint16_t* port);
  void Run();
  // On the cluster thread: closes everything; Run() returns after.
  void Shutdown();

  core::Loop& loop() { return loop_; }
  const std::string& node() const { return self_.node; }

  // The public requests, on the cluster thread.
  void Join(std::string target, std::function<void(JoinResult)> done);
  DiscoveryStatus CurrentDiscovery() const;
  void SetDiscovery(bool enabled, std::function<void(Status)> done);
  void Leave(std::function<void(Status)> done);
  void ForceLeave(std::string node, std::function<void(Status)> done);
  ClusterStatus CurrentStatus() const;
  ClusterDigest Digest() const;
  // What LatestStatus() returns; any thread.
  std::shared_ptr<const ClusterStatus> Published() const;
  std::vector<RouteEntry> RoutesOf(std::string_view node) const;
  // The remote route table for core's admin commands (RemoteRouteDirectory).
  std::vector<core::RemoteRouteDirectory::Row> ListRoutes(const std::string& after_filter,
                                                          const std::string& after_node,
                                                          size_t max) const;
  std::vector<core::RemoteRouteDirectory::Row> RoutesMatching(const std::string& topic) const;
  class Gate;
  const std::shared_ptr<Gate>& gate() const { return gate_; }
  // The peers whose control link is up, for other threads (Claims, the
  // client directory); UpdateRunning() after a change.
  struct RunningPeers {
    std::atomic<size_t> count{0};
    std::mutex mu;
    std::vector<std::string> names;  // guarded by mu
  };
  std::vector<LockStatus> Locks() const;
  // Bridges of scope cluster (ClusterNode::LockBridge); cluster thread.
  void LockBridge(const std::string& name, std::function<void(bool, std::string)> done);
  bool BridgeHeld(const std::string& name) const;
  void UnlockBridge(const std::string& name);
  // Runs `call` on `node`; Unavailable if it is not running or does not
  // answer in time. Cluster thread; `done` runs there.
  void CallAdmin(const std::string& node, AdminCallFrame call,
                 std::function<void(Result<AdminReplyFrame>)> done);
  void SetAdminServer(ClusterNode::AdminServer server) { admin_server_ = std::move(server); }
  const std::shared_ptr<RunningPeers>& running_peers() const { return running_peers_; }
  // The session hook's calls, on the cluster thread (cluster_sessions.cpp).
  void StartClaim(uint64_t id, std::string client_id, bool clean_start,
                  std::function<void(core::SessionClaim)> later);
  void ClaimConnected(uint64_t id, bool connected);

 private:
  // One link (PeerLink) and what this node knows of it.
  struct Conn : PeerLink::Listener {
    Conn(Impl& impl, bool outbound, uint64_t now_ms)
        : impl(impl), outbound(outbound), opened_ms(now_ms) {}
    void OnEstablished(PeerLink&) override { impl.OnEstablished(*this); }
    void OnFrame(PeerLink&, const FrameView& f) override { impl.OnFrame(*this, f); }
    void OnDrained(PeerLink&) override { impl.OnDrained(*this); }
    void OnClosed(PeerLink&, std::string_view why, const HandshakeFailure* r) override {
      impl.OnClosed(*this, why, r);
    }
    const std::string& peer() const { return link->peer().node; }
    bool control() const { return link->peer().purpose == kControlPurpose; }

    Impl& impl;
    const bool outbound;
    const uint64_t opened_ms;       // loop time it was opened or accepted
    bool established = false;       // the handshake succeeded
    bool set_seen = false;          // the peer's member set arrived
    bool members_received = false;  // ... and it is a member: the link is attached
    bool streaming = false;         // our route snapshot is queued: it gets deltas
    // Route and retained frames not yet handed to the link (a large
    // snapshot goes out as the peer reads it, not all at once past the
    // link's cap).
    std::deque<std::pair<FrameType, std::string>> backlog;
    std::unique_ptr<PeerLink> link;
  };
  // A QoS 1/2 message forwarded to a peer and not yet acknowledged by it:
  // its body (shared by every peer it goes to) and the publisher's
  // acknowledgement, which completes once every peer holding it let go.
  struct Held {
    std::string head;  // EncodeForwardHead: seq and delivery
    std::shared_ptr<const std::string> body;
    std::shared_ptr<core::RouteCompletion> done;
  };
  // A member other than this node.
  struct Peer {
    Conn* control = nullptr;  // its control link, established or being opened
    explicit Peer(core::Backoff b) : backoff(b) {}
    uint64_t redial_at_ms = 0;
    core::Backoff backoff;  // of redials after a lost link
    // Forwarding to it: the QoS 1/2 forwards held until it acknowledges
    // them (by seq, next_seq_); how far the current link has them.
    std::map<uint64_t, Held> unacked;
    uint64_t sent_upto = 0;
    uint64_t down_at_ms = 0;  // its control link was lost then; 0 while up
    uint64_t seen_incarnation = 0;  // its process, as its last control link said
    uint64_t forwarded_out = 0;
    uint64_t forward_dropped = 0;
    uint64_t sessions = 0;  // as its last kStats said
  };
  // What this node received from a peer, by the peer's incarnation: every
  // seq up to `floor` and those in `ahead`; those still being routed here
  // (their ack follows).
  struct Inbound {
    uint64_t incarnation = 0;
    uint64_t floor = 0;
    std::set<uint64_t> ahead;
    std::set<uint64_t> routing;
    uint64_t received = 0;
  };
  // A join this node is making.
  struct PendingJoin {
    PendingJoin(std::function<void(JoinResult)> d, std::string t)
        : done(std::move(d)), target(std::move(t)) {}
    std::function<void(JoinResult)> done;
    std::string target;
    Conn* conn = nullptr;
    int redirects = 0;
    bool accepted = false;  // in the cluster: waiting for the control links
    uint64_t deadline_ms = 0;
    std::string dropped;
    bool only_if_clustered = false;  // a discovery probe (cluster_messages.h)
    bool quiet = false;              // discovery's: failures are its to log
    // Autoheal's: this node's retained messages are merged with the
    // cluster's (last writer wins), not replaced by them.
    bool merge = false;
  };
  class Observer;
  class Hook;
  class RetainedWatch;

  // ---- links (cluster_node.cpp)
  Status Listen(uint16_t* port);
  void OnConnection();
  Conn& Dial(const PeerAddress& to, std::string_view purpose);
  void OnEstablished(Conn& c);
  void OnFrame(Conn& c, const FrameView& f);
  // Everything queued on the link went out: route frames and held forwards
  // waiting for room follow.
  void OnDrained(Conn& c);
  void OnClosed(Conn& c, std::string_view why, const HandshakeFailure* refusal);
  // One line for a closed link, at a level that suits it.
  void LogClosed(const Conn& c, bool current, std::string_view why,
                 const HandshakeFailure* refusal) const;
  // Makes `c` the peer's control link once it is known to be a member, and
  // sends it the route snapshot. Both ends dial a member they have no link
  // with; of two links between a pair, the one the lower name opened wins
  // (both ends decide alike), else the newer.
  void Attach(Conn& c);
  void OnHousekeeping();
  // Raises or clears the alarm cluster_partition from `s.unreachable`:
  // one log line and one $SYS message each way.
  void UpdatePartitionAlarm(const ClusterStatus& s);
  void PublishAlarm(bool activate, const std::string& message);
  uint64_t LoopNow() const { return uv_now(const_cast<core::Loop&>(loop_).get()); }
  // Every second: this node's figures to every running peer.
  void SendStats();
  void OnStats(Conn& c, const FrameView& f);
  LocalIdentity Identity() const;
  bool Send(Conn& c, FrameType type, std::string_view payload);

  // ---- route streams (cluster_node.cpp)
  void OnLocalRoute(const core::RouteEvent& e);
  void FlushDelta();
  void SendSnapshot(Conn& c);
  // The largest route frame this node builds.
  size_t MaxRouteFrame() const;
  // Route and retained frames go through the connection's backlog, in order.
  void QueueFrame(Conn& c, FrameType type, std::string payload);
  void DrainBacklog(Conn& c);
  void OnRoutes(Conn& c, const FrameView& f);
  // Withdraws `node`'s routes; returns how many.
  size_t PurgeRoutes(std::string_view node);
  // Makes the router match what the remote route table changed.
  void InstallRoutes(const std::string& node, const RouteChanges& changes);
  // The tag of `node`'s route hook filters: one per name, never reused.
  uint32_t TagOf(const std::string& node);

  // ---- partitions (cluster_heal.cpp)
  // Removes the members unreachable for autoclean_ms; remembers them.
  void AutoClean();
  // Dials every removed node remembered, every probe_interval_ms.
  void ProbeCleaned();
  // A control link's peer and this node list each other out: with
  // autoheal, decides which side joins the other (from `theirs`).
  void DecideMerge(Conn& c, const Membership& theirs);
  // Runs the join DecideMerge scheduled, once it is due.
  void RunPendingHeal();
  void LoadCleaned();
  void SaveCleaned();

  // ---- discovery (cluster_discovery.cpp)
  void StartJoin(std::string target, bool only_if_clustered, bool quiet,
                 std::function<void(JoinResult)> done);
  void LoadDiscovery();
  void SaveDiscovery();
  // Every discovery_interval: a node alone asks the backend, then tries
  // what it found in DiscoveryOrder, one join at a time.
  void OnDiscoveryTick();
  void NextDiscoveryAttempt();
  // An error of the backend (source "") or of a node found (its target),
  // logged once per change; "" clears it.
  void NoteDiscoveryError(const std::string& source, std::string error);

  // ---- forwarding (cluster_forward.cpp)
  // A message the hook matched for the peers of `tags`, on the cluster
  // thread. `done` is null unless a QoS 1/2 publisher waits.
  void ForwardOut(const std::vector<uint32_t>& tags, const std::vector<core::SharedPick>& shared,
                  uint8_t qos,
                  const std::shared_ptr<const std::string>& body,
                  const std::shared_ptr<core::RouteCompletion>& done);
  // Hands the peer's link the held forwards it does not have yet, up to
  // half its cap (the rest when it drained).
  void PumpForwards(Peer& p);
  // The peer's control link is up again: what it had not acknowledged goes
  // again (it drops what it already routed).
  void ResumeForwards(Peer& p);
  // Lets go of what is held for `p` (it was declared down or removed): the
  // publishers are acknowledged, the drops counted.
  void DropHeld(const std::string& node, Peer& p, std::string_view why);
  void OnForward(Conn& c, const FrameView& f);
  void OnForwardAcks(Conn& c, const FrameView& f);
  // A forwarded message was routed here: its ack goes to the peer.
  void OnForwarded(const std::string& node, uint64_t incarnation, uint64_t seq,
                   ReasonCode rc);
  // Held forwards of peers down longer than peer_down_after are dropped.
  void ExpireHeld();
  // A retained message set or deleted here goes to every running peer; a
  // peer whose link comes up gets all of them.
  // A retained message set or deleted here (`deleted_at` != 0: deleted then).
  void OnLocalRetained(const std::shared_ptr<const std::string>& body, const std::string& topic,
                       uint64_t received_at_ms, bool deleted);
  // Deletes are remembered a day (kTombstoneMs), so that a copy a peer kept
  // through a split does not bring back what was deleted after it was set.
  void Tombstone(const std::string& topic, uint64_t deleted_at_ms);
  void PruneTombstones();
  void SendRetained(Conn& c);
  void OnRetained(Conn& c, const FrameView& f);
  // False (and a warning) for a body too large for a peer frame.
  bool FitsFrame(size_t body_size, std::string_view what) const;

  // ---- locks and sessions across nodes (cluster_sessions.cpp)
  class Claims;  // the core::SessionHook
  std::shared_ptr<core::SessionHook> MakeClaims();
  // Takes `resource` as `type` says (locks.h); `done(granted, token,
  // holder)` runs once, on the cluster thread.
  using LockDone = std::function<void(bool granted, uint64_t token, const std::string& holder)>;
  void Lock(std::string resource, LockType type, LockDone done);
  void Unlock(const std::string& resource);
  // Whether this node sees enough of the cluster to hold a lock of `type`
  // for long: quorum, a majority of the members (running, with itself);
  // all, every member; leader and local, itself.
  bool SeesEnoughFor(LockType type) const;
  // Asks the voters of request `req` up to the `upto`th in its order.
  void AskVoters(uint64_t req, size_t upto);
  void OnLock(Conn& c, const FrameView& f);
  void OnLockReply(Conn& c, const FrameView& f);
  void OnUnlock(Conn& c, const FrameView& f);
  // A voter's answer to lock request `req` (from this node or a peer).
  void LockVote(uint64_t req, const std::string& node, bool granted, uint64_t token,
                const std::string& holder);
  // Renews held leases, frees expired grants and those of nodes declared
  // down, fails requests that waited too long; claims and hand-offs that
  // waited too long go on without the node they waited for.
  void SessionHousekeeping();
  // Claim `id` asks the peers and the lock (its turn came: StartClaim).
  void AskForSession(uint64_t id);
  void CheckClaim(uint64_t id);
  void AnswerClaim(uint64_t id, core::SessionClaim claim);
  // Claim `id` of `client_id` no longer holds up the next CONNECT of that
  // client id here (it connected, or ended): the next one's turn.
  void ClaimSettled(uint64_t id, const std::string& client_id);
  void EndClaim(uint64_t id);
  // `node`'s control link went down: what waits for it goes on without it.
  void SessionPeerDown(const std::string& node);
  void OnSessionQuery(Conn& c, const FrameView& f);
  void OnSessionQueryReply(Conn& c, const FrameView& f);
  void OnTakeover(Conn& c, const FrameView& f);
  void OnTakeoverSession(Conn& c, const FrameView& f);
  void OnTakeoverMessages(Conn& c, const FrameView& f);
  void OnTakeoverEnd(Conn& c, const FrameView& f);
  void OnTakeoverDone(Conn& c, const FrameView& f);
  // A hand-off that came after its claim gave up waiting: delivered to the
  // session all the same, and confirmed if the session is here.
  void LateHandOff(const std::string& from, TakeoverMessagesFrame m);
  // Hands over what the exported session took since the last batch.
  void HandOff(const std::string& node, uint64_t req, bool final);
  void SendMessages(const std::string& node, uint64_t req, const std::string& client_id,
                    uint8_t flags, const std::vector<core::StoredMessage>& messages);
  // When a control link comes up both ends send their sessions; of two
  // copies of one, the one connected later stays.
  void SendSessionList(Conn& c);
  void OnSessionList(Conn& c, const FrameView& f);
  void OnAdminCall(Conn& c, const FrameView& f);
  void OnAdminReply(Conn& c, const FrameView& f);
  // Drops this node's copies of `ids`, which `node` holds connected later;
  // counts and logs them.
  void DiscardSessions(const std::string& node, std::vector<std::string> ids);
  // The control link of `node` if it is up (Running), else null.
  Conn* ControlOf(const std::string& node);
  // Sends on `node`'s control link if it is up; false if not.
  bool SendTo(const std::string& node, FrameType type, std::string_view payload);

  // ---- members (cluster_members.cpp)
  void SaveMembers();
  void SendMembers(Conn& c);
  void PushMembers();
  void OnMembers(Conn& c, const FrameView& f);
  // After the set changed here: tells the peers, attaches links that waited
  // for it, dials new members, drops old ones.
  void OnMembersChanged();
  void OnPeerLeft(Conn& c);
  void OnForceLeave(Conn& c, const FrameView& f);
  // Removes `node` for good here, tells it, and tells the members.
  void RemoveByForce(const std::string& node, const std::string& where);
  void OnJoinRequest(Conn& c, const FrameView& f);
  void OnJoinReply(Conn& c, const FrameView& f);
  void DialJoin(const PeerAddress& to);
  void FinishJoin(ferry::Status st);
  void CheckJoinDone();
  // Leaves the current cluster: tells every linked member, drops links and
  // routes, keeps this node alone. Returns what was dropped, for the log.
  std::string GoAlone(std::string_view why, bool tell_peers);
  // Dials members this node should be linked to and not yet is; closes links
  // of nodes that are no longer members.
  void Reconcile();
  std::vector<std::string> RunningNodes() const;
  bool Running(const Peer& p) const;
  Peer& PeerOf(const std::string& node);

  ClusterOptions options_;
  CoreSeams core_;
  MemberRecord self_;
  std::string members_path_;
  core::Loop loop_;
  Membership members_;
  LocalRoutes local_;
  RemoteRoutes remote_;
  std::shared_ptr<Gate> gate_;  // other threads reach this Impl through it
  std::shared_ptr<Observer> observer_;
  std::shared_ptr<Hook> hook_;
  std::shared_ptr<core::RetainedObserver> retained_watch_;  // a RetainedWatch
  std::map<std::string, uint32_t, std::less<>> tags_;
  std::vector<std::string> tag_nodes_;  // by tag
  std::map<std::string, Inbound, std::less<>> inbound_;
  // The last seq of a QoS 1/2 forward to each node, kept for the life of
  // the process (a Peer entry goes when the node leaves; a rejoin goes on).
  std::map<std::string, uint64_t, std::less<>> next_seq_;
  core::UvHandle<uv_tcp_t> server_;
  core::UvHandle<uv_timer_t> housekeeping_;
  core::UvHandle<uv_timer_t> delta_timer_;
  std::map<std::string, Peer, std::less<>> peers_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> dead_;  // closed; freed by the next housekeeping
  std::optional<PendingJoin> join_;
  // Removed by autoclean and probed since (cluster_cleaned.json); the probe
  // links under way; the join autoheal decided on, and when it is due.
  std::map<std::string, MemberRecord, std::less<>> cleaned_;
  bool left_ = false;  // `cluster leave`: autoheal never makes it join, until `cluster join`
  std::map<std::string, Conn*, std::less<>> probes_;
  std::string cleaned_path_;
  uint64_t next_probe_ms_ = 0;
  struct PendingHeal {
    std::string target;  // name@host:port
    uint64_t due_ms = 0;
  };
  std::optional<PendingHeal> heal_;
  std::map<std::string, uint64_t, std::less<>> retained_deleted_;  // topic: Unix ms
  uint64_t tombstones_pruned_ms_ = 0;
  bool stopping_ = false;
  uint64_t alarm_since_ms_ = 0;  // Unix ms the partition alarm was raised; 0 = not active
  uint64_t stats_at_ms_ = 0;  // when SendStats last ran
  // Discovery: its state, the attempts of the last round, the file it is
  // kept in.
  DiscoveryStatus discovery_;
  std::vector<DiscoveryAttempt> attempts_;
  size_t next_attempt_ = 0;
  bool finding_ = false;
  // After the backend failed: no round before this loop time, and the wait
  // after the next failure (doubling from discovery_interval to 1 min).
  uint64_t discovery_retry_at_ = 0;
  uint64_t discovery_backoff_ms_ = 0;
  std::string discovery_path_;
  std::map<std::string, std::string> discovery_errors_;  // by source
  core::UvHandle<uv_timer_t> discovery_timer_;
  // Locks (locks.h): what this node granted, what it asks for, what it holds.
  LockTable lock_table_;
  struct LockRequest {
    std::string resource;
    LockType type = LockType::kQuorum;
    std::vector<std::string> order;  // the voters, in the resource's ring order
    size_t asked = 0;                // how many of them were asked
    std::set<std::string> waiting;   // voters asked that did not answer yet
    std::set<std::string> grantors;
    size_t voters = 0;
    size_t needed = 0;
    size_t refused = 0;
    uint64_t token = 0;
    std::string holder;  // who has it, where it was refused
    uint64_t deadline_ms = 0;
    LockDone done;
  };
  std::map<uint64_t, LockRequest> lock_requests_;
  struct HeldLock {
    LockType type = LockType::kQuorum;
    std::set<std::string> grantors;
    uint64_t token = 0;
    uint32_t users = 1;  // claims here holding it: it goes with the last
    std::set<std::string> granted;  // the voters that granted it (grantors: and those asked)
  };
  std::map<std::string, HeldLock, std::less<>> held_locks_;
  uint64_t next_request_ = 1;
  uint64_t locks_renewed_ms_ = 0;
  // A node that (re)started grants no new lock of a bridge for one lease:
  // the grants it gave before it stopped are gone from its table, and their
  // holders renew them within that time (every kLockLeaseMs / 3). Loop ms.
  uint64_t bridge_grants_from_ms_ = 0;
  // Whether this node may grant `resource` to a new holder now.
  bool MayGrant(std::string_view resource);
  // CONNECTs here asking where their session is (SessionHook::Claim).
  struct Claim {
    // kQueued: another CONNECT of the client id is being set up here.
    enum class Phase : uint8_t { kQueued, kAsking, kTakingOver, kConnecting, kHandingOver };
    std::string client_id;
    bool clean_start = false;
    std::function<void(core::SessionClaim)> later;  // until answered
    Phase phase = Phase::kQueued;
    bool lock_done = false;
    bool locked = false;
    uint64_t token = 0;
    std::string busy_holder;
    std::set<std::string> asking;  // peers asked whether they hold it
    std::string from;              // the node whose copy is the latest
    uint64_t from_connected_at = 0;
    std::optional<core::StoredSession> session;  // arriving from `from`
    bool imported = false;
    std::vector<core::StoredMessage> batch;  // a handed-over batch arriving
    uint64_t deadline_ms = 0;
  };
  std::map<uint64_t, Claim> claims_;
  // The claims of each client id waiting their turn, the one asking first:
  // CONNECTs of one client id here take turns, as on a node alone.
  std::map<std::string, std::deque<uint64_t>, std::less<>> claim_turns_;
  // Sessions this node exports, by (the node taking it, its claim id).
  struct Export {
    std::string client_id;
    bool ended = false;       // the client is connected there: hand-off started
    bool final_sent = false;  // the last batch went
    uint64_t final_at_ms = 0;  // when the last batch goes
    uint64_t deadline_ms = 0;  // given up then: the session stays here
  };
  std::map<std::pair<std::string, uint64_t>, Export> exports_;
  // Late hand-offs arriving in chunks, by (the old node, its claim id).
  std::map<std::pair<std::string, uint64_t>, std::vector<core::StoredMessage>> late_batches_;
  // The largest fencing token a takeover of each client id was served with
  // (while its export runs): an older one is refused.
  std::map<std::string, uint64_t, std::less<>> served_tokens_;
  std::shared_ptr<core::SessionHook> claims_hook_;  // a Claims
  std::shared_ptr<RunningPeers> running_peers_ = std::make_shared<RunningPeers>();
  void UpdateRunning();
  // Admin commands a peer runs here (ClusterNode::SetAdminServer), and
  // those this node runs on peers, waiting for their reply.
  ClusterNode::AdminServer admin_server_;
  struct PendingAdmin {
    std::string node;
    std::function<void(Result<AdminReplyFrame>)> done;
    uint64_t deadline_ms = 0;
  };
  std::map<uint64_t, PendingAdmin> admin_calls_;
  uint64_t sessions_imported_ = 0;
  uint64_t sessions_exported_ = 0;
  uint64_t sessions_discarded_ = 0;

  // CurrentStatus() of the last housekeeping pass, for other threads.
  mutable std::mutex published_mu_;
  std::shared_ptr<const ClusterStatus> published_;  // guarded by published_mu_
};

// How other threads (workers, the store) reach the cluster thread: posts
// to its loop until Shutdown detaches it, after which they are dropped.
class ClusterNode::Impl::Gate {
 public:
  explicit Gate(Impl& impl) : impl_(&impl) {}
  // Runs `fn` on the cluster thread; false (and `fn` dropped) once detached.
  bool Post(std::function<void(Impl&)> fn) {
    std::lock_guard lock(mu_);
    if (impl_ == nullptr) return false;
    Impl* impl = impl_;
    impl->loop_.Post([impl, fn = std::move(fn)] { fn(*impl); });
    return true;
  }
  void Detach() {
    std::lock_guard lock(mu_);
    impl_ = nullptr;
  }

 private:
  std::mutex mu_;
  Impl* impl_;  // guarded by mu_
};

}  // namespace ferry::cluster
