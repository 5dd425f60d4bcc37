// ClusterNode: this node's part in a cluster. It runs one thread with its
// own libuv loop that owns everything of the cluster's control plane:
//
//  * the cluster port: peers' links are accepted there and answered with the
//    cookie handshake (handshake.h); a force-left node is refused;
//  * one control link to every other member: both dial a member they have no
//    link with (capped backoff after a loss); of two links between a pair
//    the one opened by the name that sorts first stays, on both ends;
//  * the member set (membership.h), kept in data_dir so that a restarted
//    node rejoins by itself. On every control link both ends first send
//    their set; the one with the higher epoch wins. A set that no longer
//    lists this node, from a member of its own, means it was removed;
//    a peer that sends a set of itself alone has left;
//  * join, through the coordinator (cluster_messages.h); leave (members drop
//    the node at once); force-leave (a tombstone that keeps the node out).
//    Leave and force-leave are told to every member, which all make the
//    same change; the coordinator, which makes every change it is told of,
//    pushes its set, and its epoch supersedes what any member made alone;
//  * the route streams: this node's routes, watched through the router's
//    route events, go to every member as a snapshot and then deltas
//    (local_routes.h); the members' streams fill the remote route table
//    (remote_routes.h). A member whose control link is down counts as
//    stopped and its routes are withdrawn until it is back.
//
// Thread: Create, Start and Stop from one thread (ferryd's main thread, or
// a test's). Join, Leave, ForceLeave and GetStatus from any thread: their
// `done` runs on the cluster thread, once, and must not block (post the
// result to the caller's loop).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <string>
#include <thread>
#include <vector>

#include "cluster/discovery.h"
#include "cluster/locks.h"
#include "cluster/peer_link.h"
#include "cluster/remote_routes.h"
#include "cluster/session_wire.h"
#include "core/broker.h"
#include "core/route_events.h"
#include "core/status.h"

