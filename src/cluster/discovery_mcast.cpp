// [cluster] discovery = mcast: nodes announce themselves on a multicast
// group. One datagram, in text:
//
//   ferry-mcast/1 <kind> <cluster> <node> <port> <unix ms> <mac>
//
// kind `a` announces <node> (name@host) with its cluster port; kind `q`
// asks every node that hears it to announce itself. <mac> is the hex
// HMAC-SHA256, under the key derived from the cookie (handshake.h), of
// everything before it. A datagram with a wrong MAC (another cookie), of
// another cluster, or more than a minute away from this node's clock is
// dropped unseen, so that two clusters on one segment never mix and a
// datagram recorded and replayed later is not taken.
//
// The socket is bound to the first of `ports` it can have (SO_REUSEADDR,
// so several nodes of one host share it) and joins `addr` on `iface`;
// datagrams go to every port of `ports`.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <map>
#include <utility>

#include "cluster/discovery.h"
#include "core/message.h"

namespace ferry::cluster {
namespace {

constexpr uint64_t kHeardFor = 60'000;  // what Find returns: heard this recently
constexpr uint64_t kListenMs = 1000;    // how long Find listens after asking


class McastDiscovery : public DiscoveryBackend {
 public:
  explicit McastDiscovery(McastDiscoveryOptions o) : options_(std::move(o)) {}
  ~McastDiscovery() override { Stop(); }

  std::string_view strategy() const override { return "mcast"; }

  void Start(core::Loop& loop, const DiscoverySelf& self,
             std::function<void(std::string)> report) override {
    loop_ = &loop;
    self_ = self;
    report_ = std::move(report);
    Status st = Open();
    if (report_) report_(st.ok() ? "" : st.message());
    if (st.ok()) Send('a');
  }

  void Stop() override {
    listen_.Reset();
    udp_.Reset();
  }

  void Find(core::Loop& loop,
            std::function<void(Result<std::vector<std::string>>)> done) override {
    if (!udp_) {
      // Start failed (no such interface yet, a port taken): try again.
      Status st = loop_ != nullptr ? Open() : Status::Unavailable("mcast: not started");
      if (!st.ok()) return loop.Post([done = std::move(done), st] { done(st); });
      if (report_) report_("");
    }
    Send('q');
    Send('a');
    pending_.push_back(std::move(done));
    if (!listen_) {
      listen_ = core::UvHandle<uv_timer_t>::Make();
      uv_timer_init(loop.get(), listen_.get());
      listen_->data = this;
    }
    uv_timer_start(
        listen_.get(), [](uv_timer_t* t) { static_cast<McastDiscovery*>(t->data)->Answer(); },
        kListenMs, 0);
  }

 private:
  Status Open() {
    udp_ = core::UvHandle<uv_udp_t>::Make();
    uv_udp_init(loop_->get(), udp_.get());
    udp_->data = this;
    int rc = UV_EINVAL;
    for (uint16_t port : options_.ports) {
      sockaddr_in any{};
      uv_ip4_addr("0.0.0.0", port, &any);
      rc = uv_udp_bind(udp_.get(), reinterpret_cast<const sockaddr*>(&any), UV_UDP_REUSEADDR);
      if (rc == 0) break;
    }
    auto fail = [this](const std::string& what, int code) {
      udp_.Reset();
      return Status::Unavailable("mcast: " + what + ": " + uv_strerror(code));
    };
    if (rc != 0) return fail("cannot bind any of the ports", rc);
    const char* iface = options_.iface == "0.0.0.0" ? nullptr : options_.iface.c_str();
    if ((rc = uv_udp_set_membership(udp_.get(), options_.addr.c_str(), iface, UV_JOIN_GROUP)) != 0) {
      return fail("cannot join group " + options_.addr, rc);
    }
    if (iface != nullptr && (rc = uv_udp_set_multicast_interface(udp_.get(), iface)) != 0) {
      return fail("interface " + options_.iface, rc);
    }
    uv_udp_set_multicast_ttl(udp_.get(), options_.ttl);
    uv_udp_set_multicast_loop(udp_.get(), options_.loop ? 1 : 0);
    rc = uv_udp_recv_start(
        udp_.get(),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* self = static_cast<McastDiscovery*>(h->data);
          buf->base = self->buffer_;
          buf->len = sizeof self->buffer_;
        },
        [](uv_udp_t* u, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned) {
          if (n <= 0 || from == nullptr) return;
          static_cast<McastDiscovery*>(u->data)->OnDatagram(
              std::string_view(buf->base, static_cast<size_t>(n)));
        });
    if (rc != 0) return fail("cannot receive", rc);
    return Status::Ok();
  }

  void Send(char kind) {
    if (!udp_) return;
    std::string text = McastDatagram(kind, self_, static_cast<int64_t>(core::UnixNowMs()));
    for (uint16_t port : options_.ports) {
      sockaddr_in to{};
      uv_ip4_addr(options_.addr.c_str(), port, &to);
      uv_buf_t buf = uv_buf_init(text.data(), static_cast<unsigned>(text.size()));
      // A small datagram: sent at once, or dropped like any lost one.
      (void)uv_udp_try_send(udp_.get(), &buf, 1, reinterpret_cast<const sockaddr*>(&to));
    }
  }

  void OnDatagram(std::string_view datagram) {
    auto heard = ParseMcastDatagram(datagram, self_, static_cast<int64_t>(core::UnixNowMs()));
    if (!heard.ok() || heard->node == self_.node) return;
    if (heard->query) return Send('a');
    heard_[heard->node] = {heard->target, loop_->Now()};
  }

  void Answer() {
    std::vector<std::string> found;
    const uint64_t now = loop_->Now();
    for (auto it = heard_.begin(); it != heard_.end();) {
      if (now - it->second.second > kHeardFor) {
        it = heard_.erase(it);
      } else {
        found.push_back(it->second.first);
        ++it;
      }
    }
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& done : pending) done(found);
  }

  McastDiscoveryOptions options_;
  core::Loop* loop_ = nullptr;
  DiscoverySelf self_;
  std::function<void(std::string)> report_;
  core::UvHandle<uv_udp_t> udp_;
  core::UvHandle<uv_timer_t> listen_;
  char buffer_[kMcastMaxDatagram + 1];
  std::map<std::string, std::pair<std::string, uint64_t>> heard_;  // node: target, loop ms
  std::vector<std::function<void(Result<std::vector<std::string>>)>> pending_;
};

}  // namespace

std::shared_ptr<DiscoveryBackend> MakeMcastDiscovery(McastDiscoveryOptions options) {
  return std::make_shared<McastDiscovery>(std::move(options));
}

}  // namespace ferry::cluster
