// RetainedTrie: topic names -> retained values, matched against a topic filter.
//
// This is the reverse of SubscriptionTrie. The trie stores topic names (no
// wildcards), one level per edge, and the query is a topic filter: when a
// SUBSCRIBE arrives, every stored retained message whose topic name the new
// filter matches must be found (MQTT 5.0 section 3.3.1.3). The walk follows
// the filter: a literal level is one hash lookup, '+' fans out to every child
// of the current node, '#' reports the whole subtree. A filter without
// wildcards therefore costs one lookup per level, independent of how many
// retained messages are stored.
//
// Each node that ends a stored topic name holds an Entry with the full topic
// name and the value, so a match reports the name without rebuilding it from
// the levels walked.
//
// Worked example. After Set("sport/tennis/p1"), Set("sport/tennis/p2"),
// Set("sport"), Set("$SYS/uptime"), the trie is
//     root
//      |-- sport                 "sport"
//      |    `-- tennis
//      |         |-- p1          "sport/tennis/p1"
//      |         `-- p2          "sport/tennis/p2"
//      `-- $SYS
//           `-- uptime           "$SYS/uptime"
//
//   Match("sport/tennis/p1")   lookups sport, tennis, p1 -> "sport/tennis/p1"
//   Match("sport/+/p2")        sport; '+' fans out to tennis; p2 ->
//                              "sport/tennis/p2"
//   Match("sport/#")           node sport itself ('#' matches the parent
//                              level) and its subtree -> "sport",
//                              "sport/tennis/p1", "sport/tennis/p2"
//   Match("#"), Match("+/uptime")
//                              skip root children starting with '$'
//                              [MQTT-4.7.2-1]: "$SYS/uptime" is not reported
//   Match("$SYS/#")            -> "$SYS/uptime"
//
// Erase and EraseIf remove the nodes they leave empty, so '#' and '+' walks
// only visit nodes that lead to stored names. Deep trees (a topic name may
// have 65535 levels) are walked and destroyed with explicit stacks, never by
// recursion.
//
// Thread safety: none. The retained store serialises access; a const
// RetainedTrie may be read by several threads at once only if nobody writes.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/subscription_trie.h"  // trie_internal helpers

namespace ferry::core {

template <typename V>
class RetainedTrie {
 public:
  RetainedTrie() = default;
  ~RetainedTrie() { Clear(); }
  RetainedTrie(const RetainedTrie&) = delete;
  RetainedTrie& operator=(const RetainedTrie&) = delete;
  RetainedTrie(RetainedTrie&& other) { *this = std::move(other); }
  RetainedTrie& operator=(RetainedTrie&& other) {
    if (this != &other) {
      Clear();
      root_ = std::move(other.root_);
      size_ = std::exchange(other.size_, 0);
      node_count_ = std::exchange(other.node_count_, 1);
      other.root_ = Node();
    }
    return *this;
  }

  // Stores (or replaces) the value for the topic name `topic`. Returns true
  // if it was new. REQUIRES: topic is a valid topic name (ValidateTopicName).
  bool Set(std::string_view topic, V value) {
    Node* node = &root_;
    size_t pos = 0;
    while (pos != trie_internal::kEnd) {
      node = ChildOrCreate(*node, trie_internal::NextLevel(topic, &pos));
    }
    if (node->entry) {
      node->entry->value = std::move(value);
      return false;
    }
    node->entry = std::make_unique<Entry>(Entry{std::string(topic), std::move(value)});
    ++size_;
    return true;
  }

  // Removes the value stored for `topic`, and every node that leaves empty.
  // Returns true if there was one. `topic` may point into the trie.
  bool Erase(std::string_view topic) {
    trie_internal::SmallStack<Step, 32> path;
    Node* node = &root_;
    size_t pos = 0;
    while (pos != trie_internal::kEnd) {
      auto it = node->children.find(trie_internal::NextLevel(topic, &pos));
      if (it == node->children.end()) return false;
      path.Push(Step{node, it});
      node = it->second.get();
    }
    if (!node->entry) return false;
    node->entry.reset();
    --size_;
    // Only the recorded iterators are used from here on, never `topic`.
    while (!path.empty() && node->Empty()) {
      const Step step = path.Pop();
      step.parent->children.erase(step.it);
      --node_count_;
      node = step.parent;
    }
    return true;
  }

  // The value stored for `topic`, or nullptr. The pointer is valid until the
  // entry is replaced or erased, or the trie destroyed.
  const V* Find(std::string_view topic) const {
    const Node* node = &root_;
    size_t pos = 0;
    while (pos != trie_internal::kEnd) {
      auto it = node->children.find(trie_internal::NextLevel(topic, &pos));
      if (it == node->children.end()) return nullptr;
      node = it->second.get();
    }
    return node->entry ? &node->entry->value : nullptr;
  }

