#include "bench/runner.h"

#include <netdb.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <thread>

#include "bench/payload.h"
#include "bench/proc_stats.h"
#include "core/topic.h"

namespace ferry::bench {
namespace {

constexpr uint64_t kNsPerMs = 1000000;

Status Resolve(const std::string& host, uint16_t port, sockaddr_storage* out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return Status::InvalidArgument("-h " + host + ": " + gai_strerror(rc));
  }
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return Status::Ok();
}

core::ProtocolVersion VersionOf(int v) {
  if (v == 3) return core::ProtocolVersion::kV31;
  if (v == 4) return core::ProtocolVersion::kV311;
  return core::ProtocolVersion::kV5;
}

const char* ModeName(Mode m) {
  switch (m) {
    case Mode::kPub: return "pub";
    case Mode::kSub: return "sub";
    case Mode::kConn: return "conn";
    case Mode::kPubSub: return "pubsub";
  }
  return "?";
}

double Seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

}  // namespace

Result<std::unique_ptr<Runner>> Runner::Create(const Options& options) {
  std::unique_ptr<Runner> r(new Runner(options));
  r->context_.options = &r->options_;
  r->context_.version = VersionOf(options.version);
  Status st = Resolve(options.host, options.port, &r->context_.broker);
  if (!st.ok()) return st;
  r->context_.sub_broker = r->context_.broker;
  if (options.sub_port != 0) {
    st = Resolve(options.host, options.sub_port, &r->context_.sub_broker);
    if (!st.ok()) return st;
  }
  for (const std::string& a : options.ifaddrs) {
    sockaddr_storage local{};
    if (uv_ip4_addr(a.c_str(), 0, reinterpret_cast<sockaddr_in*>(&local)) != 0 &&
        uv_ip6_addr(a.c_str(), 0, reinterpret_cast<sockaddr_in6*>(&local)) != 0) {
      return Status::InvalidArgument("--ifaddr: '" + a + "' is not an IP address");
    }
    r->context_.local_addrs.push_back(local);
  }
  if (options.tls) {
    auto tls = TlsContext::Create(options);
    if (!tls.ok()) return tls.status();
    r->tls_ = std::move(tls).value();
    r->context_.tls = r->tls_.get();
  }
  uint32_t loops = options.loops != 0 ? options.loops
                                      : std::max(1u, std::thread::hardware_concurrency());
  for (uint32_t i = 0; i < loops; ++i) {
    r->workers_.push_back(std::make_unique<Worker>(r->context_));
  }
  r->BuildClients();
  return r;
}

Runner::~Runner() = default;

void Runner::BuildClients() {
  const Options& o = options_;
  size_t next_worker = 0;
  auto deal = [&](ClientSpec spec) {
    workers_[next_worker]->Add(std::move(spec));
    next_worker = (next_worker + 1) % workers_.size();
  };
  auto make = [&](Role role, uint64_t k, int group, const std::string& id_template) {
    ClientSpec s;
    s.role = role;
    s.index = o.start_index + k;
    s.client_id = ExpandTemplate(id_template, {s.index, "", 0});
    s.group = group;
    s.connect_at_ms = k * o.connect_interval_ms;
    return s;
  };
  std::vector<std::string> filters;
  if (o.mode == Mode::kPubSub || o.mode == Mode::kSub) {
    subscribers_ = o.mode == Mode::kSub ? o.clients : o.sub_clients;
    std::string ids = o.mode == Mode::kSub ? o.client_id : o.client_id + "-sub";
    for (uint64_t k = 0; k < subscribers_; ++k) {
      ClientSpec s = make(Role::kSubscriber, k, 0, ids);
      s.topic = ExpandTemplate(o.mode == Mode::kSub ? o.topic : o.sub_topic,
                               {s.index, s.client_id, 0});
      s.qos = o.mode == Mode::kSub ? o.qos : o.sub_qos;
      if (o.window > 0) filters.push_back(s.topic);
      deal(std::move(s));
    }
  }
  if (o.window > 0) {
    context_.first_publisher = o.start_index;
    context_.publishers = o.clients;
    context_.accounted.reset(new std::atomic<uint64_t>[o.clients]);
    for (uint64_t k = 0; k < o.clients; ++k) context_.accounted[k].store(0);
  }
  if (o.mode == Mode::kPubSub || o.mode == Mode::kPub) {
    publishers_ = o.clients;
    for (uint64_t k = 0; k < publishers_; ++k) {
      ClientSpec s = make(Role::kPublisher, k, o.mode == Mode::kPubSub ? 1 : 0, o.client_id);
      s.topic = o.topic;
      s.qos = o.qos;
      s.pace_offset_us = k * o.message_interval_us / o.clients;
      std::string first_topic = ExpandTemplate(o.topic, {s.index, s.client_id, 0});
      for (const std::string& f : filters) {
        if (core::TopicMatches(f, first_topic)) ++s.matching_subscribers;
      }
      if (o.limit > 0) s.limit = o.limit / publishers_ + (k < o.limit % publishers_ ? 1 : 0);
      if (o.limit > 0 && s.limit == 0) continue;
      deal(std::move(s));
    }
    if (o.limit > 0) publishers_ = std::min<uint64_t>(publishers_, o.limit);
  }
  if (o.mode == Mode::kConn) {
    for (uint64_t k = 0; k < o.clients; ++k) deal(make(Role::kIdle, k, 0, o.client_id));
  }
  total_clients_ = publishers_ + subscribers_ + (o.mode == Mode::kConn ? o.clients : 0);
}

