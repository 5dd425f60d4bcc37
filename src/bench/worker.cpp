#include "bench/worker.h"

#include <algorithm>

namespace ferry::bench {

Worker::Worker(const RunContext& context)
    : context_(context), read_buffer_(new char[kReadBufferSize]) {}

Worker::~Worker() { Join(); }

void Worker::Add(ClientSpec spec) {
  clients_.push_back(std::make_unique<Client>(*this, std::move(spec)));
}

void Worker::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::Run() {
  loop_.BindToCurrentThread();
  uv_loop_t* loop = loop_.get();
  group_start_ms_[0] = uv_now(loop);
  connect_timer_ = core::UvHandle<uv_timer_t>::Make();
  uv_timer_init(loop, connect_timer_.get());
  connect_timer_->data = this;
  uv_timer_start(connect_timer_.get(), [](uv_timer_t* t) {
    static_cast<Worker*>(t->data)->ConnectMore();
  }, 0, 1);
  housekeeping_ = core::UvHandle<uv_timer_t>::Make();
  uv_timer_init(loop, housekeeping_.get());
  housekeeping_->data = this;
  uv_timer_start(housekeeping_.get(), [](uv_timer_t* t) {
    auto* self = static_cast<Worker*>(t->data);
    uint64_t now = self->NowMs();
    for (auto& c : self->clients_) c->Housekeeping(now);
  }, 1000, 1000);
  idle_ = core::UvHandle<uv_idle_t>::Make();
  uv_idle_init(loop, idle_.get());
  idle_->data = this;
  window_timer_ = core::UvHandle<uv_timer_t>::Make();
  uv_timer_init(loop, window_timer_.get());
  window_timer_->data = this;
  loop_.Run();
}

void Worker::ConnectMore() {
  if (stopping_) return;
  const Options& o = *context_.options;
  uint64_t now = NowMs();
  while (next_connect_ < clients_.size() && connecting_ < o.max_connecting) {
    Client& c = *clients_[next_connect_];
    int group = c.spec().group;
    if (group == 1 && !group1_started_) break;
    if (now - group_start_ms_[group] < c.spec().connect_at_ms) break;
    ++next_connect_;
    ++connecting_;
    c.Connect();
  }
  if (next_connect_ == clients_.size()) connect_timer_.Reset();
}

void Worker::OnHandshakeEnded() {
  if (connecting_ > 0) --connecting_;
}

void Worker::StartGroup1() {
  loop_.Post([this] {
    group1_started_ = true;
    group_start_ms_[1] = NowMs();
    ConnectMore();
  });
}

void Worker::StartPublishing() {
  loop_.Post([this] {
    publishing_ = true;
    for (auto& c : clients_) {
      if (c->spec().role == Role::kPublisher) c->StartPublishing();
    }
  });
}

void Worker::StopPublishing() {
  loop_.Post([this] {
    publishing_ = false;
    for (auto& c : clients_) c->StopPublishing();
  });
}

void Worker::Stop() {
  loop_.Post([this] {
    stopping_ = true;
    for (auto& c : clients_) c->Disconnect();
    connect_timer_.Reset();
    housekeeping_.Reset();
    idle_.Reset();
    window_timer_.Reset();
    ready_.clear();
    window_waiters_.clear();
    // Clients still leaving after this long are closed outright. Unreferenced:
    // the timer alone does not keep the loop running.
    stop_timer_ = core::UvHandle<uv_timer_t>::Make();
    uv_timer_init(loop_.get(), stop_timer_.get());
    stop_timer_->data = this;
    uv_timer_start(stop_timer_.get(), [](uv_timer_t* t) {
      auto* self = static_cast<Worker*>(t->data);
      for (auto& c : self->clients_) c->Close();
      self->stop_timer_.Reset();
    }, kLeaveTimeoutMs, 0);
    uv_unref(stop_timer_.raw());
    loop_.Stop();
  });
}

void Worker::MarkReady(Client* client) {
  if (client->queued_ready || stopping_) return;
  client->queued_ready = true;
  ready_.push_back(client);
  if (ready_.size() == 1 && idle_ && !uv_is_active(idle_.raw())) {
    uv_idle_start(idle_.get(), [](uv_idle_t* h) { static_cast<Worker*>(h->data)->ServeReady(); });
  }
}

void Worker::ServeReady() {
  serving_.swap(ready_);
  for (Client* c : serving_) c->queued_ready = false;
  for (Client* c : serving_) c->PumpBatch();
  serving_.clear();
  if (ready_.empty() && idle_) uv_idle_stop(idle_.get());
}

void Worker::WaitForWindow(Client* client) {
  if (client->queued_window || stopping_) return;
  client->queued_window = true;
  window_waiters_.push_back(client);
  if (window_waiters_.size() == 1 && window_timer_) {
    uv_timer_start(window_timer_.get(), [](uv_timer_t* t) {
      static_cast<Worker*>(t->data)->CheckWindows();
    }, 1, 1);
  }
}

void Worker::CheckWindows() {
  size_t kept = 0;
  for (Client* c : window_waiters_) {
    if (c->closed() || !publishing_) {
      c->queued_window = false;
    } else if (c->WindowOpen()) {
      c->queued_window = false;
      MarkReady(c);
    } else {
      window_waiters_[kept++] = c;
    }
  }
  window_waiters_.resize(kept);
  if (window_waiters_.empty()) uv_timer_stop(window_timer_.get());
}

}  // namespace ferry::bench
