// ferryd: parse flags, load the config, wire the modules, run the loops.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>

#include "bridge/bridge.h"
#include "cluster/cluster_admin.h"
#include "cluster/cluster_config.h"
#include "cluster/cluster_node.h"
#include "core/passwd_tool.h"
#include "core/admin.h"
#include "core/broker.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/version.h"
#include "ctl/admin_config.h"
#include "ctl/admin_server.h"

#ifdef FERRY_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

extern char** environ;

namespace {

using ferry::bridge::BridgeSet;
using ferry::core::Broker;
using ferry::core::Config;
using ferry::core::Loop;
using ferry::core::UvHandle;

constexpr const char* kUsage =
    "usage: ferryd [-c FILE]            run a node (default config: $FERRY_CONFIG or\n"
    "                                   /etc/ferry/ferry.conf)\n"
    "       ferryd --check-config -c FILE   validate a config file (and the password,\n"
    "                                       ACL and TLS files it names) and exit\n"
    "       ferryd --passwd FILE USER       add or change USER in a password file\n"
    "                                       (password read from the terminal or stdin)\n"
    "       ferryd --version\n";

struct Args {
  std::string config;
  bool check_config = false;
  bool version = false;
  std::string passwd_file, passwd_user;
};

bool ParseArgs(int argc, char** argv, Args* args) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      args->config = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      args->config = a.substr(9);
    } else if (a == "--check-config") {
      args->check_config = true;
    } else if (a == "--version" || a == "-v") {
      args->version = true;
    } else if (a == "--passwd" && i + 2 < argc) {
      args->passwd_file = argv[++i];
      args->passwd_user = argv[++i];
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "ferryd: unknown or incomplete argument '%s'\n%s", a.c_str(), kUsage);
      return false;
    }
  }
  if (args->config.empty()) {
    const char* env = std::getenv("FERRY_CONFIG");
    args->config = env != nullptr ? env : "/etc/ferry/ferry.conf";
  }
  return true;
}

// Sections other modules own: the core leaves them to their readers.
constexpr std::string_view kModuleSections[] = {ferry::ctl::kAdminSection, "bridge.",
                                               "cluster", "cluster."};

struct Loaded {
  Config config;
  ferry::ctl::AdminConfig admin;
  ferry::cluster::ClusterConfig cluster;
};

// The core's sections, [admin], [cluster] and [bridge.NAME], every error of
// them reported together.
ferry::Result<Loaded> Load(const std::string& path) {
  auto config = ferry::core::LoadConfig(path, environ, kModuleSections);
  if (!config.ok()) return config.status();
  ferry::core::ConfigErrors errors;
  ferry::ctl::AdminConfig admin = ferry::ctl::ReadAdminConfig(config->raw, errors);
  ferry::cluster::ClusterConfig cluster = ferry::cluster::ReadClusterConfig(*config, errors);
  std::string problems = errors.empty() ? "" : errors.ToStatus().message();
  if (ferry::Status st = BridgeSet::Check(*config); !st.ok()) {
    problems += (problems.empty() ? "" : "\n") + st.message();
  }
  if (!problems.empty()) return ferry::Status::InvalidArgument(problems);
  return Loaded{std::move(config).value(), std::move(admin), std::move(cluster)};
}

// Applies a config reloaded on SIGHUP or by `ferryctl reload`: log level,
// password and ACL files, bridges. Errors keep the running config.
ferry::Status Reload(Broker& broker, BridgeSet& bridges, const std::string& path) {
  auto loaded = Load(path);
  if (!loaded.ok()) {
    FERRY_ERROR("reload of %s failed, keeping the running config:\n%s", path.c_str(),
                loaded.status().message().c_str());
    // One line for ferryctl: the config's errors joined by "; ".
    std::string errors = loaded.status().message();
    for (size_t nl; (nl = errors.find('\n')) != std::string::npos;) errors.replace(nl, 1, "; ");
    return ferry::Status::IoError("reload of " + path + " failed, keeping the running config: " +
                                  errors);
  }
  ferry::core::SetLogLevel(loaded->config.log.level);
  ferry::Status st = broker.Reload(ferry::core::BrokerOptionsFromConfig(loaded->config));
  if (st.ok()) st = bridges.Reload(loaded->config);
  if (!st.ok()) {
    FERRY_ERROR("reload failed, keeping the running files: %s", st.ToString().c_str());
    return ferry::Status::IoError("reload failed, keeping the running files: " + st.ToString());
  }
  FERRY_INFO("reloaded %s", path.c_str());
  return ferry::Status::Ok();
}

