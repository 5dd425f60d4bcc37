#include "ctl/admin_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace ferry::ctl {
namespace {

AdminConfig Read(std::string_view text, std::string* errors_out = nullptr,
                 char** envp = nullptr) {
  auto raw = core::ParseConfigString(text, "t.conf", envp);
  EXPECT_TRUE(raw.ok()) << raw.status().ToString();
  core::ConfigErrors errors;
  AdminConfig c = ReadAdminConfig(raw.value(), errors);
  if (errors_out != nullptr) *errors_out = errors.ToStatus().message();
  return c;
}

TEST(AdminConfig, DefaultsPutTheSocketInDataDir) {
  AdminConfig c = Read("[node]\ndata_dir = /var/lib/ferry\nname = a@h\n");
  EXPECT_EQ(c.socket_path, "/var/lib/ferry/ferry.sock");
  EXPECT_TRUE(c.http_enabled);
  EXPECT_EQ(c.http_host, "127.0.0.1");
  EXPECT_EQ(c.http_port, 18083);
  EXPECT_EQ(c.node_name, "a@h");
  EXPECT_EQ(Read("").socket_path, "data/ferry.sock");
}

TEST(AdminConfig, EmptyHttpBindTurnsHttpOff) {
  AdminConfig c = Read("[admin]\nhttp_bind =\nsocket = /run/f.sock\n");
  EXPECT_FALSE(c.http_enabled);
  EXPECT_EQ(c.socket_path, "/run/f.sock");
}

TEST(AdminConfig, EnvironmentOverridesApply) {
  std::string env = "FERRY_ADMIN__HTTP_BIND=[::1]:0";
  char* envp[] = {env.data(), nullptr};
  AdminConfig c = Read("", nullptr, envp);
  EXPECT_EQ(c.http_host, "::1");
  EXPECT_EQ(c.http_port, 0);
}

TEST(AdminConfig, ErrorsNameFileLineAndKey) {
  std::string errors;
  Read("[admin]\nhttp_bind = nohost\nhttp_token = a b\nsokcet = x\n", &errors);
  EXPECT_NE(errors.find("t.conf:2: [admin] http_bind: "), std::string::npos) << errors;
  EXPECT_NE(errors.find("t.conf:3: [admin] http_token: must not contain spaces"),
            std::string::npos) << errors;
  EXPECT_NE(errors.find("t.conf:4: [admin] unknown key 'sokcet'"), std::string::npos) << errors;
}

TEST(AdminConfig, ShippedFileDocumentsEveryKeyWithItsDefault) {
  const std::string path = FERRY_SOURCE_DIR "/etc/ferry.conf";
  auto raw = core::ParseConfigFile(path, nullptr);
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  for (const std::string& key : AdminConfigKeys()) {
    const core::ConfigValue* v = raw->Find("admin", key);
    ASSERT_NE(v, nullptr) << "[admin] " << key << " is not in etc/ferry.conf";
    EXPECT_EQ(lines[v->line - 2].rfind("#", 0), 0u) << key << " has no comment above it";
  }
  core::ConfigErrors errors;
  AdminConfig shipped = ReadAdminConfig(raw.value(), errors);
  EXPECT_TRUE(errors.empty()) << errors.ToStatus().message();
  AdminConfig defaults;
  EXPECT_EQ(shipped.http_bind, defaults.http_bind);
  EXPECT_EQ(shipped.http_token, defaults.http_token);
  EXPECT_EQ(shipped.idle_timeout, defaults.idle_timeout);
  EXPECT_EQ(shipped.socket_path, "data/ferry.sock");
}

}  // namespace
}  // namespace ferry::ctl
