#include "core/admin.h"

#include <gtest/gtest.h>

#include <thread>

#include "core/loop.h"

namespace ferry::core {
namespace {

class AdminRegistryTest : public ::testing::Test {
 protected:
  // Registers `path ARGS` with a handler that echoes its request.
  void Echo(const std::string& path, const std::string& args,
            std::vector<AdminOption> options = {}) {
    AdminCommand c;
    c.path = path;
    c.args = args;
    c.options = std::move(options);
    c.summary = "echo";
    c.handler = [](const AdminRequest& req, AdminDone done) {
      Json args = Json::object();
      for (const auto& [k, v] : req.args) args[k] = v;
      Json opts = Json::object();
      for (const auto& [k, v] : req.options) opts[k] = v;
      done(AdminResult::Value(
          Json{{"command", req.command}, {"args", args}, {"options", opts}, {"rest", req.rest}}));
    };
    ASSERT_TRUE(registry_.Register(std::move(c)).ok());
  }

  // Dispatches `words` and returns the result it answered with (handlers in
  // these tests answer before Dispatch returns unless they use a thread).
  AdminResult Run(const std::vector<std::string>& words) {
    std::optional<AdminResult> out;
    registry_.Dispatch(words, [&](AdminResult r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value()) << "no answer";
    return out ? std::move(*out) : AdminResult::Error(Status::NotFound("no answer"));
  }

  Loop loop_;
  AdminRegistry registry_{loop_};
};

TEST_F(AdminRegistryTest, PositionalArgumentsAreNamedByTheUsage) {
  Echo("subscriptions add", "ID FILTER QOS");
  AdminResult r = Run({"subscriptions", "add", "c1", "a/#", "1"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value()["command"], "subscriptions add");
  EXPECT_EQ(r.value()["args"], (Json{{"FILTER", "a/#"}, {"ID", "c1"}, {"QOS", "1"}}));
}

TEST_F(AdminRegistryTest, MissingArgumentIsABadArgumentWithUsage) {
  Echo("clients show", "ID");
  AdminResult r = Run({"clients", "show"});
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(AdminErrorKind(r.status()), "bad_argument");
  EXPECT_EQ(r.status().message(), "clients show: missing ID");
  EXPECT_EQ(r.usage(), "clients show ID");
}

TEST_F(AdminRegistryTest, ExtraArgumentIsRefused) {
  Echo("clients show", "ID");
  AdminResult r = Run({"clients", "show", "a", "b"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "clients show: unexpected argument 'b'");
}

TEST_F(AdminRegistryTest, OptionalArgumentMayBeLeftOut) {
  Echo("retained list", "[FILTER]");
  AdminResult without = Run({"retained", "list"});
  ASSERT_TRUE(without.ok());
  EXPECT_TRUE(without.value()["args"].empty());
  AdminResult with = Run({"retained", "list", "a/+"});
  EXPECT_EQ(with.value()["args"]["FILTER"], "a/+");
}

TEST_F(AdminRegistryTest, RepeatedLastArgumentTakesTheRest) {
  Echo("bridges start", "NAME...");
  AdminResult r = Run({"bridges", "start", "a", "b", "c"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()["args"]["NAME"], "a");
  EXPECT_EQ(r.value()["rest"], (Json{"a", "b", "c"}));
}

TEST_F(AdminRegistryTest, OptionsTakeValuesInBothForms) {
  Echo("clients list", "", {{"limit", "N", "rows"}, {"username", "U", "user"}, {"connected", "", ""}});
  AdminResult r = Run({"clients", "list", "--limit", "5", "--username=bob", "--connected"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value()["options"],
            (Json{{"connected", ""}, {"limit", "5"}, {"username", "bob"}}));
}

TEST_F(AdminRegistryTest, BadOptionsAreRefused) {
  Echo("clients list", "", {{"limit", "N", "rows"}, {"connected", "", ""}});
  EXPECT_EQ(Run({"clients", "list", "--nope"}).status().message(),
            "clients list: unknown option --nope");
  EXPECT_EQ(Run({"clients", "list", "--limit"}).status().message(),
            "clients list: --limit needs a value (N)");
  EXPECT_EQ(Run({"clients", "list", "--connected=yes"}).status().message(),
            "clients list: --connected takes no value");
}

TEST_F(AdminRegistryTest, DoubleDashEndsOptions) {
  Echo("retained show", "TOPIC");
  AdminResult r = Run({"retained", "show", "--", "--odd/topic"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value()["args"]["TOPIC"], "--odd/topic");
}

TEST_F(AdminRegistryTest, UintOptionChecksRange) {
  AdminRequest req;
  req.options["limit"] = "12";
  EXPECT_EQ(req.UintOption("limit", 0, 100).value(), 12u);
  EXPECT_EQ(req.UintOption("absent", 7, 100).value(), 7u);
  req.options["limit"] = "101";
  EXPECT_FALSE(req.UintOption("limit", 0, 100).ok());
  req.options["limit"] = "1x";
  EXPECT_EQ(req.UintOption("limit", 0, 100).status().message(),
            "--limit: expected an integer in 0..100, got '1x'");
}

TEST_F(AdminRegistryTest, UnknownCommandHintsAtItsGroup) {
  Echo("clients list", "");
  Echo("clients show", "ID");
  AdminResult r = Run({"clients", "frob"});
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(AdminErrorKind(r.status()), "bad_argument");
  EXPECT_EQ(r.status().message(), "unknown command 'clients frob'; see 'ferryctl help'");
  EXPECT_EQ(r.usage(), "clients list\nclients show ID");
}

TEST_F(AdminRegistryTest, RegisterRefusesClashesAndBadSpecs) {
  Echo("clients list", "");
  auto make = [](std::string path, std::string args) {
    AdminCommand c;
    c.path = std::move(path);
    c.args = std::move(args);
    c.handler = [](const AdminRequest&, AdminDone done) { done(AdminResult::Value(nullptr)); };
    return c;
  };
  EXPECT_FALSE(registry_.Register(make("clients list", "")).ok());
  EXPECT_FALSE(registry_.Register(make("clients", "ID")).ok());
  ASSERT_TRUE(registry_.Register(make("log", "LEVEL")).ok());
  EXPECT_FALSE(registry_.Register(make("log level", "")).ok());
  EXPECT_FALSE(registry_.Register(make("Bad Path", "")).ok());
  EXPECT_FALSE(registry_.Register(make("x", "lower")).ok());
  EXPECT_FALSE(registry_.Register(make("y", "[A] B")).ok());
  EXPECT_FALSE(registry_.Register(make("z", "A... B")).ok());
  AdminCommand no_handler = make("w", "");
  no_handler.handler = nullptr;
  EXPECT_FALSE(registry_.Register(std::move(no_handler)).ok());
  EXPECT_TRUE(registry_.Register(make("clients  show", "ID")).ok());
  std::vector<std::string> paths;
  for (const AdminCommand* c : registry_.Commands()) paths.push_back(c->path);
  EXPECT_EQ(paths, (std::vector<std::string>{"clients list", "clients show", "help", "log"}));
}

// "broker" and "broker stats" may both exist: "broker" takes no arguments.
TEST_F(AdminRegistryTest, LongestPathWins) {
  Echo("broker", "");
  Echo("broker stats", "");
  EXPECT_EQ(Run({"broker"}).value()["command"], "broker");
  EXPECT_EQ(Run({"broker", "stats"}).value()["command"], "broker stats");
  EXPECT_EQ(Run({"broker", "nope"}).status().message(), "broker: unexpected argument 'nope'");
}

TEST_F(AdminRegistryTest, HandlerErrorsKeepTheirKind) {
  AdminCommand c;
  c.path = "clients kick";
  c.args = "ID";
  c.handler = [](const AdminRequest& req, AdminDone done) {
    done(AdminResult::Error(Status::NotFound("no client '" + req.Arg("ID") + "'")));
  };
  ASSERT_TRUE(registry_.Register(std::move(c)).ok());
  AdminResult r = Run({"clients", "kick", "c9"});
  EXPECT_STREQ(AdminErrorKind(r.status()), "not_found");
  EXPECT_EQ(r.status().message(), "no client 'c9'");
  EXPECT_TRUE(r.usage().empty());
  EXPECT_STREQ(AdminErrorKind(Status::Unavailable("x")), "unavailable");
  EXPECT_STREQ(AdminErrorKind(Status::IoError("x")), "internal");
}

TEST_F(AdminRegistryTest, HelpListsCommandsAndDescribesOne) {
  Echo("clients list", "", {{"limit", "N", "at most N rows"}});
  Echo("clients show", "ID");
  AdminResult all = Run({"help"});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value()["commands"].size(), 3u);
  EXPECT_EQ(all.value()["commands"][0]["usage"], "clients list [--limit N]");
  EXPECT_NE(all.text().find("  clients show ID"), std::string::npos) << all.text();

  AdminResult one = Run({"help", "clients", "list"});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one.value()["commands"].size(), 1u);
  EXPECT_NE(one.text().find("usage: ferryctl clients list [--limit N]"), std::string::npos);
  EXPECT_NE(one.text().find("--limit N"), std::string::npos);

  AdminResult none = Run({"help", "nothing"});
  EXPECT_STREQ(AdminErrorKind(none.status()), "not_found");
}

// A handler answering from another thread: the answer arrives on the loop.
TEST_F(AdminRegistryTest, AnswerFromAnotherThreadArrivesOnTheLoop) {
  std::thread worker;
  AdminCommand c;
  c.path = "slow";
  c.handler = [&worker](const AdminRequest&, AdminDone done) {
    worker = std::thread([done] { done(AdminResult::Value(Json{{"from", "thread"}})); });
  };
  ASSERT_TRUE(registry_.Register(std::move(c)).ok());
  std::optional<AdminResult> out;
  bool on_loop = false;
  registry_.Dispatch({"slow"}, [&](AdminResult r) {
    on_loop = loop_.IsLoopThread();
    out = std::move(r);
    loop_.Stop();
  });
  loop_.Run();
  worker.join();
  ASSERT_TRUE(out.has_value());
  EXPECT_TRUE(on_loop);
  EXPECT_EQ(out->value()["from"], "thread");
}

// A listing's pages are pulled one at a time, and come back on the loop even
// when produced on another thread.
TEST_F(AdminRegistryTest, ListingPagesArePulledOneAtATime) {
  std::vector<std::thread> threads;
  AdminCommand c;
  c.path = "numbers";
  c.handler = [&threads](const AdminRequest&, AdminDone done) {
    auto next = std::make_shared<int>(0);
    done(AdminResult::List({{"n", "N"}}, [&threads, next](size_t max_rows, AdminPageDone page) {
      threads.emplace_back([next, max_rows, page] {
        AdminPage p;
        for (size_t i = 0; i < max_rows && *next < 5; ++i) p.rows.push_back({{"n", (*next)++}});
        p.last = *next >= 5;
        page(std::move(p));
      });
    }));
  };
  ASSERT_TRUE(registry_.Register(std::move(c)).ok());
  std::vector<int> seen;
  int pages = 0;
  bool all_on_loop = true;
  std::function<void(AdminPageSource&)> pull;
  AdminPageSource source;
  pull = [&](AdminPageSource& src) {
    src(2, [&](Result<AdminPage> page) {
      all_on_loop = all_on_loop && loop_.IsLoopThread();
      ASSERT_TRUE(page.ok());
      ++pages;
      for (const auto& row : page->rows) seen.push_back(row["n"].get<int>());
      if (page->last) {
        loop_.Stop();
      } else {
        pull(source);
      }
    });
  };
  registry_.Dispatch({"numbers"}, [&](AdminResult r) {
    ASSERT_TRUE(r.is_list());
    EXPECT_EQ(r.columns()[0].title, "N");
    source = std::move(r.source());
    pull(source);
  });
  loop_.Run();
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(pages, 3);
  EXPECT_TRUE(all_on_loop);
}

}  // namespace
}  // namespace ferry::core
