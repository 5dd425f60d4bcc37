// SubscriptionTrie: topic filters -> subscribers, matched against topic names.
//
// A topic filter is split into levels at '/', and each level is one edge of a
// tree. A node holds its literal children in a hash map keyed by the level,
// plus two dedicated slots for the wildcard children '+' and '#', so matching
// never has to look them up by string. A node that ends at least one filter
// holds that filter's subscribers (client id -> V) and the filter text itself.
//
// Worked example. After
//     Insert("#",                    "c1", ...)
//     Insert("sport/#",              "c2", ...)
//     Insert("sport/tennis/+",       "c1", ...)
//     Insert("sport/tennis/player1", "c3", ...)
// the trie is
//     root
//      |-- [#]                       {c1}  "#"
//      `-- sport
//           |-- [#]                  {c2}  "sport/#"
//           `-- tennis
//                |-- [+]             {c1}  "sport/tennis/+"
//                `-- player1         {c3}  "sport/tennis/player1"
//
// Match("sport/tennis/player1") walks the topic name one level at a time with
// a small stack of (node, position in the name) cursors:
//     root    + "sport"    root's [#] matches the rest: report c1 "#";
//                          follow the literal child "sport".
//     sport   + "tennis"   sport's [#]: report c2 "sport/#"; follow "tennis".
//     tennis  + "player1"  follow [+] and the literal child "player1".
//     player1, name ends   report c3 "sport/tennis/player1".
//     [+],     name ends   report c1 "sport/tennis/+".
// c1 is reported twice, once per matching filter; the caller decides how
// overlapping subscriptions are delivered (MQTT 5.0 section 4.7.1, 3.3.4).
//
// Match("sport") ends at node sport, which holds no subscribers itself, but
// its [#] child does: "sport/#" matches "sport" because '#' also matches the
// parent level. Match("$SYS/broker") finds nothing: at the root, a level
// starting with '$' is not matched by the [#] or [+] slots [MQTT-4.7.2-1], and
// there is no literal "$SYS" child.
//
// Cost: Match visits only nodes that lie on a matching filter's path, with one
// hash lookup per visited node and level, and does not allocate unless the
// filters are deeper than the cursor stack's inline capacity. Insert and Erase
// touch one path; Erase removes the nodes it leaves empty.
//
// Deep trees (a filter may have 32k levels) are walked and destroyed with
// explicit stacks, never by recursion, so no input can exhaust the C++ stack.
//
// Thread safety: none. The router serialises access; a const SubscriptionTrie
// may be read by several threads at once only if nobody writes to it.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ferry::core {

// Helpers shared by SubscriptionTrie and RetainedTrie.
namespace trie_internal {

inline constexpr size_t kEnd = std::string_view::npos;

// Returns the level that starts at *pos and moves *pos to the start of the
// next level, or to kEnd after the last one ("a/" has levels "a" and "").
inline std::string_view NextLevel(std::string_view s, size_t* pos) {
  const size_t start = *pos;
  const size_t slash = s.find('/', start);
  if (slash == std::string_view::npos) {
    *pos = kEnd;
    return s.substr(start);
  }
  *pos = slash + 1;
  return s.substr(start, slash - start);
}

inline bool StartsWithDollar(std::string_view level) {
  return !level.empty() && level.front() == '$';
}

// Lets an unordered_map<std::string, ...> be searched with a string_view
// without building a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

template <typename Node>
using ChildMap =
    std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>>;

// A LIFO stack that keeps its first N elements inline and spills to the heap
// only beyond that. T must be default-constructible and cheap to copy.
template <typename T, size_t N>
class SmallStack {
 public:
  void Push(const T& v) {
    if (size_ < N) {
      inline_[size_] = v;
    } else {
      spill_.push_back(v);
    }
    ++size_;
  }
  // REQUIRES: !empty().
  T Pop() {
    --size_;
    if (size_ < N) return inline_[size_];
    T v = spill_.back();
    spill_.pop_back();
    return v;
  }
  bool empty() const { return size_ == 0; }

 private:
  std::array<T, N> inline_{};
  std::vector<T> spill_;
  size_t size_ = 0;
};

// Frees every descendant of `root` without recursing: a node's children are
// moved out before the node itself is destroyed, so each destructor runs on
// a node without children. Node provides ReleaseChildren(vector*).
template <typename Node>
void DestroyDescendants(Node& root) {
  std::vector<std::unique_ptr<Node>> doomed;
  root.ReleaseChildren(&doomed);
  while (!doomed.empty()) {
    std::unique_ptr<Node> node = std::move(doomed.back());
    doomed.pop_back();
    node->ReleaseChildren(&doomed);
  }
}

}  // namespace trie_internal

