// The router: every subscription on this node, shared subscription groups and
// retained messages. Shared by all workers; read-mostly.
//
// Thread safety: every method may be called from any thread. Subscriptions
// sit behind a reader/writer lock (Match takes it shared), retained messages
// behind their own mutex. Values handed out are copies, so callers never hold
// a pointer into the router after a call returns.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/filter_index.h"
#include "core/message.h"
#include "core/retained_trie.h"
#include "core/route_events.h"
#include "core/subscription_trie.h"

namespace ferry::core {

class RouteHook;

struct SubscriptionOptions {
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
  uint32_t subscription_id = 0;  // 0 = none
  uint32_t worker = 0;           // worker that owns the subscriber's session

  bool operator==(const SubscriptionOptions&) const = default;
};

// One subscriber that a message goes to, with every matching subscription
// folded in: the highest QoS and all subscription identifiers.
struct RouteTarget {
  std::string client_id;
  uint32_t worker = 0;
  uint8_t qos = 0;
  bool retain_as_published = false;
  std::vector<uint32_t> subscription_ids;
};

// A route hook whose filters match a message, with the tags of every
// matching filter (each once, in no particular order), and the shared
// groups it was chosen to deliver to.
struct HookTarget {
  std::shared_ptr<RouteHook> hook;
  std::vector<uint32_t> tags;
  std::vector<SharedPick> shared;
};

// Who published a message and how far it is matched.
struct MatchScope {
  std::string_view publisher;  // No Local: its own subscriptions are skipped
  std::string_view injector;   // Message::injected_by: its hooks are skipped
  // False for a message another node forwarded: that node chose the
  // members of shared groups (Router::PickShared delivers to them).
  bool shared_groups = true;
};

class Router {
 public:
  Router() = default;
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Adds or replaces a subscription. `filter` is as the client sent it
  // (a "$share/g/f" or "$queue/f" form joins a shared group).
  // REQUIRES: the filter was validated. Returns true if the subscription is new.
  bool Subscribe(std::string_view client_id, std::string_view filter,
                 const SubscriptionOptions& options);
  // Returns true if the subscription existed.
  bool Unsubscribe(std::string_view client_id, std::string_view filter);

  // Appends one target per subscriber whose subscriptions match `topic`,
  // skipping No Local subscriptions of `publisher`. Each shared group that
  // matches contributes one member, chosen round robin.
  void Match(std::string_view topic, std::string_view publisher,
             std::vector<RouteTarget>& out) const;
  // The same, also appending one HookTarget per route hook with a matching
  // filter, skipping hooks whose owner is `publisher` or `injector` (the
  // module that injected the message: Message::injected_by).
  void Match(std::string_view topic, std::string_view publisher, std::vector<RouteTarget>& out,
             std::vector<HookTarget>& hooks, std::string_view injector = {}) const;

  // The same with the whole scope.
  void Match(std::string_view topic, const MatchScope& scope, std::vector<RouteTarget>& out,
             std::vector<HookTarget>& hooks) const;
  // One local member of the shared group `group` ("$share/g/f"), round
  // robin, added to `out` as Match does; false if it has none (left since).
  bool PickShared(std::string_view group, std::string_view publisher,
                  std::vector<RouteTarget>& out) const;

  // A remote member of a shared group: `hook` under (owner, tag) delivers to
  // `members` subscribers elsewhere; 0 removes it. A publish chooses a
  // remote member only when the group has no local member that may take it,
  // in proportion to their counts. REQUIRES: `group` is a valid "$share/g/f"
  // or "$queue/f" filter.
  void SetSharedHook(std::string_view owner, std::string_view group, uint32_t tag,
                     uint32_t members, std::shared_ptr<RouteHook> hook);

  // Route hook filters (core/broker.h). REQUIRES: the filter was validated
  // and is not a $share form. Returns true if the filter is new. With
  // `announce` (a hook that takes what other nodes forward:
  // RouteHook::TakesForwarded) the filter is also a route of this node,
  // reported to the route observer as a subscription is, so that the other
  // nodes forward what matches it here.
  bool AddHookFilter(std::string_view owner, std::string_view filter, uint32_t tag,
                     std::shared_ptr<RouteHook> hook, bool announce = false);
  bool RemoveHookFilter(std::string_view owner, std::string_view filter, uint32_t tag);
  // The same for many filters of one (owner, tag) under one lock: a peer's
  // whole route table arrives or goes in one step. Return how many filters
  // were new / were removed. The filters of the first owner that adds in
  // bulk, for tags below FilterIndex::kMaxTags, are kept in a FilterIndex
  // (about a tenth of the memory of the trie).
  size_t AddHookFilters(std::string_view owner, uint32_t tag, std::span<const std::string> filters,
                        const std::shared_ptr<RouteHook>& hook);
  size_t RemoveHookFilters(std::string_view owner, uint32_t tag,
                           std::span<const std::string> filters);
  size_t hook_filter_count() const;

  // Sets the one observer of route changes (nullptr to stop) and returns,
  // taken under the same lock, every current route as a `present` event:
  // the snapshot the observer's later events continue from.
  std::vector<RouteEvent> WatchRoutes(std::shared_ptr<RouteObserver> observer);

