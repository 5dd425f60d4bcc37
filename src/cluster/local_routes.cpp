#include "cluster/local_routes.h"

#include <cassert>
#include <set>
#include <utility>

namespace ferry::cluster {
namespace {

// An update's payload size (EncodeRouteUpdate): flags, origin,
// incarnation, seq, count, then per entry kind, route and members.
size_t HeaderSize(const std::string& origin) { return 1 + 2 + origin.size() + 8 + 8 + 4; }
size_t EntrySize(const std::string& route) { return 1 + 2 + route.size() + 4; }

}  // namespace

LocalRoutes::LocalRoutes(std::string origin, uint64_t incarnation)
    : origin_(std::move(origin)), incarnation_(incarnation) {}

void LocalRoutes::Set(const std::string& route, uint64_t event_seq, bool present,
                      uint32_t members) {
  Record& r = routes_[route];
  const bool changed = r.present != present || (present && r.shared_members != members);
  if (r.present != present) present_ += present ? 1 : -1;
  r.event_seq = event_seq;
  r.present = present;
  r.shared_members = present ? members : 0;
  r.old = false;
  if (!present) removed_.push_back(route);
  if (changed) pending_[route] = RouteEntry{route, present, r.shared_members};
}

void LocalRoutes::Reset(const std::vector<core::RouteEvent>& snapshot) {
  std::set<std::string, std::less<>> seen;
  for (const core::RouteEvent& e : snapshot) {
    Set(e.route, e.seq, e.present, e.shared_members);
    seen.insert(e.route);
  }
  for (auto& [route, r] : routes_) {
    if (r.present && !seen.contains(route)) Set(route, r.event_seq, false, 0);
  }
}

void LocalRoutes::Apply(const core::RouteEvent& e) {
  auto it = routes_.find(e.route);
  if (it != routes_.end() && it->second.event_seq > e.seq) return;
  Set(e.route, e.seq, e.present, e.shared_members);
}

RouteUpdate LocalRoutes::TakeDelta(size_t max_bytes) {
  assert(has_delta());
  RouteUpdate u;
  u.origin = origin_;
  u.incarnation = incarnation_;
  u.seq = ++seq_;
  size_t bytes = HeaderSize(origin_);
  auto it = pending_.begin();
  while (it != pending_.end()) {
    bytes += EntrySize(it->first);
    if (!u.entries.empty() && bytes > max_bytes) break;
    u.entries.push_back(std::move(it->second));
    it = pending_.erase(it);
  }
  return u;
}

std::vector<RouteUpdate> LocalRoutes::Snapshot(size_t chunk, size_t max_bytes) const {
  assert(!has_delta() && chunk > 0);
  std::vector<RouteUpdate> out;
  size_t bytes = 0;
  auto start = [&] {
    RouteUpdate& u = out.emplace_back();
    u.origin = origin_;
    u.incarnation = incarnation_;
    u.seq = seq_;
    u.snapshot = true;
    u.more = true;
    bytes = HeaderSize(origin_);
  };
  start();
  for (const auto& [route, r] : routes_) {
    if (!r.present) continue;
    const size_t size = EntrySize(route);
    const size_t n = out.back().entries.size();
    if (n == chunk || (n > 0 && bytes + size > max_bytes)) start();
    bytes += size;
    out.back().entries.push_back(RouteEntry{route, true, r.shared_members});
  }
  out.back().more = false;
  return out;
}

std::vector<RouteEntry> LocalRoutes::Present() const {
  std::vector<RouteEntry> out;
  out.reserve(present_);
  for (const auto& [route, r] : routes_) {
    if (r.present) out.push_back(RouteEntry{route, true, r.shared_members});
  }
  return out;
}

void LocalRoutes::PruneRemoved() {
  // O(routes removed), not O(routes): a node with a million routes runs
  // this five times a second.
  for (const std::string& route : aging_) {
    auto it = routes_.find(route);
    if (it != routes_.end() && !it->second.present && it->second.old) routes_.erase(it);
  }
  aging_.clear();
  for (std::string& route : removed_) {
    auto it = routes_.find(route);
    if (it == routes_.end() || it->second.present || it->second.old) continue;
    it->second.old = true;
    aging_.push_back(std::move(route));
  }
  removed_.clear();
}

}  // namespace ferry::cluster
