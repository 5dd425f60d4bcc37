// The member set: changes and their epoch, the coordinator, tombstones,
// the set as it travels, and the file that keeps it across restarts.
#include "cluster/membership.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace ferry::cluster {
namespace {

MemberRecord Node(const std::string& node, uint64_t boot_ms, uint64_t incarnation = 1) {
  return MemberRecord{node, "127.0.0.1", 4370, incarnation, boot_ms};
}

TEST(Membership, ChangesRaiseTheEpochAndRepeatsDoNot) {
  Membership m("ferry", Node("a@h", 100));
  EXPECT_EQ(m.epoch(), 1u);
  EXPECT_TRUE(m.Add(Node("b@h", 200)));
  EXPECT_EQ(m.epoch(), 2u);
  EXPECT_FALSE(m.Add(Node("b@h", 200)));
  EXPECT_EQ(m.epoch(), 2u);
  EXPECT_TRUE(m.Add(Node("b@h", 300, 2)));  // b restarted: a new incarnation
  EXPECT_EQ(m.members().at("b@h").incarnation, 2u);
  EXPECT_TRUE(m.Remove("b@h", false));
  EXPECT_FALSE(m.Remove("b@h", false));
  EXPECT_FALSE(m.Remove("a@h", true)) << "a node cannot remove itself";
  EXPECT_EQ(m.members().size(), 1u);
}

TEST(Membership, ForceLeaveLeavesATombstoneThatAJoinClears) {
  Membership m("ferry", Node("a@h", 100));
  m.Add(Node("b@h", 200));
  EXPECT_TRUE(m.Remove("b@h", true));
  EXPECT_FALSE(m.IsMember("b@h"));
  EXPECT_TRUE(m.IsRemoved("b@h"));
  EXPECT_TRUE(m.Remove("c@h", true)) << "a node that is down and unknown can be kept out too";
  EXPECT_TRUE(m.Add(Node("b@h", 300)));
  EXPECT_FALSE(m.IsRemoved("b@h"));
}

TEST(Membership, TheCoordinatorIsTheOldestRunningMember) {
  Membership m("ferry", Node("c@h", 300));
  m.Add(Node("a@h", 100));
  m.Add(Node("b@h", 100));
  m.Add(Node("d@h", 50));
  const std::vector<std::string> running{"a@h", "b@h", "unknown@h"};
  EXPECT_EQ(m.Coordinator(running), "a@h");  // a and b booted together: by name
  EXPECT_EQ(m.Coordinator({}), "c@h");       // alone
  const std::vector<std::string> all{"a@h", "b@h", "d@h"};
  EXPECT_EQ(m.Coordinator(all), "d@h");
}

TEST(Membership, AdoptsOnlyANewerSetOfItsOwnCluster) {
  Membership mine("ferry", Node("a@h", 100));
  Membership theirs("ferry", Node("b@h", 50));
  theirs.Add(Node("a@h", 999, 9));  // their view of a is older
  theirs.Add(Node("c@h", 60));
  theirs.Remove("x@h", true);
  ASSERT_GT(theirs.epoch(), mine.epoch());
  EXPECT_TRUE(mine.Adopt(theirs));
  EXPECT_EQ(mine.epoch(), theirs.epoch());
  EXPECT_EQ(mine.members().size(), 3u);
  EXPECT_EQ(mine.members().at("a@h").boot_ms, 100u) << "its own record stays its own";
  EXPECT_TRUE(mine.IsRemoved("x@h"));
  EXPECT_FALSE(mine.Adopt(theirs)) << "same epoch: nothing newer";
  Membership stranger("other", Node("z@h", 1));
  for (int i = 0; i < 10; ++i) stranger.Add(Node("y" + std::to_string(i) + "@h", 5));
  EXPECT_FALSE(mine.Adopt(stranger));
}

TEST(Membership, ResetLeavesItAloneWithAHigherEpoch) {
  Membership m("ferry", Node("a@h", 100));
  m.Add(Node("b@h", 200));
  m.Remove("c@h", true);
  const uint64_t before = m.epoch();
  m.Reset();
  EXPECT_EQ(m.members().size(), 1u);
  EXPECT_TRUE(m.removed().empty());
  EXPECT_GT(m.epoch(), before);
}

TEST(Membership, TheEncodedSetDecodesToTheSameAndTruncationsFail) {
  Membership m("ferry", Node("a@h", 100));
  m.Add(Node("b@h", 200));
  m.Remove("c@h", true);
  const std::string bytes = m.Encode();
  const std::span<const uint8_t> all(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  auto back = Membership::Decode(all);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->cluster(), "ferry");
  EXPECT_EQ(back->self(), "a@h");
  EXPECT_EQ(back->epoch(), m.epoch());
  EXPECT_EQ(back->members(), m.members());
  EXPECT_EQ(back->removed(), m.removed());
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(Membership::Decode(all.subspan(0, n)).ok()) << n;
}

class MembershipFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-membership-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/cluster.json";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

TEST_F(MembershipFile, SavedAndLoadedWithThisStartsOwnRecord) {
  Membership m("ferry", Node("a@h", 100));
  m.Add(Node("b@h", 200));
  m.Remove("c@h", true);
  ASSERT_TRUE(m.Save(path_).ok());
  EXPECT_EQ(std::filesystem::status(path_).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
  auto back = Membership::Load(path_, "ferry", Node("a@h", 500, 7));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->epoch(), m.epoch());
  EXPECT_TRUE(back->IsMember("b@h"));
  EXPECT_TRUE(back->IsRemoved("c@h"));
  EXPECT_EQ(back->members().at("a@h").incarnation, 7u);
}

TEST_F(MembershipFile, NoFileIsNotFoundAndAGarbledOneIsCorruption) {
  auto none = Membership::Load(path_, "ferry", Node("a@h", 1));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Status::Code::kNotFound);
  std::ofstream(path_) << "{ not json";
  auto bad = Membership::Load(path_, "ferry", Node("a@h", 1));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
}

TEST_F(MembershipFile, ANodeCannotChangeItsNameOrClusterWhileInACluster) {
  Membership m("ferry", Node("a@h", 100));
  m.Add(Node("b@h", 200));
  ASSERT_TRUE(m.Save(path_).ok());
  auto renamed = Membership::Load(path_, "ferry", Node("z@h", 1));
  ASSERT_FALSE(renamed.ok());
  EXPECT_NE(renamed.status().message().find("cannot start as 'z@h'"), std::string::npos)
      << renamed.status().message();
  auto moved = Membership::Load(path_, "other", Node("a@h", 1));
  ASSERT_FALSE(moved.ok());
  EXPECT_NE(moved.status().message().find("in cluster 'ferry'"), std::string::npos);

  Membership alone("ferry", Node("a@h", 100));
  ASSERT_TRUE(alone.Save(path_).ok());
  auto fresh = Membership::Load(path_, "ferry", Node("z@h", 1));
  ASSERT_TRUE(fresh.ok()) << "a node that was alone may take another name";
  EXPECT_EQ(fresh->self(), "z@h");
}

}  // namespace
}  // namespace ferry::cluster