  size_t subscription_count() const;
  // Routes: distinct topic filters with at least one subscriber; each group
  // of a shared subscription ("$share/g/f") is one route.
  size_t route_count() const;

  struct RouteInfo {
    std::string filter;  // as subscribed, "$share/g/f" for a shared group
    size_t subscribers = 0;
  };
  // Up to `max` routes whose filters sort after `after`, in order; a caller
  // pages through all routes by passing the last filter it got. O(log n +
  // max) under the shared lock.
  std::vector<RouteInfo> Routes(std::string_view after, size_t max) const;

  // High-water marks of subscription_count(), route_count() and
  // retained_count() since the router was created.
  size_t subscription_count_max() const {
    return subscriptions_max_.load(std::memory_order_relaxed);
  }
  size_t route_count_max() const { return routes_max_.load(std::memory_order_relaxed); }
  size_t retained_count_max() const { return retained_max_.load(std::memory_order_relaxed); }

  // Retained messages [MQTT-3.3.1-5..7]. An empty payload deletes.
  // Returns +1 if a message was added, -1 if one was removed, 0 if replaced/no-op.
  int SetRetained(const MessagePtr& message);
  // Retained messages matching `filter` that have not expired at now_ms.
  std::vector<MessagePtr> MatchRetained(std::string_view filter, uint64_t now_unix_ms) const;
  // Drops expired retained messages; returns their topics.
  std::vector<std::string> ExpireRetained(uint64_t now_unix_ms);
  size_t retained_count() const;
  std::vector<MessagePtr> AllRetained() const;
  // A retained message (or, with an empty payload, a deletion) replicated
  // from another node: applied unless the message held for its topic was
  // received later (last writer wins by received_at_ms; on a tie the
  // greater payload stays, so a set beats a delete and every node ends the
  // same). Returns true if it was applied.
  bool SetRetainedIfNewer(const MessagePtr& message);

 private:
  struct RemoteMember {
    std::string owner;
    uint32_t tag = 0;
    uint32_t members = 0;
    std::shared_ptr<RouteHook> hook;
  };
  struct SharedGroup {
    std::vector<std::pair<std::string, SubscriptionOptions>> members;
    std::vector<RemoteMember> remote;
    std::unique_ptr<std::atomic<uint32_t>> next = std::make_unique<std::atomic<uint32_t>>(0);
    std::unique_ptr<std::atomic<uint32_t>> next_remote =
        std::make_unique<std::atomic<uint32_t>>(0);
  };

  // Match() without the hook filters, with mu_ held (shared). A shared
  // group without a local member that may take the message picks a remote
  // member into `hooks`, if given.
  void MatchSubscribers(std::string_view topic, const MatchScope& scope,
                        std::vector<RouteTarget>& out, std::vector<HookTarget>* hooks) const;
  // A local member of `g` for a message of `publisher`, added to `out`.
  static bool PickLocal(const SharedGroup& g, std::string_view publisher,
                        std::vector<RouteTarget>& out, size_t first);

  struct HookFilter {
    std::string owner;
    uint32_t tag = 0;
    std::shared_ptr<RouteHook> hook;
    bool announced = false;  // also a route (AddHookFilter)
  };

  mutable std::shared_mutex mu_;
  SubscriptionTrie<SubscriptionOptions> subs_;  // guarded by mu_
  // Keyed by owner + '\x1f' + tag: one entry per (owner, filter, tag).
  SubscriptionTrie<HookFilter> hooks_;                     // guarded by mu_
  // Bulk filters (AddHookFilters) of one owner, with its hook.
  FilterIndex bulk_;                     // guarded by mu_
  std::string bulk_owner_;               // guarded by mu_
  std::shared_ptr<RouteHook> bulk_hook_;  // guarded by mu_
  bool InBulk(std::string_view owner, uint32_t tag) const {
    return tag < FilterIndex::kMaxTags && (bulk_owner_.empty() || bulk_owner_ == owner);
  }
  SubscriptionTrie<std::shared_ptr<SharedGroup>> shared_;  // by group name; guarded by mu_
  size_t shared_count_ = 0;                                // guarded by mu_
  // Subscribers per route, in filter order, for listing routes page by
  // page; kept beside the tries on every (un)subscribe. Guarded by mu_.
  std::map<std::string, size_t, std::less<>> routes_;
  // Count one subscriber more or less on `route`; with mu_ held. Return the
  // event to report, if any (seq 0 when nobody watches).
  std::optional<RouteEvent> AddRoute(std::string_view route, uint32_t shared_members = 0);
  std::optional<RouteEvent> RemoveRoute(std::string_view route, uint32_t shared_members = 0);
  // Tells the observer, if there is one; called without mu_.
  static void Notify(const std::shared_ptr<RouteObserver>& observer,
                     const std::optional<RouteEvent>& event);
  std::shared_ptr<RouteObserver> observer_;  // guarded by mu_
  uint64_t route_seq_ = 0;                   // guarded by mu_

  // Raises the high-water marks; called with mu_ held.
  void RaiseSubscriptionMaxima();

  std::atomic<size_t> subscriptions_max_{0};
  std::atomic<size_t> routes_max_{0};
  std::atomic<size_t> retained_max_{0};

  mutable std::mutex retained_mu_;
  RetainedTrie<MessagePtr> retained_;  // guarded by retained_mu_
};

}  // namespace ferry::core
