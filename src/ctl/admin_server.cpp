#include "ctl/admin_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "core/net_address.h"
#include "ctl/http_request.h"

namespace ferry::ctl {

using core::AdminColumn;
using core::AdminPage;
using core::AdminResult;

namespace {

// A listing pulls its next page once less than this is waiting to be
// written: at most about one page is buffered per connection.
constexpr size_t kLowWaterBytes = 64 * 1024;

union AnyStream {
  uv_pipe_t pipe;
  uv_tcp_t tcp;
};

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
  }
  return "Error";
}

// Compares in time independent of where the strings differ.
bool SameToken(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

Json ColumnsJson(const std::vector<AdminColumn>& columns) {
  Json out = Json::array();
  for (const AdminColumn& c : columns) out.push_back(Json{{"key", c.key}, {"title", c.title}});
  return out;
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

bool IsLoopbackAddress(const sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(addr);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(addr);
    if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

// One admin connection: reads one request, answers it, closes. Owned by the
// server's map; freed by the close callback of its stream, so never inside
// one of its own callbacks. Work that answers later (a handler, a page)
// holds a weak_ptr and finds the connection gone if it was closed meanwhile.
class AdminServer::Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(AdminServer& server, bool http)
      : server_(server),
        http_(http),
        seq_(++server.accepted_),
        parser_(server.options_.max_request_bytes) {}

  ~Conn() { Close(); }

  Status Open(uv_stream_t* listener) {
    stream_ = new AnyStream();
    handle_ = reinterpret_cast<uv_handle_t*>(stream_);
    uv_stream_t* s = stream();
    if (http_) {
      uv_tcp_init(server_.loop_.get(), &stream_->tcp);
    } else {
      uv_pipe_init(server_.loop_.get(), &stream_->pipe, 0);
    }
    s->data = this;
    if (int rc = uv_accept(listener, s); rc != 0) {
      Close();
      return Status::IoError(std::string("accept: ") + uv_strerror(rc));
    }
    if (http_) {
      sockaddr_storage ss{};
      int len = sizeof ss;
      uv_tcp_getpeername(&stream_->tcp, reinterpret_cast<sockaddr*>(&ss), &len);
      loopback_peer_ = IsLoopbackAddress(reinterpret_cast<sockaddr*>(&ss));
    }
    timer_ = core::UvHandle<uv_timer_t>::Make();
    uv_timer_init(server_.loop_.get(), timer_.get());
    timer_->data = this;
    ArmTimer();
    StartReading();
    return Status::Ok();
  }

  // Refuses the connection at once (too many connections).
  void Refuse(std::string_view why) {
    SendError("unavailable", why, "");
  }

  // Where the connection is in its one exchange. Only kReading and kWorking
  // ones take one of max_connections; a kLingering one has been answered;
  // a kClosing one waits for its close callback to leave the server's map
  // and holds nothing.
  enum class Phase { kReading, kWorking, kLingering, kClosing };
  Phase phase() const {
    if (stream_ == nullptr) return Phase::kClosing;
    if (lingering_) return Phase::kLingering;
    return request_done_ ? Phase::kWorking : Phase::kReading;
  }
  // Loop time of the last byte read or written; the accept order breaks
  // ties (the loop's clock counts milliseconds).
  std::pair<uint64_t, uint64_t> last_active() const { return {last_active_ms_, seq_}; }
  // Admitted past max_connections (every slot was busy with a request):
  // it may ask for /api/v1/health, which needs no slot, and nothing else.
  void set_overflow() { overflow_ = true; }

  void Close() {
    if (stream_ == nullptr) return;
    timer_.Reset();
    source_ = nullptr;
    uv_handle_t* h = reinterpret_cast<uv_handle_t*>(stream_);
    stream_ = nullptr;
    if (uv_is_closing(h)) return;
    // The close callback frees the stream and then this connection; with
    // the server gone (data cleared) it only frees the stream.
    uv_close(h, [](uv_handle_t* closing) {
      auto* c = static_cast<Conn*>(closing->data);
      delete reinterpret_cast<AnyStream*>(closing);
      if (c != nullptr) c->server_.conns_.erase(c);
    });
  }

  // The server is going away: nothing may call back into it, including
  // the close callback of a stream that is already closing.
  void Detach() {
    if (handle_ != nullptr) handle_->data = nullptr;
    Close();
  }

 private:
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(stream_); }

  void StartReading() {
    uv_read_start(
        stream(),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* c = static_cast<Conn*>(h->data);
          buf->base = c->read_buf_;
          buf->len = sizeof c->read_buf_;
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t*) {
          static_cast<Conn*>(st->data)->OnRead(n);
        });
  }

  void ArmTimer() {
    last_active_ms_ = uv_now(server_.loop_.get());
    if (!timer_) return;
    uv_timer_start(timer_.get(), [](uv_timer_t* t) { static_cast<Conn*>(t->data)->OnIdle(); },
                   static_cast<uint64_t>(server_.options_.idle_timeout.count()), 0);
  }

  void OnIdle() {
    if (lingering_) return Close();
    if (!responded_) {
      // Still waiting for a whole request (or the node's answer).
      if (!request_done_) {
        FERRY_DEBUG("admin: closing an idle connection");
        // Everything the peer sent has been read: closing right after the
        // 408 cannot reset it, and the connection gives its slot back now.
        close_when_written_ = true;
        SendError(kKindTimeout, "no complete request within " +
                                    std::to_string(server_.options_.idle_timeout.count()) + " ms",
                  "");
        return;
      }
    }
    FERRY_DEBUG("admin: closing a connection that stopped reading");
    Close();
  }

  void OnRead(ssize_t n) {
    if (lingering_) {
      if (n < 0) Close();  // the peer has read our answer and closed
      return;              // what a peer sends after its request is dropped
    }
    if (n < 0) {
      // The peer went away (or shut down its side before we answered).
      if (!request_done_ || n != UV_EOF) Close();
      return;
    }
    if (n == 0 || request_done_) return;
    ArmTimer();
    std::string_view data(read_buf_, static_cast<size_t>(n));
    if (http_) return OnHttpData(data);
    in_.append(data);
    size_t nl = in_.find('\n');
    if (nl == std::string::npos) {
      if (in_.size() > server_.options_.max_request_bytes) {
        request_done_ = true;
        SendError(kKindTooLarge,
                  "request larger than " + std::to_string(server_.options_.max_request_bytes) +
                      " bytes",
                  "");
      }
      return;
    }
    request_done_ = true;
    uv_read_stop(stream());
    if (overflow_) return RefuseOverflow();
    bool bad_version = false;
    auto words = DecodeRequest(std::string_view(in_).substr(0, nl), &bad_version);
    if (!words.ok()) {
      return SendError(bad_version ? kKindBadVersion : kKindBadRequest, words.status().message(),
                       "");
    }
    Run(words.value());
  }

  // ---------------------------------------------------------------- HTTP

  void OnHttpData(std::string_view data) {
    switch (parser_.Feed(data)) {
      case HttpRequestParser::State::kIncomplete:
        return;
      case HttpRequestParser::State::kError:
        request_done_ = true;
        status_override_ = parser_.error_status();
        return SendError(parser_.error_status() == 413 || parser_.error_status() == 431
                             ? kKindTooLarge
                             : kKindBadRequest,
                         parser_.error(), "");
      case HttpRequestParser::State::kComplete:
        request_done_ = true;
        uv_read_stop(stream());
        return OnHttpRequest(parser_.request());
    }
  }

  // Checks the bearer token; answers 401 and returns false if refused.
  bool Authorized(const HttpRequest& req) {
    const std::string& token = server_.options_.http_token;
    std::string auth = req.Header("authorization");
    if (!auth.empty()) {
      constexpr std::string_view kBearer = "Bearer ";
      if (!auth.starts_with(kBearer) || token.empty() ||
          !SameToken(std::string_view(auth).substr(kBearer.size()), token)) {
        SendError(kKindUnauthorized, "bad token", "");
        return false;
      }
      return true;
    }
    if (loopback_peer_) return true;
    SendError(kKindUnauthorized,
              token.empty() ? "admin API refused to non-loopback peers: no [admin] http_token is set"
                            : "a bearer token is required from non-loopback peers",
              "");
    return false;
  }

  void OnHttpRequest(const HttpRequest& req) {
    for (const auto& [name, value] : req.query) {
      if (name == "format") ndjson_ = value && *value == "ndjson";
    }
    const bool get = req.method == "GET";
    if (!get && req.method != "POST") {
      status_override_ = 405;
      return SendError(kKindBadRequest, "method " + req.method + " not allowed", "");
    }
    const auto& p = req.path;
    if (p.size() == 3 && p[0] == "api" && p[1] == "v1" && p[2] == "health") {
      HealthReport h{false, false, "the node has no health check"};
      if (server_.options_.health) h = server_.options_.health();
      const bool ok = h.accepting_connections && !h.degraded;
      status_override_ = ok ? 200 : 503;
      Json body{{"status", ok                        ? "ok"
                           : h.accepting_connections ? "degraded"
                                                     : "unavailable"},
                {"accepting_connections", h.accepting_connections}};
      if (!ok) body["reason"] = h.reason;
      return SendHttp(status_override_, "application/json", Dump(body) + "\n");
    }
    if (overflow_) return RefuseOverflow();
    if (p.size() == 1 && p[0] == "metrics") {
      if (!Authorized(req)) return;
      std::string body = server_.options_.metrics ? server_.options_.metrics() : "";
      return SendHttp(200, "text/plain; version=0.0.4; charset=utf-8", body);
    }
    if (p.size() < 3 || p[0] != "api" || p[1] != "v1") {
      status_override_ = 404;
      return SendError("not_found", "no such endpoint; commands are under /api/v1/", "");
    }
    if (!Authorized(req)) return;
    std::vector<std::string> words(p.begin() + 2, p.end());
    for (const auto& [name, value] : req.query) {
      if (name == "format") continue;
      words.push_back("--" + name + (value ? "=" + *value : ""));
    }
    auto call = server_.registry_.Parse(words);
    if (call.ok() && get && call->command->access == core::AdminAccess::kWrite) {
      status_override_ = 405;
      return SendError(kKindBadRequest, "'" + call->command->path + "' changes the node: use POST",
                       "");
    }
    Run(words);
  }

  // Writes a whole HTTP response with a known body.
  void SendHttp(int status, std::string_view type, const std::string& body) {
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) +
                       "\r\nContent-Type: " + std::string(type) +
                       "\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nCache-Control: no-store\r\nConnection: close\r\n";
    if (status == 405) head += "Allow: GET, POST\r\n";
    if (status == 401) head += "WWW-Authenticate: Bearer\r\n";
    head += "\r\n";
    responded_ = true;
    Write(std::move(head) + body);
    Finish();
  }

  // Starts a chunked HTTP response (a listing).
  void StartChunked() {
    responded_ = true;
    Write("HTTP/1.1 200 OK\r\nContent-Type: " +
          std::string(ndjson_ ? "application/x-ndjson" : "application/json") +
          "\r\nTransfer-Encoding: chunked\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
  }

  void WriteChunk(const std::string& data) {
    if (data.empty()) return;
    char size[20];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    Write(std::string(size) + data + "\r\n");
  }

  // ---------------------------------------------------------------- commands

  void Run(const std::vector<std::string>& words) {
    std::weak_ptr<Conn> weak = shared_from_this();
    server_.registry_.Dispatch(words, [weak](AdminResult r) {
      if (auto c = weak.lock()) c->OnResult(std::move(r));
    });
  }

  void OnResult(AdminResult r) {
    if (stream_ == nullptr) return;
    if (!r.ok()) {
      return SendError(core::AdminErrorKind(r.status()), r.status().message(), r.usage());
    }
    if (!r.is_list()) return SendValue(r.value(), r.text());
    source_ = std::move(r.source());
    const Json columns = ColumnsJson(r.columns());
    if (http_) {
      StartChunked();
      WriteChunk(ndjson_ ? Frame("list", Json{{"columns", columns}})
                         : "{\"v\":1,\"ok\":true,\"columns\":" + Dump(columns) + ",\"rows\":[");
    } else {
      responded_ = true;
      Write(Frame("list", Json{{"columns", columns}}));
    }
    Pull();
  }

  void Pull() {
    waiting_drain_ = false;
    std::weak_ptr<Conn> weak = shared_from_this();
    source_(server_.options_.page_rows, [weak](Result<AdminPage> page) {
      if (auto c = weak.lock()) c->OnPage(std::move(page));
    });
  }

  void OnPage(Result<AdminPage> page) {
    if (stream_ == nullptr || !source_) return;
    if (!page.ok()) {
      const char* kind = core::AdminErrorKind(page.status());
      std::string msg = page.status().message();
      if (!http_ || ndjson_) {
        WriteMaybeChunked(ErrorFrame(kind, msg));
      } else {
        WriteChunk("],\"count\":" + std::to_string(count_) +
                   ",\"error\":" + Dump(ErrorObject(kind, msg, "")) + "}\n");
      }
      return EndList();
    }
    if (!page->rows.empty()) {
      if (!http_ || ndjson_) {
        WriteMaybeChunked(Frame("rows", Json{{"rows", page->rows}}));
      } else {
        std::string s;
        for (const Json& row : page->rows) s += (count_++ == 0 ? "\n" : ",\n") + Dump(row);
        WriteChunk(s);
      }
      if (!http_ || ndjson_) count_ += page->rows.size();
    }
    if (page->last) {
      if (!http_ || ndjson_) {
        WriteMaybeChunked(Frame("end", Json{{"count", count_}}));
      } else {
        WriteChunk("\n],\"count\":" + std::to_string(count_) + "}\n");
      }
      return EndList();
    }
    if (pending_bytes_ < kLowWaterBytes) {
      Pull();
    } else {
      waiting_drain_ = true;  // OnWritten pulls the next page
    }
  }

  void EndList() {
    source_ = nullptr;
    if (http_) Write("0\r\n\r\n");
    Finish();
  }

  void WriteMaybeChunked(const std::string& frame) {
    if (http_) {
      WriteChunk(frame);
    } else {
      Write(frame);
    }
  }

  void SendValue(const Json& result, const std::string& text) {
    if (!http_) {
      responded_ = true;
      Write(ValueFrame(result, text));
      return Finish();
    }
    SendHttp(200, ndjson_ ? "application/x-ndjson" : "application/json",
             ndjson_ ? ValueFrame(result, text)
                     : Dump(Json{{"v", kAdminProtocolVersion}, {"ok", true}, {"result", result}}) +
                           "\n");
  }

  void SendError(std::string_view kind, std::string_view message, std::string_view usage) {
    if (responded_ || stream_ == nullptr) return;
    if (!http_) {
      responded_ = true;
      Write(ErrorFrame(kind, message, usage));
      return Finish();
    }
    int status = status_override_ != 0 && status_override_ != 200 ? status_override_
                                                                  : HttpStatusForKind(kind);
    SendHttp(status, ndjson_ ? "application/x-ndjson" : "application/json",
             ndjson_ ? ErrorFrame(kind, message, usage)
                     : Dump(Json{{"v", kAdminProtocolVersion},
                                 {"ok", false},
                                 {"error", ErrorObject(kind, message, usage)}}) +
                           "\n");
  }

  void RefuseOverflow() {
    status_override_ = 503;
    server_.LogRefusal();
    SendError("unavailable", "too many admin connections", "");
  }

  // The response is complete: once it is written, Linger().
  void Finish() {
    finished_ = true;
    if (pending_bytes_ == 0) Linger();
  }

  // Half-closes our side and reads (dropping it) whatever the peer still
  // sends, until it closes or idle_timeout passes. Closing at once would make
  // the kernel answer unread input with a reset, which can destroy the
  // answer before the peer read it (a refused oversized request, say).
  void Linger() {
    if (lingering_ || stream_ == nullptr) return;
    if (close_when_written_) return Close();
    lingering_ = true;
    auto* req = new uv_shutdown_t();
    if (uv_shutdown(req, stream(), [](uv_shutdown_t* r, int) { delete r; }) != 0) {
      delete req;
      return Close();
    }
    StartReading();
    ArmTimer();
  }

  struct WriteReq {
    uv_write_t req;
    std::string data;
    std::weak_ptr<Conn> conn;
  };

  void Write(std::string data) {
    if (stream_ == nullptr || data.empty()) return;
    auto* w = new WriteReq{{}, std::move(data), weak_from_this()};
    w->req.data = w;
    pending_bytes_ += w->data.size();
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int rc = uv_write(&w->req, stream(), &buf, 1, [](uv_write_t* req, int status) {
      std::unique_ptr<WriteReq> done(static_cast<WriteReq*>(req->data));
      if (auto c = done->conn.lock()) c->OnWritten(done->data.size(), status);
    });
    if (rc != 0) {
      pending_bytes_ -= w->data.size();
      delete w;
      Close();
    }
  }

  void OnWritten(size_t bytes, int status) {
    pending_bytes_ -= bytes;
    if (status < 0 || stream_ == nullptr) return Close();
    ArmTimer();
    if (finished_ && pending_bytes_ == 0) return Linger();
    if (waiting_drain_ && pending_bytes_ < kLowWaterBytes) Pull();
  }

  AdminServer& server_;
  const bool http_;
  const uint64_t seq_;           // accept order
  AnyStream* stream_ = nullptr;  // null once closing
  // The stream's handle until its close callback, which frees this
  // connection; so valid whenever the connection is still in the server's map.
  uv_handle_t* handle_ = nullptr;
  core::UvHandle<uv_timer_t> timer_;
  char read_buf_[16 * 1024];
  std::string in_;
  HttpRequestParser parser_;
  bool loopback_peer_ = false;
  bool ndjson_ = false;
  int status_override_ = 0;
  bool request_done_ = false;
  bool responded_ = false;
  bool finished_ = false;
  bool lingering_ = false;
  bool waiting_drain_ = false;
  bool overflow_ = false;            // see set_overflow()
  bool close_when_written_ = false;  // no lingering after the answer
  uint64_t last_active_ms_ = 0;
  size_t pending_bytes_ = 0;
  uint64_t count_ = 0;
  core::AdminPageSource source_;
};

