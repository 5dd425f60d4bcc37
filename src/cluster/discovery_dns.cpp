// [cluster] discovery = dns: the nodes a DNS name's records give, asked
// through c-ares on the cluster loop (its sockets polled by libuv, its
// timeouts on a libuv timer), so that a slow or dead DNS server never
// blocks the loop.
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "cluster/discovery.h"

namespace ferry::cluster {
namespace {

constexpr int kQueryTimeoutMs = 2000;
constexpr int kQueryTries = 2;
constexpr uint64_t kTickMs = 100;  // ares_process_fd for timeouts

std::string NoDot(const char* host) {
  std::string h(host);
  if (!h.empty() && h.back() == '.') h.pop_back();
  return h;
}

class DnsDiscovery : public DiscoveryBackend {
 public:
  explicit DnsDiscovery(DnsDiscoveryOptions o) : options_(std::move(o)) {
    static std::once_flag init;
    std::call_once(init, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  }
  ~DnsDiscovery() override { Stop(); }

  std::string_view strategy() const override { return "dns"; }

  void Stop() override {
    if (channel_ != nullptr) {
      stopping_ = true;
      ares_destroy(channel_);  // outstanding queries call back with ARES_EDESTRUCTION
      channel_ = nullptr;
    }
    polls_.clear();
    timer_.Reset();
  }

  void Find(core::Loop& loop,
            std::function<void(Result<std::vector<std::string>>)> done) override {
    if (Status st = Open(loop); !st.ok()) {
      return loop.Post([done = std::move(done), st] { done(st); });
    }
    int type = ns_t_a;
    if (options_.record_type == "aaaa") type = ns_t_aaaa;
    if (options_.record_type == "srv") type = ns_t_srv;
    auto* q = new Query{this, &loop, std::move(done)};
    ares_query(channel_, options_.name.c_str(), ns_c_in, type, &DnsDiscovery::OnAnswer, q);
    if (!timer_) return;
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<DnsDiscovery*>(t->data);
          if (self->channel_ != nullptr) {
            ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
          }
        },
        kTickMs, kTickMs);
  }

 private:
  struct Query {
    DnsDiscovery* self;
    core::Loop* loop;
    std::function<void(Result<std::vector<std::string>>)> done;
  };

  Status Open(core::Loop& loop) {
    if (channel_ != nullptr) return Status::Ok();
    ares_options o{};
    o.sock_state_cb = &DnsDiscovery::OnSocketState;
    o.sock_state_cb_data = this;
    o.timeout = kQueryTimeoutMs;
    o.tries = kQueryTries;
    const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    if (int rc = ares_init_options(&channel_, &o, mask); rc != ARES_SUCCESS) {
      channel_ = nullptr;
      return Status::Unavailable(std::string("DNS resolver: ") + ares_strerror(rc));
    }
    if (!options_.servers.empty()) {
      if (int rc = ares_set_servers_ports_csv(channel_, options_.servers.c_str());
          rc != ARES_SUCCESS) {
        ares_destroy(channel_);
        channel_ = nullptr;
        return Status::InvalidArgument("DNS servers '" + options_.servers +
                                       "': " + ares_strerror(rc));
      }
    }
    loop_ = &loop;
    stopping_ = false;
    timer_ = core::UvHandle<uv_timer_t>::Make();
    uv_timer_init(loop.get(), timer_.get());
    timer_->data = this;
    return Status::Ok();
  }

