#include "cluster/http_client.h"

#include <curl/curl.h>

namespace ferry::cluster {
namespace {

size_t Collect(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

int Progress(void* cancel, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(cancel)->load() ? 1 : 0;
}

}  // namespace

Result<HttpResponse> PerformHttp(const HttpRequest& request, const std::atomic<bool>* cancel) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Status::Unavailable("cannot start an HTTP request");
  HttpResponse response;
  curl_slist* headers = nullptr;
  for (const std::string& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  if (!request.body.empty()) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, request.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, request.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!request.tls.cafile.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, request.tls.cafile.c_str());
  if (!request.tls.certfile.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, request.tls.certfile.c_str());
  }
  if (!request.tls.keyfile.empty()) curl_easy_setopt(curl, CURLOPT_SSLKEY, request.tls.keyfile.c_str());
  if (cancel != nullptr) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancel));
  }
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return Status::Unavailable(request.url + ": " +
                               (error[0] != '\0' ? error : curl_easy_strerror(rc)));
  }
  return response;
}

void HttpClient::Send(HttpRequest request, std::function<void(Result<HttpResponse>)> done) {
  std::lock_guard lock(mu_);
  if (closing_) return;
  jobs_.push_back(Job{std::move(request), std::move(done)});
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  wake_.notify_one();
}

void HttpClient::Close() {
  *alive_ = false;
  {
    std::lock_guard lock(mu_);
    closing_ = true;
    cancel_ = true;
    jobs_.clear();
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void HttpClient::Run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return closing_ || !jobs_.empty(); });
      if (closing_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Result<HttpResponse> result = PerformHttp(job.request, &cancel_);
    loop_.Post([alive = alive_, done = std::move(job.done), result = std::move(result)]() mutable {
      if (*alive) done(std::move(result));
    });
  }
}

}  // namespace ferry::cluster
