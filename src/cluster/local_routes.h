// This node's routes as the stream it sends every peer: the sending end of
// remote_routes.h.
//
// The router reports route events (core/route_events.h) from the worker
// threads that subscribe and unsubscribe; they reach the cluster thread in
// any order, each with the router's sequence number. LocalRoutes keeps, per
// route, the last event applied, so that a late event (lower seq) of a route
// changes nothing, and gathers the changes since the last delta. Every delta
// takes the stream's next sequence number; a snapshot is every present route
// as of the last delta, so a peer that gets a snapshot at seq S follows on
// with delta S + 1.
//
// Example: snapshot {a/b}, then events (5, a/+, present), (7, a/b, gone),
// (6, a/b, present) arrive: a/b stays gone (6 < 7), the next delta is
// seq 1 = {+a/+, -a/b}, and a snapshot after it lists {a/+} at seq 1.
//
// A removed route is remembered for two housekeeping passes (PruneRemoved),
// long enough for an event delayed between threads to arrive and be found
// older, without keeping every route ever seen.
//
// Thread: owned by the cluster thread; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cluster/remote_routes.h"
#include "core/route_events.h"

namespace ferry::cluster {

class LocalRoutes {
 public:
  LocalRoutes(std::string origin, uint64_t incarnation);

  // Replaces everything with the router's snapshot (Broker::WatchRoutes).
  // What differs from the routes known before goes into the next delta.
  void Reset(const std::vector<core::RouteEvent>& snapshot);
  // Applies one event unless the route already has a newer one.
  void Apply(const core::RouteEvent& event);

  bool has_delta() const { return !pending_.empty(); }
  // The changes since the last delta, as the next one, or as many of them
  // as fit in `max_bytes` of payload (at least one; the rest stay for the
  // deltas after it: each change stands alone, so any split is consistent).
  // REQUIRES: has_delta().
  RouteUpdate TakeDelta(size_t max_bytes = SIZE_MAX);
  // Every present route as of the last delta, in chunks of at most `chunk`
  // entries and, past their first entry, `max_bytes` of payload (one empty
  // chunk when there is none).
  // REQUIRES: !has_delta() (take the delta first); chunk > 0.
  std::vector<RouteUpdate> Snapshot(size_t chunk, size_t max_bytes = SIZE_MAX) const;
  // Every present route, in order, with its latest state (pending changes
  // included).
  std::vector<RouteEntry> Present() const;
  // Forgets routes removed before the previous call.
  void PruneRemoved();

  size_t size() const { return present_; }
  uint64_t seq() const { return seq_; }

 private:
  struct Record {
    uint64_t event_seq = 0;
    bool present = false;
    uint32_t shared_members = 0;
    bool old = false;  // removed, and seen by one PruneRemoved already
  };
  void Set(const std::string& route, uint64_t event_seq, bool present, uint32_t members);

  std::string origin_;
  uint64_t incarnation_;
  uint64_t seq_ = 0;
  size_t present_ = 0;
  std::map<std::string, Record, std::less<>> routes_;
  std::map<std::string, RouteEntry, std::less<>> pending_;
  // Routes removed since the last PruneRemoved, and those it marked old.
  std::vector<std::string> removed_;
  std::vector<std::string> aging_;
};

}  // namespace ferry::cluster
