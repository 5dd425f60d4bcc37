// ferryd: parse flags, load the config, wire the modules, run the loops.
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "bridge/bridge.h"
#include "core/auth.h"
#include "core/broker.h"
#include "core/config.h"
#include "core/log.h"
#include "core/version.h"

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
    "       ferryd --check-config -c FILE   validate a config file and exit\n"
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

bool ReadPassword(std::string* out) {
  if (!isatty(STDIN_FILENO)) return static_cast<bool>(std::getline(std::cin, *out));
  termios old{};
  tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::string again;
  std::fputs("Password: ", stderr);
  bool ok = static_cast<bool>(std::getline(std::cin, *out));
  std::fputs("\nReenter password: ", stderr);
  ok = ok && static_cast<bool>(std::getline(std::cin, again));
  std::fputs("\n", stderr);
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  if (ok && *out != again) {
    std::fputs("ferryd: passwords do not match\n", stderr);
    return false;
  }
  return ok;
}

int RunPasswd(const Args& args) {
  std::string password;
  if (!ReadPassword(&password) || password.empty()) {
    std::fputs("ferryd: no password given\n", stderr);
    return 1;
  }
  ferry::Status st = ferry::core::SetPassword(args.passwd_file, args.passwd_user, password);
  if (!st.ok()) {
    std::fprintf(stderr, "ferryd: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}

// Sections other modules own.
constexpr std::string_view kModuleSections[] = {"bridge."};

// The config file with every module's sections checked.
ferry::Result<Config> Load(const std::string& path) {
  auto config = ferry::core::LoadConfig(path, environ, kModuleSections);
  if (!config.ok()) return config;
  if (ferry::Status st = BridgeSet::Check(*config); !st.ok()) return st;
  return config;
}

// Applies a config reloaded on SIGHUP: log level, password and ACL files,
// bridges.
void Reload(Broker& broker, BridgeSet& bridges, const std::string& path) {
  auto config = Load(path);
  if (!config.ok()) {
    FERRY_ERROR("reload of %s failed, keeping the running config:\n%s", path.c_str(),
                config.status().message().c_str());
    return;
  }
  ferry::core::SetLogLevel(config->log.level);
  ferry::Status st = broker.Reload(ferry::core::BrokerOptionsFromConfig(*config));
  if (st.ok()) st = bridges.Reload(*config);
  if (!st.ok()) {
    FERRY_ERROR("reload failed, keeping the running files: %s", st.ToString().c_str());
    return;
  }
  FERRY_INFO("reloaded %s", path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) return 2;
  if (args.version) {
    std::printf("ferryd %s\n", FERRY_VERSION);
    return 0;
  }
  if (!args.passwd_file.empty()) return RunPasswd(args);

  auto config = Load(args.config);
  if (!config.ok()) {
    std::fprintf(stderr, "ferryd: invalid configuration:\n%s\n",
                 config.status().message().c_str());
    return 1;
  }
  if (args.check_config) {
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
  if (ferry::Status st = (*broker)->Start(loop); !st.ok()) {
    FERRY_ERROR("cannot start: %s", st.ToString().c_str());
    return 1;
  }
  auto bridges = BridgeSet::Create(*config, **broker);
  ferry::Status bridges_started =
      bridges.ok() ? (*bridges)->Start(loop) : bridges.status();
  if (!bridges_started.ok()) {
    FERRY_ERROR("cannot start: %s", bridges_started.ToString().c_str());
    (*broker)->Shutdown([&] { loop.Stop(); });
    loop.Run();
    return 1;
  }
  std::string ready = "ready node=" + (*broker)->node_name();
  for (const auto& l : (*broker)->listeners()) {
    bool v6 = l.host.find(':') != std::string::npos;
    ready += " " + l.id + "=" + (v6 ? "[" + l.host + "]" : l.host) + ":" + std::to_string(l.port);
  }
  FERRY_INFO("ferryd %s %s", FERRY_VERSION, ready.c_str());
#ifdef FERRY_HAVE_SYSTEMD
  sd_notify(0, "READY=1");
#endif

  Broker& b = **broker;
  BridgeSet& bs = **bridges;
  const std::string config_path = args.config;
  std::vector<UvHandle<uv_signal_t>> signals;
  bool stopping = false;
  auto on_stop = [&] {
    if (stopping) return;
    stopping = true;
#ifdef FERRY_HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    // Bridges first: they say goodbye upstream and write their queues while
    // the node still routes.
    bs.Shutdown([&] {
      b.Shutdown([&] {
        signals.clear();
        loop.Stop();
      });
    });
  };
  std::function<void(int)> handler = [&](int signum) {
    if (signum == SIGHUP) {
      Reload(b, bs, config_path);
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