// ---------------------------------------------------------------- server

AdminServer::AdminServer(core::Loop& loop, core::AdminRegistry& registry,
                         AdminServerOptions options)
    : loop_(loop), registry_(registry), options_(std::move(options)) {}

AdminServer::~AdminServer() {
  auto conns = std::move(conns_);
  for (auto& [raw, conn] : conns) conn->Detach();
  conns.clear();
  pipe_.Reset();
  tcp_.Reset();
  flush_.Reset();
  if (socket_bound_) ::unlink(options_.socket_path.c_str());
}

Result<std::unique_ptr<AdminServer>> AdminServer::Start(core::Loop& loop,
                                                        core::AdminRegistry& registry,
                                                        AdminServerOptions options) {
  std::unique_ptr<AdminServer> server(new AdminServer(loop, registry, std::move(options)));
  if (!server->options_.socket_path.empty()) {
    if (Status st = server->BindSocket(); !st.ok()) return st;
  }
  if (server->options_.http_enabled) {
    if (Status st = server->BindHttp(); !st.ok()) return st;
  }
  AdminServer* self = server.get();
  self->flush_ = core::UvHandle<uv_timer_t>::Make();
  uv_timer_init(loop.get(), self->flush_.get());
  self->flush_->data = self;
  uv_timer_start(self->flush_.get(), [](uv_timer_t* t) {
    auto* server = static_cast<AdminServer*>(t->data);
    server->refused_log_.Flush();
    server->accept_failed_log_.Flush();
  }, 1000, 1000);
  uv_unref(reinterpret_cast<uv_handle_t*>(self->flush_.get()));
  return server;
}