Runner::Totals Runner::Sum() const {
  Totals t;
  for (const auto& w : workers_) {
    Counters& c = w->counters();
    t.connected += Get(c.connected);
    t.failed += Get(c.connect_failed);
    t.closed += Get(c.closed_by_broker);
    t.subscribed += Get(c.subscribed);
    t.sent += Get(c.sent);
    t.acked += Get(c.acked);
    t.inflight += Get(c.inflight);
    t.received += Get(c.received);
    t.publishers_done += Get(c.publishers_done);
  }
  return t;
}

int Runner::Run() {
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&loop_);
  loop_.data = this;
  context_.start_ns = MonoNs();
  phase_start_ns_ = last_print_ns_ = context_.start_ns;
  bench_cpu_start_ = last_print_bench_cpu_ = ProcessCpuSeconds(getpid()).value_or(0);
  if (options_.broker_pid > 0) {
    broker_cpu_start_ = last_print_broker_cpu_ =
        ProcessCpuSeconds(options_.broker_pid).value_or(-1);
    broker_rss_start_ = static_cast<int64_t>(ProcessRssBytes(options_.broker_pid).value_or(0));
  }
  phase_ = options_.mode == Mode::kPubSub ? Phase::kSubscribing : Phase::kRunning;
  for (auto& w : workers_) {
    if (options_.mode == Mode::kPub) w->StartPublishing();
    w->Start();
  }
  uv_timer_init(&loop_, &check_timer_);
  uv_timer_start(&check_timer_, [](uv_timer_t* t) {
    static_cast<Runner*>(t->loop->data)->Check();
  }, 10, 10);
  uv_timer_init(&loop_, &progress_timer_);
  uv_timer_start(&progress_timer_, [](uv_timer_t* t) {
    static_cast<Runner*>(t->loop->data)->Progress();
  }, 1000, 1000);
  auto on_signal = [](uv_signal_t* s, int) { static_cast<Runner*>(s->loop->data)->Finish(); };
  uv_signal_init(&loop_, &sigint_);
  uv_signal_start(&sigint_, on_signal, SIGINT);
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_start(&sigterm_, on_signal, SIGTERM);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);

  for (auto& w : workers_) w->Stop();
  for (auto& w : workers_) w->Join();
  Summary s = Summarize();
  for (const auto& w : workers_) {
    if (w->errors() == 0) continue;
    uint64_t all = 0;
    for (const auto& v : workers_) all += v->errors();
    std::fprintf(stderr, "ferry-bench: %llu connection error(s); the first: %s\n",
                 static_cast<unsigned long long>(all), w->first_error().c_str());
    break;
  }
  if (options_.json) {
    std::printf("%s\n", FormatJson(s).c_str());
  } else {
    std::printf("%s", FormatText(s).c_str());
  }
  std::fflush(stdout);
  return s.connected == 0 ? 1 : 0;
}

