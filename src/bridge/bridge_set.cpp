// BridgeSet: the bridges of a node, their thread, housekeeping, reload and
// the runtime file data_dir/bridges.conf.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "bridge/bridge_set_impl.h"
#include "core/atomic_file.h"
#include "core/broker.h"
#include "core/config.h"
#include "core/log.h"

namespace ferry::bridge {

namespace {

using ferry::Result;
using ferry::Status;

constexpr uint64_t kHousekeepingMs = 100;
// How often a node asks for the lock of a bridge of scope cluster that runs
// elsewhere (and checks it still holds those that run here); and how long it
// waits for an answer before it asks again.
constexpr uint64_t kPlaceEveryMs = 1000;
constexpr uint64_t kPlaceTimeoutMs = 10000;

std::string RuntimeFile(const std::string& data_dir) { return data_dir + "/bridges.conf"; }
std::string StateFile(const std::string& data_dir) { return data_dir + "/bridges.state"; }

// data_dir/bridges.state: one line per bridge that ferryctl stopped or
// started, "stopped NAME" or "started NAME"; '#' starts a comment. Errors:
// InvalidArgument naming file:line for a line of any other shape.
Result<std::map<std::string, bool>> ReadAdminStates(const std::string& data_dir) {
  std::map<std::string, bool> out;
  const std::string path = StateFile(data_dir);
  std::ifstream in(path);
  if (!in.is_open()) return out;  // none yet
  std::string errors;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.find(' ');
    const std::string verb = line.substr(0, space);
    const std::string name = space == std::string::npos ? "" : line.substr(space + 1);
    if ((verb != "stopped" && verb != "started") || !IsBridgeName(name)) {
      errors += (errors.empty() ? "" : "\n") + path + ":" + std::to_string(n) +
                ": expected 'stopped NAME' or 'started NAME', got '" + line + "'";
      continue;
    }
    out[name] = verb == "started";
  }
  if (!errors.empty()) return Status::InvalidArgument(errors);
  return out;
}

// The bridges of the config file, then those of the runtime file, which
// replace file bridges of the same name. Errors from both, together.
Result<std::vector<std::pair<BridgeConfig, bool>>> ReadAll(const core::Config& config) {
  std::vector<std::pair<BridgeConfig, bool>> out;  // (config, runtime)
  std::string errors;
  auto file = ReadBridgeConfigs(config.raw, config.node.name);
  if (file.ok()) {
    for (BridgeConfig& c : file.value()) out.emplace_back(std::move(c), false);
  } else {
    errors = file.status().message();
  }
  const std::string path = RuntimeFile(config.node.data_dir);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    auto raw = core::ParseConfigFile(path, nullptr);
    auto runtime = raw.ok() ? ReadBridgeConfigs(raw.value(), config.node.name)
                            : Result<std::vector<BridgeConfig>>(raw.status());
    if (runtime.ok()) {
      for (BridgeConfig& c : runtime.value()) {
        std::erase_if(out, [&](const auto& e) { return e.first.name == c.name; });
        out.emplace_back(std::move(c), true);
      }
    } else {
      errors += (errors.empty() ? "" : "\n") + runtime.status().message();
    }
  }
  if (auto states = ReadAdminStates(config.node.data_dir); !states.ok()) {
    errors += (errors.empty() ? "" : "\n") + states.status().message();
  }
  if (!errors.empty()) return Status::InvalidArgument(errors);
  return out;
}

bool SameConfig(const BridgeConfig& a, const BridgeConfig& b, const std::string& node) {
  return RenderBridgeSection(a, node) == RenderBridgeSection(b, node);
}

}  // namespace

BridgeSet::Impl::Impl(core::Broker& broker, std::string node_name, std::string data_dir)
    : gate_(std::make_shared<LoopGate>(loop_)),
      ctx_{broker, loop_, gate_, std::move(node_name), std::move(data_dir),
           [this](const std::string& name) { return Find(name); }} {}

BridgeSet::Impl::~Impl() {
  if (thread_.joinable()) {
    // Shutdown() was not run to the end: stop the loop now.
    loop_.Post([this] { StopAll(); });
    thread_.join();
  }
  gate_->Close();
  for (auto& [name, link] : links_) link->StopQueue();
}

BridgeLink* BridgeSet::Impl::Find(const std::string& name) {
  auto it = links_.find(name);
  return it == links_.end() ? nullptr : it->second.get();
}