namespace ferry::cluster {

struct ClusterOptions {
  std::string cluster = "ferry";  // [cluster] name
  std::string node;               // [node] name, name@host
  std::string cookie;             // never logged. REQUIRES: not empty
  std::string listen_host = "0.0.0.0";
  uint16_t listen_port = 0;  // 0: any free port (tests)
  std::string data_dir;      // where the member set is kept
  LinkOptions link;
  // Redials of a lost control link: capped backoff with jitter (core/backoff.h).
  uint64_t redial_min_ms = 200;
  uint64_t redial_max_ms = 5000;
  uint64_t join_timeout_ms = 10000;
  size_t snapshot_chunk = 4096;  // routes per snapshot frame
  // [cluster] discovery (discovery.h); null: manual, `cluster join` only.
  std::shared_ptr<DiscoveryBackend> discovery;
  uint64_t discovery_interval_ms = 5000;
  // Partitions (cluster_heal.cpp). A member unreachable for autoclean_ms
  // (0 = never) is removed, remembered and probed; with autoheal, a node
  // that finds a removed node reachable again, or a node whose set and its
  // own leave each other out, merges the two sides: the smaller side (on a
  // tie, the one whose first name sorts later) joins the other,
  // autoheal_delay_ms after it is found.
  bool autoheal = true;
  // What the side that joins does to its clients: keeps them connected
  // (soft), or closes their connections once it has joined (restart), so
  // that they come back to a cluster that is whole. Sessions stay either way.
  bool autoheal_restart = false;
  uint64_t autoheal_delay_ms = 15000;
  uint64_t autoclean_ms = 300000;
  uint64_t probe_interval_ms = 5000;
  // Sessions across nodes (cluster_sessions.cpp): the lock a CONNECT takes
  // on its client id; how long a node waits for the others' answers (the
  // lock, where the session is, the session itself, the hand-off).
  LockType session_locking = LockType::kQuorum;
  // The lock of a bridge that runs on one node at a time (LockBridge).
  LockType bridge_locking = LockType::kQuorum;
  uint64_t takeover_timeout_ms = 3000;
  // After the client is connected on the new node, the old one hands over
  // what it took at once, and keeps the session subscribed this long for
  // messages routed by peers that have not yet learnt the new route.
  uint64_t handoff_linger_ms = 500;
};

// The source of this node's routes: Broker::WatchRoutes in ferryd. Called
// on the cluster thread with the observer to set, and with nullptr at Stop.
using WatchRoutesFn =
    std::function<std::vector<core::RouteEvent>(std::shared_ptr<core::RouteObserver>)>;

// The owner identity of the cluster's route hook filters, and the
// injected_by of the messages peers forward (core/message.h): the hook
// never gets them, so a forwarded message is never forwarded on. Not a
// client id a client may use: it starts with a control character.
inline constexpr std::string_view kClusterOwner = "\x01cluster";

// What the cluster needs of the node's core: core::Broker in ferryd, a fake
// in tests. Called on the cluster thread; all but watch_routes may be unset
// (a node that routes nothing: membership alone).
struct CoreSeams {
  WatchRoutesFn watch_routes;
  // A peer's routes, as route hook filters of kClusterOwner under the
  // peer's tag (Broker::AddHookFilters / RemoveHookFilters).
  std::function<Status(uint32_t tag, std::span<const std::string> filters,
                       std::shared_ptr<core::RouteHook> hook)>
      add_routes;
  std::function<void(uint32_t tag, std::span<const std::string> filters)> remove_routes;
  // The peer's members of a shared group (Broker::SetSharedHook; 0: none).
  std::function<Status(uint32_t tag, std::string_view group, uint32_t members,
                       std::shared_ptr<core::RouteHook> hook)>
      set_shared;
  // Routes a message a peer forwarded (Broker::PublishForwarded).
  std::function<void(core::MessagePtr message, core::ForwardedDelivery delivery,
                     core::RouteDone done)>
      publish;
  // Retained messages (Broker::WatchRetained, StoreRetained, ClearRetained):
  // this node's set and deleted ones go to every peer; the peers' are kept
  // here by last writer wins; a node that joins drops its own and takes
  // the cluster's.
  std::function<std::vector<core::MessagePtr>(std::shared_ptr<core::RetainedObserver>)>
      watch_retained;
  std::function<void(core::MessagePtr message)> store_retained;
  std::function<size_t()> clear_retained;
  // Every retained message held now, for `cluster digest`.
  std::function<std::vector<core::MessagePtr>()> all_retained;
  // Publishes a message of this node's own ($SYS alarms) to its local
  // subscribers (Broker::Publish).
  std::function<void(core::MessagePtr message)> publish_local;
  // This node's sessions (connected and offline), for `cluster nodes` here
  // and on the peers.
  std::function<uint64_t()> sessions;
  // Sessions across nodes (Broker's calls of the same names): every
  // CONNECT asks the hook where its session is; the peers' questions and
  // takeovers are answered through the others. Unset: sessions stay where
  // they are.
  std::function<void(std::shared_ptr<core::SessionHook>)> set_session_hook;
  std::function<void(std::string, std::function<void(std::optional<core::SessionBrief>)>)>
      lookup_session;
  std::function<void(std::function<void(std::vector<core::SessionBrief>)>)> list_sessions;
  std::function<void(std::string, bool, std::function<void(std::optional<core::StoredSession>)>)>
      export_session;
  std::function<void(std::string, bool, std::function<void(std::vector<core::StoredMessage>)>)>
      hand_off_session;
  std::function<void(std::string, bool)> finish_hand_off;
  std::function<void(std::string, std::vector<core::StoredMessage>, bool,
                     std::function<void(Status)>)>
      append_transferred;
  std::function<void(std::string, std::function<void(bool)>)> discard_session;
  // Closes every client connection, sessions kept (autoheal_mode = restart).
  std::function<void(std::string why, std::function<void(size_t)> done)> disconnect_clients;
};

// One lock as `cluster locks` shows it: one this node holds (granted by
// `grantors`), or one it granted to `holder`.
struct LockStatus {
  std::string resource;
  std::string holder;
  std::string type;  // of one held here: local, leader, quorum or all; "" for a grant
  std::vector<std::string> grantors;
  uint64_t token = 0;
  uint64_t expires_in_ms = 0;  // of a grant
};

struct MemberStatus {
  std::string node;
  std::string host;
  uint16_t port = 0;
  bool running = false;  // this node, or a member with an established control link
  uint64_t boot_ms = 0;  // Unix ms of its start (from its record)
  uint64_t rtt_us = 0;   // control link round trip; 0 for this node or unknown
  size_t routes = 0;     // the routes it owns, as known here
  uint64_t sessions = 0;  // its sessions, as it last said (every second)
  // Messages this node forwarded to it / it forwarded here, since this
  // process started; those dropped on the way there (QoS 0 past the link's
  // cap, or held for it when it was declared down or removed); QoS 1/2
  // forwards it has not acknowledged yet.
  uint64_t forwarded_out = 0;
  uint64_t forwarded_in = 0;
  uint64_t forward_dropped = 0;
  size_t forward_unacked = 0;
  uint64_t down_since_ms = 0;  // Unix ms its control link was lost; 0 while running
};

struct ClusterStatus {
  std::string cluster;
  std::string self;
  uint64_t epoch = 0;
  std::vector<MemberStatus> members;  // by name, this node included
  std::vector<std::string> removed;   // tombstones of force-leave
  // Members unreachable for peer_down_after or longer: while there are any,
  // the alarm cluster_partition is active (since alarm_since_ms, Unix ms).
  std::vector<std::string> unreachable;
  uint64_t alarm_since_ms = 0;
  // Sessions that came here from another node, went from here to another,
  // and copies dropped here because their client had connected on another
  // node since (after a split or a restart); since this process started.
  uint64_t sessions_imported = 0;
  uint64_t sessions_exported = 0;
  uint64_t sessions_discarded = 0;
  size_t locks_held = 0;     // by this node
  size_t locks_granted = 0;  // by this node, to any node

