// SubscriptionTrie: filters -> subscribers, matched against topic names.
#include "core/subscription_trie.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/topic.h"

namespace ferry::core {
namespace {

// (subscriber, filter) as reported by Match.
using Hit = std::pair<std::string, std::string>;

class SubscriptionTrieTest : public ::testing::Test {
 protected:
  void Sub(std::string_view filter, std::string_view subscriber, int value = 0) {
    trie_.Insert(filter, subscriber, value);
  }

  // Every (subscriber, filter) Match reports for `topic`, sorted.
  std::vector<Hit> Matches(std::string_view topic) const {
    std::vector<Hit> hits;
    trie_.Match(topic, [&](std::string_view subscriber, const int&, std::string_view filter) {
      hits.emplace_back(std::string(subscriber), std::string(filter));
    });
    std::sort(hits.begin(), hits.end());
    return hits;
  }

  // The filters that match `topic`, sorted (for single-subscriber tests).
  std::vector<std::string> MatchingFilters(std::string_view topic) const {
    std::vector<std::string> filters;
    for (auto& [subscriber, filter] : Matches(topic)) filters.push_back(filter);
    return filters;
  }

  SubscriptionTrie<int> trie_;
};

using Filters = std::vector<std::string>;

TEST_F(SubscriptionTrieTest, EmptyTrieMatchesNothing) {
  EXPECT_TRUE(trie_.empty());
  EXPECT_EQ(trie_.size(), 0u);
  EXPECT_EQ(trie_.node_count(), 1u);
  EXPECT_TRUE(Matches("a").empty());
  EXPECT_EQ(trie_.Find("a", "c1"), nullptr);
}

TEST_F(SubscriptionTrieTest, InsertReportsWhetherTheSubscriptionIsNew) {
  EXPECT_TRUE(trie_.Insert("a/b", "c1", 1));
  EXPECT_FALSE(trie_.Insert("a/b", "c1", 2));
  EXPECT_TRUE(trie_.Insert("a/b", "c2", 3));
  EXPECT_EQ(trie_.size(), 2u);
  ASSERT_NE(trie_.Find("a/b", "c1"), nullptr);
  EXPECT_EQ(*trie_.Find("a/b", "c1"), 2);  // replaced
  EXPECT_EQ(*trie_.Find("a/b", "c2"), 3);
}

TEST_F(SubscriptionTrieTest, FindDistinguishesFiltersAndSubscribers) {
  Sub("a/+", "c1", 7);
  EXPECT_EQ(trie_.Find("a/b", "c1"), nullptr);  // a name, not the filter
  EXPECT_EQ(trie_.Find("a", "c1"), nullptr);    // a prefix node
  EXPECT_EQ(trie_.Find("a/+", "c2"), nullptr);
  EXPECT_EQ(trie_.Find("a/#", "c1"), nullptr);
  int* v = trie_.Find("a/+", "c1");
  ASSERT_NE(v, nullptr);
  *v = 8;
  EXPECT_EQ(*std::as_const(trie_).Find("a/+", "c1"), 8);
}

TEST_F(SubscriptionTrieTest, ExactFilterMatchesOnlyItsName) {
  Sub("sport/tennis/player1", "c1");
  EXPECT_EQ(Matches("sport/tennis/player1"), (std::vector<Hit>{{"c1", "sport/tennis/player1"}}));
  EXPECT_TRUE(Matches("sport/tennis").empty());
  EXPECT_TRUE(Matches("sport/tennis/player1/ranking").empty());
  EXPECT_TRUE(Matches("sport/tennis/player2").empty());
}

TEST_F(SubscriptionTrieTest, MultiLevelWildcardMatchesParentAndDescendants) {
  // MQTT 5.0 section 4.7.1.2.
  Sub("sport/tennis/player1/#", "c1");
  EXPECT_EQ(MatchingFilters("sport/tennis/player1"), Filters{"sport/tennis/player1/#"});
  EXPECT_EQ(MatchingFilters("sport/tennis/player1/ranking"), Filters{"sport/tennis/player1/#"});
  EXPECT_EQ(MatchingFilters("sport/tennis/player1/score/wimbledon"),
            Filters{"sport/tennis/player1/#"});
  EXPECT_TRUE(Matches("sport/tennis").empty());
}

TEST_F(SubscriptionTrieTest, SportHashMatchesSport) {
  Sub("sport/#", "c1");
  EXPECT_EQ(MatchingFilters("sport"), Filters{"sport/#"});
  EXPECT_EQ(MatchingFilters("sport/"), Filters{"sport/#"});
  EXPECT_TRUE(Matches("sports").empty());
}

TEST_F(SubscriptionTrieTest, PlusMatchesExactlyOneLevel) {
  // MQTT 5.0 section 4.7.1.3.
  Sub("sport/+", "c1");
  EXPECT_TRUE(Matches("sport").empty());
  EXPECT_EQ(MatchingFilters("sport/"), Filters{"sport/+"});
  EXPECT_EQ(MatchingFilters("sport/tennis"), Filters{"sport/+"});
  EXPECT_TRUE(Matches("sport/tennis/player1").empty());
}

TEST_F(SubscriptionTrieTest, PlusMatchesAnEmptyLevel) {
  // "+/+" and "/+" match "/finance"; "+" does not.
  Sub("+/+", "c1");
  Sub("/+", "c1");
  Sub("+", "c1");
  EXPECT_EQ(MatchingFilters("/finance"), (Filters{"+/+", "/+"}));
  EXPECT_EQ(MatchingFilters("finance"), Filters{"+"});
}

TEST_F(SubscriptionTrieTest, LeadingWildcardsDoNotMatchDollarTopics) {
  // [MQTT-4.7.2-1] and the $SYS examples of section 4.7.2.
  Sub("#", "c1");
  Sub("+/monitor/Clients", "c1");
  Sub("+/#", "c1");
  Sub("$SYS/#", "c2");
  Sub("$SYS/monitor/+", "c2");
  EXPECT_EQ(Matches("$SYS/monitor/Clients"),
            (std::vector<Hit>{{"c2", "$SYS/#"}, {"c2", "$SYS/monitor/+"}}));
  EXPECT_EQ(Matches("$SYS"), (std::vector<Hit>{{"c2", "$SYS/#"}}));
  EXPECT_EQ(Matches("app/monitor/Clients"),
            (std::vector<Hit>{{"c1", "#"}, {"c1", "+/#"}, {"c1", "+/monitor/Clients"}}));
}

TEST_F(SubscriptionTrieTest, DollarBelowTheFirstLevelIsOrdinary) {
  Sub("a/#", "c1");
  Sub("a/+", "c1");
  Sub("#", "c1");
  EXPECT_EQ(MatchingFilters("a/$b"), (Filters{"#", "a/#", "a/+"}));
}

TEST_F(SubscriptionTrieTest, OverlappingSubscriptionsOfOneSubscriberAreEachReported) {
  Sub("#", "c1", 1);
  Sub("sport/#", "c1", 2);
  Sub("sport/tennis/+", "c1", 3);
  Sub("sport/tennis/player1", "c1", 4);
  Sub("sport/+/player1", "c1", 5);
  EXPECT_EQ(MatchingFilters("sport/tennis/player1"),
            (Filters{"#", "sport/#", "sport/+/player1", "sport/tennis/+", "sport/tennis/player1"}));
  int sum = 0;
  trie_.Match("sport/tennis/player1", [&](std::string_view, const int& v, std::string_view) {
    sum += v;
  });
  EXPECT_EQ(sum, 1 + 2 + 3 + 4 + 5);
}

TEST_F(SubscriptionTrieTest, SeveralSubscribersOfOneFilterAreEachReported) {
  Sub("a/b", "c1");
  Sub("a/b", "c2");
  Sub("a/b", "c3");
  EXPECT_EQ(Matches("a/b"), (std::vector<Hit>{{"c1", "a/b"}, {"c2", "a/b"}, {"c3", "a/b"}}));
}

TEST_F(SubscriptionTrieTest, ErasePrunesEveryNodeItEmpties) {
  Sub("a/b/c", "c1");
  Sub("a/+/c", "c1");
  Sub("a/#", "c2");
  Sub("+/#", "c2");
  EXPECT_TRUE(trie_.Erase("a/b/c", "c1"));
  EXPECT_TRUE(trie_.Erase("a/+/c", "c1"));
  EXPECT_TRUE(trie_.Erase("a/#", "c2"));
  EXPECT_TRUE(trie_.Erase("+/#", "c2"));
  EXPECT_TRUE(trie_.empty());
  EXPECT_EQ(trie_.node_count(), 1u);
  EXPECT_TRUE(Matches("a/b/c").empty());
  EXPECT_TRUE(Matches("a").empty());
}

TEST_F(SubscriptionTrieTest, EraseKeepsNodesOtherFiltersStillUse) {
  Sub("a/b", "c1");
  Sub("a/b/c", "c2");
  const size_t nodes = trie_.node_count();  // root, a, b, c
  EXPECT_EQ(nodes, 4u);
  EXPECT_TRUE(trie_.Erase("a/b/c", "c2"));
  EXPECT_EQ(trie_.node_count(), 3u);
  EXPECT_EQ(Matches("a/b"), (std::vector<Hit>{{"c1", "a/b"}}));
  EXPECT_TRUE(trie_.Erase("a/b", "c1"));
  EXPECT_EQ(trie_.node_count(), 1u);
}

TEST_F(SubscriptionTrieTest, EraseOfOneSubscriberLeavesTheOthers) {
  Sub("a/+", "c1");
  Sub("a/+", "c2");
  EXPECT_TRUE(trie_.Erase("a/+", "c1"));
  EXPECT_EQ(Matches("a/x"), (std::vector<Hit>{{"c2", "a/+"}}));
  EXPECT_EQ(trie_.size(), 1u);
}

TEST_F(SubscriptionTrieTest, EraseOfAnUnknownSubscriptionChangesNothing) {
  Sub("a/b/c", "c1");
  const size_t nodes = trie_.node_count();
  EXPECT_FALSE(trie_.Erase("a/b/c", "c2"));  // other subscriber
  EXPECT_FALSE(trie_.Erase("a/b", "c1"));    // prefix of a filter
  EXPECT_FALSE(trie_.Erase("a/b/c/d", "c1"));
  EXPECT_FALSE(trie_.Erase("a/+/c", "c1"));
  EXPECT_FALSE(trie_.Erase("a/b/#", "c1"));
  EXPECT_EQ(trie_.size(), 1u);
  EXPECT_EQ(trie_.node_count(), nodes);
}

TEST_F(SubscriptionTrieTest, EraseAcceptsViewsOfTheTriesOwnStrings) {
  // The router may erase with the views a Match callback handed it.
  Sub("a/very/long/filter/that/does/not/fit/in/a/small/string/+", "a-long-client-identifier-xyz");
  Sub("s/+", "c");
  std::vector<std::pair<std::string_view, std::string_view>> seen;
  trie_.ForEach([&](std::string_view filter, std::string_view subscriber, const int&) {
    seen.emplace_back(filter, subscriber);
  });
  for (auto [filter, subscriber] : seen) EXPECT_TRUE(trie_.Erase(filter, subscriber));
  EXPECT_TRUE(trie_.empty());
  EXPECT_EQ(trie_.node_count(), 1u);
}

TEST_F(SubscriptionTrieTest, ForEachVisitsEverySubscriptionOnce) {
  Sub("a/b", "c1", 1);
  Sub("a/+", "c2", 2);
  Sub("#", "c1", 3);
  Sub("a/b", "c3", 4);
  std::vector<std::tuple<std::string, std::string, int>> all;
  trie_.ForEach([&](std::string_view filter, std::string_view subscriber, const int& v) {
    all.emplace_back(std::string(filter), std::string(subscriber), v);
  });
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<std::tuple<std::string, std::string, int>>{
                     {"#", "c1", 3}, {"a/+", "c2", 2}, {"a/b", "c1", 1}, {"a/b", "c3", 4}}));
}

