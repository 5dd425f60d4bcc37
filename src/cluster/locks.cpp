#include "cluster/locks.h"

#include <algorithm>
#include <iterator>

namespace ferry::cluster {

const char* LockTypeName(LockType type) {
  switch (type) {
    case LockType::kLocal: return "local";
    case LockType::kLeader: return "leader";
    case LockType::kQuorum: return "quorum";
    case LockType::kAll: return "all";
  }
  return "?";
}

Result<LockType> ParseLockType(std::string_view name) {
  for (LockType t : {LockType::kLocal, LockType::kLeader, LockType::kQuorum, LockType::kAll}) {
    if (name == LockTypeName(t)) return t;
  }
  return Status::InvalidArgument("'" + std::string(name) +
                                 "': expected local, leader, quorum or all");
}

const LockTable::Lock& LockTable::Acquire(const std::string& resource, const std::string& holder,
                                          uint64_t now_ms, uint64_t lease_ms) {
  auto it = locks_.find(resource);
  if (it != locks_.end() && it->second.holder != holder && it->second.expires_ms > now_ms) {
    return it->second;  // held by another
  }
  if (it == locks_.end()) {
    it = locks_.emplace(resource, Lock{resource, holder, 0, 0}).first;
  }
  Lock& l = it->second;
  if (l.holder != holder || l.token == 0) {
    l.holder = holder;
    last_token_ = std::max(last_token_ + 1, wall_us_());
    l.token = last_token_;
  }
  l.expires_ms = now_ms + lease_ms;
  return l;
}

bool LockTable::Release(const std::string& resource, std::string_view holder) {
  auto it = locks_.find(resource);
  if (it == locks_.end() || it->second.holder != holder) return false;
  locks_.erase(it);
  return true;
}

size_t LockTable::DropHolder(std::string_view holder) {
  return std::erase_if(locks_, [&](const auto& kv) { return kv.second.holder == holder; });
}

size_t LockTable::Expire(uint64_t now_ms) {
  return std::erase_if(locks_, [&](const auto& kv) { return kv.second.expires_ms <= now_ms; });
}

std::vector<LockTable::Lock> LockTable::List() const {
  std::vector<Lock> out;
  out.reserve(locks_.size());
  for (const auto& [r, l] : locks_) out.push_back(l);
  return out;
}

}  // namespace ferry::cluster
