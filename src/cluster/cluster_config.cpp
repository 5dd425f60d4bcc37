#include "cluster/cluster_config.h"

#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <fstream>
#include <span>
#include <sstream>

#include "cluster/peer_address.h"

namespace ferry::cluster {
namespace {

constexpr std::string_view kDiscovery[] = {"manual", "static", "dns", "etcd", "k8s", "mcast"};
constexpr std::string_view kLockTypes[] = {"local", "leader", "quorum", "all"};
constexpr std::string_view kAutohealModes[] = {"soft", "restart"};
constexpr std::string_view kRecordTypes[] = {"a", "aaaa", "srv"};
constexpr std::string_view kAddressTypes[] = {"ip", "dns", "hostname"};

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
  if (r.Choice("discovery", kDiscovery, &discovery)) {
    c->discovery.strategy = std::string(kDiscovery[discovery]);
  }
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
  r.Bool("autoheal", &c->autoheal);
  size_t mode = 0;
  if (r.Choice("autoheal_mode", kAutohealModes, &mode)) c->autoheal_restart = mode == 1;
  std::chrono::milliseconds delay{c->autoheal_delay_ms};
  if (r.Duration("autoheal_delay", std::chrono::milliseconds(0), std::chrono::hours(1), &delay)) {
    c->autoheal_delay_ms = static_cast<uint64_t>(delay.count());
  }
  size_t locking = 0;
  if (r.Choice("session_locking", kLockTypes, &locking)) {
    c->session_locking = ParseLockType(kLockTypes[locking]).value();
  }
  // A bridge locked by each node alone would run on every node.
  if (r.Choice("bridge_locking", std::span(kLockTypes).subspan(1), &locking)) {
    c->bridge_locking = ParseLockType(kLockTypes[locking + 1]).value();
  }
  std::chrono::milliseconds clean{c->autoclean_ms};
  if (r.Duration("autoclean", std::chrono::milliseconds(0), std::chrono::hours(24 * 365), &clean)) {
    c->autoclean_ms = static_cast<uint64_t>(clean.count());
    if (c->autoclean_ms != 0 && c->autoclean_ms < c->peer_down_after_ms) {
      r.Error("autoclean", "autoclean: must be 0 (never) or at least peer_down_after");
    }
  }
}

void ReadStatic(core::SectionReader& r, DiscoveryConfig* c) {
  if (!r.List("seeds", &c->static_seeds)) return;
  for (const std::string& seed : c->static_seeds) {
    if (auto a = ParsePeerAddress(seed); !a.ok()) {
      r.Error("seeds", "seeds: '" + seed + "': " + a.status().message());
    }
  }
}

// The `app` part of a node name: what ParsePeerAddress takes before '@'.
void CheckAppName(core::SectionReader& r, std::string_view key, const std::string& app) {
  if (!ParsePeerAddress(app + "@h").ok()) {
    r.Error(key, std::string(key) + ": expected letters, digits, '_' and '-', got '" + app + "'");
  }
}

void ReadDns(core::SectionReader& r, DnsDiscoveryOptions* o) {
  r.String("name", &o->name);
  if (r.String("app", &o->app)) CheckAppName(r, "app", o->app);
  size_t type = 0;
  if (r.Choice("record_type", kRecordTypes, &type)) o->record_type = std::string(kRecordTypes[type]);
  std::vector<std::string> servers;
  if (r.List("server", &servers)) {
    o->servers.clear();
    for (const std::string& s : servers) {
      if (auto hp = core::ParseHostPort(s); !hp.ok()) {
        r.Error("server", "server: '" + s + "': " + hp.status().message());
      }
      o->servers += (o->servers.empty() ? "" : ",") + s;
    }
  }
}

void ReadTlsFiles(core::SectionReader& r, HttpTlsFiles* tls) {
  r.String("cafile", &tls->cafile);
  r.String("certfile", &tls->certfile);
  r.String("keyfile", &tls->keyfile);
  if (tls->certfile.empty() != tls->keyfile.empty()) {
    r.Error("certfile", "certfile and keyfile: both or neither");
  }
}

bool IsHttpUrl(const std::string& url) {
  return (url.starts_with("http://") && url.size() > 7) ||
         (url.starts_with("https://") && url.size() > 8);
}

void ReadEtcd(core::SectionReader& r, EtcdDiscoveryOptions* o) {
  if (r.List("server", &o->servers)) {
    for (std::string& s : o->servers) {
      while (s.ends_with('/')) s.pop_back();
      if (!IsHttpUrl(s)) r.Error("server", "server: '" + s + "': expected http://host:port or https://host:port");
    }
  }
  if (r.String("prefix", &o->prefix) && (o->prefix.empty() || o->prefix.find(' ') != std::string::npos)) {
    r.Error("prefix", "prefix: expected a key prefix without spaces");
  }
  std::chrono::milliseconds ttl{o->node_ttl_ms};
  if (r.Duration("node_ttl", std::chrono::seconds(5), std::chrono::hours(24), &ttl)) {
    o->node_ttl_ms = static_cast<uint64_t>(ttl.count());
  }
  ReadTlsFiles(r, &o->tls);
}

void ReadK8s(core::SectionReader& r, K8sDiscoveryOptions* o) {
  if (r.String("apiserver", &o->apiserver) && !IsHttpUrl(o->apiserver)) {
    r.Error("apiserver", "apiserver: expected https://host:port (or http://)");
  }
  r.String("service_name", &o->service_name);
  size_t type = 0;
  if (r.Choice("address_type", kAddressTypes, &type)) {
    o->address_type = std::string(kAddressTypes[type]);
  }
  if (r.String("app_name", &o->app_name)) CheckAppName(r, "app_name", o->app_name);
  r.String("namespace", &o->name_space);
  r.String("suffix", &o->suffix);
  r.String("token_file", &o->token_file);
  r.String("cafile", &o->cafile);
}

void ReadMcast(core::SectionReader& r, McastDiscoveryOptions* o) {
  if (r.String("addr", &o->addr)) {
    in_addr a{};
    if (inet_pton(AF_INET, o->addr.c_str(), &a) != 1 || !IN_MULTICAST(ntohl(a.s_addr))) {
      r.Error("addr", "addr: expected an IPv4 multicast group (224.0.0.0 to 239.255.255.255), got '" +
                          o->addr + "'");
    }
  }
  std::vector<std::string> ports;
  if (r.List("ports", &ports)) {
    o->ports.clear();
    for (const std::string& p : ports) {
      unsigned v = 0;
      auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
      if (ec != std::errc() || end != p.data() + p.size() || v == 0 || v > 65535) {
        r.Error("ports", "ports: '" + p + "' is no port (1 to 65535)");
        continue;
      }
      o->ports.push_back(static_cast<uint16_t>(v));
    }
    if (o->ports.empty()) r.Error("ports", "ports: at least one port");
  }
  if (r.String("iface", &o->iface)) {
    in_addr a{};
    if (inet_pton(AF_INET, o->iface.c_str(), &a) != 1) {
      r.Error("iface", "iface: expected the IPv4 address of an interface (0.0.0.0: any), got '" +
                           o->iface + "'");
    }
  }
  r.Integer("ttl", 0, 255, &o->ttl);
  r.Bool("loop", &o->loop);
}

// Each strategy's section, read by `read` and checked for unknown keys.
template <typename Options>
void ReadSection(const core::Config& config, const char* section, core::ConfigErrors& errors,
                 void (*read)(core::SectionReader&, Options*), Options* out,
                 std::vector<std::pair<std::string, std::string>>* keys = nullptr) {
  core::SectionReader r(keys != nullptr ? nullptr : config.raw.FindSection(section), section,
                        errors);
  read(r, out);
  if (keys != nullptr) {
    for (const std::string& k : r.known_keys()) keys->emplace_back(section, k);
    return;
  }
  r.ReportUnknownKeys();
}

void ReadDiscovery(const core::Config& config, core::ConfigErrors& errors, DiscoveryConfig* d,
                   std::vector<std::pair<std::string, std::string>>* keys = nullptr) {
  ReadSection(config, "cluster.static", errors, &ReadStatic, d, keys);
  ReadSection(config, "cluster.dns", errors, &ReadDns, &d->dns, keys);
  ReadSection(config, "cluster.etcd", errors, &ReadEtcd, &d->etcd, keys);
  ReadSection(config, "cluster.k8s", errors, &ReadK8s, &d->k8s, keys);
  ReadSection(config, "cluster.mcast", errors, &ReadMcast, &d->mcast, keys);
}

}  // namespace

