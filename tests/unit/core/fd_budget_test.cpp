// The descriptor budget of fd_budget.h and its start-up warnings (issue 9,
// point 6).
#include "core/fd_budget.h"

#include <gtest/gtest.h>

namespace ferry::core {
namespace {

ListenerOptions Listener(const std::string& name, uint32_t max_connections) {
  ListenerOptions l;
  l.name = name;
  l.max_connections = max_connections;
  return l;
}

TEST(FdBudget, ConnectionsAreTheLimitLessWhatIsOpenLessTheReserve) {
  EXPECT_EQ((FdBudget{20000, 41, 128}.connections()), 19831u);
  EXPECT_EQ((FdBudget{256, 25, 128}.connections()), 103u);
  EXPECT_EQ((FdBudget{100, 41, 128}.connections()), 0u);
  EXPECT_EQ((FdBudget{169, 41, 128}.connections()), 0u);
}

TEST(FdBudget, WarnsAboutListenersWithoutALimit) {
  auto w = FdBudgetWarnings(FdBudget{20000, 41, 128}, {Listener("a", 0), Listener("b", 10)});
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0],
            "listener(s) tcp.a have max_connections = 0 (no limit): the descriptor limit "
            "(RLIMIT_NOFILE 20,000, 41 open at start-up, reserved_fds 128) allows 19,831 MQTT "
            "connections; clients beyond that are refused (reason fd_limit). Raise LimitNOFILE "
            "(ulimit -n) or set max_connections");
}

TEST(FdBudget, WarnsWhenTheLimitsAddUpToMoreThanFits) {
  auto w = FdBudgetWarnings(FdBudget{1024, 24, 128}, {Listener("a", 500), Listener("b", 500)});
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].rfind("the listeners' max_connections add up to 1,000, more than the descriptor "
                       "limit (RLIMIT_NOFILE 1,024, 24 open at start-up, reserved_fds 128) allows "
                       "872 MQTT connections",
                       0),
            0u)
      << w[0];
}

TEST(FdBudget, SaysNothingWhenTheLimitsFit) {
  EXPECT_TRUE(
      FdBudgetWarnings(FdBudget{1024, 24, 128}, {Listener("a", 400), Listener("b", 472)}).empty());
}

TEST(FdBudget, SaysSoWhenNoConnectionFits) {
  auto w = FdBudgetWarnings(FdBudget{100, 41, 128}, {Listener("a", 10)});
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[1], "no MQTT connection fits in the descriptor limit: every client is refused");
}

// No limit, or one getrlimit could not read: every connection fits, and
// there is nothing to warn about.
TEST(FdBudget, WithoutALimitNothingIsRefused) {
  const FdBudget budget{kNoFdLimit, 41, 128};
  EXPECT_EQ(budget.connections(), kNoFdLimit - 41 - 128);
  EXPECT_TRUE(FdBudgetWarnings(budget, {Listener("a", 0)}).empty());
}

TEST(FdBudget, CountsThisProcesssDescriptors) {
  // At least stdin, stdout and stderr; the directory's own is not counted.
  EXPECT_GE(CountOpenFds(), 3u);
  EXPECT_GT(RaiseFdLimit(), CountOpenFds());
}

}  // namespace
}  // namespace ferry::core
