// The routes of one origin as RemoteRoutes keeps them: plain filters in
// sorted blocks of strings (a one-level B-tree: about 40 bytes a short
// filter, half of what a std::map node costs, for a table of a million
// routes), shared groups with their member counts in a map (a few).
//
// Thread: not thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::cluster {

class RouteSet {
 public:
  // A route's shared members (0 for a plain route); nullopt if absent.
  std::optional<uint32_t> Find(std::string_view route) const;
  // Adds `route` or sets its members; true if it was absent. Shared groups
  // ("$share/...") keep `members`; plain routes ignore it.
  bool Set(std::string_view route, uint32_t members);
  // True if it was there.
  bool Erase(std::string_view route);
  size_t size() const { return plain_size_ + shared_.size(); }
  bool empty() const { return size() == 0; }

  // Calls fn(route, members) for every route >= `from`, in order, while fn
  // returns true.
  template <typename Fn>
  void ForEachFrom(std::string_view from, Fn fn) const;
  template <typename Fn>
  void ForEach(Fn fn) const {
    ForEachFrom("", fn);
  }

 private:
  static constexpr size_t kBlock = 256;  // a block splits past twice this
  static bool IsShared(std::string_view route) { return route.starts_with("$share/"); }
  // The block that holds `s` if any block does: the first whose last
  // string is >= s, else the last. REQUIRES: !blocks_.empty().
  size_t BlockFor(std::string_view s) const;

  std::vector<std::vector<std::string>> blocks_;  // each sorted and non-empty, in order
  size_t plain_size_ = 0;
  std::map<std::string, uint32_t, std::less<>> shared_;
};

template <typename Fn>
void RouteSet::ForEachFrom(std::string_view from, Fn fn) const {
  auto shared = shared_.lower_bound(from);
  size_t b = blocks_.empty() ? 0 : BlockFor(from);
  size_t i = 0;
  if (b < blocks_.size()) {
    i = static_cast<size_t>(std::lower_bound(blocks_[b].begin(), blocks_[b].end(), from) -
                            blocks_[b].begin());
  }
  while (true) {
    if (b < blocks_.size() && i == blocks_[b].size()) {
      ++b;
      i = 0;
      continue;
    }
    const bool plain_left = b < blocks_.size();
    const bool shared_left = shared != shared_.end();
    if (!plain_left && !shared_left) return;
    if (plain_left && (!shared_left || blocks_[b][i] < shared->first)) {
      if (!fn(std::string_view(blocks_[b][i]), uint32_t{0})) return;
      ++i;
    } else {
      if (!fn(std::string_view(shared->first), shared->second)) return;
      ++shared;
    }
  }
}

}  // namespace ferry::cluster
