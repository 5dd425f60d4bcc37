// The durable store as the node's admin interface shows it: whether it can
// write (the health check, `ferryctl status`) and its stats as Prometheus
// series (see "Failures" in core/durable_store.h).
#include <string>

#include "core/broker.h"
#include "core/broker_internal.h"

namespace ferry::core {

bool Broker::StoreWritable(std::string* why) const {
  if (!ctx_->store) return true;
  const DurableStoreStats s = ctx_->store->stats();
  if (s.writable) return true;
  if (why != nullptr) {
    const uint64_t now = UnixNowMs();
    const uint64_t for_s =
        s.failing_since_ms != 0 && now > s.failing_since_ms ? (now - s.failing_since_ms) / 1000 : 0;
    *why = "the durable store cannot write (for " + std::to_string(for_s) + " s, " +
           std::to_string(s.pending_ops) + " changes waiting): " + s.last_error;
  }
  return false;
}

std::string Broker::StorePrometheusMetrics() const {
  std::string out;
  auto one = [&](const char* name, const char* type, const char* help, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    out += name;
    out += ' ';
    out += std::to_string(v);
    out += '\n';
  };
  one("ferry_store_refused_total", "counter",
      "Requests not acknowledged as done because the durable store could not commit them "
      "(QoS 1/2 PUBLISH answered 0x97 or 0x80, or closed on 3.1.1; SUBSCRIBE and "
      "UNSUBSCRIBE closed).",
      ctx_->metrics.store_refused.load(std::memory_order_relaxed));
  if (!ctx_->store) return out;
  const DurableStoreStats s = ctx_->store->stats();
  one("ferry_store_writable", "gauge",
      "1 while the durable store commits; 0 from a failed commit (a full disk, an I/O error) "
      "until one succeeds again.",
      s.writable ? 1 : 0);
  one("ferry_store_mutations_committed_total", "counter",
      "Changes committed to the durable store (or made moot by a later deletion).", s.ops);
  one("ferry_store_commits_total", "counter", "Transactions the durable store committed.",
      s.commits);
  one("ferry_store_commit_errors_total", "counter",
      "Transaction attempts of the durable store that failed.", s.commit_errors);
  one("ferry_store_pending_mutations", "gauge",
      "Changes submitted to the durable store, not yet committed.", s.pending_ops);
  one("ferry_store_dropped_mutations_total", "counter",
      "Changes the durable store gave up on (one that can never succeed, or what a stop "
      "could not commit).",
      s.dropped_ops);
  one("ferry_store_reserve_bytes", "gauge",
      "Disk space the durable store holds in reserve for deletions on a full disk "
      "(0 while given up).",
      s.reserve_bytes);
  one("ferry_store_bytes", "gauge", "Size of the durable store's database and WAL files.",
      s.file_bytes);
  return out;
}

}  // namespace ferry::core
