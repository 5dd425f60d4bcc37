// Every config the project ships passes `ferryd --check-config`, the check
// the systemd unit runs before each start: etc/ferry.conf and every
// etc/examples/**/*.conf, read as written. The files they name (certificates,
// keys, the password, ACL and cookie files) do not exist here, so each is
// stood in for by a real temporary file of its kind through a
// FERRY_<SECTION>__<KEY> override, which --check-config then loads. HAProxy
// accepts every etc/examples/**/haproxy.cfg (`haproxy -c`), and NGINX
// edge-central/nginx.conf (`nginx -t`, with Debian's stream module), with
// the test's certificate in place of the one they name.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/node_process.h"
#include "support/ports.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/test_certs.h"

namespace ferry::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  const size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// FERRY_LISTENER__SSL__DEFAULT__CERTFILE for [listener.ssl.default] certfile.
std::string OverrideName(const std::string& section, const std::string& key) {
  std::string name = "FERRY_";
  for (char c : section + "." + key) {
    if (c == '.') {
      name += "__";
    } else {
      name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  return name;
}

class ExampleConfigs : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeTestCerts(dir_.path(), &certs_));
    password_file_ = dir_.File("passwd");
    CommandResult r =
        RunCommand({FerryBinary(), "--passwd", password_file_, "alice"}, {}, {"FERRY_"}, "s3cret\n");
    ASSERT_TRUE(r.Succeeded()) << r.ToString();
    acl_file_ = dir_.File("acl");
    std::ofstream(acl_file_) << "user alice\ntopic readwrite sensors/#\n";
    cookie_file_ = dir_.File("cookie");
    std::ofstream(cookie_file_) << "0123456789abcdef0123456789abcdef\n";
    ASSERT_EQ(::chmod(cookie_file_.c_str(), 0600), 0);
  }

  // Stand-ins for every file `config` names, as overrides of those keys.
  std::vector<std::pair<std::string, std::string>> StandIns(const std::string& config) {
    const std::pair<const char*, std::string> files[] = {{"certfile", certs_.server_cert},
                                                         {"keyfile", certs_.server_key},
                                                         {"cafile", certs_.ca},
                                                         {"tls_ca_file", certs_.ca},
                                                         {"password_file", password_file_},
                                                         {"acl_file", acl_file_},
                                                         {"cookie_file", cookie_file_}};
    std::vector<std::pair<std::string, std::string>> env;
    std::istringstream in(config);
    std::string section;
    for (std::string line; std::getline(in, line);) {
      line = Trim(line);
      if (line.starts_with("[") && line.ends_with("]")) section = line.substr(1, line.size() - 2);
      const size_t eq = line.find('=');
      if (line.starts_with("#") || eq == std::string::npos) continue;
      const std::string key = Trim(line.substr(0, eq));
      for (const auto& [name, stand_in] : files) {
        if (key == name && !Trim(line.substr(eq + 1)).empty()) {
          env.emplace_back(OverrideName(section, key), stand_in);
        }
      }
    }
    return env;
  }

  TempDir dir_;
  TestCerts certs_;
  std::string password_file_;
  std::string acl_file_;
  std::string cookie_file_;
};

TEST_F(ExampleConfigs, EveryShippedConfigPassesCheckConfig) {
  std::vector<std::string> configs = {FERRY_SOURCE_DIR "/etc/ferry.conf"};
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(FERRY_SOURCE_DIR "/etc/examples")) {
    // keepalived's and nginx's configs sit beside ferry's, and are not ferry's.
    const auto name = entry.path().filename();
    if (entry.path().extension() == ".conf" && name != "keepalived.conf" && name != "nginx.conf") {
      configs.push_back(entry.path().string());
    }
  }
  std::sort(configs.begin() + 1, configs.end());
  ASSERT_GE(configs.size(), 2u) << "no etc/examples/*.conf";
  std::set<std::string> stood_in;
  for (const std::string& path : configs) {
    SCOPED_TRACE(path);
    const auto env = StandIns(ReadFile(path));
    for (const auto& [name, value] : env) stood_in.insert(name);
    CommandResult r =
        RunCommand({FerryBinary(), "--check-config", "-c", path}, env, {"FERRY_"}, "");
    EXPECT_TRUE(r.Succeeded()) << r.ToString();
    EXPECT_EQ(r.out, path + ": configuration OK\n");
  }
  // The central node's TLS files, password file and ACL were all loaded.
  for (const char* name : {"FERRY_LISTENER__SSL__LBTLS__CAFILE", "FERRY_MQTT__PASSWORD_FILE",
                           "FERRY_MQTT__ACL_FILE"}) {
    EXPECT_TRUE(stood_in.count(name)) << name;
  }
}