ClusterConfig ReadClusterConfig(const core::Config& config, core::ConfigErrors& errors) {
  ClusterConfig c;
  c.listen_port = DefaultClusterPort(config.node.name);
  core::SectionReader r(config.raw.FindSection("cluster"), "cluster", errors);
  ReadCluster(r, &c);
  r.ReportUnknownKeys();
  ReadDiscovery(config, errors, &c.discovery);
  // What each strategy cannot do without.
  const std::string& strategy = c.discovery.strategy;
  auto required = [&](const char* section, const char* key, bool missing) {
    if (!missing) return;
    core::SectionReader s(config.raw.FindSection(section), section, errors);
    s.Error(key, std::string(key) + ": required with [cluster] discovery = " + strategy);
  };
  required("cluster.static", "seeds", strategy == "static" && c.discovery.static_seeds.empty());
  required("cluster.dns", "name", strategy == "dns" && c.discovery.dns.name.empty());
  required("cluster.etcd", "server", strategy == "etcd" && c.discovery.etcd.servers.empty());
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
  std::vector<std::pair<std::string, std::string>> keys;
  for (const std::string& k : r.known_keys()) keys.emplace_back("cluster", k);
  core::Config none;
  ReadDiscovery(none, ignored, &unused.discovery, &keys);
  return keys;
}

}  // namespace ferry::cluster
