// ferryctl: the admin tool of a ferry node. It knows no node command by
// name: it sends its arguments to the node (core/admin.h registry), which
// parses them, and prints what comes back. Only `passwd` runs locally.
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/passwd_tool.h"
#include "core/version.h"
#include "ctl/admin_config.h"
#include "ctl/ctl_client.h"

extern char** environ;

namespace {

using ferry::ctl::CtlError;

constexpr const char* kUsage =
    "usage: ferryctl [-c FILE | --socket PATH | --url URL [--token T]] [--json] COMMAND [ARG...]\n"
    "\n"
    "Runs COMMAND on a ferry node and prints the result.\n"
    "\n"
    "  -c, --config FILE  find the local node from its config (default: $FERRY_CONFIG or\n"
    "                     /etc/ferry/ferry.conf; FERRY_<SECTION>__<KEY> overrides apply)\n"
    "  --socket PATH      the node's admin socket ([admin] socket, <data_dir>/ferry.sock)\n"
    "  --url URL          a node's HTTP admin API, e.g. http://host:18083\n"
    "  --token T          bearer token for --url ([admin] http_token of that node)\n"
    "  --json             JSON output for scripts\n"
    "  -h, --help         this help; `ferryctl help [COMMAND]` lists the node's commands\n"
    "  --version          ferryctl's version\n"
    "\n"
    "Local command:\n"
    "  passwd FILE USER   add USER to a password file or change its password\n"
    "                     (password read from the terminal, or a line of stdin)\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 bad argument, 3 node not running,\n"
    "4 not found, 5 permission denied, 6 node unavailable.\n";

struct Args {
  std::string config;
  std::string socket;
  std::string url;
  std::string token;
  bool json = false;
  bool help = false;
  bool version = false;
  std::vector<std::string> words;
};

int Fail(const CtlError& e) {
  std::fprintf(stderr, "ferryctl: %s\n", e.message.c_str());
  if (!e.usage.empty()) {
    std::string usage = e.usage;
    std::string out;
    size_t start = 0;
    // Each usage line gets the program name.
    while (start <= usage.size()) {
      size_t nl = usage.find('\n', start);
      std::string line = usage.substr(start, nl == std::string::npos ? nl : nl - start);
      if (!line.empty()) out += (out.empty() ? "usage: ferryctl " : "       ferryctl ") + line + "\n";
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    std::fputs(out.c_str(), stderr);
  }
  return ferry::ctl::ExitCodeForKind(e.kind);
}

int BadUsage(const std::string& why) {
  std::fprintf(stderr, "ferryctl: %s\n%s", why.c_str(), kUsage);
  return 2;
}

// Global options may appear anywhere before "--"; everything else is the
// command line for the node.
bool ParseArgs(int argc, char** argv, Args* a, std::string* error) {
  bool rest = false;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        *error = s + " needs a value";
        return false;
      }
      *out = argv[++i];
      return true;
    };
    if (rest) {
      a->words.push_back(s);
    } else if (s == "--") {
      rest = true;
      a->words.push_back(s);
    } else if (s == "-c" || s == "--config") {
      if (!value(&a->config)) return false;
    } else if (s.starts_with("--config=")) {
      a->config = s.substr(9);
    } else if (s == "--socket") {
      if (!value(&a->socket)) return false;
    } else if (s == "--url") {
      if (!value(&a->url)) return false;
    } else if (s == "--token") {
      if (!value(&a->token)) return false;
    } else if (s == "--json") {
      a->json = true;
    } else if (s == "-h" || s == "--help") {
      a->help = true;
    } else if (s == "--version") {
      a->version = true;
    } else {
      a->words.push_back(s);
    }
  }
  const int targets = int{!a->socket.empty()} + int{!a->url.empty()} + int{!a->config.empty()};
  if (targets > 1) {
    *error = "give one of -c, --socket and --url";
    return false;
  }
  if (!a->token.empty() && a->url.empty()) {
    *error = "--token goes with --url";
    return false;
  }
  return true;
}

// Where the node is: --socket, or [admin] socket of the config.
std::optional<CtlError> FindSocket(const Args& a, std::string* socket, std::string* node) {
  *node = "ferry@127.0.0.1";
  if (!a.socket.empty()) {
    *socket = a.socket;
    *node = a.socket;
    return std::nullopt;
  }
  std::string path = a.config;
  if (path.empty()) {
    const char* env = std::getenv("FERRY_CONFIG");
    path = env != nullptr && *env != '\0' ? env : "/etc/ferry/ferry.conf";
  }
  auto raw = ferry::core::ParseConfigFile(path, environ);
  if (!raw.ok()) {
    return CtlError{"bad_argument",
                    "cannot read the node's config: " + raw.status().message() +
                        " (give -c FILE, --socket PATH or --url URL)",
                    ""};
  }
  ferry::core::ConfigErrors errors;
  ferry::ctl::AdminConfig admin = ferry::ctl::ReadAdminConfig(raw.value(), errors);
  if (!errors.empty()) {
    std::string msg = errors.ToStatus().message();
    return CtlError{"bad_argument", "bad config: " + msg.substr(0, msg.find('\n')), ""};
  }
  *socket = admin.socket_path;
  *node = admin.node_name;
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  std::string error;
  if (!ParseArgs(argc, argv, &a, &error)) return BadUsage(error);
  if (a.version) {
    std::printf("ferryctl %s\n", FERRY_VERSION);
    return 0;
  }
  if (a.words.empty()) {
    if (a.help) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    return BadUsage("no command given");
  }
  if (a.help) a.words.insert(a.words.begin(), "help");  // `ferryctl clients list --help`
  if (a.words[0] == "passwd") {
    if (a.words.size() != 3) {
      return Fail(CtlError{"bad_argument", "passwd needs FILE and USER", "passwd FILE USER"});
    }
    return ferry::core::RunPasswdCommand("ferryctl", a.words[1], a.words[2]);
  }
  if (a.words.size() == 1 && a.words[0] == "help" && !a.json) {
    std::fputs(kUsage, stdout);  // then the node's commands
    std::fputs("\n", stdout);
  }

  ferry::ctl::Output out(a.json, stdout);
  std::optional<CtlError> failed;
  if (!a.url.empty()) {
    failed = ferry::ctl::RunOverHttp(a.url, a.token, a.words, out);
  } else {
    std::string socket, node;
    failed = FindSocket(a, &socket, &node);
    if (!failed) failed = ferry::ctl::RunOverSocket(socket, node, a.words, out);
  }
  std::fflush(stdout);
  if (failed) return Fail(*failed);
  if (out.error()) return Fail(*out.error());
  if (!out.complete()) return Fail(CtlError{"internal", "incomplete reply from the node", ""});
  return 0;
}
