// One ferry-bench run: builds the clients from the options, deals them to
// one Worker per loop thread, steers the phases from the main thread, prints
// a progress line every second (with its own CPU and, given --broker-pid,
// the broker's) and the summary at the end.
//
// Phases by mode:
//   pub     connect and publish at once; stop after -L messages in all (and
//           their acks) or -d seconds from the start.
//   sub     connect and subscribe; stop after -L messages received, -d
//           seconds, or (--exit-after-subscribe) once all are subscribed.
//   conn    connect; then hold -d seconds (0 = until SIGINT/SIGTERM).
//   pubsub  subscribers connect and subscribe; then publishers connect and
//           publish for -L messages or -d seconds; then the run waits for
//           the last messages (--drain-ms without progress at most).
// SIGINT or SIGTERM ends any phase early; the summary is still printed.
//
// Main thread only.
#pragma once

#include <memory>
#include <vector>

#include "bench/options.h"
#include "bench/run_context.h"
#include "bench/summary.h"
#include "bench/tls.h"
#include "bench/worker.h"

namespace ferry::bench {

class Runner {
 public:
  // Errors: InvalidArgument for an unresolvable host or a bad --ifaddr;
  // TLS set-up errors from TlsContext::Create.
  static Result<std::unique_ptr<Runner>> Create(const Options& options);
  ~Runner();

  // Runs to the end and prints the summary. Returns the exit status: 0, or 1
  // when no client could connect.
  int Run();

 private:
  enum class Phase { kSubscribing, kRunning, kDraining, kHolding, kDone };
  struct Totals {
    uint64_t connected = 0, failed = 0, closed = 0, subscribed = 0, sent = 0, acked = 0;
    uint64_t inflight = 0, received = 0, publishers_done = 0;
  };

  explicit Runner(const Options& options) : options_(options) {}
  void BuildClients();
  Totals Sum() const;
  void Check();
  void Progress();
  void EnterDraining();
  void Finish();
  Summary Summarize() const;
  void CountLoss(Summary* s) const;

  Options options_;
  RunContext context_;
  std::unique_ptr<TlsContext> tls_;
  std::vector<std::unique_ptr<Worker>> workers_;
  uint64_t publishers_ = 0;
  uint64_t subscribers_ = 0;
  uint64_t total_clients_ = 0;

  Phase phase_ = Phase::kRunning;
  uint64_t phase_start_ns_ = 0;
  uint64_t last_progress_ns_ = 0;
  uint64_t last_progress_count_ = 0;
  uint64_t end_ns_ = 0;
  Totals last_print_;
  uint64_t last_print_ns_ = 0;
  double last_print_bench_cpu_ = 0;
  double last_print_broker_cpu_ = -1;

  double bench_cpu_start_ = 0;
  double broker_cpu_start_ = -1;
  double broker_cpu_end_ = -1;
  int64_t broker_rss_start_ = -1;
  int64_t broker_rss_end_ = -1;

  uv_loop_t loop_{};
  uv_timer_t check_timer_{};
  uv_timer_t progress_timer_{};
  uv_signal_t sigint_{};
  uv_signal_t sigterm_{};
};

}  // namespace ferry::bench
