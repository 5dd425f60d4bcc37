#include "core/filter_index.h"

#include <algorithm>

#include "core/topic.h"

namespace ferry::core {

size_t FilterIndex::PrefixLength(std::string_view filter) {
  size_t level = 0;  // start of the current level
  while (true) {
    const size_t end = filter.find('/', level);
    const std::string_view name =
        filter.substr(level, end == std::string_view::npos ? std::string_view::npos : end - level);
    if (name == "+" || name == "#") return level == 0 ? 0 : level - 1;
    if (end == std::string_view::npos) return std::string_view::npos;
    level = end + 1;
  }
}

bool FilterIndex::Add(std::string_view filter, uint32_t tag) {
  const uint64_t bit = uint64_t{1} << tag;
  const size_t prefix = PrefixLength(filter);
  uint64_t* tags = nullptr;
  if (prefix == std::string_view::npos) {
    auto it = exact_.find(filter);
    if (it == exact_.end()) it = exact_.emplace(std::string(filter), 0).first;
    tags = &it->second;
  } else {
    auto it = wild_.find(filter.substr(0, prefix));
    if (it == wild_.end()) it = wild_.emplace(std::string(filter.substr(0, prefix)), 0).first;
    auto& list = it->second;
    auto f = std::find_if(list.begin(), list.end(), [&](const auto& e) { return e.first == filter; });
    if (f == list.end()) {
      list.emplace_back(std::string(filter), 0);
      list.shrink_to_fit();
      f = list.end() - 1;
    }
    tags = &f->second;
  }
  if (*tags & bit) return false;
  *tags |= bit;
  ++size_;
  return true;
}

bool FilterIndex::Remove(std::string_view filter, uint32_t tag) {
  const uint64_t bit = uint64_t{1} << tag;
  const size_t prefix = PrefixLength(filter);
  if (prefix == std::string_view::npos) {
    auto it = exact_.find(filter);
    if (it == exact_.end() || !(it->second & bit)) return false;
    if ((it->second &= ~bit) == 0) exact_.erase(it);
  } else {
    auto it = wild_.find(filter.substr(0, prefix));
    if (it == wild_.end()) return false;
    auto& list = it->second;
    auto f = std::find_if(list.begin(), list.end(), [&](const auto& e) { return e.first == filter; });
    if (f == list.end() || !(f->second & bit)) return false;
    if ((f->second &= ~bit) == 0) {
      list.erase(f);
      if (list.empty()) wild_.erase(it);
    }
  }
  --size_;
  return true;
}

uint64_t FilterIndex::Match(std::string_view topic) const {
  uint64_t tags = 0;
  if (auto it = exact_.find(topic); it != exact_.end()) tags |= it->second;
  if (wild_.empty()) return tags;
  // Each prefix of the topic at a level boundary: "", "a", "a/b", ... and
  // the whole name ("a/#" matches "a").
  size_t end = 0;
  bool first = true;
  while (true) {
    if (auto it = wild_.find(topic.substr(0, end)); it != wild_.end()) {
      for (const auto& [filter, t] : it->second) {
        if ((tags | t) != tags && TopicMatches(filter, topic)) tags |= t;
      }
    }
    if (end == topic.size()) break;
    const size_t next = topic.find('/', first ? 0 : end + 1);
    first = false;
    end = next == std::string_view::npos ? topic.size() : next;
  }
  return tags;
}

}  // namespace ferry::core