// Commands of ferryd itself, beside those of the modules.
ferry::Status RegisterNodeCommands(ferry::core::AdminRegistry& registry, Broker& broker,
                                   BridgeSet& bridges, const std::string& config_path) {
  ferry::core::AdminCommand reload;
  reload.path = "reload";
  reload.summary =
      "re-read the config file, as SIGHUP does (log level, password and ACL files, bridges)";
  reload.access = ferry::core::AdminAccess::kWrite;
  reload.handler = [&broker, &bridges, config_path](const ferry::core::AdminRequest&,
                                                    ferry::core::AdminDone done) {
    ferry::Status st = Reload(broker, bridges, config_path);
    if (!st.ok()) return done(ferry::core::AdminResult::Error(st));
    done(ferry::core::AdminResult::Value(ferry::core::Json{{"reloaded", config_path}},
                                         "Reloaded " + config_path + "\n"));
  };
  return registry.Register(std::move(reload));
}

// Bridges of scope cluster run on the node that holds their lock in the
// cluster; a start or stop of one goes to every node.
class ClusterPlacement : public ferry::bridge::BridgePlacement {
 public:
  explicit ClusterPlacement(ferry::cluster::ClusterNode& node) : node_(node) {}
  void Claim(const std::string& name,
             std::function<void(bool held, std::string holder)> done) override {
    node_.LockBridge(name, std::move(done));
  }
  void Held(const std::string& name, std::function<void(bool)> done) override {
    node_.BridgeHeld(name, std::move(done));
  }
  void Release(const std::string& name) override { node_.UnlockBridge(name); }
  void OnPeers(std::vector<std::string> words,
               std::function<void(std::vector<std::string> failed)> done) override {
    std::shared_ptr<ferry::core::RemoteClientDirectory> dir = node_.ClientDirectory();
    std::vector<std::string> nodes = dir->Nodes();
    if (nodes.empty()) return done({});
    struct Tally {
      std::mutex mu;
      size_t left = 0;
      std::vector<std::string> failed;
      std::function<void(std::vector<std::string>)> done;
    };
    auto tally = std::make_shared<Tally>();
    tally->left = nodes.size();
    tally->done = std::move(done);
    for (const std::string& node : nodes) {
      dir->Call(node, words, [tally, node](ferry::Result<std::string> r) {
        std::unique_lock lock(tally->mu);
        if (!r.ok()) tally->failed.push_back(node + ": " + r.status().message());
        if (--tally->left > 0) return;
        lock.unlock();
        tally->done(std::move(tally->failed));
      });
    }
  }

 private:
  ferry::cluster::ClusterNode& node_;
};

