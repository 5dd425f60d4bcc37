#include "ctl/ctl_render.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace ferry::ctl {
namespace {

struct Rendered {
  std::string out;
  std::optional<CtlError> error;
  bool complete = false;
};

// Feeds `frames` (one JSON frame per line) to an Output.
Rendered Render(bool json, const std::string& frames) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  Rendered r;
  {
    Output out(json, f);
    LineSplitter lines(1 << 20);
    bool ok = lines.Feed(frames.data(), frames.size(), [&](std::string_view line) {
      auto frame = DecodeFrame(line);
      EXPECT_TRUE(frame.ok()) << line;
      return frame.ok() && out.OnFrame(frame.value());
    });
    EXPECT_TRUE(ok);
    r.error = out.error();
    r.complete = out.complete();
  }
  std::fclose(f);
  r.out.assign(buf, len);
  std::free(buf);
  return r;
}

const std::string kList =
    Frame("list", Json{{"columns", Json::array({Json{{"key", "id"}, {"title", "ID"}},
                                                 Json{{"key", "up"}, {"title", "UP"}}})}}) +
    Frame("rows", Json{{"rows", Json::array({Json{{"id", "a"}, {"up", true}},
                                              Json{{"id", "long-name"}, {"up", nullptr}}})}}) +
    Frame("rows", Json{{"rows", Json::array({Json{{"id", "c"}, {"up", false}}})}}) +
    Frame("end", Json{{"count", 3}});

TEST(Output, ListingIsATableSizedByItsFirstPage) {
  EXPECT_EQ(Render(false, kList).out,
            "ID         UP\n"
            "a          yes\n"
            "long-name  -\n"
            "c          no\n");
}

TEST(Output, ListingAsJsonIsOneArray) {
  std::string out = Render(true, kList).out;
  Json parsed = Json::parse(out, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << out;
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[1]["id"], "long-name");
}

TEST(Output, NestedValuesFlattenToKeyLines) {
  std::string frames = ValueFrame(Json{{"connections", {{"count", 1}, {"max", 2}}}, {"node", "n@h"}}, "");
  EXPECT_EQ(Render(false, frames).out,
            "connections/count : 1\n"
            "connections/max   : 2\n"
            "node              : n@h\n");
}

TEST(Output, TextWinsForPeopleAndJsonForScripts) {
  std::string frames = ValueFrame(Json{{"node", "n"}}, "Node 'n' is started\n");
  EXPECT_EQ(Render(false, frames).out, "Node 'n' is started\n");
  EXPECT_EQ(Render(true, frames).out, "{\n  \"node\": \"n\"\n}\n");
}

TEST(Output, KeepsTheErrorAReplyEndsWith) {
  Rendered r = Render(false, ErrorFrame("not_found", "no client 'x'"));
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->kind, "not_found");
  EXPECT_EQ(ExitCodeForKind(r.error->kind), 4);
  EXPECT_TRUE(r.complete);
}

TEST(Output, RefusesFramesOutOfOrder) {
  Output out(false, stdout);
  EXPECT_FALSE(out.OnFrame(DecodeFrame(Frame("rows", Json{{"rows", Json::array()}})).value()));
}

TEST(AdminApi, RequestsRoundTripAndBadOnesAreRefused) {
  bool bad_version = false;
  std::string line = EncodeRequest({"clients", "show", "c1"});
  ASSERT_EQ(line.back(), '\n');
  line.pop_back();
  auto words = DecodeRequest(line, &bad_version);
  ASSERT_TRUE(words.ok());
  EXPECT_EQ(words.value(), (std::vector<std::string>{"clients", "show", "c1"}));
  EXPECT_FALSE(DecodeRequest("garbage", &bad_version).ok());
  EXPECT_FALSE(DecodeRequest(R"({"v":1,"argv":[1]})", &bad_version).ok());
  EXPECT_FALSE(DecodeRequest(R"({"v":2,"argv":[]})", &bad_version).ok());
  EXPECT_TRUE(bad_version);
  EXPECT_FALSE(DecodeFrame(R"({"v":2,"type":"value"})").ok());
  EXPECT_FALSE(DecodeFrame(R"({"v":1,"type":"what"})").ok());
}

}  // namespace
}  // namespace ferry::ctl
