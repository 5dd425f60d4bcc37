// Running ferryctl against a test node, and plain HTTP and Unix-socket
// requests to its admin interface, for the admin integration tests.
//
//   NodeProcess node;
//   ASSERT_TRUE(node.Start());
//   CommandResult r = Ferryctl(node, {"clients", "list", "--json"});
//   std::optional<nlohmann::json> rows = ParseJson(r.out);
//
// Thread: the test's main thread.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "node_process.h"
#include "subprocess.h"

namespace ferry::testing {

using Json = nlohmann::json;

// Path of the ferryctl binary under test (FERRYCTL_BINARY).
std::string FerryctlBinary();

// ferryctl -c <node's config> ARGS..., with inherited FERRY_* variables
// removed and `env` set; `input` is its standard input.
CommandResult Ferryctl(const NodeProcess& node, const std::vector<std::string>& args,
                       const std::vector<std::pair<std::string, std::string>>& env = {},
                       std::string_view input = {});
// ferryctl ARGS... as they are.
CommandResult FerryctlRaw(const std::vector<std::string>& args,
                          const std::vector<std::pair<std::string, std::string>>& env = {},
                          std::string_view input = {});

// Parses JSON; nullopt (and no exception) if it is not JSON.
std::optional<Json> ParseJson(std::string_view text);

struct HttpReply {
  int status = 0;        // 0 if no status line came back
  std::string head;      // status line and headers
  std::string body;      // de-chunked
  std::string error;     // why nothing usable came back
};
// Sends `request` (raw bytes) to host:port and reads until the server closes.
HttpReply HttpExchange(std::string_view host, uint16_t port, std::string_view request,
                       std::chrono::milliseconds timeout = kDefaultTimeout);
// A GET or POST of `target` with optional extra header lines ("Name: v\r\n").
HttpReply Http(std::string_view method, uint16_t port, std::string_view target,
               std::string_view headers = {}, std::string_view host = "127.0.0.1");

// Sends `request` (raw bytes) on the Unix socket at `path` and reads until
// the node closes; `*closed` tells whether it did within the timeout.
std::string SocketExchange(const std::string& path, std::string_view request, bool* closed,
                           std::chrono::milliseconds timeout = kDefaultTimeout);

}  // namespace ferry::testing
