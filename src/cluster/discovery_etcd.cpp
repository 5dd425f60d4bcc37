// [cluster] discovery = etcd: the v3 JSON gateway (POST /v3/kv/range,
// /v3/kv/put, /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke;
// keys and values in base64, 64-bit numbers as strings), asked through
// HttpClient so that the loop never waits for etcd.
//
// Registration: grant a lease of node_ttl, put this node's key under it,
// then keep the lease alive every third of node_ttl. When etcd says the
// lease is gone (it expired while etcd or the link was down, or etcd lost
// its data), grant a new one and put the key again. The servers are tried
// in turn: a request that gets no answer moves to the next one.
#include <optional>
#include <utility>

#include "cluster/discovery.h"
#include "cluster/http_client.h"
#include "cluster/json_fields.h"
#include "core/base64.h"

namespace ferry::cluster {
namespace {

// The first key after every key that starts with `prefix` (etcd's
// range_end for a prefix).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) < 0xFF) {
      prefix.back() = static_cast<char>(prefix.back() + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

class EtcdDiscovery : public DiscoveryBackend {
 public:
  explicit EtcdDiscovery(EtcdDiscoveryOptions o) : options_(std::move(o)) {}
  ~EtcdDiscovery() override { Stop(); }

  std::string_view strategy() const override { return "etcd"; }

  void Start(core::Loop& loop, const DiscoverySelf& self,
             std::function<void(std::string)> report) override {
    Open(loop);
    dir_ = options_.prefix + "/" + self.cluster + "/nodes/";
    key_ = dir_ + self.node;
    value_ = self.node + ":" + std::to_string(self.port);
    report_ = std::move(report);
    keepalive_ = core::UvHandle<uv_timer_t>::Make();
    uv_timer_init(loop.get(), keepalive_.get());
    keepalive_->data = this;
    const uint64_t every = std::max<uint64_t>(options_.node_ttl_ms / 3, 1000);
    uv_timer_start(
        keepalive_.get(), [](uv_timer_t* t) { static_cast<EtcdDiscovery*>(t->data)->Register(); },
        0, every);
  }

  void Stop() override {
    keepalive_.Reset();
    if (!http_) return;
    http_->Close();
    http_.reset();
    // The key goes now rather than node_ttl later: a short, last request.
    if (lease_ != 0) {
      HttpRequest revoke = Request("/v3/lease/revoke", Json{{"ID", std::to_string(lease_)}});
      revoke.timeout_ms = 1000;
      (void)PerformHttp(revoke);
      lease_ = 0;
    }
  }

  void Find(core::Loop& loop,
            std::function<void(Result<std::vector<std::string>>)> done) override {
    Open(loop);
    if (dir_.empty()) {
      return loop.Post([done = std::move(done)] { done(Status::Unavailable("etcd: not started")); });
    }
    Call("/v3/kv/range",
         Json{{"key", core::Base64Encode(dir_)}, {"range_end", core::Base64Encode(PrefixEnd(dir_))}},
         [done = std::move(done)](Result<Json> reply) {
           if (!reply.ok()) return done(reply.status());
           std::vector<std::string> found;
           const Json& kvs = JsonField(*reply, "kvs");
           if (kvs.is_array()) {
             for (const Json& kv : kvs) {
               auto value = core::Base64Decode(JsonString(kv, "value"));
               if (value && !value->empty()) found.push_back(*value);
             }
           }
           done(std::move(found));
         });
  }

 private:
  void Open(core::Loop& loop) {
    if (!http_) http_ = std::make_unique<HttpClient>(loop);
  }

  HttpRequest Request(const std::string& path, const Json& body) const {
    HttpRequest r;
    r.method = "POST";
    r.url = options_.servers[server_ % options_.servers.size()] + path;
    r.body = body.dump();
    r.tls = options_.tls;
    return r;
  }

  // POSTs `body` to `path`; the reply's JSON, or what went wrong. A server
  // that does not answer makes the next request go to the next server.
  void Call(const std::string& path, const Json& body, std::function<void(Result<Json>)> done) {
    http_->Send(Request(path, body), [this, path, done = std::move(done)](Result<HttpResponse> r) {
      if (!r.ok()) {
        ++server_;
        return done(Status::Unavailable("etcd: " + r.status().message()));
      }
      Json reply = Json::parse(r->body, nullptr, false);
      if (r->status != 200 || reply.is_discarded() || !reply.is_object()) {
        std::string what = JsonString(reply, "error");
        if (what.empty()) what = JsonString(reply, "message");
        if (what.empty()) what = r->body.substr(0, 200);
        return done(Status::Unavailable("etcd " + path + ": HTTP " + std::to_string(r->status) +
                                        ": " + what));
      }
      done(std::move(reply));
    });
  }

  // Each keepalive tick: a lease alive is kept so; without one, a new lease
  // and the key put under it.
  void Register() {
    if (busy_) return;
    busy_ = true;
    if (lease_ != 0) {
      return Call("/v3/lease/keepalive", Json{{"ID", std::to_string(lease_)}},
                  [this](Result<Json> reply) {
                    busy_ = false;
                    if (!reply.ok()) return Report(reply.status().message());
                    // etcd leaves TTL out (0) for a lease it no longer has.
                    if (JsonInt(JsonField(*reply, "result"), "TTL") <= 0) {
                      lease_ = 0;
                      Register();
                      return;
                    }
                    Report("");
                  });
    }
    const int64_t ttl_s = static_cast<int64_t>(std::max<uint64_t>(options_.node_ttl_ms / 1000, 2));
    Call("/v3/lease/grant", Json{{"TTL", ttl_s}}, [this](Result<Json> reply) {
      if (!reply.ok()) {
        busy_ = false;
        return Report(reply.status().message());
      }
      const int64_t id = JsonInt(*reply, "ID");
      if (id == 0) {
        busy_ = false;
        return Report("etcd granted no lease: " + reply->dump());
      }
      Call("/v3/kv/put",
           Json{{"key", core::Base64Encode(key_)},
                {"value", core::Base64Encode(value_)},
                {"lease", std::to_string(id)}},
           [this, id](Result<Json> put) {
             busy_ = false;
             if (!put.ok()) return Report(put.status().message());
             lease_ = id;
             Report("");
           });
    });
  }

  void Report(std::string error) {
    if (report_) report_(std::move(error));
  }

  EtcdDiscoveryOptions options_;
  std::unique_ptr<HttpClient> http_;
  size_t server_ = 0;
  std::string dir_;    // <prefix>/<cluster>/nodes/
  std::string key_;    // dir_ + this node
  std::string value_;  // this node as a join target
  int64_t lease_ = 0;
  bool busy_ = false;  // a registration step is under way
  std::function<void(std::string)> report_;
  core::UvHandle<uv_timer_t> keepalive_;
};

}  // namespace

std::shared_ptr<DiscoveryBackend> MakeEtcdDiscovery(EtcdDiscoveryOptions options) {
  return std::make_shared<EtcdDiscovery>(std::move(options));
}

}  // namespace ferry::cluster
