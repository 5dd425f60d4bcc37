// RetainedTrie: topic names -> retained values, matched against a filter.
#include "core/retained_trie.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/topic.h"

namespace ferry::core {
namespace {

using Names = std::vector<std::string>;

class RetainedTrieTest : public ::testing::Test {
 protected:
  void Retain(std::string_view topic) { trie_.Set(topic, std::string(topic)); }

  // The topic names Match reports for `filter`, sorted. Each value must be
  // the one stored under that name.
  Names Matches(std::string_view filter) const {
    Names names;
    trie_.Match(filter, [&](std::string_view topic, const std::string& value) {
      EXPECT_EQ(topic, value);
      names.emplace_back(topic);
    });
    std::sort(names.begin(), names.end());
    return names;
  }

  // The worked example of retained_trie.h.
  void RetainExample() {
    for (std::string_view t : {"sport/tennis/p1", "sport/tennis/p2", "sport", "$SYS/uptime"}) {
      Retain(t);
    }
  }

  RetainedTrie<std::string> trie_;
};

TEST_F(RetainedTrieTest, EmptyTrieFindsNothing) {
  EXPECT_TRUE(trie_.empty());
  EXPECT_EQ(trie_.node_count(), 1u);
  EXPECT_TRUE(Matches("#").empty());
  EXPECT_EQ(trie_.Find("a"), nullptr);
}

TEST_F(RetainedTrieTest, SetReportsWhetherTheTopicIsNew) {
  EXPECT_TRUE(trie_.Set("a/b", "one"));
  EXPECT_FALSE(trie_.Set("a/b", "two"));
  EXPECT_EQ(trie_.size(), 1u);
  ASSERT_NE(trie_.Find("a/b"), nullptr);
  EXPECT_EQ(*trie_.Find("a/b"), "two");
  EXPECT_EQ(trie_.Find("a"), nullptr);  // an inner node holds no value
  EXPECT_EQ(trie_.Find("a/b/c"), nullptr);
}

TEST_F(RetainedTrieTest, ExactFilterFindsOnlyItsName) {
  RetainExample();
  EXPECT_EQ(Matches("sport/tennis/p1"), Names{"sport/tennis/p1"});
  EXPECT_EQ(Matches("sport"), Names{"sport"});
  EXPECT_TRUE(Matches("sport/tennis").empty());
  EXPECT_TRUE(Matches("sport/tennis/p3").empty());
}

TEST_F(RetainedTrieTest, PlusFansOutOverOneLevel) {
  RetainExample();
  EXPECT_EQ(Matches("sport/+/p2"), Names{"sport/tennis/p2"});
  EXPECT_EQ(Matches("sport/tennis/+"), (Names{"sport/tennis/p1", "sport/tennis/p2"}));
  EXPECT_TRUE(Matches("sport/+").empty());
  EXPECT_EQ(Matches("+"), Names{"sport"});
}

TEST_F(RetainedTrieTest, HashMatchesParentAndSubtree) {
  // "sport/#" reports "sport" itself (MQTT 5.0 section 4.7.1.2).
  RetainExample();
  EXPECT_EQ(Matches("sport/#"), (Names{"sport", "sport/tennis/p1", "sport/tennis/p2"}));
  EXPECT_EQ(Matches("sport/tennis/#"), (Names{"sport/tennis/p1", "sport/tennis/p2"}));
  EXPECT_EQ(Matches("sport/tennis/p1/#"), Names{"sport/tennis/p1"});
  EXPECT_EQ(Matches("sport/+/#"), (Names{"sport/tennis/p1", "sport/tennis/p2"}));
}

TEST_F(RetainedTrieTest, LeadingWildcardsSkipDollarTopics) {
  // [MQTT-4.7.2-1]
  RetainExample();
  EXPECT_EQ(Matches("#"), (Names{"sport", "sport/tennis/p1", "sport/tennis/p2"}));
  EXPECT_TRUE(Matches("+/uptime").empty());
  EXPECT_EQ(Matches("+/#"), (Names{"sport", "sport/tennis/p1", "sport/tennis/p2"}));
  EXPECT_EQ(Matches("$SYS/#"), Names{"$SYS/uptime"});
  EXPECT_EQ(Matches("$SYS/+"), Names{"$SYS/uptime"});
  EXPECT_EQ(Matches("$SYS/uptime"), Names{"$SYS/uptime"});
}

TEST_F(RetainedTrieTest, DollarBelowTheFirstLevelIsOrdinary) {
  Retain("a/$b");
  EXPECT_EQ(Matches("#"), Names{"a/$b"});
  EXPECT_EQ(Matches("a/+"), Names{"a/$b"});
}

TEST_F(RetainedTrieTest, EmptyLevelsAreLevels) {
  // "+/+" and "/+" match "/finance"; "+" does not (section 4.7.1.3).
  Retain("/finance");
  Retain("finance/");
  EXPECT_EQ(Matches("+/+"), (Names{"/finance", "finance/"}));
  EXPECT_EQ(Matches("/+"), Names{"/finance"});
  EXPECT_TRUE(Matches("+").empty());
  EXPECT_EQ(Matches("finance/#"), Names{"finance/"});
}

TEST_F(RetainedTrieTest, ErasePrunesEveryNodeItEmpties) {
  RetainExample();
  for (std::string_view t : {"sport/tennis/p1", "sport/tennis/p2", "sport", "$SYS/uptime"}) {
    EXPECT_TRUE(trie_.Erase(t)) << t;
  }
  EXPECT_TRUE(trie_.empty());
  EXPECT_EQ(trie_.node_count(), 1u);
  EXPECT_TRUE(Matches("#").empty());
  EXPECT_TRUE(Matches("$SYS/#").empty());
}

TEST_F(RetainedTrieTest, EraseKeepsAncestorsThatHoldValues) {
  Retain("a");
  Retain("a/b/c");
  EXPECT_EQ(trie_.node_count(), 4u);  // root, a, b, c
  EXPECT_TRUE(trie_.Erase("a/b/c"));
  EXPECT_EQ(trie_.node_count(), 2u);
  EXPECT_EQ(Matches("a/#"), Names{"a"});
}

TEST_F(RetainedTrieTest, EraseOfAnUnknownTopicChangesNothing) {
  Retain("a/b");
  EXPECT_FALSE(trie_.Erase("a"));
  EXPECT_FALSE(trie_.Erase("a/b/c"));
  EXPECT_FALSE(trie_.Erase("x"));
  EXPECT_EQ(trie_.size(), 1u);
  EXPECT_EQ(trie_.node_count(), 3u);
}

TEST_F(RetainedTrieTest, EraseAcceptsViewsOfTheTriesOwnTopics) {
  Retain("a/long/topic/name/that/does/not/fit/in/a/small/string/buffer");
  Retain("s/t");
  std::vector<std::string_view> topics;
  trie_.ForEach([&](std::string_view topic, const std::string&) { topics.push_back(topic); });
  ASSERT_EQ(topics.size(), 2u);
  for (std::string_view t : topics) EXPECT_TRUE(trie_.Erase(t));
  EXPECT_TRUE(trie_.empty());
  EXPECT_EQ(trie_.node_count(), 1u);
}

TEST_F(RetainedTrieTest, EraseIfRemovesMatchingEntriesAndPrunes) {
  RetainExample();
  Retain("weather/today");
  const size_t removed = trie_.EraseIf([](std::string_view topic, const std::string&) {
    return topic.starts_with("sport/");
  });
  EXPECT_EQ(removed, 2u);
  EXPECT_EQ(trie_.size(), 3u);
  EXPECT_EQ(Matches("#"), (Names{"sport", "weather/today"}));
  EXPECT_EQ(trie_.Find("sport/tennis/p1"), nullptr);
  // root, sport, $SYS, uptime, weather, today: "tennis" and below are gone.
  EXPECT_EQ(trie_.node_count(), 6u);
  EXPECT_EQ(trie_.EraseIf([](std::string_view, const std::string&) { return true; }), 3u);
  EXPECT_TRUE(trie_.empty());
  EXPECT_EQ(trie_.node_count(), 1u);
}

TEST_F(RetainedTrieTest, ForEachVisitsEveryEntryOnce) {
  RetainExample();
  Names all;
  trie_.ForEach([&](std::string_view topic, const std::string&) { all.emplace_back(topic); });
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (Names{"$SYS/uptime", "sport", "sport/tennis/p1", "sport/tennis/p2"}));
}

TEST_F(RetainedTrieTest, ClearAndMoveLeaveUsableTries) {
  RetainExample();
  RetainedTrie<std::string> moved(std::move(trie_));
  EXPECT_EQ(moved.size(), 4u);
  EXPECT_TRUE(trie_.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  Retain("x");
  EXPECT_EQ(Matches("#"), Names{"x"});
  moved.Clear();
  EXPECT_TRUE(moved.empty());
  EXPECT_EQ(moved.node_count(), 1u);
}

TEST(RetainedTrie, HoldsMoveOnlyValues) {
  RetainedTrie<std::unique_ptr<int>> trie;
  EXPECT_TRUE(trie.Set("a", std::make_unique<int>(1)));
  EXPECT_FALSE(trie.Set("a", std::make_unique<int>(2)));
  ASSERT_NE(trie.Find("a"), nullptr);
  EXPECT_EQ(**trie.Find("a"), 2);
  EXPECT_EQ(trie.EraseIf([](std::string_view, const std::unique_ptr<int>& v) { return *v == 2; }),
            1u);
}

TEST(RetainedTrie, VeryDeepTopicsNeitherRecurseNorLeak) {
  // 65535 '/' characters: 65536 empty levels, the deepest possible name.
  const std::string deep(65535, '/');
  RetainedTrie<int> trie;
  trie.Set(deep, 1);
  trie.Set(deep.substr(0, 40000), 2);
  int hits = 0;
  trie.Match("#", [&](std::string_view, const int&) { ++hits; });
  EXPECT_EQ(hits, 2);
  hits = 0;
  trie.Match(deep, [&](std::string_view, const int&) { ++hits; });
  EXPECT_EQ(hits, 1);
  EXPECT_TRUE(trie.Erase(deep));
  EXPECT_EQ(trie.node_count(), 40002u);  // root + 40001 levels
  trie.Set(deep, 3);
  EXPECT_EQ(trie.EraseIf([](std::string_view, const int& v) { return v == 2; }), 1u);
  EXPECT_EQ(trie.size(), 1u);
  // The destructor frees the rest.
}

// ---- Randomised comparison with TopicMatches ----

std::string RandomTopic(std::mt19937& rng) {
  static const char* const kLevels[] = {"a", "b", "c", "d", ""};
  const int levels = 1 + static_cast<int>(rng() % 6);
  std::string t;
  for (int i = 0; i < levels; ++i) {
    if (i > 0) t += '/';
    t += (i == 0 && rng() % 12 == 0) ? "$SYS" : kLevels[rng() % 5];
  }
  return t.empty() ? "/" : t;  // a lone empty level is no topic name
}

std::string RandomFilter(std::mt19937& rng) {
  static const char* const kLevels[] = {"a", "b", "c", "d", "", "+", "+"};
  const int levels = 1 + static_cast<int>(rng() % 6);
  std::string f;
  for (int i = 0; i < levels; ++i) {
    if (i > 0) f += '/';
    if (i == levels - 1 && rng() % 4 == 0) {
      f += '#';
    } else {
      f += (i == 0 && rng() % 12 == 0) ? "$SYS" : kLevels[rng() % 7];
    }
  }
  return f.empty() ? "/" : f;  // a lone empty level is no topic filter
}

TEST(RetainedTrie, RandomFiltersAgreeWithTopicMatches) {
  std::mt19937 rng(7081);
  RetainedTrie<int> trie;
  std::map<std::string, int> oracle;
  for (int i = 0; i < 5000; ++i) {
    const std::string topic = RandomTopic(rng);
    ASSERT_TRUE(ValidateTopicName(topic).ok()) << topic;
    EXPECT_EQ(trie.Set(topic, i), oracle.insert_or_assign(topic, i).second);
  }
  ASSERT_EQ(trie.size(), oracle.size());

  size_t total_hits = 0;
  auto check = [&](int filters) {
    for (int i = 0; i < filters; ++i) {
      const std::string filter = RandomFilter(rng);
      ASSERT_TRUE(ValidateTopicFilter(filter).ok()) << filter;
      std::vector<std::pair<std::string, int>> got;
      trie.Match(filter, [&](std::string_view t, const int& v) { got.emplace_back(t, v); });
      std::sort(got.begin(), got.end());
      std::vector<std::pair<std::string, int>> want;
      for (const auto& [t, v] : oracle) {
        if (TopicMatches(filter, t)) want.emplace_back(t, v);
      }
      ASSERT_EQ(got, want) << "filter " << filter;
      total_hits += got.size();
    }
  };
  check(1000);
  // The alphabet is small enough that filters match many names each.
  EXPECT_GT(total_hits, 1000u * 10);

  const size_t removed = trie.EraseIf([](std::string_view, const int& v) { return v % 3 == 0; });
  size_t want_removed = std::erase_if(oracle, [](const auto& kv) { return kv.second % 3 == 0; });
  EXPECT_EQ(removed, want_removed);
  ASSERT_EQ(trie.size(), oracle.size());
  check(1000);

  for (const auto& [t, v] : oracle) EXPECT_TRUE(trie.Erase(t));
  EXPECT_TRUE(trie.empty());
  EXPECT_EQ(trie.node_count(), 1u);
}

}  // namespace
}  // namespace ferry::core
