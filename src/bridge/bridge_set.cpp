// BridgeSet: the bridges of a node, their thread, housekeeping, reload and
// the runtime file.
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "bridge/bridge.h"
#include "bridge/bridge_link.h"
#include "core/broker.h"
#include "core/config.h"
#include "core/log.h"

namespace ferry::bridge {

namespace {

using ferry::Result;
using ferry::Status;

constexpr uint64_t kHousekeepingMs = 100;

std::string RuntimeFile(const std::string& data_dir) { return data_dir + "/bridges.conf"; }

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
  if (!errors.empty()) return Status::InvalidArgument(errors);
  return out;
}

bool SameConfig(const BridgeConfig& a, const BridgeConfig& b, const std::string& node) {
  return RenderBridgeSection(a, node) == RenderBridgeSection(b, node);
}

}  // namespace

class BridgeSet::Impl {
 public:
  Impl(core::Broker& broker, std::string node_name, std::string data_dir)
      : gate_(std::make_shared<LoopGate>(loop_)),
        ctx_{broker, loop_, gate_, std::move(node_name), std::move(data_dir),
             [this](const std::string& name) { return Find(name); }} {}

  ~Impl() {
    if (thread_.joinable()) {
      // Shutdown() was not run to the end: stop the loop now.
      loop_.Post([this] { StopAll(); });
      thread_.join();
    }
    for (auto& [name, link] : links_) link->StopQueue();
  }

  BridgeLink* Find(const std::string& name) {
    auto it = links_.find(name);
    return it == links_.end() ? nullptr : it->second.get();
  }

  Status Add(PreparedConfig prepared, bool runtime) {
    std::string name = prepared.config.name;
    auto link = BridgeLink::Create(std::move(prepared), ctx_, runtime);
    if (!link.ok()) return link.status();
    std::lock_guard lock(links_mu_);
    links_[name] = std::move(link).value();
    return Status::Ok();
  }