template <typename V>
class SubscriptionTrie {
 public:
  SubscriptionTrie() = default;
  ~SubscriptionTrie() { Clear(); }
  SubscriptionTrie(const SubscriptionTrie&) = delete;
  SubscriptionTrie& operator=(const SubscriptionTrie&) = delete;
  SubscriptionTrie(SubscriptionTrie&& other) { *this = std::move(other); }
  SubscriptionTrie& operator=(SubscriptionTrie&& other) {
    if (this != &other) {
      Clear();
      root_ = std::move(other.root_);
      size_ = std::exchange(other.size_, 0);
      node_count_ = std::exchange(other.node_count_, 1);
      other.root_ = Node();
    }
    return *this;
  }

  // Adds, or replaces the value of, the subscription of `subscriber` to
  // `filter`. Returns true if it was new.
  // REQUIRES: filter is a valid topic filter (ValidateTopicFilter), not a
  // $share form (pass the filter part of ParseSharedFilter's result).
  bool Insert(std::string_view filter, std::string_view subscriber, V value) {
    Node* node = &root_;
    size_t pos = 0;
    while (pos != trie_internal::kEnd) {
      node = ChildOrCreate(*node, trie_internal::NextLevel(filter, &pos));
    }
    auto it = node->subscribers.find(subscriber);
    if (it != node->subscribers.end()) {
      it->second = std::move(value);
      return false;
    }
    if (node->subscribers.empty()) node->filter.assign(filter);
    node->subscribers.emplace(std::string(subscriber), std::move(value));
    ++size_;
    return true;
  }

  // Removes the subscription of `subscriber` to `filter`, and every node
  // that leaves empty. Returns true if it existed. The arguments may be
  // views of the trie's own strings, such as those a Match or ForEach
  // callback received (they stay valid until their subscription is erased).
  bool Erase(std::string_view filter, std::string_view subscriber) {
    trie_internal::SmallStack<Step, 32> path;
    Node* node = &root_;
    size_t pos = 0;
    while (pos != trie_internal::kEnd) {
      const std::string_view level = trie_internal::NextLevel(filter, &pos);
      Step step{node, node->children.end()};
      Node* child = nullptr;
      if (level == "+") {
        child = node->plus.get();
      } else if (level == "#") {
        child = node->hash.get();
      } else if ((step.it = node->children.find(level)) != node->children.end()) {
        child = step.it->second.get();
      }
      if (child == nullptr) return false;
      path.Push(step);
      node = child;
    }
    auto it = node->subscribers.find(subscriber);
    if (it == node->subscribers.end()) return false;
    node->subscribers.erase(it);
    --size_;
    if (node->subscribers.empty()) std::string().swap(node->filter);
    // From here on only the recorded pointers and iterators are used, never
    // `filter` or `subscriber`, which may have pointed at what was freed.
    while (!path.empty() && node->Empty()) {
      const Step step = path.Pop();
      RemoveChild(step, node);
      node = step.parent;
    }
    return true;
  }

  // The value of `subscriber`'s subscription to `filter`, or nullptr. The
  // pointer is valid until the subscription is erased or the trie destroyed.
  const V* Find(std::string_view filter, std::string_view subscriber) const {
    const Node* node = &root_;
    size_t pos = 0;
    while (node != nullptr && pos != trie_internal::kEnd) {
      node = Child(*node, trie_internal::NextLevel(filter, &pos));
    }
    if (node == nullptr) return nullptr;
    auto it = node->subscribers.find(subscriber);
    return it == node->subscribers.end() ? nullptr : &it->second;
  }
  V* Find(std::string_view filter, std::string_view subscriber) {
    return const_cast<V*>(std::as_const(*this).Find(filter, subscriber));
  }