  // c-ares opens, wants to write to, or closes one of its sockets.
  static void OnSocketState(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<DnsDiscovery*>(data);
    if (readable == 0 && writable == 0) {
      self->polls_.erase(fd);
      return;
    }
    auto& poll = self->polls_[fd];
    if (!poll) {
      poll = core::UvHandle<uv_poll_t>::Make();
      uv_poll_init_socket(self->loop_->get(), poll.get(), fd);
      poll->data = self;
    }
    const int events = (readable != 0 ? UV_READABLE : 0) | (writable != 0 ? UV_WRITABLE : 0);
    uv_poll_start(poll.get(), events, [](uv_poll_t* p, int status, int ev) {
      auto* self = static_cast<DnsDiscovery*>(p->data);
      if (self->channel_ == nullptr) return;
      int fd = -1;
      uv_fileno(reinterpret_cast<uv_handle_t*>(p), &fd);
      // On a poll error c-ares reads the socket and sees the error itself.
      const bool read = status < 0 || (ev & UV_READABLE) != 0;
      const bool write = status == 0 && (ev & UV_WRITABLE) != 0;
      ares_process_fd(self->channel_, read ? fd : ARES_SOCKET_BAD, write ? fd : ARES_SOCKET_BAD);
    });
  }

  static void OnAnswer(void* arg, int status, int /*timeouts*/, unsigned char* answer, int length) {
    std::unique_ptr<Query> q(static_cast<Query*>(arg));
    DnsDiscovery* self = q->self;
    if (status == ARES_EDESTRUCTION || self->stopping_) return;
    Result<std::vector<std::string>> found =
        status == ARES_SUCCESS
            ? self->Parse(answer, length)
            : Result<std::vector<std::string>>(Status::Unavailable(
                  "DNS " + self->options_.record_type + " query for '" + self->options_.name +
                  "': " + ares_strerror(status)));
    if (self->timer_ && self->polls_.empty()) uv_timer_stop(self->timer_.get());
    // Never inside Find, and never inside c-ares' own call stack.
    q->loop->Post([done = std::move(q->done), found = std::move(found)]() mutable {
      done(std::move(found));
    });
  }

  Result<std::vector<std::string>> Parse(unsigned char* answer, int length) const {
    std::vector<std::string> out;
    const std::string& app = options_.app;
    if (options_.record_type == "srv") {
      ares_srv_reply* srv = nullptr;
      if (int rc = ares_parse_srv_reply(answer, length, &srv); rc != ARES_SUCCESS) {
        return Status::Unavailable("DNS SRV answer for '" + options_.name + "': " + ares_strerror(rc));
      }
      for (ares_srv_reply* r = srv; r != nullptr; r = r->next) {
        out.push_back(app + "@" + NoDot(r->host) + ":" + std::to_string(r->port));
      }
      ares_free_data(srv);
      return out;
    }
    constexpr int kMax = 64;
    char text[INET6_ADDRSTRLEN];
    int count = kMax;
    if (options_.record_type == "aaaa") {
      ares_addr6ttl addrs[kMax];
      if (int rc = ares_parse_aaaa_reply(answer, length, nullptr, addrs, &count);
          rc != ARES_SUCCESS) {
        return Status::Unavailable("DNS AAAA answer for '" + options_.name + "': " + ares_strerror(rc));
      }
      for (int i = 0; i < count; ++i) {
        inet_ntop(AF_INET6, &addrs[i].ip6addr, text, sizeof text);
        out.push_back(app + "@[" + text + "]");
      }
      return out;
    }
    ares_addrttl addrs[kMax];
    if (int rc = ares_parse_a_reply(answer, length, nullptr, addrs, &count); rc != ARES_SUCCESS) {
      return Status::Unavailable("DNS A answer for '" + options_.name + "': " + ares_strerror(rc));
    }
    for (int i = 0; i < count; ++i) {
      inet_ntop(AF_INET, &addrs[i].ipaddr, text, sizeof text);
      out.push_back(app + "@" + text);
    }
    return out;
  }

  DnsDiscoveryOptions options_;
  ares_channel channel_ = nullptr;
  core::Loop* loop_ = nullptr;
  bool stopping_ = false;
  std::map<ares_socket_t, core::UvHandle<uv_poll_t>> polls_;
  core::UvHandle<uv_timer_t> timer_;
};

}  // namespace

std::shared_ptr<DiscoveryBackend> MakeDnsDiscovery(DnsDiscoveryOptions options) {
  return std::make_shared<DnsDiscovery>(std::move(options));
}

}  // namespace ferry::cluster