// A stand-in is what --check-config loads: a file of the wrong kind fails it.
TEST_F(ExampleConfigs, CheckConfigLoadsTheStandIns) {
  const std::string path = FERRY_SOURCE_DIR "/etc/examples/central.conf";
  auto env = StandIns(ReadFile(path));
  for (auto& [name, value] : env) {
    if (name == "FERRY_LISTENER__SSL__LBTLS__CERTFILE") value = acl_file_;
  }
  CommandResult r = RunCommand({FerryBinary(), "--check-config", "-c", path}, env, {"FERRY_"}, "");
  EXPECT_EQ(r.status.code, 1) << r.ToString();
  EXPECT_NE(r.err.find("listener ssl.lbtls: certfile '" + acl_file_ + "'"), std::string::npos)
      << r.ToString();
}

// `text` with every `named` path replaced by `stand_in`; a test failure if
// it names none.
std::string Replaced(std::string text, const std::string& named, const std::string& stand_in) {
  EXPECT_NE(text.find(named), std::string::npos) << named;
  for (size_t at; (at = text.find(named)) != std::string::npos;) {
    text.replace(at, named.size(), stand_in);
  }
  return text;
}

TEST_F(ExampleConfigs, HaproxyAcceptsTheExampleConfigs) {
  const std::pair<const char*, const char*> files[] = {
      {"haproxy.cfg", "/etc/haproxy/certs/mqtt.example.com.pem"},
      {"cluster/haproxy.cfg", "/etc/haproxy/certs/mqtt.example.com.pem"},
      {"edge-central/haproxy.cfg", "/etc/haproxy/certs/mqtt.central.example.com.pem"}};
  for (const auto& [file, named] : files) {
    SCOPED_TRACE(file);
    const std::string cfg = Replaced(
        ReadFile(std::string(FERRY_SOURCE_DIR "/etc/examples/") + file), named, certs_.server_pem);
    const std::string path = dir_.File("haproxy.cfg");
    std::ofstream(path) << cfg;
    CommandResult r = RunCommand({"haproxy", "-c", "-f", path});
    EXPECT_TRUE(r.Succeeded()) << r.ToString();
  }
}

// The stream block is included from the main context of an nginx.conf, as
// the example says; Debian's stream module is loaded by that main file.
TEST_F(ExampleConfigs, NginxAcceptsTheEdgeCentralConfig) {
  std::string stream = ReadFile(FERRY_SOURCE_DIR "/etc/examples/edge-central/nginx.conf");
  stream = Replaced(stream, "/etc/nginx/certs/mqtt.central.example.com.pem", certs_.server_cert);
  stream = Replaced(stream, "/etc/nginx/certs/mqtt.central.example.com.key", certs_.server_key);
  // nginx -t binds what it listens on: a loopback port here.
  stream = Replaced(stream, "listen 10.0.0.10:8883",
                    "listen 127.0.0.1:" + std::to_string(FreePorts(1).at(0)));
  std::ofstream(dir_.File("ferry-central.conf")) << stream;
  const std::string main = dir_.File("nginx.conf");
  std::ofstream(main) << "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
                      << "error_log stderr;\npid " << dir_.File("nginx.pid") << ";\n"
                      << "events {}\ninclude " << dir_.File("ferry-central.conf") << ";\n";
  CommandResult r = RunCommand({"nginx", "-e", "stderr", "-t", "-c", main, "-p", dir_.path()});
  EXPECT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_NE(r.err.find("test is successful"), std::string::npos) << r.ToString();
}

}  // namespace
}  // namespace ferry::testing