Status BridgeSet::Impl::Add(PreparedConfig prepared, bool runtime) {
  std::string name = prepared.config.name;
  auto link = BridgeLink::Create(std::move(prepared), ctx_, runtime);
  if (!link.ok()) return link.status();
  if (auto it = admin_states_.find(name); it != admin_states_.end()) {
    link.value()->set_admin_state(it->second ? "started" : "stopped");
  }
  std::lock_guard lock(links_mu_);
  links_[name] = std::move(link).value();
  return Status::Ok();
}

Status BridgeSet::Impl::Start(core::Loop& main_loop) {
  main_loop_ = &main_loop;
  housekeeping_ = core::UvHandle<uv_timer_t>::Make();
  uv_timer_init(loop_.get(), housekeeping_.get());
  housekeeping_->data = this;
  uv_timer_start(housekeeping_.get(), [](uv_timer_t* t) {
    static_cast<Impl*>(t->data)->Housekeeping();
  }, kHousekeepingMs, kHousekeepingMs);
  thread_ = std::thread([this] {
    loop_.Run();
    FERRY_DEBUG("bridge thread stopped");
  });
  loop_.Post([this] {
    for (auto& [name, link] : links_) {
      if (ShouldStart(link->config())) StartLink(*link);
    }
  });
  return Status::Ok();
}

void BridgeSet::Impl::Housekeeping() {
  const uint64_t now = loop_.Now();
  for (auto& [name, link] : links_) link->Housekeeping(now);
  if (placement_ == nullptr || now - last_placed_ms_ < kPlaceEveryMs) return;
  last_placed_ms_ = now;
  std::vector<std::string> names;
  for (auto& [name, link] : links_) {
    if (Placed(*link)) names.push_back(name);
  }
  for (const std::string& name : names) Place(name);
}

void BridgeSet::Impl::StartLink(BridgeLink& link) {
  if (!Placed(link)) {
    link.Start();
    link.set_runs_on(ctx_.node_name);
    return;
  }
  placed_[link.config().name].wanted = true;
  link.set_runs_on("", /*standby=*/true);
  Place(link.config().name);
}

void BridgeSet::Impl::StopLink(BridgeLink& link) {
  link.Stop();
  link.set_runs_on("");
  if (!Placed(link)) return;
  Placement& p = placed_[link.config().name];
  p.wanted = false;
  if (p.held) placement_->Release(link.config().name);
  p.held = false;
}

void BridgeSet::Impl::Place(const std::string& name) {
  BridgeLink* link = Find(name);
  if (link == nullptr || stopping_) return;
  Placement& p = placed_[name];
  const uint64_t now = loop_.Now();
  if (!p.wanted || (p.asking && now - p.asked_at < kPlaceTimeoutMs)) return;
  p.asking = true;
  p.asked_at = now;
  // The answers come back through the gate, which is closed before this
  // set goes away.
  if (p.held) {
    placement_->Held(name, [this, gate = gate_, name](bool held) {
      gate->Post([this, name, held] { OnHeld(name, held); });
    });
    return;
  }
  placement_->Claim(name, [this, gate = gate_, name](bool held, std::string holder) {
    gate->Post([this, name, held, holder = std::move(holder)] { OnClaimed(name, held, holder); });
  });
}

void BridgeSet::Impl::OnClaimed(const std::string& name, bool held, const std::string& holder) {
  BridgeLink* link = Find(name);
  Placement& p = placed_[name];
  p.asking = false;
  if (link == nullptr || !p.wanted || stopping_) {
    if (held) placement_->Release(name);
    return;
  }
  if (!held) {
    link->set_runs_on(holder, /*standby=*/true);
    if (!link->running() && link->has_queued()) link->Drain();
    return;
  }
  p.held = true;
  link->set_runs_on(ctx_.node_name);
  FERRY_INFO("bridge %s: runs on this node now (it holds the bridge's lock)", name.c_str());
  link->Start();
}

void BridgeSet::Impl::OnHeld(const std::string& name, bool held) {
  BridgeLink* link = Find(name);
  Placement& p = placed_[name];
  p.asking = false;
  if (held || link == nullptr || !p.held) return;
  FERRY_WARN("bridge %s: this node no longer holds the bridge's lock (it no longer sees enough "
             "of the cluster); stopping it here",
             name.c_str());
  p.held = false;
  placement_->Release(name);
  link->Stop();
  link->set_runs_on("", /*standby=*/true);
}

void BridgeSet::Impl::StopAll() {
  stopping_ = true;
  for (auto& [name, link] : links_) StopLink(*link);
  housekeeping_.Reset();
  loop_.Stop();  // Run() returns once the links' sockets are closed
}

