// A small HTTP(S) client for the discovery backends that ask a service
// (etcd, the Kubernetes API): libcurl on a thread of its own, so that a
// slow or dead service never blocks the cluster loop.
//
// Thread: Send and Close on the loop's thread; `done` runs there too.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/discovery.h"
#include "core/loop.h"
#include "core/status.h"

namespace ferry::cluster {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::string body;                  // sent with Content-Type: application/json
  std::vector<std::string> headers;  // "Name: value"
  HttpTlsFiles tls;
  long timeout_ms = 5000;
};

struct HttpResponse {
  long status = 0;  // the HTTP status code
  std::string body;
};

// One request, on the calling thread: Unavailable (with curl's reason)
// when no answer came, or when `cancel` became true first.
Result<HttpResponse> PerformHttp(const HttpRequest& request,
                                 const std::atomic<bool>* cancel = nullptr);

class HttpClient {
 public:
  explicit HttpClient(core::Loop& loop) : loop_(loop) {}
  ~HttpClient() { Close(); }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Queues `request`; `done` runs on the loop, in the order sent, unless
  // Close() came first.
  void Send(HttpRequest request, std::function<void(Result<HttpResponse>)> done);
  // Drops what is queued, cuts the request under way short and waits for
  // the thread. No `done` runs afterwards.
  void Close();

 private:
  struct Job {
    HttpRequest request;
    std::function<void(Result<HttpResponse>)> done;
  };
  void Run();

  core::Loop& loop_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // read on the loop thread only
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;  // guarded by mu_
  bool closing_ = false;  // guarded by mu_
  std::atomic<bool> cancel_{false};  // Close() was called: cut the transfer short
  std::thread thread_;
};

}  // namespace ferry::cluster