  // Calls fn(std::string_view topic, const V& value) for every stored topic
  // name that the topic filter `filter` matches, in unspecified order. "#"
  // and "+/..." do not match names starting with '$' [MQTT-4.7.2-1]; "a/#"
  // matches "a". fn must not modify the trie.
  // REQUIRES: filter is a valid topic filter; with an invalid one the result
  // is unspecified but safe.
  template <typename Fn>
  void Match(std::string_view filter, Fn&& fn) const {
    trie_internal::SmallStack<Cursor, 32> stack;
    stack.Push(Cursor{&root_, 0});
    while (!stack.empty()) {
      const Cursor c = stack.Pop();
      if (c.pos == trie_internal::kEnd) {
        ReportEntry(*c.node, fn);
        continue;
      }
      size_t next = c.pos;
      const std::string_view level = trie_internal::NextLevel(filter, &next);
      const bool at_root = c.node == &root_;
      if (level == "#") {
        // '#' matches the parent level too, so "a/#" reports "a" itself.
        ReportSubtree(*c.node, /*skip_dollar_children=*/at_root, fn);
      } else if (level == "+") {
        for (const auto& [key, child] : c.node->children) {
          if (at_root && trie_internal::StartsWithDollar(key)) continue;  // [MQTT-4.7.2-1]
          stack.Push(Cursor{child.get(), next});
        }
      } else {
        auto it = c.node->children.find(level);
        if (it != c.node->children.end()) stack.Push(Cursor{it->second.get(), next});
      }
    }
  }

  // Calls fn(std::string_view topic, const V& value) for every entry, in
  // unspecified order. fn must not modify the trie.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    ReportSubtree(root_, /*skip_dollar_children=*/false, fn);
  }

  // Removes every entry for which pred(std::string_view topic, const V&
  // value) returns true, pruning nodes left empty; returns how many were
  // removed. pred must not modify the trie.
  template <typename Pred>
  size_t EraseIf(Pred&& pred) {
    size_t removed = 0;
    // Depth-first, post-order: a frame's iterator points at the child being
    // visited, and a child is unlinked once its own subtree is done.
    std::vector<Step> stack{Step{&root_, root_.children.begin()}};
    while (!stack.empty()) {
      Step& top = stack.back();
      if (top.it == top.parent->children.end()) {
        stack.pop_back();
        if (stack.empty()) break;
        Step& up = stack.back();
        if (up.it->second->Empty()) {
          up.it = up.parent->children.erase(up.it);
          --node_count_;
        } else {
          ++up.it;
        }
        continue;
      }
      Node* child = top.it->second.get();
      if (child->entry && pred(std::string_view(child->entry->topic),
                               static_cast<const V&>(child->entry->value))) {
        child->entry.reset();
        --size_;
        ++removed;
      }
      stack.push_back(Step{child, child->children.begin()});
    }
    return removed;
  }

  // Removes every entry.
  void Clear() {
    trie_internal::DestroyDescendants(root_);
    root_.entry.reset();
    size_ = 0;
    node_count_ = 1;
  }

  // Number of stored topic names.
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Number of trie nodes, the root included (1 when empty). For memory
  // metrics and for tests that check pruning.
  size_t node_count() const { return node_count_; }

 private:
  struct Entry {
    std::string topic;  // the full topic name
    V value;
  };

  struct Node {
    trie_internal::ChildMap<Node> children;
    std::unique_ptr<Entry> entry;  // set when a topic name ends here

    bool Empty() const { return !entry && children.empty(); }
    void ReleaseChildren(std::vector<std::unique_ptr<Node>>* out) {
      for (auto& [level, child] : children) out->push_back(std::move(child));
      children.clear();
    }
  };

  struct Cursor {
    const Node* node;
    size_t pos;  // where the next level of the filter starts, or kEnd
  };

  // An edge: the parent and the child's entry in the parent's map.
  struct Step {
    Node* parent;
    typename trie_internal::ChildMap<Node>::iterator it;
  };

  Node* ChildOrCreate(Node& node, std::string_view level) {
    auto it = node.children.find(level);
    if (it == node.children.end()) {
      it = node.children.emplace(std::string(level), std::make_unique<Node>()).first;
      ++node_count_;
    }
    return it->second.get();
  }

  template <typename Fn>
  static void ReportEntry(const Node& node, Fn& fn) {
    if (node.entry) {
      fn(std::string_view(node.entry->topic), static_cast<const V&>(node.entry->value));
    }
  }

  // Reports `top`'s entry and every entry below it. With
  // skip_dollar_children, `top`'s children whose level starts with '$' are
  // left out (used for "#" at the root [MQTT-4.7.2-1]).
  template <typename Fn>
  static void ReportSubtree(const Node& top, bool skip_dollar_children, Fn& fn) {
    ReportEntry(top, fn);
    trie_internal::SmallStack<const Node*, 32> stack;
    for (const auto& [key, child] : top.children) {
      if (skip_dollar_children && trie_internal::StartsWithDollar(key)) continue;
      stack.Push(child.get());
    }
    while (!stack.empty()) {
      const Node* node = stack.Pop();
      ReportEntry(*node, fn);
      for (const auto& [key, child] : node->children) stack.Push(child.get());
    }
  }

  Node root_;
  size_t size_ = 0;
  size_t node_count_ = 1;
};

}  // namespace ferry::core
