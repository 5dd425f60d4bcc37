#include "cluster/cluster_config.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "cluster/peer_address.h"

namespace ferry::cluster {
namespace {

constexpr std::string_view kDiscovery[] = {"manual", "static"};

bool IsClusterName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// The cookie in `path`, without a trailing newline. The file must be the
// owner's alone: a cookie others can read lets them into the cluster.
std::string ReadCookieFile(const std::string& path, core::SectionReader& node) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    node.Error("cookie_file", "cookie_file: cannot read '" + path + "'");
    return "";
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    node.Error("cookie_file", "cookie_file: '" + path +
                                  "' must be readable by its owner only (mode " + mode +
                                  "; chmod 600 it)");
    return "";
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string cookie = text.str();
  while (!cookie.empty() && std::isspace(static_cast<unsigned char>(cookie.back()))) {
    cookie.pop_back();
  }
  if (!in || cookie.empty())
    node.Error("cookie_file", "cookie_file: '" + path + "' holds no cookie");
  return cookie;
}

void ReadCluster(core::SectionReader& r, ClusterConfig* c) {
  if (r.String("name", &c->name) && !IsClusterName(c->name)) {
    r.Error("name", "name: expected letters, digits, '_' and '-', got '" + c->name + "'");
  }
  size_t discovery = 0;
  if (r.Choice("discovery", kDiscovery, &discovery)) c->discovery = std::string(kDiscovery[discovery]);
  // Empty: 0.0.0.0 and the port of the node name (DefaultClusterPort).
  std::string listen;
  if (r.String("listen", &listen) && !listen.empty()) {
    auto hp = core::ParseHostPort(listen);
    if (!hp.ok()) return r.Error("listen", "listen: " + hp.status().message());
    c->listen_host = hp->host;
    c->listen_port = hp->port;
  }
  r.Bool("ssl", &c->ssl);
  r.String("certfile", &c->tls.certfile);
  r.String("keyfile", &c->tls.keyfile);
  r.String("cafile", &c->tls.cafile);
  if (c->ssl) {
    for (auto [key, value] : {std::pair{"certfile", &c->tls.certfile},
                              std::pair{"keyfile", &c->tls.keyfile},
                              std::pair{"cafile", &c->tls.cafile}}) {
      if (value->empty()) r.Error(key, std::string(key) + ": required with ssl = on");
    }
  }
  std::chrono::milliseconds down_after{c->peer_down_after_ms};
  if (r.Duration("peer_down_after", std::chrono::seconds(1), std::chrono::hours(1), &down_after)) {
    c->peer_down_after_ms = static_cast<uint64_t>(down_after.count());
  }
}

void ReadStatic(core::SectionReader& r, ClusterConfig* c) {
  if (!r.List("seeds", &c->static_seeds)) return;
  for (const std::string& seed : c->static_seeds) {
    if (auto a = ParsePeerAddress(seed); !a.ok()) {
      r.Error("seeds", "seeds: '" + seed + "': " + a.status().message());
    }
  }
}

}  // namespace

ClusterConfig ReadClusterConfig(const core::Config& config, core::ConfigErrors& errors) {
  ClusterConfig c;
  c.listen_port = DefaultClusterPort(config.node.name);
  core::SectionReader r(config.raw.FindSection("cluster"), "cluster", errors);
  ReadCluster(r, &c);
  r.ReportUnknownKeys();
  core::SectionReader statics(config.raw.FindSection("cluster.static"), "cluster.static", errors);
  ReadStatic(statics, &c);
  statics.ReportUnknownKeys();
  if (c.discovery == "static" && c.static_seeds.empty()) {
    statics.Error("seeds", "seeds: required with [cluster] discovery = static");
  }
  // [node] belongs to the core, which checked its keys; only the cookie
  // file's contents are this module's to check.
  core::SectionReader node(config.raw.FindSection("node"), "node", errors);
  if (!config.node.cookie_file.empty()) {
    c.cookie = ReadCookieFile(config.node.cookie_file, node);
  } else {
    c.cookie = config.node.cookie;
  }
  c.enabled = !c.cookie.empty();
  if (c.enabled && c.ssl && !c.tls.certfile.empty() && !c.tls.keyfile.empty() &&
      !c.tls.cafile.empty()) {
    // The files are read now, so that --check-config and a start both say
    // what is wrong with them.
    auto contexts = MakePeerTlsContexts(c.tls);
    if (contexts.ok()) {
      c.tls_contexts = std::move(contexts).value();
    } else {
      r.Error("ssl", contexts.status().message());
    }
  }
  if (!c.enabled) {
    c.why_disabled =
        "this node has no cluster cookie: set [node] cookie or cookie_file (the same on every "
        "member) and restart it";
  }
  return c;
}

std::vector<std::pair<std::string, std::string>> ClusterConfigKeys() {
  core::ConfigErrors ignored;
  core::SectionReader r(nullptr, "cluster", ignored);
  ClusterConfig unused;
  ReadCluster(r, &unused);
  core::SectionReader statics(nullptr, "cluster.static", ignored);
  ReadStatic(statics, &unused);
  std::vector<std::pair<std::string, std::string>> keys;
  for (const std::string& k : r.known_keys()) keys.emplace_back("cluster", k);
  for (const std::string& k : statics.known_keys()) keys.emplace_back("cluster.static", k);
  return keys;
}

}  // namespace ferry::cluster
