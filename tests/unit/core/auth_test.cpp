#include "core/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ferry::core {
namespace {

namespace fs = std::filesystem;

// Written by mosquitto_passwd 2.0 (101 iterations): alice / secret.
constexpr char kMosquittoPbkdf2[] =
    "alice:$7$101$BR81YEnk0kQJyoCy$FT5q7BeLesVpMdV9z83+CC0ViJFjDjY/J9PEGZ+ZnYqHsVCwoxLx4buQUchutm3a"
    "37okt7AcnVmT3rJVP+Ag0A==";
// mosquitto 1.6 salted SHA-512, sha512("hunter2" + "0123456789ab"): bob / hunter2.
constexpr char kMosquittoSha512[] =
    "bob:$6$MDEyMzQ1Njc4OWFi$Kgl3AxuVCetFEGDDZOAh44c3ssh9wvPft10MPC9Tjr1rwsIDmYUEICH/zUOFhM8vCQKmM"
    "b8nXrQTl7q2T8alUw==";

class PasswordFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ferry-auth-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "passwd").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& text) { std::ofstream(path_) << text; }
  std::string Read() {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  PasswordFile MustLoad() {
    Result<PasswordFile> r = PasswordFile::Load(path_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : PasswordFile::Parse("", "empty").value();
  }
  mode_t Mode() {
    struct stat st;
    return ::stat(path_.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(PasswordFileTest, ReadsMosquittoPbkdf2AndSha512Entries) {
  Result<PasswordFile> f = PasswordFile::Parse(
      std::string("# users\n\n") + kMosquittoPbkdf2 + "\n" + kMosquittoSha512 + "\r\n", "p");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->size(), 2u);
  EXPECT_TRUE(f->Check("alice", "secret"));
  EXPECT_FALSE(f->Check("alice", "Secret"));
  EXPECT_FALSE(f->Check("alice", ""));
  EXPECT_TRUE(f->Check("bob", "hunter2"));
  EXPECT_FALSE(f->Check("bob", "hunter3"));
  EXPECT_FALSE(f->Check("carol", "secret"));
  EXPECT_TRUE(f->Contains("bob"));
  EXPECT_FALSE(f->Contains("carol"));
}

TEST_F(PasswordFileTest, EveryBadLineIsReportedWithItsNumber) {
  Result<PasswordFile> f = PasswordFile::Parse(
      "# ok\n"
      "nocolon\n"
      ":$7$101$BR81YEnk0kQJyoCy$FT5q\n"
      "plain:password\n"
      "x:$7$0$BR81YEnk0kQJyoCy$FT5q\n"
      "x:$7$101$not*base64$FT5q\n"
      "x:$7$101$BR81YEnk0kQJyoCy$c2hvcnQ=\n"
      "x:$6$$c2hvcnQ=\n" +
          std::string(kMosquittoPbkdf2) + "\n" + kMosquittoPbkdf2 + "\n",
      "passwd");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(),
            "passwd:2: expected 'username:hash'\n"
            "passwd:3: empty username\n"
            "passwd:4: unsupported password hash (expected $7$ or $6$, as written by mosquitto_passwd)\n"
            "passwd:5: iterations must be a number in 1..10000000\n"
            "passwd:6: salt is not valid base64\n"
            "passwd:7: hash is not 64 bytes of base64\n"
            "passwd:8: salt is not valid base64\n"
            "passwd:10: duplicate user 'alice' (first at line 9)");
}

TEST_F(PasswordFileTest, MissingFileIsAnIoError) {
  Result<PasswordFile> f = PasswordFile::Load(path_);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Status::Code::kIoError);
}

TEST_F(PasswordFileTest, SetPasswordCreatesAPrivateFile) {
  ASSERT_TRUE(SetPassword(path_, "alice", "s3cret", 1000).ok());
  EXPECT_EQ(Mode(), 0600u);
  EXPECT_EQ(Read().rfind("alice:$7$1000$", 0), 0u);
  PasswordFile f = MustLoad();
  EXPECT_TRUE(f.Check("alice", "s3cret"));
  EXPECT_FALSE(f.Check("alice", "s3cret "));
}

TEST_F(PasswordFileTest, DefaultIterationsAre10000) {
  ASSERT_TRUE(SetPassword(path_, "alice", "pw").ok());
  EXPECT_EQ(Read().rfind("alice:$7$10000$", 0), 0u);
}

TEST_F(PasswordFileTest, SetPasswordReplacesOneEntryAndKeepsEverythingElse) {
  Write(std::string("# team\n") + kMosquittoPbkdf2 + "\n\n# legacy\n" + kMosquittoSha512 + "\n");
  ::chmod(path_.c_str(), 0640);
  ASSERT_TRUE(SetPassword(path_, "alice", "new", 100).ok());
  ASSERT_TRUE(SetPassword(path_, "carol", "pw", 100).ok());
  EXPECT_EQ(Mode(), 0640u);
  std::istringstream lines(Read());
  std::vector<std::string> got;
  for (std::string l; std::getline(lines, l);) got.push_back(l.substr(0, l.find('$')));
  EXPECT_EQ(got, (std::vector<std::string>{"# team", "alice:", "", "# legacy", "bob:", "carol:"}));
  PasswordFile f = MustLoad();
  EXPECT_TRUE(f.Check("alice", "new"));
  EXPECT_FALSE(f.Check("alice", "secret"));
  EXPECT_TRUE(f.Check("bob", "hunter2"));
  EXPECT_TRUE(f.Check("carol", "pw"));
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(PasswordFileTest, DeleteUserRemovesOnlyThatUser) {
  Write(std::string(kMosquittoPbkdf2) + "\n" + kMosquittoSha512 + "\n");
  ASSERT_TRUE(DeleteUser(path_, "alice").ok());
  PasswordFile f = MustLoad();
  EXPECT_FALSE(f.Contains("alice"));
  EXPECT_TRUE(f.Check("bob", "hunter2"));
  Status s = DeleteUser(path_, "alice");
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(s.message(), "user 'alice' is not in " + path_);
}

TEST_F(PasswordFileTest, BadUsernamesAndIterationsAreRefused) {
  for (const char* user : {"", "a:b", "#admin", " lead", "new\nline", "tab\t"}) {
    EXPECT_EQ(SetPassword(path_, user, "pw").code(), Status::Code::kInvalidArgument) << user;
  }
  EXPECT_EQ(SetPassword(path_, "alice", "pw", 0).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(SetPassword(path_, "alice", "pw", 10000001).code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(path_));
}

TEST_F(PasswordFileTest, UnwritableDirectoryIsAnIoError) {
  Status s = SetPassword((dir_ / "missing" / "passwd").string(), "alice", "pw", 1);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
}

bool HaveMosquittoPasswd() { return std::system("command -v mosquitto_passwd >/dev/null 2>&1") == 0; }

TEST_F(PasswordFileTest, AcceptsWhatMosquittoPasswdWrites) {
  if (!HaveMosquittoPasswd()) GTEST_SKIP() << "mosquitto_passwd not installed";
  ASSERT_EQ(std::system(("mosquitto_passwd -c -b " + path_ + " user pass").c_str()), 0);
  ASSERT_EQ(std::system(("mosquitto_passwd -H sha512 -b " + path_ + " old word").c_str()), 0);
  PasswordFile f = MustLoad();
  EXPECT_TRUE(f.Check("user", "pass"));
  EXPECT_FALSE(f.Check("user", "pas"));
  EXPECT_TRUE(f.Check("old", "word"));
}

TEST_F(PasswordFileTest, MosquittoPasswdKeepsWhatWeWrite) {
  if (!HaveMosquittoPasswd()) GTEST_SKIP() << "mosquitto_passwd not installed";
  ASSERT_TRUE(SetPassword(path_, "ours", "pw1").ok());
  ASSERT_EQ(std::system(("mosquitto_passwd -b " + path_ + " theirs pw2").c_str()), 0);
  PasswordFile f = MustLoad();
  EXPECT_TRUE(f.Check("ours", "pw1"));
  EXPECT_TRUE(f.Check("theirs", "pw2"));
}

}  // namespace
}  // namespace ferry::core
