#include "cluster/route_set.h"

namespace ferry::cluster {

size_t RouteSet::BlockFor(std::string_view s) const {
  size_t lo = 0, hi = blocks_.size();
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (blocks_[mid].back() < s) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo == blocks_.size() ? blocks_.size() - 1 : lo;
}

std::optional<uint32_t> RouteSet::Find(std::string_view route) const {
  if (IsShared(route)) {
    auto it = shared_.find(route);
    if (it == shared_.end()) return std::nullopt;
    return it->second;
  }
  if (blocks_.empty()) return std::nullopt;
  const auto& block = blocks_[BlockFor(route)];
  return std::binary_search(block.begin(), block.end(), route, std::less<>())
             ? std::optional<uint32_t>(0)
             : std::nullopt;
}

bool RouteSet::Set(std::string_view route, uint32_t members) {
  if (IsShared(route)) {
    auto it = shared_.find(route);
    if (it != shared_.end()) {
      it->second = members;
      return false;
    }
    shared_.emplace(std::string(route), members);
    return true;
  }
  if (blocks_.empty()) {
    blocks_.emplace_back().emplace_back(route);
    ++plain_size_;
    return true;
  }
  const size_t b = BlockFor(route);
  auto& block = blocks_[b];
  auto pos = std::lower_bound(block.begin(), block.end(), route, std::less<>());
  if (pos != block.end() && *pos == route) return false;
  block.emplace(pos, route);
  ++plain_size_;
  if (block.size() > 2 * kBlock) {
    std::vector<std::string> upper(std::make_move_iterator(block.begin() + kBlock),
                                   std::make_move_iterator(block.end()));
    block.resize(kBlock);
    block.shrink_to_fit();
    blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(b) + 1, std::move(upper));
  }
  return true;
}

bool RouteSet::Erase(std::string_view route) {
  if (IsShared(route)) {
    auto it = shared_.find(route);
    if (it == shared_.end()) return false;
    shared_.erase(it);
    return true;
  }
  if (blocks_.empty()) return false;
  const size_t b = BlockFor(route);
  auto& block = blocks_[b];
  auto pos = std::lower_bound(block.begin(), block.end(), route, std::less<>());
  if (pos == block.end() || *pos != route) return false;
  block.erase(pos);
  --plain_size_;
  if (block.empty()) blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(b));
  return true;
}

}  // namespace ferry::cluster
