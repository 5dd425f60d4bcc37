#include "core/acl.h"
#include "core/topic.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace ferry::core {
namespace {

const std::optional<std::string> kAnonymous;
const std::optional<std::string> kAlice = "alice";
const std::optional<std::string> kBob = "bob";

Acl MustParse(std::string_view text) {
  Result<Acl> r = Acl::Parse(text, "acl");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : Acl::AllowAll();
}

std::string ParseError(std::string_view text) {
  Result<Acl> r = Acl::Parse(text, "acl");
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

class SampleAcl : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<Acl> r = Acl::Load(FERRY_TEST_DATA_DIR "/config/acl.conf");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    acl_ = std::move(r).value();
  }
  Acl acl_ = Acl::AllowAll();
};

// The worked example in core/acl.h.
TEST_F(SampleAcl, WorkedExampleForAlice) {
  EXPECT_TRUE(acl_.CanPublish(kAlice, "c1", "alice/out"));
  EXPECT_FALSE(acl_.CanReceive(kAlice, "c1", "alice/out"));  // write only
  EXPECT_TRUE(acl_.CanPublish(kAlice, "c1", "sensors/a"));
  EXPECT_TRUE(acl_.CanSubscribe(kAlice, "c1", "sensors/+/temp"));
  EXPECT_TRUE(acl_.CanSubscribe(kAlice, "c1", "sensors/#"));
  EXPECT_FALSE(acl_.CanReceive(kAlice, "c1", "sensors/secret/x"));
  EXPECT_FALSE(acl_.CanPublish(kAlice, "c1", "sensors/secret"));
  EXPECT_TRUE(acl_.CanSubscribe(kAlice, "c1", "devices/alice/c1/#"));
  EXPECT_FALSE(acl_.CanSubscribe(kAlice, "c1", "devices/alice/c2/#"));
  EXPECT_FALSE(acl_.CanSubscribe(kAlice, "c1", "#"));
  EXPECT_FALSE(acl_.CanPublish(kAlice, "c1", "$SYS/x"));
  EXPECT_FALSE(acl_.CanReceive(kAlice, "c1", "$SYS/broker/uptime"));
}

TEST_F(SampleAcl, AnonymousBlockAppliesOnlyToClientsWithoutUsername) {
  EXPECT_TRUE(acl_.CanReceive(kAnonymous, "c", "$SYS/broker/uptime"));
  EXPECT_TRUE(acl_.CanSubscribe(kAnonymous, "c", "$SYS/#"));
  EXPECT_FALSE(acl_.CanPublish(kAnonymous, "c", "$SYS/x"));
  EXPECT_FALSE(acl_.CanReceive(kAnonymous, "c", "sensors/a"));
}

TEST_F(SampleAcl, UsersWithoutBlockGetOnlyPatterns) {
  EXPECT_FALSE(acl_.CanReceive(kBob, "c", "sensors/a"));
  EXPECT_TRUE(acl_.CanReceive(kBob, "c", "devices/bob/c/temp"));
  EXPECT_FALSE(acl_.CanPublish(kBob, "c", "devices/bob/c/temp"));
}

TEST_F(SampleAcl, DenyPatternAppliesToEveryone) {
  EXPECT_FALSE(acl_.CanSubscribe(kAlice, "c1", "secret/#"));
  EXPECT_FALSE(acl_.CanSubscribe(kBob, "c1", "secret/x"));
}

TEST(Acl, AccessWordIsOptionalAndDefaultsToReadWrite) {
  Acl acl = MustParse("topic a/b\ntopic read r\ntopic write w\n");
  EXPECT_TRUE(acl.CanPublish(kAnonymous, "c", "a/b"));
  EXPECT_TRUE(acl.CanReceive(kAnonymous, "c", "a/b"));
  EXPECT_TRUE(acl.CanReceive(kAnonymous, "c", "r"));
  EXPECT_FALSE(acl.CanPublish(kAnonymous, "c", "r"));
  EXPECT_TRUE(acl.CanPublish(kAnonymous, "c", "w"));
  EXPECT_FALSE(acl.CanReceive(kAnonymous, "c", "w"));
}

TEST(Acl, DenyWinsWhateverTheOrder) {
  Acl acl = MustParse("topic deny a/x\ntopic a/#\npattern deny a/y\n");
  EXPECT_TRUE(acl.CanPublish(kAnonymous, "c", "a/z"));
  EXPECT_FALSE(acl.CanPublish(kAnonymous, "c", "a/x"));
  EXPECT_FALSE(acl.CanReceive(kAnonymous, "c", "a/y"));
}