Status AdminServer::BindSocket() {
  const std::string& path = options_.socket_path;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::IoError("admin socket path '" + path + "' is longer than " +
                           std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
  }
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::IoError("admin socket '" + path + "' exists and is not a socket");
    }
    // A socket file is left behind by a node that did not stop cleanly; one
    // that still answers belongs to a running node.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    bool live = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (fd >= 0) ::close(fd);
    if (live) return Status::IoError("admin socket '" + path + "' is in use by a running node");
    ::unlink(path.c_str());
  }
  pipe_ = core::UvHandle<uv_pipe_t>::Make();
  uv_pipe_init(loop_.get(), pipe_.get(), 0);
  pipe_->data = this;
  if (int rc = uv_pipe_bind(pipe_.get(), path.c_str()); rc != 0) {
    return Status::IoError("admin socket '" + path + "': " + uv_strerror(rc));
  }
  socket_bound_ = true;
  // Before listen(), nobody can connect yet, so the mode is in place before
  // the first client could use it.
  if (::chmod(path.c_str(), 0600) != 0) {
    return Status::IoError("admin socket '" + path + "': chmod: " + std::strerror(errno));
  }
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(pipe_.get()), 16,
                         [](uv_stream_t* l, int status) {
                           if (status == 0) static_cast<AdminServer*>(l->data)->Accept(l, false);
                         });
      rc != 0) {
    return Status::IoError("admin socket '" + path + "': listen: " + uv_strerror(rc));
  }
  return Status::Ok();
}