void BridgeSet::Impl::Shutdown(std::function<void()> done) {
  if (!thread_.joinable()) {
    main_loop_->Post(std::move(done));
    return;
  }
  loop_.Post([this] { StopAll(); });
  // Joining blocks, so it happens off the main loop.
  std::thread([this, done = std::move(done)]() mutable {
    thread_.join();
    gate_->Close();
    for (auto& [name, link] : links_) link->StopQueue();
    main_loop_->Post(std::move(done));
  }).detach();
}

std::vector<BridgeStats> BridgeSet::Impl::Stats() const {
  std::lock_guard lock(links_mu_);
  std::vector<BridgeStats> out;
  for (const auto& [name, link] : links_) out.push_back(link->Stats());
  return out;
}

void BridgeSet::Impl::RunOp(std::function<void(std::function<void()>)> op) {
  ops_.push_back(std::move(op));
  RunNextOp();
}

void BridgeSet::Impl::RunNextOp() {
  if (op_running_ || ops_.empty()) return;
  op_running_ = true;
  auto op = std::move(ops_.front());
  ops_.pop_front();
  // `finished` may be called inside `op` or later from a callback; the next
  // op starts on a later turn either way.
  op([this] {
    loop_.Post([this] {
      op_running_ = false;
      RunNextOp();
    });
  });
}

void BridgeSet::Impl::Apply(std::vector<BridgeConfig> wanted, std::function<void()> finished) {
  std::set<std::string> keep;
  auto pending = std::make_shared<size_t>(1);
  auto one_done = [pending, finished](Status s) {
    if (!s.ok()) FERRY_ERROR("bridge reload: %s", s.ToString().c_str());
    if (--*pending == 0) finished();
  };
  for (BridgeConfig& c : wanted) {
    keep.insert(c.name);
    BridgeLink* old = Find(c.name);
    if (old != nullptr && old->runtime()) continue;  // runtime bridges win
    if (old != nullptr && SameConfig(old->config(), c, ctx_.node_name)) continue;
    const bool start = ShouldStart(c);
    FERRY_INFO("bridge %s: %s by the config", c.name.c_str(), old != nullptr ? "changed" : "added");
    ++*pending;
    const std::string name = c.name;
    Replace(name, std::move(c), /*runtime=*/false, start, one_done);
  }
  std::vector<std::string> gone;
  for (auto& [name, link] : links_) {
    if (!link->runtime() && !keep.contains(name)) gone.push_back(name);
  }
  for (const std::string& name : gone) {
    FERRY_INFO("bridge %s: removed from the config", name.c_str());
    ++*pending;
    Replace(name, std::nullopt, false, false, one_done);
  }
  one_done(Status::Ok());
}

void BridgeSet::Impl::Replace(const std::string& name, std::optional<BridgeConfig> replacement,
                              bool runtime, bool start, Done done) {
  std::unique_ptr<BridgeLink> old;
  if (BridgeLink* link = Find(name)) {
    StopLink(*link);
    std::lock_guard lock(links_mu_);
    old = std::move(links_[name]);
    links_.erase(name);
  }
  struct Work {
    uv_work_t req;
    Impl* self;
    std::string name;
    std::unique_ptr<BridgeLink> old;
    std::optional<BridgeConfig> replacement;
    bool runtime;
    bool start;
    Done done;
    Result<std::unique_ptr<BridgeLink>> created = Status::Unavailable("not created");
  };
  auto* w = new Work{{}, this, name, std::move(old), std::move(replacement), runtime, start,
                     std::move(done)};
  w->req.data = w;
  // The old queue must be closed before the new one opens the directory;
  // both, and reading the new config's files, are disk work.
  uv_queue_work(
      loop_.get(), &w->req,
      [](uv_work_t* req) {
        auto* w = static_cast<Work*>(req->data);
        if (w->old) w->old->StopQueue();
        if (!w->replacement) return;
        auto prepared = PrepareConfig(std::move(*w->replacement));
        if (!prepared.ok()) {
          w->created = prepared.status();
          return;
        }
        w->created = BridgeLink::Create(std::move(prepared).value(), w->self->ctx_, w->runtime);
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<Work> w(static_cast<Work*>(req->data));
        if (!w->replacement) return w->done(Status::Ok());
        if (!w->created.ok()) return w->done(w->created.status());
        Impl* self = w->self;
        BridgeLink* link = w->created.value().get();
        if (auto it = self->admin_states_.find(w->name); it != self->admin_states_.end()) {
          link->set_admin_state(it->second ? "started" : "stopped");
        }
        {
          std::lock_guard lock(self->links_mu_);
          self->links_[w->name] = std::move(w->created).value();
        }
        // A bridge made while the node shuts down stays stopped: a link
        // started now would keep the ending loop alive.
        if (w->start && !self->stopping_) self->StartLink(*link);
        w->done(Status::Ok());
      });
}