TEST(Acl, SubscribeNeedsARuleCoveringTheWholeFilter) {
  Acl acl = MustParse("topic read sensors/+/temp\ntopic read logs/#\ntopic deny logs/private/#\n");
  EXPECT_TRUE(acl.CanSubscribe(kAnonymous, "c", "sensors/+/temp"));
  EXPECT_TRUE(acl.CanSubscribe(kAnonymous, "c", "sensors/k1/temp"));
  EXPECT_FALSE(acl.CanSubscribe(kAnonymous, "c", "sensors/#"));
  EXPECT_FALSE(acl.CanSubscribe(kAnonymous, "c", "sensors/k1/+"));
  EXPECT_TRUE(acl.CanSubscribe(kAnonymous, "c", "logs"));
  EXPECT_TRUE(acl.CanSubscribe(kAnonymous, "c", "logs/#"));
  EXPECT_FALSE(acl.CanSubscribe(kAnonymous, "c", "logs/private/#"));
  EXPECT_FALSE(acl.CanSubscribe(kAnonymous, "c", "logs/private/a"));
  EXPECT_FALSE(acl.CanReceive(kAnonymous, "c", "logs/private/a"));
}

TEST(Acl, SharedSubscriptionsAreCheckedByTheirFilter) {
  Acl acl = MustParse("topic read jobs/#\n");
  EXPECT_TRUE(acl.CanSubscribe(kAnonymous, "c", "$share/workers/jobs/+"));
  EXPECT_FALSE(acl.CanSubscribe(kAnonymous, "c", "$share/workers/other"));
  EXPECT_FALSE(acl.CanSubscribe(kAnonymous, "c", "$share/+/jobs/a"));
}

// [MQTT-4.7.2-1]: first-level wildcards do not reach '$' topics, for grants;
// a deny rule reaches them, so "deny #" really denies everything.
TEST(Acl, DollarTopicsNeedExplicitGrantsButDenyAlwaysReaches) {
  Acl grant = MustParse("topic #\n");
  EXPECT_TRUE(grant.CanReceive(kAnonymous, "c", "a/b"));
  EXPECT_FALSE(grant.CanReceive(kAnonymous, "c", "$SYS/x"));
  EXPECT_FALSE(grant.CanSubscribe(kAnonymous, "c", "$SYS/#"));
  Acl deny = MustParse("topic $SYS/#\ntopic deny #\n");
  EXPECT_FALSE(deny.CanReceive(kAnonymous, "c", "$SYS/x"));
  EXPECT_FALSE(deny.CanSubscribe(kAnonymous, "c", "$SYS/#"));
  Acl plus = MustParse("topic $SYS/#\ntopic deny +/broker/#\n");
  EXPECT_FALSE(plus.CanReceive(kAnonymous, "c", "$SYS/broker/load"));
  EXPECT_TRUE(plus.CanReceive(kAnonymous, "c", "$SYS/other"));
}

TEST(Acl, PatternsSubstituteUsernameAndClientId) {
  Acl acl = MustParse("pattern write out/%u/%c\npattern read in/%c-rx/#\n");
  EXPECT_TRUE(acl.CanPublish(kAlice, "dev1", "out/alice/dev1"));
  EXPECT_FALSE(acl.CanPublish(kAlice, "dev1", "out/bob/dev1"));
  EXPECT_TRUE(acl.CanReceive(kAnonymous, "dev1", "in/dev1-rx/a"));
  EXPECT_FALSE(acl.CanPublish(kAnonymous, "dev1", "out//dev1"));
}

// A username or client id holding a wildcard or a '/' must not widen a grant.
TEST(Acl, UnsafeSubstitutionsNeverWidenAGrant) {
  Acl acl = MustParse("pattern readwrite devices/%u/#\npattern readwrite cid/%c\n");
  const std::optional<std::string> plus = "+", hash = "#", slash = "bob/x", empty = "";
  EXPECT_FALSE(acl.CanSubscribe(plus, "c", "devices/+/#"));
  EXPECT_FALSE(acl.CanReceive(plus, "c", "devices/bob/x"));
  EXPECT_FALSE(acl.CanSubscribe(hash, "c", "devices/#"));
  EXPECT_FALSE(acl.CanReceive(slash, "c", "devices/bob/x/y"));
  EXPECT_FALSE(acl.CanReceive(empty, "c", "devices//y"));
  EXPECT_FALSE(acl.CanPublish(kAnonymous, "c", "devices/x"));
  EXPECT_FALSE(acl.CanSubscribe(kAlice, "#", "cid/#"));
  EXPECT_FALSE(acl.CanPublish(kAlice, "a/b", "cid/a/b"));
  EXPECT_TRUE(acl.CanPublish(kAlice, "c", "cid/c"));
}

