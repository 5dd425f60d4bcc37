#include "ctl/admin_config.h"

#include "ctl/admin_api.h"

namespace ferry::ctl {

namespace {

void ReadAdmin(core::SectionReader& r, AdminConfig* c) {
  r.String("socket", &c->socket_path);
  std::string bind = c->http_bind;
  if (r.String("http_bind", &bind)) {
    c->http_bind = bind;
    c->http_enabled = !bind.empty();
    if (c->http_enabled) {
      auto hp = core::ParseHostPort(bind);
      if (!hp.ok()) {
        r.Error("http_bind", "http_bind: " + hp.status().message());
      } else {
        c->http_host = hp->host;
        c->http_port = hp->port;
      }
    }
  }
  if (r.String("http_token", &c->http_token)) {
    for (char ch : c->http_token) {
      if (ch <= ' ' || ch == 0x7f) {
        r.Error("http_token", "http_token: must not contain spaces or control characters");
        break;
      }
    }
  }
  r.Duration("idle_timeout", std::chrono::milliseconds(100), std::chrono::hours(1),
             &c->idle_timeout);
}

}  // namespace

AdminConfig ReadAdminConfig(const core::RawConfig& raw, core::ConfigErrors& errors) {
  AdminConfig c;
  std::string data_dir = core::NodeConfig{}.data_dir;
  if (const core::ConfigValue* v = raw.Find("node", "data_dir"); v && !v->value.empty()) {
    data_dir = v->value;
  }
  if (const core::ConfigValue* v = raw.Find("node", "name"); v && !v->value.empty()) {
    c.node_name = v->value;
  }
  core::SectionReader r(raw.FindSection(kAdminSection), kAdminSection, errors);
  ReadAdmin(r, &c);
  r.ReportUnknownKeys();
  if (c.socket_path.empty()) c.socket_path = data_dir + "/" + std::string(kDefaultSocketName);
  return c;
}

std::vector<std::string> AdminConfigKeys() {
  core::ConfigErrors ignored;
  core::SectionReader r(nullptr, kAdminSection, ignored);
  AdminConfig unused;
  ReadAdmin(r, &unused);
  return r.known_keys();
}

}  // namespace ferry::ctl
