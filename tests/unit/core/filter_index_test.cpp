// FilterIndex: the compact index of other nodes' routes matches exactly
// what TopicMatches says, filter by filter, with the tags of each.
#include "core/filter_index.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/topic.h"

namespace ferry::core {
namespace {

TEST(FilterIndex, ExactAndWildcardFiltersWithTheirTags) {
  FilterIndex index;
  EXPECT_TRUE(index.Add("a/b", 1));
  EXPECT_FALSE(index.Add("a/b", 1));  // already there for tag 1
  EXPECT_TRUE(index.Add("a/b", 2));
  EXPECT_TRUE(index.Add("a/+", 3));
  EXPECT_TRUE(index.Add("a/#", 4));
  EXPECT_TRUE(index.Add("#", 5));
  EXPECT_TRUE(index.Add("+/b/#", 6));
  EXPECT_EQ(index.size(), 6u);
  EXPECT_EQ(index.Match("a/b"), (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6));
  EXPECT_EQ(index.Match("a"), (1u << 4) | (1u << 5));  // "a/#" matches its parent
  EXPECT_EQ(index.Match("$SYS/x"), 0u);                // no wildcard at the first level
  EXPECT_TRUE(index.Remove("a/b", 1));
  EXPECT_FALSE(index.Remove("a/b", 1));
  EXPECT_FALSE(index.Remove("x/y", 1));
  EXPECT_EQ(index.Match("a/b") & (1u << 1), 0u);
  EXPECT_EQ(index.Match("a/b") & (1u << 2), 1u << 2);
  for (auto [f, t] : std::vector<std::pair<std::string, uint32_t>>{
           {"a/b", 2}, {"a/+", 3}, {"a/#", 4}, {"#", 5}, {"+/b/#", 6}}) {
    EXPECT_TRUE(index.Remove(f, t)) << f;
  }
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.Match("a/b"), 0u);
}

TEST(FilterIndex, AgreesWithTopicMatchesOnRandomFiltersAndTopics) {
  std::mt19937 rng(7);
  const std::vector<std::string> words{"a", "b", "", "$x", "c"};
  auto level = [&] { return words[rng() % words.size()]; };
  auto topic = [&] {
    std::string t = level();
    for (int n = rng() % 4; n > 0; --n) t += "/" + level();
    return t;
  };
  std::vector<std::pair<std::string, uint32_t>> filters;
  FilterIndex index;
  for (int i = 0; i < 400; ++i) {
    std::string f;
    const int levels = 1 + rng() % 4;
    for (int l = 0; l < levels; ++l) {
      if (l > 0) f += "/";
      const int r = rng() % 6;
      f += r == 0 ? "+" : (r == 1 && l == levels - 1) ? "#" : level();
    }
    if (!ValidateTopicFilter(f).ok()) continue;
    const uint32_t tag = rng() % FilterIndex::kMaxTags;
    if (index.Add(f, tag)) filters.emplace_back(f, tag);
  }
  for (int i = 0; i < 2000; ++i) {
    const std::string t = topic();
    if (!ValidateTopicName(t).ok()) continue;
    uint64_t want = 0;
    for (const auto& [f, tag] : filters) {
      if (TopicMatches(f, t)) want |= uint64_t{1} << tag;
    }
    ASSERT_EQ(index.Match(t), want) << "topic '" << t << "'";
  }
}

}  // namespace
}  // namespace ferry::core