bool BridgeSet::Impl::ShouldStart(const BridgeConfig& c) const {
  auto it = admin_states_.find(c.name);
  if (it != admin_states_.end()) return it->second;
  return c.start != StartMode::kManual;
}

void BridgeSet::Impl::SetAdminState(const std::string& name, bool started, Done done) {
  admin_states_[name] = started;
  if (BridgeLink* link = Find(name)) link->set_admin_state(started ? "started" : "stopped");
  std::string text =
      "# Bridges stopped or started with ferryctl, kept across restarts of\n"
      "# ferryd. Written by ferryd: use ferryctl bridges start|stop NAME.\n";
  for (const auto& [n, s] : admin_states_) {
    if (Find(n) != nullptr) text += std::string(s ? "started " : "stopped ") + n + "\n";
  }
  WriteInBackground(StateFile(ctx_.data_dir), std::move(text), std::move(done));
}

void BridgeSet::Impl::WriteInBackground(std::string path, std::string text, Done done) {
  struct Work {
    uv_work_t req;
    std::string path;
    std::string text;
    Done done;
    Status status;
  };
  auto* w = new Work{{}, std::move(path), std::move(text), std::move(done), {}};
  w->req.data = w;
  uv_queue_work(
      loop_.get(), &w->req,
      [](uv_work_t* req) {
        auto* w = static_cast<Work*>(req->data);
        w->status = core::WriteFileAtomically(w->path, w->text);
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<Work> w(static_cast<Work*>(req->data));
        if (!w->status.ok()) FERRY_ERROR("bridges: %s", w->status.ToString().c_str());
        w->done(w->status);
      });
}

void BridgeSet::Impl::PersistRuntime(Done done) {
  std::string text =
      "# Bridges created or changed with ferryctl. Written by ferryd; edit\n"
      "# [bridge.NAME] sections in ferry.conf instead. A bridge here replaces\n"
      "# the one of the same name in ferry.conf.\n";
  for (const auto& [name, link] : links_) {
    if (link->runtime()) text += "\n" + RenderBridgeSection(link->config(), ctx_.node_name);
  }
  WriteInBackground(RuntimeFile(ctx_.data_dir), std::move(text), std::move(done));
}

Status BridgeSet::Check(const core::Config& config) {
  auto all = ReadAll(config);
  return all.ok() ? Status::Ok() : all.status();
}

Result<std::unique_ptr<BridgeSet>> BridgeSet::Create(const core::Config& config,
                                                     core::Broker& broker) {
  auto all = ReadAll(config);
  if (!all.ok()) return all.status();
  auto impl = std::make_unique<Impl>(broker, config.node.name, config.node.data_dir);
  auto states = ReadAdminStates(config.node.data_dir);
  if (!states.ok()) return states.status();
  impl->admin_states_ = std::move(states).value();
  for (auto& [c, runtime] : all.value()) {
    auto prepared = PrepareConfig(std::move(c));
    if (!prepared.ok()) return prepared.status();
    if (Status s = impl->Add(std::move(prepared).value(), runtime); !s.ok()) return s;
  }
  return std::unique_ptr<BridgeSet>(new BridgeSet(std::move(impl)));
}

BridgeSet::BridgeSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BridgeSet::~BridgeSet() = default;

void BridgeSet::SetPlacement(std::shared_ptr<BridgePlacement> placement) {
  impl_->placement_ = std::move(placement);
}

Status BridgeSet::Start(core::Loop& main_loop) { return impl_->Start(main_loop); }

Status BridgeSet::Reload(const core::Config& config) {
  auto all = ReadAll(config);
  if (!all.ok()) return all.status();
  std::vector<BridgeConfig> wanted;
  for (auto& [c, runtime] : all.value()) {
    if (runtime) continue;
    // Check the files it names now, so that a bad one fails the reload.
    auto prepared = PrepareConfig(c);
    if (!prepared.ok()) return prepared.status();
    wanted.push_back(std::move(c));
  }
  Impl* impl = impl_.get();
  impl->loop_.Post([impl, wanted = std::move(wanted)]() mutable {
    impl->RunOp([impl, wanted = std::move(wanted)](std::function<void()> finished) mutable {
      impl->Apply(std::move(wanted), std::move(finished));
    });
  });
  return Status::Ok();
}

void BridgeSet::Shutdown(std::function<void()> done) { impl_->Shutdown(std::move(done)); }

std::vector<BridgeStats> BridgeSet::Stats() const { return impl_->Stats(); }

std::string BridgeSet::PrometheusMetrics() const { return BridgePrometheusMetrics(Stats()); }

}  // namespace ferry::bridge
