// [cluster] discovery = k8s: GET /api/v1/namespaces/<namespace>/endpoints/
// <service_name> from the API server, with the service account's bearer
// token (read again on each round: Kubernetes rotates it) and CA. Each
// ready address of each subset is a node:
//   ip        app_name@10.1.2.3
//   dns       app_name@10-1-2-3.<namespace>.<suffix>
//   hostname  app_name@<hostname>.<service_name>.<namespace>.<suffix>
// (a StatefulSet's pods behind a headless service have a hostname).
#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <utility>

#include "cluster/discovery.h"
#include "cluster/http_client.h"
#include "cluster/json_fields.h"

namespace ferry::cluster {
namespace {

std::string Trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

class K8sDiscovery : public DiscoveryBackend {
 public:
  explicit K8sDiscovery(K8sDiscoveryOptions o) : options_(std::move(o)) {}
  ~K8sDiscovery() override { Stop(); }

  std::string_view strategy() const override { return "k8s"; }

  void Stop() override {
    if (http_) http_->Close();
    http_.reset();
  }

  void Find(core::Loop& loop,
            std::function<void(Result<std::vector<std::string>>)> done) override {
    if (!http_) http_ = std::make_unique<HttpClient>(loop);
    HttpRequest r;
    std::string base = options_.apiserver;
    while (base.ends_with('/')) base.pop_back();
    r.url = base + "/api/v1/namespaces/" + options_.name_space + "/endpoints/" +
            options_.service_name;
    r.headers.push_back("Accept: application/json");
    std::ifstream token_file(options_.token_file);
    if (token_file) {
      std::stringstream token;
      token << token_file.rdbuf();
      r.headers.push_back("Authorization: Bearer " + Trimmed(token.str()));
    }
    if (std::ifstream(options_.cafile)) r.tls.cafile = options_.cafile;
    http_->Send(std::move(r), [this, done = std::move(done)](Result<HttpResponse> reply) {
      if (!reply.ok()) return done(Status::Unavailable("k8s: " + reply.status().message()));
      if (reply->status != 200) {
        std::string why = JsonString(Json::parse(reply->body, nullptr, false), "message");
        if (why.empty()) why = reply->body.substr(0, 200);
        return done(Status::Unavailable("k8s: endpoints of service '" + options_.service_name +
                                        "' in namespace '" + options_.name_space + "': HTTP " +
                                        std::to_string(reply->status) + ": " + why));
      }
      done(K8sEndpointNodes(reply->body, options_));
    });
  }

 private:
  K8sDiscoveryOptions options_;
  std::unique_ptr<HttpClient> http_;
};

}  // namespace

std::shared_ptr<DiscoveryBackend> MakeK8sDiscovery(K8sDiscoveryOptions options) {
  return std::make_shared<K8sDiscovery>(std::move(options));
}

}  // namespace ferry::cluster