// ... and a deny pattern with such a value denies at least as much as its
// literal reading, by widening the affected level.
TEST(Acl, UnsafeSubstitutionsWidenADeny) {
  Acl acl = MustParse("pattern readwrite #\npattern deny private/%u/#\n");
  const std::optional<std::string> slash = "bob/x", plus = "+";
  EXPECT_FALSE(acl.CanReceive(slash, "c", "private/bob/x/y"));
  EXPECT_FALSE(acl.CanReceive(slash, "c", "private/carol"));
  EXPECT_FALSE(acl.CanReceive(plus, "c", "private/carol/y"));
  EXPECT_TRUE(acl.CanReceive(plus, "c", "public/y"));
  EXPECT_FALSE(acl.CanReceive(kAnonymous, "c", "private/carol/y"));
  EXPECT_FALSE(acl.CanReceive(kAlice, "c", "private/alice/y"));
  EXPECT_TRUE(acl.CanReceive(kAlice, "c", "private/carol/y"));
}

TEST(Acl, CommentsAndSpacesInTopics) {
  Acl acl = MustParse("  # indented comment\r\n"
                      "topic read #   # everything\r\n"
                      "topic write my topic/with spaces  # comment\n"
                      "user alice   # trailing comment\n"
                      "topic read x\n");
  EXPECT_TRUE(acl.CanReceive(kAnonymous, "c", "x/y"));
  EXPECT_TRUE(acl.CanPublish(kAnonymous, "c", "my topic/with spaces"));
  EXPECT_FALSE(acl.CanPublish(kAnonymous, "c", "my topic"));
  EXPECT_TRUE(acl.CanReceive(kAlice, "c", "x"));
}

TEST(Acl, AllowAllAndEmpty) {
  Acl all = Acl::AllowAll();
  EXPECT_TRUE(all.CanPublish(kAnonymous, "c", "$SYS/x"));
  EXPECT_TRUE(all.CanSubscribe(kAlice, "c", "#"));
  Acl none = MustParse("# nothing\n");
  EXPECT_FALSE(none.CanPublish(kAnonymous, "c", "a"));
  EXPECT_FALSE(none.CanSubscribe(kAlice, "c", "a"));
}

TEST(Acl, EveryBadLineIsReportedWithItsNumber) {
  EXPECT_EQ(ParseError("topic read a\n"
                       "topc read a\n"
                       "user\n"
                       "topic\n"
                       "topic read a/#/b\n"
                       "pattern read dev/%x/#\n"
                       "pattern read dev/%\n"
                       "topic deny a+\n"),
            "acl:2: unknown keyword 'topc' (expected topic, pattern or user)\n"
            "acl:3: expected a username after 'user'\n"
            "acl:4: expected a topic filter\n"
            "acl:5: invalid topic filter 'a/#/b': " +
                ValidateTopicFilter("a/#/b").message() +
                "\n"
                "acl:6: unknown substitution '%x' (only %u and %c)\n"
                "acl:7: unknown substitution '%' (only %u and %c)\n"
                "acl:8: invalid topic filter 'a+': " +
                ValidateTopicFilter("a+").message());
}

TEST(Acl, MissingFileIsAnIoError) {
  Result<Acl> r = Acl::Load("/nonexistent/acl");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIoError);
}

TEST(FilterCovers, Cases) {
  EXPECT_TRUE(FilterCovers("#", "a/b"));
  EXPECT_TRUE(FilterCovers("#", "#"));
  EXPECT_TRUE(FilterCovers("a/#", "a"));
  EXPECT_TRUE(FilterCovers("a/#", "a/#"));
  EXPECT_TRUE(FilterCovers("a/#", "a/+/c"));
  EXPECT_TRUE(FilterCovers("a/+", "a/+"));
  EXPECT_TRUE(FilterCovers("a/+", "a/b"));
  EXPECT_TRUE(FilterCovers("+/+", "a/b"));
  EXPECT_FALSE(FilterCovers("a/+", "a/#"));
  EXPECT_FALSE(FilterCovers("a/b", "a/+"));
  EXPECT_FALSE(FilterCovers("a", "a/#"));
  EXPECT_FALSE(FilterCovers("a/b", "a"));
  EXPECT_FALSE(FilterCovers("a/+", "a"));
  EXPECT_FALSE(FilterCovers("a/b/#", "a/+/#"));
  EXPECT_FALSE(FilterCovers("#", "$SYS/#"));
  EXPECT_TRUE(FilterCovers("#", "$SYS/#", /*dollar_rule=*/false));
  EXPECT_TRUE(FilterCovers("$SYS/#", "$SYS/broker"));
}

}  // namespace
}  // namespace ferry::core