void Runner::Check() {
  if (phase_ == Phase::kDone) return;
  const Options& o = options_;
  const uint64_t now = MonoNs();
  const Totals t = Sum();
  const bool all_tried = t.connected + t.failed >= total_clients_;
  const double since_phase = Seconds(now - phase_start_ns_);
  if (all_tried && t.connected == 0) return Finish();
  switch (phase_) {
    case Phase::kSubscribing:
      if (t.subscribed + t.failed + t.closed >= subscribers_) {
        for (auto& w : workers_) {
          w->StartPublishing();
          w->StartGroup1();
        }
        phase_ = Phase::kRunning;
        phase_start_ns_ = now;
      }
      return;
    case Phase::kRunning:
      if (o.mode == Mode::kConn) {
        if (all_tried) {
          phase_ = Phase::kHolding;
          phase_start_ns_ = now;
        }
        return;
      }
      if (o.mode == Mode::kSub) {
        bool limit = o.limit > 0 && t.received >= o.limit;
        if (t.received != last_progress_count_) {
          last_progress_count_ = t.received;
          last_progress_ns_ = now;
        }
        bool idle = o.idle_ms > 0 && t.received > 0 &&
                    now - last_progress_ns_ >= o.idle_ms * kNsPerMs;
        bool left = o.exit_after_subscribe && t.subscribed + t.failed + t.closed >= subscribers_;
        if (limit || left || idle || (o.duration_s > 0 && since_phase >= o.duration_s)) Finish();
        return;
      }
      if ((o.duration_s > 0 && since_phase >= o.duration_s) ||
          (o.limit > 0 && t.publishers_done >= publishers_) ||
          (all_tried && t.publishers_done + t.failed >= publishers_ && o.limit > 0)) {
        EnterDraining();
      }
      return;
    case Phase::kDraining: {
      uint64_t progress = t.received + t.acked;
      if (progress != last_progress_count_) {
        last_progress_count_ = progress;
        last_progress_ns_ = now;
      }
      bool all_in = t.inflight == 0 &&
                    (o.mode == Mode::kPub || t.received >= t.sent * subscribers_);
      if (all_in) return Finish();
      if (now - last_progress_ns_ >= o.drain_ms * kNsPerMs) {
        // Waited in vain for lost messages: the run ended with the last
        // progress, and CPU percentages are taken over that time.
        end_ns_ = last_progress_ns_;
        Finish();
      }
      return;
    }
    case Phase::kHolding:
      if (o.duration_s > 0 && since_phase >= o.duration_s) Finish();
      return;
    case Phase::kDone:
      return;
  }
}

void Runner::EnterDraining() {
  for (auto& w : workers_) w->StopPublishing();
  phase_ = Phase::kDraining;
  phase_start_ns_ = last_progress_ns_ = MonoNs();
  last_progress_count_ = 0;
}

void Runner::Progress() {
  if (options_.quiet || phase_ == Phase::kDone) return;
  uint64_t now = MonoNs();
  Totals t = Sum();
  double dt = std::max(1e-3, Seconds(now - last_print_ns_));
  // CPU over the last second, 100% = one core: ours, and the broker's.
  double bench_cpu = ProcessCpuSeconds(getpid()).value_or(0);
  char cpu[64];
  int n = std::snprintf(cpu, sizeof cpu, "  cpu bench %.0f%%",
                        100.0 * (bench_cpu - last_print_bench_cpu_) / dt);
  if (options_.broker_pid > 0) {
    double broker_cpu = ProcessCpuSeconds(options_.broker_pid).value_or(-1);
    if (broker_cpu >= 0 && last_print_broker_cpu_ >= 0 && n > 0) {
      std::snprintf(cpu + n, sizeof cpu - static_cast<size_t>(n), " broker %.0f%%",
                    100.0 * (broker_cpu - last_print_broker_cpu_) / dt);
    }
    last_print_broker_cpu_ = broker_cpu;
  }
  last_print_bench_cpu_ = bench_cpu;
  std::fprintf(stderr,
               "[%6.1fs] connected %llu/%llu failed %llu  sent %.0f/s  recv %.0f/s  inflight "
               "%llu%s\n",
               Seconds(now - context_.start_ns), static_cast<unsigned long long>(t.connected),
               static_cast<unsigned long long>(total_clients_),
               static_cast<unsigned long long>(t.failed),
               static_cast<double>(t.sent - last_print_.sent) / dt,
               static_cast<double>(t.received - last_print_.received) / dt,
               static_cast<unsigned long long>(t.inflight), cpu);
  last_print_ = t;
  last_print_ns_ = now;
}

