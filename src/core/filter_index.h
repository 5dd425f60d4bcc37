// A compact index of many topic filters, each held for a small set of tags
// (0..63): the routes other nodes of a cluster own, filter -> the nodes
// that have it (Router's bulk hook filters).
//
// Why not the subscription trie: a trie keeps a node per level, and the
// routes of a large cluster are mostly unique below their first level
// ("site/<id>/..."), so each costs several nodes (about 1 KB a route).
// Here a filter without wildcards is one hash entry; a filter with them is
// kept under its literal prefix (the levels before the first wildcard), and
// a lookup tries each prefix of the topic name: one hash probe per level,
// then the few filters found there are matched in full. About 100 bytes a
// route.
//
// Thread: not thread-safe; the router guards it with its own lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ferry::core {

class FilterIndex {
 public:
  static constexpr uint32_t kMaxTags = 64;

  // Adds `filter` for `tag`. REQUIRES: a valid filter, tag < kMaxTags.
  // Returns true if it was not there for that tag.
  bool Add(std::string_view filter, uint32_t tag);
  // Returns true if it was there for that tag.
  bool Remove(std::string_view filter, uint32_t tag);
  // The tags whose filters match the topic name `topic`, as a bit mask.
  uint64_t Match(std::string_view topic) const;
  // Filters held, counted once per tag.
  size_t size() const { return size_; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, uint64_t, Hash, std::equal_to<>>;
  // The literal levels of `filter` before its first wildcard level; npos if
  // it has no wildcard.
  static size_t PrefixLength(std::string_view filter);

  Map exact_;  // filter without wildcards -> tags
  // literal prefix -> the wildcard filters under it, with their tags
  std::unordered_map<std::string, std::vector<std::pair<std::string, uint64_t>>, Hash,
                     std::equal_to<>>
      wild_;
  size_t size_ = 0;
};

}  // namespace ferry::core
