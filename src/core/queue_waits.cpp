#include "core/queue_waits.h"

#include <algorithm>

namespace ferry::core {

void QueueWaits::Start(std::string_view client_id, uint64_t now_ms) {
  if (since_.find(client_id) == since_.end()) since_.emplace(client_id, now_ms);
}

void QueueWaits::Release(std::string_view client_id) {
  auto it = since_.find(client_id);
  if (it != since_.end()) since_.erase(it);
}

std::vector<std::string> QueueWaits::Expired(uint64_t now_ms) {
  std::vector<std::pair<uint64_t, std::string>> due;
  for (auto it = since_.begin(); it != since_.end();) {
    if (it->second + max_wait_ms_ <= now_ms) {
      due.emplace_back(it->second, it->first);
      it = since_.erase(it);
    } else {
      ++it;
    }
  }
  std::stable_sort(due.begin(), due.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> ids;
  ids.reserve(due.size());
  for (auto& [since, id] : due) ids.push_back(std::move(id));
  return ids;
}

std::optional<uint64_t> QueueWaits::NextDeadline() const {
  if (since_.empty()) return std::nullopt;
  uint64_t earliest = since_.begin()->second;
  for (const auto& [id, since] : since_) earliest = std::min(earliest, since);
  return earliest + max_wait_ms_;
}

}  // namespace ferry::core
