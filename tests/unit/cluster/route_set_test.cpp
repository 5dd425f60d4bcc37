// RouteSet: the sorted blocks behave as a std::map of route -> members
// would, through many inserts and erases that split and empty blocks.
#include "cluster/route_set.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace ferry::cluster {
namespace {

std::map<std::string, uint32_t> Contents(const RouteSet& s, std::string_view from = "") {
  std::map<std::string, uint32_t> out;
  std::string last;
  s.ForEachFrom(from, [&](std::string_view route, uint32_t members) {
    EXPECT_TRUE(out.empty() || last < route) << "out of order at " << route;
    last = std::string(route);
    out.emplace(std::string(route), members);
    return true;
  });
  return out;
}

TEST(RouteSet, BehavesAsAMapThroughSplitsAndErases) {
  std::mt19937 rng(11);
  RouteSet set;
  std::map<std::string, uint32_t> model;
  for (int i = 0; i < 20000; ++i) {
    const int k = static_cast<int>(rng() % 3000);
    const bool shared = k % 10 == 0;
    const std::string route = shared ? "$share/g/" + std::to_string(k) : "r/" + std::to_string(k);
    if (rng() % 3 == 0) {
      EXPECT_EQ(set.Erase(route), model.erase(route) == 1) << route;
    } else {
      const uint32_t members = shared ? 1 + rng() % 5 : 0;
      EXPECT_EQ(set.Set(route, members), !model.contains(route)) << route;
      model[route] = members;
    }
    ASSERT_EQ(set.size(), model.size());
  }
  EXPECT_EQ(Contents(set), model);
  for (const auto& [route, members] : model) EXPECT_EQ(set.Find(route), members);
  EXPECT_FALSE(set.Find("r/none").has_value());
  // From the middle: everything >= it, in order.
  std::map<std::string, uint32_t> tail(model.lower_bound("r/2"), model.end());
  EXPECT_EQ(Contents(set, "r/2"), tail);
  // Stopping early.
  int seen = 0;
  set.ForEach([&](std::string_view, uint32_t) { return ++seen < 5; });
  EXPECT_EQ(seen, 5);
  for (const auto& [route, members] : model) EXPECT_TRUE(set.Erase(route));
  EXPECT_TRUE(set.empty());
  EXPECT_TRUE(Contents(set).empty());
}

}  // namespace
}  // namespace ferry::cluster