  Status Start(core::Loop& main_loop) {
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
        if (link->config().start != StartMode::kManual) link->Start();
      }
    });
    return Status::Ok();
  }

  void Housekeeping() {
    const uint64_t now = loop_.Now();
    for (auto& [name, link] : links_) link->Housekeeping(now);
  }

  // Loop thread: every link stops, then the loop ends once their sockets
  // are closed.
  void StopAll() {
    for (auto& [name, link] : links_) link->Stop();
    housekeeping_.Reset();
    loop_.Stop();
  }

  void Shutdown(std::function<void()> done) {
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

  // Loop thread: replaces, adds and removes file bridges as `wanted` says.
  void Apply(std::vector<PreparedConfig> wanted) {
    std::set<std::string> keep;
    for (PreparedConfig& p : wanted) {
      keep.insert(p.config.name);
      BridgeLink* old = Find(p.config.name);
      if (old != nullptr && old->runtime()) continue;  // runtime bridges win
      if (old != nullptr && SameConfig(old->config(), p.config, ctx_.node_name)) continue;
      Replace(p.config.name, std::move(p));
    }
    std::vector<std::string> gone;
    for (auto& [name, link] : links_) {
      if (!link->runtime() && !keep.contains(name)) gone.push_back(name);
    }
    for (const std::string& name : gone) {
      FERRY_INFO("bridge %s: removed from the config", name.c_str());
      Replace(name, std::nullopt);
    }
  }

  // Loop thread: stops and removes the link `name` (if any) and, if
  // `replacement` is set, creates and starts a new one in its place. The
  // old queue is stopped and the new one opened on the thread pool, in that
  // order, since both use the same directory.
  void Replace(const std::string& name, std::optional<PreparedConfig> replacement) {
    std::unique_ptr<BridgeLink> old;
    if (BridgeLink* link = Find(name)) {
      link->Stop();
      std::lock_guard lock(links_mu_);
      old = std::move(links_[name]);
      links_.erase(name);
    }
    struct Work {
      uv_work_t req;
      Impl* self;
      std::string name;
      std::unique_ptr<BridgeLink> old;
      std::optional<PreparedConfig> replacement;
      Result<std::unique_ptr<BridgeLink>> created = Status::Unavailable("not created");
    };
    auto* w = new Work{{}, this, name, std::move(old), std::move(replacement)};
    w->req.data = w;
    uv_queue_work(
        loop_.get(), &w->req,
        [](uv_work_t* req) {
          auto* w = static_cast<Work*>(req->data);
          if (w->old) w->old->StopQueue();
          if (w->replacement) w->created = BridgeLink::Create(std::move(*w->replacement), w->self->ctx_, false);
        },
        [](uv_work_t* req, int) {
          std::unique_ptr<Work> w(static_cast<Work*>(req->data));
          if (!w->replacement) return;
          if (!w->created.ok()) {
            FERRY_ERROR("bridge %s: %s", w->name.c_str(), w->created.status().ToString().c_str());
            return;
          }
          Impl* self = w->self;
          BridgeLink* link = w->created.value().get();
          {
            std::lock_guard lock(self->links_mu_);
            self->links_[w->name] = std::move(w->created).value();
          }
          FERRY_INFO("bridge %s: (re)configured", w->name.c_str());
          if (link->config().start != StartMode::kManual) link->Start();
        });
  }

  std::vector<BridgeStats> Stats() const {
    std::lock_guard lock(links_mu_);
    std::vector<BridgeStats> out;
    for (const auto& [name, link] : links_) out.push_back(link->Stats());
    return out;
  }

  core::Loop loop_;
  std::shared_ptr<LoopGate> gate_;
  BridgeContext ctx_;
  // Changed on the loop thread (before Start: the creating thread); read by
  // Stats() from any thread under links_mu_.
  mutable std::mutex links_mu_;
  std::map<std::string, std::unique_ptr<BridgeLink>> links_;
  std::thread thread_;
  core::UvHandle<uv_timer_t> housekeeping_;
  core::Loop* main_loop_ = nullptr;
};

Status BridgeSet::Check(const core::Config& config) {
  auto all = ReadAll(config);
  return all.ok() ? Status::Ok() : all.status();
}

Result<std::unique_ptr<BridgeSet>> BridgeSet::Create(const core::Config& config,
                                                     core::Broker& broker) {
  auto all = ReadAll(config);
  if (!all.ok()) return all.status();
  auto impl = std::make_unique<Impl>(broker, config.node.name, config.node.data_dir);
  for (auto& [c, runtime] : all.value()) {
    auto prepared = PrepareConfig(std::move(c));
    if (!prepared.ok()) return prepared.status();
    if (Status s = impl->Add(std::move(prepared).value(), runtime); !s.ok()) return s;
  }
  return std::unique_ptr<BridgeSet>(new BridgeSet(std::move(impl)));
}

BridgeSet::BridgeSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BridgeSet::~BridgeSet() = default;

Status BridgeSet::Start(core::Loop& main_loop) { return impl_->Start(main_loop); }

Status BridgeSet::Reload(const core::Config& config) {
  auto all = ReadAll(config);
  if (!all.ok()) return all.status();
  std::vector<PreparedConfig> wanted;
  for (auto& [c, runtime] : all.value()) {
    if (runtime) continue;
    auto prepared = PrepareConfig(std::move(c));
    if (!prepared.ok()) return prepared.status();
    wanted.push_back(std::move(prepared).value());
  }
  impl_->loop_.Post([impl = impl_.get(), wanted = std::move(wanted)]() mutable {
    impl->Apply(std::move(wanted));
  });
  return Status::Ok();
}

void BridgeSet::Shutdown(std::function<void()> done) { impl_->Shutdown(std::move(done)); }

std::vector<BridgeStats> BridgeSet::Stats() const { return impl_->Stats(); }

}  // namespace ferry::bridge
