// Discovery on the cluster thread (discovery.h): the loop that makes a
// node alone join the cluster its backend finds, and its on/off switch.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "cluster/cluster_node_impl.h"
#include "core/atomic_file.h"
#include "core/log.h"
#include "core/message.h"

namespace ferry::cluster {
namespace {

constexpr const char* kDiscoveryFile = "/cluster_discovery.json";
constexpr uint64_t kMaxDiscoveryBackoffMs = 60'000;
constexpr uint64_t kTimerSlackMs = 250;  // a tick due now may fire a little early


}  // namespace

void ClusterNode::Impl::LoadDiscovery() {
  discovery_path_ = options_.data_dir + kDiscoveryFile;
  discovery_ = DiscoveryStatus{};
  if (!options_.discovery) return;
  discovery_.strategy = std::string(options_.discovery->strategy());
  discovery_.enabled = true;
  std::ifstream in(discovery_path_);
  std::stringstream text;
  text << in.rdbuf();
  // The file only ever says that `cluster leave` turned discovery off.
  if (in && text.str().find("\"enabled\": false") != std::string::npos) {
    discovery_.enabled = false;
    FERRY_INFO("cluster: discovery (%s) is off since this node left its cluster; "
               "`ferryctl cluster discovery enable` turns it on",
               discovery_.strategy.c_str());
  }
}

void ClusterNode::Impl::SaveDiscovery() {
  const std::string text =
      std::string("{\"enabled\": ") + (discovery_.enabled ? "true" : "false") + "}\n";
  if (Status st = core::WriteFileAtomically(discovery_path_, text); !st.ok()) {
    FERRY_ERROR("cluster: cannot save the discovery setting: %s", st.ToString().c_str());
  }
}

DiscoveryStatus ClusterNode::Impl::CurrentDiscovery() const {
  DiscoveryStatus d = discovery_;
  for (const auto& [source, error] : discovery_errors_) {
    if (!error.empty()) d.errors[source] = error;
  }
  return d;
}

void ClusterNode::Impl::SetDiscovery(bool enabled, std::function<void(Status)> done) {
  if (!options_.discovery) {
    return done(Status::InvalidArgument(
        "this node has no discovery strategy ([cluster] discovery = manual)"));
  }
  if (discovery_.enabled != enabled) {
    discovery_.enabled = enabled;
    SaveDiscovery();
    FERRY_INFO("cluster: discovery (%s) turned %s", discovery_.strategy.c_str(),
               enabled ? "on" : "off");
  }
  if (enabled) {
    discovery_retry_at_ = 0;  // now, not in up to one interval or backoff
    OnDiscoveryTick();
  }
  done(Status::Ok());
}

void ClusterNode::Impl::NoteDiscoveryError(const std::string& source, std::string error) {
  // One line when what `source` (the backend, or a node found) says changes.
  std::string& said = discovery_errors_[source];
  if (error != said && !error.empty()) {
    FERRY_WARN("cluster: discovery (%s): %s", discovery_.strategy.c_str(), error.c_str());
  }
  said = error;
  if (error.empty()) return;
  discovery_.last_error = std::move(error);
  discovery_.error_at_ms = core::UnixNowMs();
}

void ClusterNode::Impl::OnDiscoveryTick() {
  if (stopping_ || !options_.discovery || !discovery_.enabled || finding_ || join_ ||
      members_.members().size() > 1 || loop_.Now() + kTimerSlackMs < discovery_retry_at_) {
    return;
  }
  finding_ = true;
  options_.discovery->Find(loop_, [this](Result<std::vector<std::string>> found) {
    finding_ = false;
    if (stopping_) return;
    if (!found.ok()) {
      // A backend that is down is asked less and less often, up to once a
      // minute.
      discovery_backoff_ms_ = std::min<uint64_t>(
          discovery_backoff_ms_ == 0 ? options_.discovery_interval_ms : discovery_backoff_ms_ * 2,
          kMaxDiscoveryBackoffMs);
      discovery_retry_at_ = loop_.Now() + discovery_backoff_ms_;
      return NoteDiscoveryError("", found.status().message());
    }
    discovery_backoff_ms_ = 0;
    discovery_retry_at_ = 0;
    NoteDiscoveryError("", "");
    discovery_.found = *found;
    discovery_.found_at_ms = core::UnixNowMs();
    std::vector<std::string> bad;
    attempts_ = DiscoveryOrder(*found, self_.node, &bad);
    next_attempt_ = 0;
    for (const std::string& b : bad) {
      NoteDiscoveryError(b, "'" + b + "' is no node name@host[:port]");
    }
    NextDiscoveryAttempt();
  });
}

void ClusterNode::Impl::NextDiscoveryAttempt() {
  if (stopping_ || !discovery_.enabled || join_ || members_.members().size() > 1 ||
      next_attempt_ >= attempts_.size()) {
    return;  // in a cluster, or nothing left to try until the next round
  }
  const DiscoveryAttempt attempt = attempts_[next_attempt_++];
  StartJoin(attempt.target, attempt.only_if_clustered, true,
            [this, attempt](const JoinResult& r) {
              if (r.status.ok() && !r.ignored) {
                FERRY_INFO("cluster: discovery (%s) joined cluster '%s' through '%s'",
                           discovery_.strategy.c_str(), options_.cluster.c_str(),
                           attempt.target.c_str());
                discovery_errors_.clear();
                discovery_.last_error.clear();
                return;
              }
              // A node alone that sorts after this one answers "alone" to a
              // probe: not an error, it will join this node.
              if (!r.status.ok() && r.status.message().find(": alone") == std::string::npos) {
                NoteDiscoveryError(attempt.target,
                                   "'" + attempt.target + "': " + r.status.message());
              }
              loop_.Post([this] { NextDiscoveryAttempt(); });
            });
}

}  // namespace ferry::cluster
