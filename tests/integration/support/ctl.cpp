#include "ctl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifndef FERRYCTL_BINARY
#error "FERRYCTL_BINARY must name the ferryctl binary under test"
#endif

namespace ferry::testing {

namespace {

// Reads from `fd` until EOF or the deadline; `*closed` says which.
std::string ReadUntilClosed(int fd, std::chrono::milliseconds timeout, bool* closed) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string data;
  *closed = false;
  char buf[8192];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return data;
    pollfd p{fd, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return data;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *closed = true;
      return data;
    }
    data.append(buf, static_cast<size_t>(n));
  }
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string Dechunk(std::string_view body) {
  std::string out;
  while (true) {
    size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) return out;
    size_t n = std::strtoul(std::string(body.substr(0, eol)).c_str(), nullptr, 16);
    if (n == 0) return out;
    out.append(body.substr(eol + 2, n));
    body.remove_prefix(std::min(body.size(), eol + 2 + n + 2));
  }
}

}  // namespace

std::string FerryctlBinary() { return FERRYCTL_BINARY; }

CommandResult FerryctlRaw(const std::vector<std::string>& args,
                          const std::vector<std::pair<std::string, std::string>>& env,
                          std::string_view input) {
  std::vector<std::string> argv{FerryctlBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, env, {"FERRY_"}, input, std::chrono::seconds(30));
}

CommandResult Ferryctl(const NodeProcess& node, const std::vector<std::string>& args,
                       const std::vector<std::pair<std::string, std::string>>& env,
                       std::string_view input) {
  std::vector<std::string> all{"-c", node.config_path()};
  all.insert(all.end(), args.begin(), args.end());
  return FerryctlRaw(all, env, input);
}

std::optional<Json> ParseJson(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

HttpReply HttpExchange(std::string_view host, uint16_t port, std::string_view request,
                       std::chrono::milliseconds timeout) {
  HttpReply r;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, std::string(host).c_str(), &addr.sin_addr);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    if (fd >= 0) close(fd);
    return r;
  }
  if (!SendAll(fd, request)) r.error = std::string("send: ") + std::strerror(errno);
  bool closed = false;
  std::string data = ReadUntilClosed(fd, timeout, &closed);
  close(fd);
  if (!closed) r.error = "the server did not close the connection";
  size_t end = data.find("\r\n\r\n");
  if (end == std::string::npos || !data.starts_with("HTTP/1.1 ")) {
    if (r.error.empty()) r.error = "no HTTP response: '" + data + "'";
    return r;
  }
  r.status = std::atoi(data.c_str() + 9);
  r.head = data.substr(0, end);
  r.body = data.substr(end + 4);
  if (r.head.find("Transfer-Encoding: chunked") != std::string::npos) r.body = Dechunk(r.body);
  return r;
}

HttpReply Http(std::string_view method, uint16_t port, std::string_view target,
               std::string_view headers, std::string_view host) {
  std::string req = std::string(method) + " " + std::string(target) +
                    " HTTP/1.1\r\nHost: test\r\n" + std::string(headers) +
                    (method == "POST" ? "Content-Length: 0\r\n" : "") + "\r\n";
  return HttpExchange(host, port, req);
}

std::string SocketExchange(const std::string& path, std::string_view request, bool* closed,
                           std::chrono::milliseconds timeout) {
  *closed = false;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) close(fd);
    return "";
  }
  SendAll(fd, request);
  std::string data = ReadUntilClosed(fd, timeout, closed);
  close(fd);
  return data;
}

}  // namespace ferry::testing
