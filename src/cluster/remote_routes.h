// The routes other nodes own, as this node learns them from their streams.
//
// Each node owns the routes that point to it and is their only writer
// (CLUSTER.md, "Shape"): it sends a snapshot when a peer first hears from it
// and then deltas, each stamped with its incarnation (random per process
// start) and a sequence number that grows by one per delta. RemoteRoutes
// keeps, per origin, the routes and the last sequence applied, and turns
// every snapshot or delta into what the router must add and remove (route
// hook filters, one tag per origin): a delta that does not follow on from
// the last one applied (a gap, or another incarnation) is refused, and the
// receiver asks the origin for a snapshot instead.
//
// Plain routes are one entry per origin, however many subscribers it has;
// a shared group ("$share/g/f") carries its member count there, so that one
// delivery per group can be chosen across nodes.
//
// Thread: owned by the cluster thread; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/route_set.h"
#include "cluster/wire.h"
#include "core/route_events.h"

namespace ferry::cluster {

// One route of an origin as it travels: the filter and, for a shared group,
// its members on that origin (0: a plain route; absent = removed in a delta).
struct RouteEntry {
  std::string route;
  bool present = true;
  uint32_t shared_members = 0;

  bool operator==(const RouteEntry&) const = default;
};

// A snapshot (all of an origin's routes as of `seq`, possibly in several
// chunks, all but the last with `more`) or a delta (the changes that make
// `seq` from `seq` - 1).
struct RouteUpdate {
  std::string origin;
  uint64_t incarnation = 0;
  uint64_t seq = 0;
  bool snapshot = false;
  bool more = false;  // a snapshot chunk that others follow
  std::vector<RouteEntry> entries;

  bool operator==(const RouteUpdate&) const = default;
};

// Payload of a route update frame, and back. Parse fails (Corruption) on
// anything that does not fit.
std::string EncodeRouteUpdate(const RouteUpdate& update);
Result<RouteUpdate> ParseRouteUpdate(std::span<const uint8_t> payload);

// What the router has to change after an update: filters to register for the
// origin, filters to drop, and shared groups whose member counts changed.
struct RouteChanges {
  std::vector<std::string> added;
  std::vector<std::string> removed;
  std::vector<RouteEntry> shared;  // shared groups, with their new count (0: gone)
};

class RemoteRoutes {
 public:
  enum class Outcome {
    kApplied,
    kStale,        // older than what was applied: ignored
    kNeedSnapshot  // a gap or another incarnation: ask the origin for a snapshot
  };

  // Applies `update`; `changes` receives what the router must do.
  Outcome Apply(const RouteUpdate& update, RouteChanges& changes);
  // Forgets every route of `origin` (it left, or was removed); `changes`
  // receives what to drop.
  void Purge(std::string_view origin, RouteChanges& changes);

  // The routes `origin` has, in order; empty if unknown.
  std::vector<RouteEntry> RoutesOf(std::string_view origin) const;
  // How many routes `origin` has; 0 if unknown.
  size_t count_of(std::string_view origin) const;
  // Where an origin's stream stands, for a reconnect: 0 if unknown.
  uint64_t incarnation_of(std::string_view origin) const;
  uint64_t seq_of(std::string_view origin) const;
  size_t route_count() const;

  // One route of one origin, for listings.
  struct Listed {
    std::string route;
    std::string origin;
    uint32_t shared_members = 0;
    bool operator<(const Listed& o) const {
      return route != o.route ? route < o.route : origin < o.origin;
    }
  };
  // Up to `max` routes that sort after (after_route, after_origin) in
  // (route, origin) order.
  std::vector<Listed> ListAfter(std::string_view after_route, std::string_view after_origin,
                                size_t max) const;
  // Every route whose filter (a shared group's filter part) matches the
  // topic name `topic`, in (route, origin) order. O(routes).
  std::vector<Listed> Matching(std::string_view topic) const;

 private:
  struct Origin {
    uint64_t incarnation = 0;
    uint64_t seq = 0;
    RouteSet routes;
    // A snapshot arriving in chunks, put in place at its last chunk.
    bool receiving = false;
    uint64_t pending_incarnation = 0;
    uint64_t pending_seq = 0;
    std::vector<RouteEntry> pending;
  };
  void FinishSnapshot(Origin& o, RouteChanges& changes);
  static void Set(Origin& o, const RouteEntry& e, RouteChanges& changes);

  std::unordered_map<std::string, Origin> origins_;
  size_t routes_ = 0;
};

}  // namespace ferry::cluster
