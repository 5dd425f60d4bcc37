// Cluster locks: the table of the locks one node granted, and the kinds of
// lock a node can ask for (CLUSTER.md, "Locks").
//
// A node takes a lock on a resource ("client:c1") by asking a set of
// members, each of which grants it from its own LockTable unless another
// node holds it there:
//   local   this node alone (nothing is asked of the others);
//   leader  the coordinator (the oldest running member);
//   quorum  every running member, and a majority of them must grant it: one
//           side of a split can still lock (the data plane is AP);
//   all     every running member must grant it.
// A grant is a lease (15 s), renewed by the holder while it holds the lock
// and dropped when it expires or its holder is declared down. Every grant
// carries a fencing token from a hybrid clock: the granting node's wall clock
// in microseconds, but always larger than every token it gave or saw before
// (so tokens grow across restarts, and a grant made after another one
// anywhere in the cluster carries a larger token as long as the members'
// clocks agree to better than the time between the two). The holder keeps
// the largest token it got, and a node that acts on behalf of a lock
// refuses a request with a token older than one it already served.
//
// Thread: owned by the cluster thread; not thread-safe. Sans-I/O.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ferry::cluster {

enum class LockType : uint8_t { kLocal, kLeader, kQuorum, kAll };

// "local", "leader", "quorum", "all".
const char* LockTypeName(LockType type);
// Errors: InvalidArgument naming the accepted values.
Result<LockType> ParseLockType(std::string_view name);

inline constexpr uint64_t kLockLeaseMs = 15000;

class LockTable {
 public:
  // `wall_us`: the wall clock in microseconds (core::UnixNowUs).
  explicit LockTable(std::function<uint64_t()> wall_us) : wall_us_(std::move(wall_us)) {}

  struct Lock {
    std::string resource;
    std::string holder;
    uint64_t token = 0;
    uint64_t expires_ms = 0;  // in the caller's clock
  };
  // Grants `resource` to `holder` until now_ms + lease_ms, unless another
  // holder has it and its lease has not expired. The holder asking again
  // renews its lease and keeps its token. Returns the lock as it stands:
  // granted if its holder is `holder`.
  const Lock& Acquire(const std::string& resource, const std::string& holder, uint64_t now_ms,
                      uint64_t lease_ms = kLockLeaseMs);
  // The holder of `resource` ("" if none).
  std::string Holder(std::string_view resource) const {
    auto it = locks_.find(resource);
    return it == locks_.end() ? "" : it->second.holder;
  }
  // Frees `resource` if `holder` has it; true if it did.
  bool Release(const std::string& resource, std::string_view holder);
  // Frees every lock of `holder` (its node was declared down); returns how many.
  size_t DropHolder(std::string_view holder);
  // Frees the locks whose lease ran out; returns how many.
  size_t Expire(uint64_t now_ms);
  std::vector<Lock> List() const;
  size_t size() const { return locks_.size(); }
  // A token granted or served elsewhere: the next grant here is larger.
  void Observe(uint64_t token) { last_token_ = std::max(last_token_, token); }

 private:
  std::map<std::string, Lock, std::less<>> locks_;
  std::function<uint64_t()> wall_us_;
  uint64_t last_token_ = 0;
};

}  // namespace ferry::cluster
