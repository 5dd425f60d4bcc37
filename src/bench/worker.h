// One loop thread of a ferry-bench run and the clients it drives. Clients are
// dealt to the workers in turn before the threads start; each client lives
// on its worker's loop for the whole run.
//
// The worker paces connects (-i, at most --max-connecting handshakes at a
// time), runs a one-second housekeeping timer (keep alive, handshake
// timeouts), and keeps the ready list of max-rate publishers whose sockets
// have room, serving one batch each per loop iteration so that no client
// starves the others.
//
// Start(), StartGroup1(), StartPublishing(), StopPublishing(), Stop() and
// Join() are for the main thread; everything else runs on the worker's loop.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/client.h"
#include "bench/histogram.h"
#include "bench/run_context.h"
#include "core/loop.h"

namespace ferry::bench {

class Worker {
 public:
  explicit Worker(const RunContext& context);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Before Start().
  void Add(ClientSpec spec);

  void Start();
  // Lets group-1 clients (pubsub publishers) connect.
  void StartGroup1();
  void StartPublishing();
  void StopPublishing();
  // Disconnects every client and ends the thread.
  void Stop();
  void Join();

  Counters& counters() { return counters_; }
  // After Join().
  const std::vector<std::unique_ptr<Client>>& clients() const { return clients_; }
  const LatencyHistogram& latency() const { return latency_; }

  // For clients, on the loop thread.
  const RunContext& context() const { return context_; }
  uv_loop_t* loop() { return loop_.get(); }
  uint64_t NowMs() { return uv_now(loop_.get()); }
  LatencyHistogram& mutable_latency() { return latency_; }
  char* read_buffer() { return read_buffer_.get(); }
  static constexpr size_t kReadBufferSize = 256 * 1024;
  void MarkReady(Client* client);
  // The client is held back by --window; checked again every millisecond.
  void WaitForWindow(Client* client);
  void OnHandshakeEnded();
  // Keeps the first error a client met, and counts them all.
  void NoteError(const std::string& why) {
    if (errors_++ == 0) first_error_ = why;
  }
  // After Join().
  const std::string& first_error() const { return first_error_; }
  uint64_t errors() const { return errors_; }
  bool publishing() const { return publishing_; }

 private:
  void Run();
  void ConnectMore();
  void ServeReady();
  void CheckWindows();

  const RunContext& context_;
  core::Loop loop_;
  std::thread thread_;
  Counters counters_;
  LatencyHistogram latency_;
  std::unique_ptr<char[]> read_buffer_;
  std::vector<std::unique_ptr<Client>> clients_;
  size_t next_connect_ = 0;
  uint32_t connecting_ = 0;
  bool group1_started_ = false;
  uint64_t group_start_ms_[2] = {0, 0};
  bool publishing_ = false;
  bool stopping_ = false;
  core::UvHandle<uv_timer_t> connect_timer_;
  core::UvHandle<uv_timer_t> housekeeping_;
  core::UvHandle<uv_idle_t> idle_;
  core::UvHandle<uv_timer_t> window_timer_;
  core::UvHandle<uv_timer_t> stop_timer_;
  static constexpr uint64_t kLeaveTimeoutMs = 5000;
  std::vector<Client*> window_waiters_;
  std::vector<Client*> ready_;
  std::string first_error_;
  uint64_t errors_ = 0;
  std::vector<Client*> serving_;
};

}  // namespace ferry::bench