TEST_F(SubscriptionTrieTest, ClearAndMoveLeaveUsableTries) {
  Sub("a/#", "c1");
  SubscriptionTrie<int> moved(std::move(trie_));
  EXPECT_EQ(moved.size(), 1u);
  EXPECT_TRUE(trie_.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(trie_.node_count(), 1u);
  Sub("x", "c2");
  EXPECT_EQ(MatchingFilters("x"), Filters{"x"});
  moved.Clear();
  EXPECT_TRUE(moved.empty());
  EXPECT_EQ(moved.node_count(), 1u);
}

TEST(SubscriptionTrie, HoldsMoveOnlyValues) {
  SubscriptionTrie<std::unique_ptr<int>> trie;
  EXPECT_TRUE(trie.Insert("a/+", "c1", std::make_unique<int>(5)));
  EXPECT_FALSE(trie.Insert("a/+", "c1", std::make_unique<int>(6)));
  int seen = 0;
  trie.Match("a/b", [&](std::string_view, const std::unique_ptr<int>& v, std::string_view) {
    seen = *v;
  });
  EXPECT_EQ(seen, 6);
}

TEST(SubscriptionTrie, VeryDeepFiltersNeitherRecurseNorLeak) {
  // 32768 empty levels: "/" repeated, the longest a filter can be. Insert,
  // Match, Erase and the destructor must all walk it without recursion.
  const std::string deep(32767, '/');
  std::string deep_plus;
  for (int i = 0; i < 20000; ++i) deep_plus += i == 0 ? "+" : "/+";
  SubscriptionTrie<int> trie;
  trie.Insert(deep, "c1", 1);
  trie.Insert(deep_plus, "c1", 2);
  trie.Insert(deep + "#", "c2", 3);
  int hits = 0;
  trie.Match(deep, [&](std::string_view, const int&, std::string_view) { ++hits; });
  EXPECT_EQ(hits, 2);  // deep and deep + "#"; deep_plus has fewer levels
  EXPECT_TRUE(trie.Erase(deep, "c1"));
  EXPECT_EQ(trie.size(), 2u);
  // The destructor frees the rest.
}

// ---- Randomised comparison with TopicMatches ----

std::string RandomLevel(std::mt19937& rng, bool first, bool filter) {
  static const char* const kLevels[] = {"a", "b", "c", ""};
  const uint32_t r = rng() % 16;
  if (first && r == 0) return "$SYS";
  if (filter && r < 5) return "+";
  return kLevels[rng() % 4];
}

std::string RandomFilter(std::mt19937& rng) {
  const int levels = 1 + static_cast<int>(rng() % 5);
  std::string f;
  for (int i = 0; i < levels; ++i) {
    if (i > 0) f += '/';
    if (i == levels - 1 && rng() % 5 == 0) {
      f += '#';
    } else {
      f += RandomLevel(rng, i == 0, /*filter=*/true);
    }
  }
  return f.empty() ? "/" : f;  // a lone empty level is no topic filter
}

std::string RandomTopic(std::mt19937& rng) {
  const int levels = 1 + static_cast<int>(rng() % 6);
  std::string t;
  for (int i = 0; i < levels; ++i) {
    if (i > 0) t += '/';
    t += RandomLevel(rng, i == 0, /*filter=*/false);
  }
  return t.empty() ? "/" : t;  // a lone empty level is no topic name
}

TEST(SubscriptionTrie, RandomFiltersAgreeWithTopicMatches) {
  std::mt19937 rng(20240601);
  SubscriptionTrie<int> trie;
  using Key = std::pair<std::string, std::string>;  // (filter, subscriber)
  std::map<Key, int> oracle;
  for (int i = 0; i < 10000; ++i) {
    std::string filter = RandomFilter(rng);
    ASSERT_TRUE(ValidateTopicFilter(filter).ok()) << filter;
    std::string subscriber = "c" + std::to_string(rng() % 40);
    const bool is_new = oracle.insert_or_assign({filter, subscriber}, i).second;
    EXPECT_EQ(trie.Insert(filter, subscriber, i), is_new);
  }
  ASSERT_EQ(trie.size(), oracle.size());

  size_t total_hits = 0;
  auto check = [&](int topics) {
    for (int i = 0; i < topics; ++i) {
      const std::string topic = RandomTopic(rng);
      std::vector<std::pair<Key, int>> got;
      trie.Match(topic, [&](std::string_view sub, const int& v, std::string_view filter) {
        got.push_back({{std::string(filter), std::string(sub)}, v});
      });
      std::sort(got.begin(), got.end());
      std::vector<std::pair<Key, int>> want;
      for (const auto& [key, v] : oracle) {
        if (TopicMatches(key.first, topic)) want.push_back({key, v});
      }
      ASSERT_EQ(got, want) << "topic " << topic;
      total_hits += got.size();
    }
  };
  check(400);
  // The alphabet is small enough that topics match many filters each.
  EXPECT_GT(total_hits, 400u * 10);

  // Erase about half, then compare again.
  for (auto it = oracle.begin(); it != oracle.end();) {
    if (rng() % 2 == 0) {
      ++it;
      continue;
    }
    EXPECT_TRUE(trie.Erase(it->first.first, it->first.second));
    it = oracle.erase(it);
  }
  ASSERT_EQ(trie.size(), oracle.size());
  check(400);

  for (const auto& [key, v] : oracle) EXPECT_TRUE(trie.Erase(key.first, key.second));
  EXPECT_TRUE(trie.empty());
  EXPECT_EQ(trie.node_count(), 1u);
}

}  // namespace
}  // namespace ferry::core