// The cluster node, if the config gives a cookie (else nullptr), and its
// admin commands either way.
ferry::Result<std::unique_ptr<ferry::cluster::ClusterNode>> StartCluster(
    const Loaded& loaded, Broker& broker, Loop& loop, ferry::core::AdminRegistry& registry) {
  using ferry::cluster::ClusterNode;
  const ferry::cluster::ClusterConfig& cc = loaded.cluster;
  std::unique_ptr<ClusterNode> node;
  if (cc.enabled) {
    ferry::cluster::ClusterOptions o;
    o.cluster = cc.name;
    o.node = broker.node_name();
    o.cookie = cc.cookie;
    o.listen_host = cc.listen_host;
    o.listen_port = cc.listen_port;
    o.data_dir = loaded.config.node.data_dir;
    o.link.down_after_ms = cc.peer_down_after_ms;
    o.autoheal = cc.autoheal;
    o.autoheal_restart = cc.autoheal_restart;
    o.autoheal_delay_ms = cc.autoheal_delay_ms;
    o.autoclean_ms = cc.autoclean_ms;
    o.session_locking = cc.session_locking;
    o.bridge_locking = cc.bridge_locking;
    o.discovery = ferry::cluster::MakeDiscovery(cc.discovery);
    o.link.tls_client = cc.tls_contexts.client;
    o.link.tls_server = cc.tls_contexts.server;
    ferry::cluster::CoreSeams core;
    core.watch_routes = [&broker](auto observer) { return broker.WatchRoutes(std::move(observer)); };
    const std::string owner(ferry::cluster::kClusterOwner);
    core.add_routes = [&broker, owner](uint32_t tag, std::span<const std::string> filters,
                                       std::shared_ptr<ferry::core::RouteHook> hook) {
      auto added = broker.AddHookFilters(owner, tag, filters, std::move(hook));
      return added.ok() ? ferry::Status::Ok() : added.status();
    };
    core.remove_routes = [&broker, owner](uint32_t tag, std::span<const std::string> filters) {
      broker.RemoveHookFilters(owner, tag, filters);
    };
    core.set_shared = [&broker, owner](uint32_t tag, std::string_view group, uint32_t members,
                                       std::shared_ptr<ferry::core::RouteHook> hook) {
      return broker.SetSharedHook(owner, group, tag, members, std::move(hook));
    };
    core.publish = [&broker](ferry::core::MessagePtr message,
                             ferry::core::ForwardedDelivery delivery,
                             ferry::core::RouteDone done) {
      broker.PublishForwarded(std::move(message), std::move(delivery), std::move(done));
    };
    core.watch_retained = [&broker, owner](std::shared_ptr<ferry::core::RetainedObserver> o) {
      return broker.WatchRetained(owner, std::move(o));
    };
    core.store_retained = [&broker](ferry::core::MessagePtr m) {
      broker.StoreRetained(std::move(m));
    };
    core.clear_retained = [&broker] { return broker.ClearRetained(); };
    core.all_retained = [&broker] { return broker.AllRetained(); };
    core.publish_local = [&broker](ferry::core::MessagePtr m) {
      broker.Publish(std::move(m), nullptr);
    };
    core.set_session_hook = [&broker](std::shared_ptr<ferry::core::SessionHook> hook) {
      broker.SetSessionHook(std::move(hook));
    };
    core.lookup_session = [&broker](std::string id, auto done) {
      broker.LookupSession(std::move(id), std::move(done));
    };
    core.list_sessions = [&broker](auto done) { broker.ListSessions(std::move(done)); };
    core.export_session = [&broker](std::string id, bool clean, auto done) {
      broker.ExportSession(std::move(id), clean, std::move(done));
    };
    core.hand_off_session = [&broker](std::string id, bool final, auto done) {
      broker.HandOffSession(std::move(id), final, std::move(done));
    };
    core.finish_hand_off = [&broker](std::string id, bool moved) {
      broker.FinishHandOff(std::move(id), moved);
    };
    core.append_transferred = [&broker](std::string id, auto messages, bool final, auto done) {
      broker.AppendTransferred(std::move(id), std::move(messages), final, std::move(done));
    };
    core.discard_session = [&broker](std::string id, auto done) {
      broker.DiscardSession(std::move(id), std::move(done));
    };
    core.disconnect_clients = [&broker](std::string why, std::function<void(size_t)> done) {
      broker.DisconnectClients(ferry::ReasonCode::kServerShuttingDown, std::move(why),
                               std::move(done));
    };
    core.sessions = [&broker] {
      return static_cast<uint64_t>(std::max<int64_t>(0, broker.metrics().sessions.load()));
    };
    auto created = ClusterNode::Create(std::move(o), std::move(core));
    if (!created.ok()) return created.status();
    node = std::move(created).value();
    if (ferry::Status st = node->Start(); !st.ok()) return st;
    broker.SetRemoteRoutes(node->RouteDirectory());
    broker.SetRemoteClients(node->ClientDirectory());
  } else {
    FERRY_INFO("cluster: %s", cc.why_disabled.c_str());
  }
  ferry::Status st = ferry::cluster::RegisterClusterCommands(registry, loop, node.get(),
                                                             broker.node_name(), cc.why_disabled);
  if (!st.ok()) return st;
  return node;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) return 2;
  if (args.version) {
    std::printf("ferryd %s\n", FERRY_VERSION);
    return 0;
  }
  if (!args.passwd_file.empty()) {
    return ferry::core::RunPasswdCommand("ferryd", args.passwd_file, args.passwd_user);
  }

  auto loaded = Load(args.config);
  if (!loaded.ok()) {
    std::fprintf(stderr, "ferryd: invalid configuration:\n%s\n",
                 loaded.status().message().c_str());
    return 1;
  }
  Config* config = &loaded->config;
  if (args.check_config) {
    // Also what only a Broker checks: the password, ACL and TLS files load.
    auto checked = Broker::Create(ferry::core::BrokerOptionsFromConfig(*config));
    if (!checked.ok()) {
      std::fprintf(stderr, "ferryd: invalid configuration:\n%s\n",
                   checked.status().ToString().c_str());
      return 1;
    }
    std::printf("%s: configuration OK\n", args.config.c_str());
    return 0;
  }
  ferry::core::SetLogLevel(config->log.level);
  if (ferry::Status st = ferry::core::SetLogFile(config->log.file); !st.ok()) {
    std::fprintf(stderr, "ferryd: %s\n", st.ToString().c_str());
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);

  auto broker = Broker::Create(ferry::core::BrokerOptionsFromConfig(*config));
  if (!broker.ok()) {
    FERRY_ERROR("cannot start: %s", broker.status().ToString().c_str());
    return 1;
  }
  Loop loop;
  Broker& b = **broker;
  // The admin interface is bound before the broker starts (a bind error
  // stops the node before any client connects); it serves once the loop runs.
  ferry::core::AdminRegistry registry(loop);
  ferry::Status registered = b.RegisterAdminCommands(registry);
  if (!registered.ok()) {
    FERRY_ERROR("cannot start: %s", registered.ToString().c_str());
    return 1;
  }
  BridgeSet* bridge_set = nullptr;  // set once the broker runs
  const ferry::ctl::AdminConfig& ac = loaded->admin;
  ferry::ctl::AdminServerOptions admin_options;
  admin_options.socket_path = ac.socket_path;
  admin_options.http_enabled = ac.http_enabled;
  admin_options.http_host = ac.http_host;
  admin_options.http_port = ac.http_port;
  admin_options.http_token = ac.http_token;
  admin_options.idle_timeout = ac.idle_timeout;
  admin_options.health = [&b] {
    ferry::ctl::HealthReport h;
    h.accepting_connections = b.AcceptingConnections(&h.reason);
    if (h.accepting_connections) h.degraded = !b.StoreWritable(&h.reason);
    return h;
  };
  ferry::cluster::ClusterNode* cluster_node = nullptr;  // set once it runs
  admin_options.metrics = [&b, &bridge_set, &cluster_node] {
    return b.PrometheusMetrics() + (bridge_set ? bridge_set->PrometheusMetrics() : "") +
           (cluster_node ? ferry::cluster::ClusterPrometheusMetrics(cluster_node->LatestStatus())
                         : "");
  };
  if (::mkdir(config->node.data_dir.c_str(), 0750) != 0 && errno != EEXIST) {
    FERRY_ERROR("cannot create data_dir '%s': %s", config->node.data_dir.c_str(),
                std::strerror(errno));
    return 1;
  }
  auto admin = ferry::ctl::AdminServer::Start(loop, registry, std::move(admin_options));
  if (!admin.ok()) {
    FERRY_ERROR("cannot start: %s", admin.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<ferry::ctl::AdminServer> admin_server = std::move(admin).value();
  if (ferry::Status st = b.Start(loop); !st.ok()) {
    FERRY_ERROR("cannot start: %s", st.ToString().c_str());
    return 1;
  }
  // Bridges open their queues and plug into the running broker.
  auto bridges = BridgeSet::Create(*config, b);
  ferry::Status started = bridges.ok() ? (*bridges)->RegisterAdminCommands(registry) : bridges.status();
  if (started.ok()) started = RegisterNodeCommands(registry, b, **bridges, args.config);
  std::unique_ptr<ferry::cluster::ClusterNode> cluster;
  if (started.ok()) {
    auto c = StartCluster(*loaded, b, loop, registry);
    started = c.status();
    if (c.ok()) cluster = std::move(c).value();
  }
  if (started.ok() && cluster) (*bridges)->SetPlacement(std::make_shared<ClusterPlacement>(*cluster));
  if (started.ok()) started = (*bridges)->Start(loop);
  if (!started.ok()) {
    FERRY_ERROR("cannot start: %s", started.ToString().c_str());
    admin_server.reset();
    b.Shutdown([&] { loop.Stop(); });
    loop.Run();
    return 1;
  }
  BridgeSet& bs = **bridges;
  bridge_set = &bs;
  cluster_node = cluster.get();
  std::string ready = "ready node=" + b.node_name();
  for (const auto& l : b.listeners()) {
    bool v6 = l.host.find(':') != std::string::npos;
    ready += " " + l.id + "=" + (v6 ? "[" + l.host + "]" : l.host) + ":" + std::to_string(l.port);
  }
  if (!admin_server->http_address().empty()) ready += " admin.http=" + admin_server->http_address();
  if (cluster) {
    const std::string& host = loaded->cluster.listen_host;
    const bool v6 = host.find(':') != std::string::npos;
    ready += " cluster=" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(cluster->port());
  }
  FERRY_INFO("ferryd %s %s", FERRY_VERSION, ready.c_str());
#ifdef FERRY_HAVE_SYSTEMD
  sd_notify(0, "READY=1");
#endif

  const std::string config_path = args.config;
  std::vector<UvHandle<uv_signal_t>> signals;
  bool stopping = false;
  auto on_stop = [&] {
    if (stopping) return;
    stopping = true;
#ifdef FERRY_HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    admin_server.reset();  // ferryctl sessions end before the clients do
    // Peers see this node stop (not leave): it is back in the cluster when
    // it starts again.
    cluster_node = nullptr;
    b.SetRemoteRoutes(nullptr);
    b.SetRemoteClients(nullptr);
    bridge_set = nullptr;
    // Bridges first: they say goodbye upstream and write their queues while
    // the node still routes, and let go of the locks of those of scope
    // cluster while the cluster still runs, so that another node takes
    // them over at once.
    bs.Shutdown([&] {
      if (cluster) cluster->Stop();
      b.Shutdown([&] {
        signals.clear();
        loop.Stop();
      });
    });
  };
  std::function<void(int)> handler = [&](int signum) {
    if (signum == SIGHUP) {
      (void)Reload(b, bs, config_path);
    } else {
      FERRY_INFO("received %s", strsignal(signum));
      on_stop();
    }
  };
  for (int signum : {SIGTERM, SIGINT, SIGHUP}) {
    auto h = UvHandle<uv_signal_t>::Make();
    uv_signal_init(loop.get(), h.get());
    h->data = &handler;
    uv_signal_start(h.get(), [](uv_signal_t* s, int signum) {
      (*static_cast<std::function<void(int)>*>(s->data))(signum);
    }, signum);
    signals.push_back(std::move(h));
  }
  loop.Run();
  FERRY_INFO("stopped");
  return 0;
}
