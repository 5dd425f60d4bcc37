// Topic name and topic filter validation, matching, and shared subscription
// parsing (MQTT 5.0 sections 4.7 and 4.8.2).
#include "core/topic.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry::core {
namespace {

::testing::AssertionResult IsNameInvalid(std::string_view name) {
  const Status s = ValidateTopicName(name);
  if (s.ok()) return ::testing::AssertionFailure() << "'" << name << "' was accepted";
  if (s.reason() != ReasonCode::kTopicNameInvalid) {
    return ::testing::AssertionFailure() << "'" << name << "' gave reason "
                                         << static_cast<int>(s.reason());
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsFilterInvalid(std::string_view filter) {
  const Status s = ValidateTopicFilter(filter);
  if (s.ok()) return ::testing::AssertionFailure() << "'" << filter << "' was accepted";
  if (s.reason() != ReasonCode::kTopicFilterInvalid) {
    return ::testing::AssertionFailure() << "'" << filter << "' gave reason "
                                         << static_cast<int>(s.reason());
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsSharedInvalid(std::string_view filter) {
  auto r = ParseSharedFilter(filter);
  if (r.ok()) return ::testing::AssertionFailure() << "'" << filter << "' was accepted";
  if (r.status().reason() != ReasonCode::kTopicFilterInvalid) {
    return ::testing::AssertionFailure() << "'" << filter << "' gave reason "
                                         << static_cast<int>(r.status().reason());
  }
  return ::testing::AssertionSuccess();
}

// ---- Topic names ----

TEST(TopicName, PlainNamesAreValid) {
  for (std::string_view name : {"a", "sport/tennis/player1", "/", "/finance", "finance/", "//",
                                "$SYS/broker/uptime", "a b", "ACCOUNTS"}) {
    EXPECT_TRUE(ValidateTopicName(name).ok()) << name;
  }
}

TEST(TopicName, EmptyNameIsInvalid) {
  EXPECT_TRUE(IsNameInvalid(""));  // [MQTT-4.7.3-1]
}

TEST(TopicName, WildcardsAreNotAllowed) {
  // [MQTT-3.3.2-2]
  for (std::string_view name : {"+", "#", "a/+", "a/#", "a+b", "sport/tennis#"}) {
    EXPECT_TRUE(IsNameInvalid(name));
  }
}

TEST(TopicName, NullCharacterIsInvalid) {
  EXPECT_TRUE(IsNameInvalid(std::string_view("a\0b", 3)));  // [MQTT-4.7.3-2]
}

TEST(TopicName, LongestEncodableNameIsValidAndOneMoreByteIsNot) {
  // [MQTT-4.7.3-3]
  EXPECT_TRUE(ValidateTopicName(std::string(65535, 'a')).ok());
  EXPECT_TRUE(IsNameInvalid(std::string(65536, 'a')));
}

// ---- Topic filters ----

TEST(TopicFilter, SpecExamplesAreValid) {
  for (std::string_view f : {"sport/tennis/player1/#", "sport/#", "#", "+", "sport/tennis/+",
                             "+/tennis/#", "sport/+/player1", "/+", "+/+", "$SYS/#",
                             "$SYS/monitor/+", "/", "a//b", "+/", "/#"}) {
    EXPECT_TRUE(ValidateTopicFilter(f).ok()) << f;
  }
}

TEST(TopicFilter, EmptyFilterIsInvalid) {
  EXPECT_TRUE(IsFilterInvalid(""));  // [MQTT-4.7.3-1]
}

TEST(TopicFilter, HashMustBeLastLevel) {
  // [MQTT-4.7.1-1]
  EXPECT_TRUE(IsFilterInvalid("sport/tennis/#/ranking"));
  EXPECT_TRUE(IsFilterInvalid("#/a"));
  EXPECT_TRUE(IsFilterInvalid("#/"));
  EXPECT_TRUE(IsFilterInvalid("a/#/#"));
}

TEST(TopicFilter, HashMustOccupyAWholeLevel) {
  // [MQTT-4.7.1-1]
  EXPECT_TRUE(IsFilterInvalid("sport/tennis#"));
  EXPECT_TRUE(IsFilterInvalid("a/#b"));
  EXPECT_TRUE(IsFilterInvalid("##"));
  EXPECT_TRUE(IsFilterInvalid("+#"));
}

TEST(TopicFilter, PlusMustOccupyAWholeLevel) {
  // [MQTT-4.7.1-2]
  EXPECT_TRUE(IsFilterInvalid("sport+"));
  EXPECT_TRUE(IsFilterInvalid("sport/+tennis"));
  EXPECT_TRUE(IsFilterInvalid("++"));
  EXPECT_TRUE(IsFilterInvalid("a/b+/c"));
}

TEST(TopicFilter, NullCharacterIsInvalid) {
  EXPECT_TRUE(IsFilterInvalid(std::string_view("a/\0", 3)));  // [MQTT-4.7.3-2]
}

TEST(TopicFilter, LongestEncodableFilterIsValidAndOneMoreByteIsNot) {
  // [MQTT-4.7.3-3]
  EXPECT_TRUE(ValidateTopicFilter(std::string(65535, '/')).ok());
  EXPECT_TRUE(IsFilterInvalid(std::string(65536, 'a')));
}

TEST(TopicFilter, HasWildcardSeesPlusAndHash) {
  EXPECT_TRUE(HasWildcard("a/+"));
  EXPECT_TRUE(HasWildcard("#"));
  EXPECT_TRUE(HasWildcard("+/b/#"));
  EXPECT_FALSE(HasWildcard("a/b"));
  EXPECT_FALSE(HasWildcard("$SYS/x"));
}

// ---- Matching (MQTT 5.0 section 4.7) ----

TEST(TopicMatch, MultiLevelWildcardMatchesParentAndEveryDescendant) {
  // Section 4.7.1.2: "sport/tennis/player1/#" receives all three.
  EXPECT_TRUE(TopicMatches("sport/tennis/player1/#", "sport/tennis/player1"));
  EXPECT_TRUE(TopicMatches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
  EXPECT_TRUE(TopicMatches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
  EXPECT_FALSE(TopicMatches("sport/tennis/player1/#", "sport/tennis/player2"));
  EXPECT_FALSE(TopicMatches("sport/tennis/player1/#", "sport/tennis"));
}

TEST(TopicMatch, SportHashMatchesSport) {
  // Section 4.7.1.2: '#' includes the parent level.
  EXPECT_TRUE(TopicMatches("sport/#", "sport"));
  EXPECT_TRUE(TopicMatches("sport/#", "sport/"));
  EXPECT_FALSE(TopicMatches("sport/#", "sports"));
}

TEST(TopicMatch, HashAloneMatchesEveryNameNotStartingWithDollar) {
  for (std::string_view name : {"a", "/", "a/b/c", "/finance", "x/$SYS"}) {
    EXPECT_TRUE(TopicMatches("#", name)) << name;
  }
}

TEST(TopicMatch, PlusMatchesExactlyOneLevel) {
  // Section 4.7.1.3.
  EXPECT_TRUE(TopicMatches("sport/tennis/+", "sport/tennis/player1"));
  EXPECT_TRUE(TopicMatches("sport/tennis/+", "sport/tennis/player2"));
  EXPECT_FALSE(TopicMatches("sport/tennis/+", "sport/tennis/player1/ranking"));
  EXPECT_FALSE(TopicMatches("sport/+", "sport"));
  EXPECT_TRUE(TopicMatches("sport/+", "sport/"));
  EXPECT_TRUE(TopicMatches("+/tennis/#", "sport/tennis/player1"));
  EXPECT_TRUE(TopicMatches("sport/+/player1", "sport/tennis/player1"));
}

TEST(TopicMatch, PlusMatchesEmptyLevels) {
  // Section 4.7.1.3: "+/+" and "/+" match "/finance", "+" does not.
  EXPECT_TRUE(TopicMatches("+/+", "/finance"));
  EXPECT_TRUE(TopicMatches("/+", "/finance"));
  EXPECT_FALSE(TopicMatches("+", "/finance"));
  EXPECT_TRUE(TopicMatches("+", "finance"));
  EXPECT_TRUE(TopicMatches("a/+/b", "a//b"));
}

TEST(TopicMatch, WildcardsAtTheFirstLevelDoNotMatchDollarNames) {
  // [MQTT-4.7.2-1] and the $SYS examples of section 4.7.2.
  EXPECT_FALSE(TopicMatches("#", "$SYS/monitor/Clients"));
  EXPECT_FALSE(TopicMatches("#", "$SYS"));
  EXPECT_FALSE(TopicMatches("+/monitor/Clients", "$SYS/monitor/Clients"));
  EXPECT_FALSE(TopicMatches("+", "$SYS"));
  EXPECT_FALSE(TopicMatches("+/#", "$SYS/x"));
  EXPECT_TRUE(TopicMatches("$SYS/#", "$SYS/monitor/Clients"));
  EXPECT_TRUE(TopicMatches("$SYS/#", "$SYS"));
  EXPECT_TRUE(TopicMatches("$SYS/monitor/+", "$SYS/monitor/Clients"));
  EXPECT_TRUE(TopicMatches("$SYS/monitor/Clients", "$SYS/monitor/Clients"));
}

TEST(TopicMatch, DollarInALaterLevelIsAnOrdinaryCharacter) {
  EXPECT_TRUE(TopicMatches("a/#", "a/$b"));
  EXPECT_TRUE(TopicMatches("a/+", "a/$b"));
  EXPECT_TRUE(TopicMatches("+/$b", "a/$b"));
}

TEST(TopicMatch, LevelsAreCaseSensitiveAndCompareWhole) {
  EXPECT_FALSE(TopicMatches("ACCOUNTS", "Accounts"));
  EXPECT_FALSE(TopicMatches("a/b", "a/bc"));
  EXPECT_FALSE(TopicMatches("a/bc", "a/b"));
  EXPECT_FALSE(TopicMatches("a", "a/"));
  EXPECT_FALSE(TopicMatches("a/", "a"));
  EXPECT_TRUE(TopicMatches("a/", "a/"));
  EXPECT_TRUE(TopicMatches("/", "/"));
}

TEST(TopicMatch, ExtraNameLevelsDoNotMatchWithoutHash) {
  EXPECT_FALSE(TopicMatches("a/b", "a/b/c"));
  EXPECT_FALSE(TopicMatches("a/b/c", "a/b"));
  EXPECT_TRUE(TopicMatches("a/b/c", "a/b/c"));
}

// ---- Shared subscriptions (MQTT 5.0 section 4.8.2) ----

TEST(SharedFilter, OrdinaryFiltersAreNotShared) {
  for (std::string_view f :
       {"a/b", "#", "$share", "$queue", "$SYS/#", "$sharex/g/a", "a/$share/g/b"}) {
    auto r = ParseSharedFilter(f);
    ASSERT_TRUE(r.ok()) << f;
    EXPECT_FALSE(r.value().has_value()) << f;
  }
}

TEST(SharedFilter, ShareFormYieldsGroupAndFilter) {
  auto r = ParseSharedFilter("$share/consumer1/sport/tennis/+");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r.value().has_value());
  EXPECT_EQ(r.value()->group, "consumer1");
  EXPECT_EQ(r.value()->filter, "sport/tennis/+");
}

TEST(SharedFilter, FilterMayBeAWildcardOrStartWithSlash) {
  auto r = ParseSharedFilter("$share/g/#");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()->filter, "#");
  r = ParseSharedFilter("$share/g//finance");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()->group, "g");
  EXPECT_EQ(r.value()->filter, "/finance");
}

TEST(SharedFilter, QueueFormHasGroupQueue) {
  auto r = ParseSharedFilter("$queue/jobs/+");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r.value().has_value());
  EXPECT_EQ(r.value()->group, "$queue");
  EXPECT_EQ(r.value()->filter, "jobs/+");
}

TEST(SharedFilter, ShareNameMustNotBeEmpty) {
  EXPECT_TRUE(IsSharedInvalid("$share//a"));  // [MQTT-4.8.2-1]
  EXPECT_TRUE(IsSharedInvalid("$share/"));
}

TEST(SharedFilter, ShareNameMustNotHoldWildcards) {
  // [MQTT-4.8.2-2]
  EXPECT_TRUE(IsSharedInvalid("$share/+/a"));
  EXPECT_TRUE(IsSharedInvalid("$share/#/a"));
  EXPECT_TRUE(IsSharedInvalid("$share/g+/a"));
  EXPECT_TRUE(IsSharedInvalid("$share/#"));
}

TEST(SharedFilter, ShareNameMustBeFollowedByAFilter) {
  // [MQTT-4.8.2-2]
  EXPECT_TRUE(IsSharedInvalid("$share/group"));
  EXPECT_TRUE(IsSharedInvalid("$share/group/"));
  EXPECT_TRUE(IsSharedInvalid("$queue/"));
}

TEST(SharedFilter, FilterPartIsValidated) {
  EXPECT_TRUE(IsSharedInvalid("$share/g/a/#/b"));  // [MQTT-4.7.1-1]
  EXPECT_TRUE(IsSharedInvalid("$share/g/a+"));     // [MQTT-4.7.1-2]
  EXPECT_TRUE(IsSharedInvalid("$queue/a#"));
}

}  // namespace
}  // namespace ferry::core
