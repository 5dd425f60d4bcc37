// Topic rules: parsing, remapping in both directions, and the choice of
// upstream targets when several forward rules match (bridge/rules.h).
#include "bridge/rules.h"

#include <gtest/gtest.h>

namespace ferry::bridge {
namespace {

RuleDefaults Defaults(std::string local = "", std::string remote = "") {
  return RuleDefaults{std::move(local), std::move(remote), "edge1@10.0.0.5"};
}

std::vector<TopicRule> Parse(std::string_view text, const RuleDefaults& d = Defaults()) {
  auto r = ParseRules(text, d);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : std::vector<TopicRule>{};
}

std::string ParseError(std::string_view text, const RuleDefaults& d = Defaults()) {
  auto r = ParseRules(text, d);
  EXPECT_FALSE(r.ok()) << "'" << text << "' parsed";
  return r.ok() ? "" : r.status().message();
}

TEST(ParseRules, FilterQosAndPrefixesWithDefaults) {
  auto rules = Parse("sensor/# 2, alarm/+ remote_prefix=site/ local_prefix=l/, cmd");
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0], (TopicRule{"sensor/#", 2, "", ""}));
  EXPECT_EQ(rules[1], (TopicRule{"alarm/+", 1, "l/", "site/"}));
  EXPECT_EQ(rules[2], (TopicRule{"cmd", 1, "", ""}));
}

TEST(ParseRules, BridgePrefixesAreTheDefaultAndNodeIsExpanded) {
  auto rules = Parse("a/#", Defaults("", "site/${node}/"));
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].remote_prefix, "site/edge1@10.0.0.5/");
  EXPECT_EQ(rules[0].RemoteFilter(), "site/edge1@10.0.0.5/a/#");
  EXPECT_EQ(Parse("cmd/${node}/#")[0].filter, "cmd/edge1@10.0.0.5/#");
}

TEST(ParseRules, EmptyTextIsNoRules) {
  EXPECT_TRUE(Parse("").empty());
  EXPECT_TRUE(Parse("   ").empty());
}

TEST(ParseRules, RejectsBadRulesNamingThem) {
  EXPECT_NE(ParseError("a/#, , b").find("empty rule"), std::string::npos);
  EXPECT_NE(ParseError("a/# 3").find("QoS must be 0, 1 or 2"), std::string::npos);
  EXPECT_NE(ParseError("a/# 1 speed=fast").find("unexpected 'speed=fast'"), std::string::npos);
  EXPECT_NE(ParseError("a/#/b").find("not a valid topic filter"), std::string::npos);
  EXPECT_NE(ParseError("a remote_prefix=x/+/").find("holds a wildcard"), std::string::npos);
  EXPECT_NE(ParseError("$share/g/a").find("shared subscription"), std::string::npos);
}

TEST(TopicRule, ForwardRenamesLocalPrefixToRemotePrefix) {
  TopicRule rule{"sensor/#", 1, "local/", "site/edge1/"};
  EXPECT_EQ(rule.LocalFilter(), "local/sensor/#");
  EXPECT_EQ(rule.ToRemote("local/sensor/t1"), "site/edge1/sensor/t1");
  TopicRule plain{"sensor/#", 1, "", ""};
  EXPECT_EQ(plain.ToRemote("sensor/t1"), "sensor/t1");
}

TEST(TopicRule, ForwardToAnEmptyTopicIsRefused) {
  // "a/#" matches "a/"; with local prefix "a/" and no remote prefix nothing
  // is left.
  TopicRule rule{"#", 1, "a/", ""};
  EXPECT_EQ(rule.ToRemote("a/"), "");
}

TEST(TopicRule, SubscribeRenamesRemotePrefixToLocalPrefix) {
  TopicRule rule{"cmd/#", 1, "in/", "site/edge1/"};
  EXPECT_EQ(rule.RemoteFilter(), "site/edge1/cmd/#");
  EXPECT_EQ(rule.ToLocal("site/edge1/cmd/reboot"), "in/cmd/reboot");
  EXPECT_EQ(rule.ToLocal("site/edge2/cmd/reboot"), std::nullopt);
  EXPECT_EQ(rule.ToLocal("other"), std::nullopt);
}

TEST(TopicRule, TextRoundTrips) {
  RuleDefaults d = Defaults("l/", "r/");
  for (std::string text : {"a/# 0", "b/+ 2 remote_prefix=x/", "c 1 local_prefix=", "d 1"}) {
    auto rules = Parse(text, d);
    ASSERT_EQ(rules.size(), 1u);
    std::string again = rules[0].ToText(d.local_prefix, d.remote_prefix);
    EXPECT_EQ(Parse(again, d), rules) << text << " -> " << again;
  }
}

TEST(ForwardTargets, OneTargetPerRemoteTopicAtTheHighestCap) {
  auto rules = Parse("a/# 0, a/b 2, a/+ 1 remote_prefix=x/");
  auto targets = ForwardTargets(rules, {0, 1, 2}, "a/b");
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0].remote_topic, "a/b");
  EXPECT_EQ(targets[0].qos, 2);
  EXPECT_EQ(targets[1].remote_topic, "x/a/b");
  EXPECT_EQ(targets[1].qos, 1);
}

TEST(ForwardTargets, UnknownIndexesAndInvalidTopicsAreSkipped) {
  // "a/#" matches "a/"; without its local prefix nothing is left of it.
  auto rules = Parse("# local_prefix=a/");
  EXPECT_TRUE(ForwardTargets(rules, {0, 5}, "a/").empty());
}

TEST(SubscribeRuleFor, FirstMatchingRuleWins) {
  auto rules = Parse("cmd/# 1 remote_prefix=r/, cmd/x 2 remote_prefix=r/");
  const TopicRule* rule = SubscribeRuleFor(rules, "r/cmd/x");
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->qos, 1);
  EXPECT_EQ(SubscribeRuleFor(rules, "cmd/x"), nullptr);
}

TEST(ExpandNode, ReplacesEveryPlaceholder) {
  EXPECT_EQ(ExpandNode("${node}/a/${node}", "n@h"), "n@h/a/n@h");
  EXPECT_EQ(ExpandNode("plain", "n@h"), "plain");
}

}  // namespace
}  // namespace ferry::bridge