Status AdminServer::BindHttp() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(options_.http_port);
  const std::string where = "admin HTTP listener " + options_.http_host + ":" + port;
  int gai = getaddrinfo(options_.http_host.empty() ? nullptr : options_.http_host.c_str(),
                        port.c_str(), &hints, &res);
  if (gai != 0) return Status::IoError(where + ": " + gai_strerror(gai));
  tcp_ = core::UvHandle<uv_tcp_t>::Make();
  uv_tcp_init(loop_.get(), tcp_.get());
  tcp_->data = this;
  int rc = uv_tcp_bind(tcp_.get(), res->ai_addr, 0);
  freeaddrinfo(res);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp_.get()), 64, [](uv_stream_t* l, int status) {
      if (status == 0) static_cast<AdminServer*>(l->data)->Accept(l, true);
    });
  }
  if (rc != 0) return Status::IoError(where + ": " + uv_strerror(rc));
  return Status::Ok();
}

std::string AdminServer::http_address() const {
  if (!tcp_) return "";
  sockaddr_storage ss{};
  int len = sizeof ss;
  uv_tcp_getsockname(tcp_.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  return core::FormatSockaddr(ss);
}

void AdminServer::Accept(uv_stream_t* listener, bool http) {
  auto conn = std::make_shared<Conn>(*this, http);
  Conn* raw = conn.get();
  conns_.emplace(raw, conn);
  if (Status st = conn->Open(listener); !st.ok()) {
    FERRY_LOG_LIMITED(accept_failed_log_, "admin: %s", st.ToString().c_str());
    return;  // Open closed it; the close callback erases it
  }
  Admit(*raw);
}

// max_connections bounds the connections reading or answering a request.
// Answered ones (lingering until the peer closes) take no slot; when
// connections pile up past max_connections, as many of them are closed as
// that takes, those answered longest ago first. When every slot is taken,
// the connection idle longest without a complete request gives its slot up
// to the new one: so idle clients cannot starve the health check of a load
// balancer. Only if every slot is busy answering a request is the new
// connection let in past the limit, for /api/v1/health alone, and past
// that refused at once. Connections already closing count for nothing: a
// burst accepted in one callback, before their close callbacks run, must
// not find the same closing connection over and over.
void AdminServer::Admit(Conn& fresh) {
  constexpr size_t kHealthSpare = 8;
  const size_t max = options_.max_connections;
  size_t busy = 0;
  Conn* idlest = nullptr;
  std::vector<Conn*> lingering;
  for (const auto& [raw, conn] : conns_) {
    if (raw == &fresh) continue;
    switch (raw->phase()) {
      case Conn::Phase::kClosing:
        break;
      case Conn::Phase::kLingering:
        lingering.push_back(raw);
        break;
      case Conn::Phase::kReading:
        if (idlest == nullptr || raw->last_active() < idlest->last_active()) idlest = raw;
        [[fallthrough]];
      case Conn::Phase::kWorking:
        ++busy;
        break;
    }
  }
  // Open with the new one, against what max_connections allows.
  const size_t open = busy + lingering.size() + 1;
  if (open > max && !lingering.empty()) {
    const size_t excess = std::min(open - max, lingering.size());
    std::partial_sort(lingering.begin(), lingering.begin() + static_cast<ptrdiff_t>(excess),
                      lingering.end(),
                      [](Conn* a, Conn* b) { return a->last_active() < b->last_active(); });
    for (size_t i = 0; i < excess; ++i) lingering[i]->Close();
  }
  if (busy < max) return;
  if (idlest != nullptr) {
    FERRY_DEBUG("admin: all %zu connections busy, closing the one idle longest", max);
    idlest->Close();
    return;
  }
  if (busy < max + kHealthSpare) {
    fresh.set_overflow();
    return;
  }
  LogRefusal();
  fresh.Refuse("too many admin connections");
}

void AdminServer::LogRefusal() {
  FERRY_LOG_LIMITED(refused_log_, "admin: more than %zu connections busy, refusing one",
                    options_.max_connections);
}

}  // namespace ferry::ctl