void Runner::Finish() {
  if (phase_ == Phase::kDone) return;
  phase_ = Phase::kDone;
  if (end_ns_ == 0) end_ns_ = MonoNs();
  if (options_.broker_pid > 0) {
    // Measured before the clients disconnect: the broker still holds them.
    broker_cpu_end_ = ProcessCpuSeconds(options_.broker_pid).value_or(-1);
    broker_rss_end_ = static_cast<int64_t>(ProcessRssBytes(options_.broker_pid).value_or(0));
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&check_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&progress_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
}

Summary Runner::Summarize() const {
  const Options& o = options_;
  Summary s;
  s.mode = ModeName(o.mode);
  s.clients = o.mode == Mode::kSub ? subscribers_ : (o.mode == Mode::kConn ? o.clients : publishers_);
  s.sub_clients = o.mode == Mode::kPubSub ? subscribers_ : 0;
  s.qos = o.qos;
  s.payload_size = o.payload_size;
  s.elapsed_s = Seconds(end_ns_ - context_.start_ns);
  Totals t = Sum();
  s.connected = t.connected;
  s.connect_failed = t.failed;
  s.closed_by_broker = t.closed;
  s.sent = t.sent;
  s.acked = t.acked;
  s.received = t.received;
  uint64_t last_connack = 0, first_send = UINT64_MAX, last_send = 0;
  uint64_t first_recv = UINT64_MAX, last_recv = 0;
  for (const auto& w : workers_) {
    Counters& c = w->counters();
    last_connack = std::max(last_connack, Get(c.last_connack_ns));
    if (Get(c.first_send_ns) != 0) first_send = std::min(first_send, Get(c.first_send_ns));
    last_send = std::max(last_send, Get(c.last_send_ns));
    if (Get(c.first_recv_ns) != 0) first_recv = std::min(first_recv, Get(c.first_recv_ns));
    last_recv = std::max(last_recv, Get(c.last_recv_ns));
    s.latency.Merge(w->latency());
  }
  if (last_connack > 0) s.connect_s = Seconds(last_connack - context_.start_ns);
  if (last_send > 0) s.publish_s = Seconds(last_send - first_send);
  if (last_recv > 0) {
    s.first_recv_s = Seconds(first_recv - context_.start_ns);
    s.last_recv_s = Seconds(last_recv - context_.start_ns);
  }
  CountLoss(&s);
  s.bench_cpu_s = ProcessCpuSeconds(getpid()).value_or(0) - bench_cpu_start_;
  s.bench_rss = static_cast<int64_t>(ProcessRssBytes(getpid()).value_or(0));
  if (broker_cpu_start_ >= 0 && broker_cpu_end_ >= 0) {
    s.broker_cpu_s = broker_cpu_end_ - broker_cpu_start_;
  }
  s.broker_rss_start = broker_rss_start_;
  s.broker_rss = broker_rss_end_;
  return s;
}

// pubsub: every (subscriber, publisher) pair whose filter matches the
// publisher's topic owes the subscriber everything that publisher sent.
// sub: only holes are visible, and -L says how many were wanted.
void Runner::CountLoss(Summary* s) const {
  std::vector<const Client*> pubs, subs;
  for (const auto& w : workers_) {
    for (const auto& c : w->clients()) {
      if (c->spec().role == Role::kPublisher) pubs.push_back(c.get());
      if (c->spec().role == Role::kSubscriber) subs.push_back(c.get());
    }
  }
  int64_t expected = 0, lost = 0;
  uint64_t unique = 0;
  for (const Client* sub : subs) {
    const auto& trackers = sub->trackers();
    for (const auto& [publisher, tr] : trackers) {
      s->duplicates += tr.Duplicates();
      s->out_of_order += tr.OutOfOrder();
      unique += tr.Unique();
      if (options_.mode == Mode::kSub) lost += static_cast<int64_t>(tr.Holes());
    }
    if (options_.mode != Mode::kPubSub) continue;
    for (const Client* pub : pubs) {
      if (!core::TopicMatches(sub->spec().topic, pub->first_topic())) continue;
      expected += static_cast<int64_t>(pub->sent());
      auto it = trackers.find(static_cast<uint32_t>(pub->spec().index));
      lost += static_cast<int64_t>(it == trackers.end() ? pub->sent()
                                                         : it->second.Missing(pub->sent()));
    }
  }
  if (options_.mode == Mode::kPubSub) {
    s->expected = expected;
    s->lost = lost;
  } else if (options_.mode == Mode::kSub) {
    if (options_.limit > 0) {
      s->expected = static_cast<int64_t>(options_.limit);
      lost = std::max(lost, static_cast<int64_t>(options_.limit) - static_cast<int64_t>(unique));
    }
    s->lost = lost;
  }
}

}  // namespace ferry::bench
