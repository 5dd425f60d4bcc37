#include "ctl/ctl_client.h"

#include <curl/curl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ctl/http_request.h"

namespace ferry::ctl {

namespace {

// How long a node may stay silent in the middle of a reply.
constexpr int kReadTimeoutMs = 30000;

CtlError Broken(std::string why) { return CtlError{"internal", std::move(why), ""}; }

// Feeds frames to `out`; returns false (with *error set) on a bad frame.
bool HandleLine(std::string_view line, Output& out, std::optional<CtlError>* error) {
  auto frame = DecodeFrame(line);
  if (!frame.ok()) {
    *error = Broken("bad reply from the node: " + frame.status().message());
    return false;
  }
  if (!out.OnFrame(frame.value())) {
    *error = Broken("reply from the node out of order");
    return false;
  }
  return true;
}

}  // namespace

std::optional<CtlError> RunOverSocket(const std::string& path, const std::string& node,
                                      const std::vector<std::string>& argv, Output& out) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    return CtlError{"bad_argument", "admin socket path '" + path + "' is too long", ""};
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Broken(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    if (e == EACCES || e == EPERM) {
      return CtlError{std::string(kKindPermission),
                      "permission denied on admin socket " + path +
                          " (run ferryctl as the user that runs the node, or as root)",
                      ""};
    }
    return CtlError{std::string(kKindUnreachable),
                    "node '" + node + "' is not running (cannot connect to " + path + ": " +
                        std::strerror(e) + ")",
                    ""};
  }
  const std::string request = EncodeRequest(argv);
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Broken(std::string("cannot send the request: ") + std::strerror(e));
    }
    sent += static_cast<size_t>(n);
  }
  LineSplitter lines(kMaxFrameBytes);
  std::optional<CtlError> error;
  char buf[64 * 1024];
  while (!out.complete() && !error) {
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, kReadTimeoutMs);
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) {
      error = Broken("no reply from node '" + node + "' within " +
                     std::to_string(kReadTimeoutMs / 1000) + " s");
      break;
    }
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = Broken("node '" + node + "' closed the connection before replying in full");
      break;
    }
    if (!lines.Feed(buf, static_cast<size_t>(n),
                    [&](std::string_view line) { return HandleLine(line, out, &error); }) &&
        !error) {
      error = Broken("reply frame too large");
    }
  }
  ::close(fd);
  return error;
}

namespace {

struct HttpState {
  Output* out;
  LineSplitter lines{kMaxFrameBytes};
  std::optional<CtlError> error;
  std::string head;  // the start of a body that is not frames, for messages
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<HttpState*>(user);
  size_t bytes = size * n;
  if (st->head.size() < 200) st->head.append(data, std::min<size_t>(bytes, 200));
  if (st->error) return 0;
  if (!st->lines.Feed(data, bytes, [&](std::string_view line) {
        return HandleLine(line, *st->out, &st->error);
      })) {
    if (!st->error) st->error = Broken("reply frame too large");
    return 0;  // aborts the transfer
  }
  return bytes;
}

}  // namespace

std::optional<CtlError> RunOverHttp(const std::string& url, const std::string& token,
                                    const std::vector<std::string>& argv, Output& out) {
  std::string target = url;
  while (!target.empty() && target.back() == '/') target.pop_back();
  target += "/api/v1";
  for (const std::string& w : argv) target += "/" + PercentEncode(w);
  target += "?format=ndjson";

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Broken("cannot initialise libcurl");
  HttpState st;
  st.out = &out;
  char curl_error[CURL_ERROR_SIZE] = "";
  curl_slist* headers = nullptr;
  const std::string auth = "Authorization: Bearer " + token;
  if (!token.empty()) headers = curl_slist_append(headers, auth.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, target.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  // A node silent for this long in the middle of a reply is given up on.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(kReadTimeoutMs / 1000));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  curl_global_cleanup();

  if (st.error) return st.error;
  if (out.complete()) return std::nullopt;  // a reply, maybe an error frame
  if (rc != CURLE_OK) {
    if (status != 0) return Broken("reply from " + url + " cut short: " + curl_error);
    return CtlError{std::string(kKindUnreachable),
                    "cannot reach " + url + ": " + (curl_error[0] ? curl_error : curl_easy_strerror(rc)),
                    ""};
  }
  // A body that held no frames: not our API, or an error before it.
  std::string kind = status == 401 ? std::string(kKindUnauthorized)
                     : status == 404 ? "not_found"
                                     : "internal";
  return CtlError{kind, "HTTP " + std::to_string(status) + " from " + url + " (not a ferry admin API?)", ""};
}

}  // namespace ferry::ctl