  // Calls fn(std::string_view subscriber, const V& value, std::string_view
  // filter) once for every subscription whose filter matches the topic name
  // `topic`: once per matching filter, so a subscriber with overlapping
  // subscriptions is reported once for each. Wildcards in the first level do
  // not match a name starting with '$' [MQTT-4.7.2-1]; "a/#" matches "a".
  // The views are valid during the call. fn must not modify the trie.
  // Order of calls is unspecified.
  template <typename Fn>
  void Match(std::string_view topic, Fn&& fn) const {
    trie_internal::SmallStack<Cursor, 32> stack;
    stack.Push(Cursor{&root_, 0});
    while (!stack.empty()) {
      const Cursor c = stack.Pop();
      if (c.pos == trie_internal::kEnd) {
        // The name is used up here: this node's own filters match, and so does
        // "<this>/#", since '#' also matches the parent level.
        Report(*c.node, fn);
        if (c.node->hash) Report(*c.node->hash, fn);
        continue;
      }
      size_t next = c.pos;
      const std::string_view level = trie_internal::NextLevel(topic, &next);
      // [MQTT-4.7.2-1] "#" and "+/..." must not match "$SYS/...".
      const bool shielded = c.node == &root_ && trie_internal::StartsWithDollar(level);
      if (!shielded) {
        if (c.node->hash) Report(*c.node->hash, fn);
        if (c.node->plus) stack.Push(Cursor{c.node->plus.get(), next});
      }
      auto it = c.node->children.find(level);
      if (it != c.node->children.end()) stack.Push(Cursor{it->second.get(), next});
    }
  }

  // Calls fn(std::string_view filter, std::string_view subscriber, const V&
  // value) for every subscription, in unspecified order. fn must not modify
  // the trie.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    std::vector<const Node*> stack{&root_};
    while (!stack.empty()) {
      const Node* node = stack.back();
      stack.pop_back();
      for (const auto& [subscriber, value] : node->subscribers) {
        fn(std::string_view(node->filter), std::string_view(subscriber), value);
      }
      if (node->plus) stack.push_back(node->plus.get());
      if (node->hash) stack.push_back(node->hash.get());
      for (const auto& [level, child] : node->children) stack.push_back(child.get());
    }
  }

  // Removes every subscription.
  void Clear() {
    trie_internal::DestroyDescendants(root_);
    root_.subscribers.clear();
    size_ = 0;
    node_count_ = 1;
  }

  // Number of (filter, subscriber) pairs.
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Number of trie nodes, the root included (1 when empty). For memory
  // metrics and for tests that check Erase prunes.
  size_t node_count() const { return node_count_; }

 private:
  struct Node {
    trie_internal::ChildMap<Node> children;  // literal levels
    std::unique_ptr<Node> plus;              // the '+' level
    std::unique_ptr<Node> hash;              // the '#' level
    std::map<std::string, V, std::less<>> subscribers;
    std::string filter;  // the full filter ending here; empty without subscribers

    bool Empty() const { return subscribers.empty() && !plus && !hash && children.empty(); }
    void ReleaseChildren(std::vector<std::unique_ptr<Node>>* out) {
      if (plus) out->push_back(std::move(plus));
      if (hash) out->push_back(std::move(hash));
      for (auto& [level, child] : children) out->push_back(std::move(child));
      children.clear();
    }
  };

  struct Cursor {
    const Node* node;
    size_t pos;  // where the next level of the topic name starts, or kEnd
  };

  // One edge of the path Erase walked: the parent and, for a literal level,
  // its entry in the parent's map (children.end() for '+' and '#').
  struct Step {
    Node* parent;
    typename trie_internal::ChildMap<Node>::iterator it;
  };

  static const Node* Child(const Node& node, std::string_view level) {
    if (level == "+") return node.plus.get();
    if (level == "#") return node.hash.get();
    auto it = node.children.find(level);
    return it == node.children.end() ? nullptr : it->second.get();
  }

  Node* ChildOrCreate(Node& node, std::string_view level) {
    std::unique_ptr<Node>* slot;
    if (level == "+") {
      slot = &node.plus;
    } else if (level == "#") {
      slot = &node.hash;
    } else {
      auto it = node.children.find(level);
      if (it == node.children.end()) it = node.children.emplace(std::string(level), nullptr).first;
      slot = &it->second;
    }
    if (!*slot) {
      *slot = std::make_unique<Node>();
      ++node_count_;
    }
    return slot->get();
  }

  void RemoveChild(const Step& step, const Node* child) {
    Node& parent = *step.parent;
    if (parent.plus.get() == child) {
      parent.plus.reset();
    } else if (parent.hash.get() == child) {
      parent.hash.reset();
    } else {
      parent.children.erase(step.it);
    }
    --node_count_;
  }

  template <typename Fn>
  static void Report(const Node& node, Fn& fn) {
    for (const auto& [subscriber, value] : node.subscribers) {
      fn(std::string_view(subscriber), value, std::string_view(node.filter));
    }
  }

  Node root_;
  size_t size_ = 0;
  size_t node_count_ = 1;
};

}  // namespace ferry::core