  std::vector<std::string> running_nodes() const;
  std::vector<std::string> stopped_nodes() const;
};

// What `cluster digest` shows: a short hash of each table this node holds,
// equal on every node once the cluster agrees.
struct ClusterDigest {
  std::string members;   // the member names
  std::string routes;    // every node's routes, as this node knows them
  std::string retained;  // the retained messages (topic, payload, QoS, time)
  size_t member_count = 0;
  size_t route_count = 0;
  size_t retained_count = 0;
};

struct JoinResult {
  Status status;         // not OK: one line, e.g. "cookie mismatch with 'a@h' ..."
  bool ignored = false;  // the target is this node: nothing changed
  // What the node dropped when it left its previous cluster, e.g.
  // "left cluster members b@h; dropped 12 routes of 1 node"; empty if nothing.
  std::string dropped;
  ClusterStatus status_after;
};

class ClusterNode {
 public:
  // Loads the member set from options.data_dir. Errors: InvalidArgument when
  // the saved set belongs to another node name or cluster (a node cannot
  // change its name while in a cluster), Corruption for a damaged file.
  static Result<std::unique_ptr<ClusterNode>> Create(ClusterOptions options, CoreSeams core);
  // Membership and route streams only: nothing is forwarded.
  static Result<std::unique_ptr<ClusterNode>> Create(ClusterOptions options,
                                                     WatchRoutesFn watch_routes);
  ~ClusterNode();  // Stop()s
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // Binds the cluster port, takes the route snapshot, starts the thread and
  // dials the members it knows. Errors: the bind error. REQUIRES: not started.
  Status Start();
  // Closes every link (peers see the node stop, not leave) and joins the
  // thread. Pending requests complete with Unavailable. No-op unless started.
  void Stop();

  // The bound cluster port. REQUIRES: started.
  uint16_t port() const { return port_; }
  const std::string& node() const;

  // Joins the cluster `target` ("name@host[:port]") is in. Leaves the
  // current cluster first if it is another one; drops what this node knew
  // of other nodes. Completes once the control links to every member are up
  // (or after join_timeout_ms with the members reachable by then).
  void Join(std::string target, std::function<void(JoinResult)> done);
  // Leaves the cluster: members drop this node and its routes at once, and
  // discovery, if any, is turned off on this node (else it would rejoin).
  // NotFound if it is in no cluster.
  void Leave(std::function<void(Status)> done);
  // Removes `node` from the cluster for good (running or not); it is refused
  // if it comes back. InvalidArgument for this node itself, NotFound for a
  // node that is no member.
  void ForceLeave(std::string node, std::function<void(Status)> done);
  void GetStatus(std::function<void(ClusterStatus)> done);
  void GetDigest(std::function<void(ClusterDigest)> done);
  // The locks this node holds and those it granted, by resource.
  void GetLocks(std::function<void(std::vector<LockStatus>)> done);
  // Discovery's state; and turning it on or off (kept in data_dir).
  // SetDiscovery: InvalidArgument when the node has no discovery strategy.
  void GetDiscovery(std::function<void(DiscoveryStatus)> done);
  void SetDiscovery(bool enabled, std::function<void(Status)> done);
  // The status as of the cluster thread's last housekeeping pass (at most
  // a fraction of a second old), without waiting for it: for /metrics.
  // Any thread. REQUIRES: started.
  ClusterStatus LatestStatus() const;
  // The routes `node` owns as this node knows them (its own for this node),
  // in order; empty for an unknown node.
  void GetRoutes(std::string node, std::function<void(std::vector<RouteEntry>)> done);
  // The other members' routes as core's `routes list` and `routes show`
  // show them (Broker::SetRemoteRoutes). REQUIRES: started; answers
  // nothing but empty lists once the node stopped.
  std::shared_ptr<core::RemoteRouteDirectory> RouteDirectory() const;
  // The other members' clients as core's `clients show`, `clients kick`
  // and `clients list --cluster` reach them (Broker::SetRemoteClients).
  // REQUIRES: started; answers Unavailable once the node stopped.
  std::shared_ptr<core::RemoteClientDirectory> ClientDirectory() const;
  // A bridge of scope cluster (bridge/bridge.h) runs on the node that holds
  // its lock, "bridge:NAME" of type bridge_locking. LockBridge: done(true,
  // this node) once held here (at once if it is already), or done(false,
  // the holder, "" if none could be had). A node that does not see enough
  // of the cluster for that lock (quorum: a majority of the members) gets
  // no lock. BridgeHeld: whether this node holds it and still sees enough.
  // UnlockBridge lets go. Any thread; `done` runs on the cluster thread.
  void LockBridge(std::string name, std::function<void(bool held, std::string holder)> done);
  void BridgeHeld(std::string name, std::function<void(bool)> done);
  void UnlockBridge(std::string name);
  // What runs the admin commands peers ask this node for (only `clients
  // ...` and `bridges start|stop NAME --local`): called on the cluster
  // thread, answers through `done` from any thread, once. Any thread.
  using AdminServer =
      std::function<void(AdminCallFrame call, std::function<void(AdminReplyFrame)> done)>;
  void SetAdminServer(AdminServer server);

  class Impl;

 private:
  explicit ClusterNode(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  uint16_t port_ = 0;
  bool started_ = false;
};

}  // namespace ferry::cluster
