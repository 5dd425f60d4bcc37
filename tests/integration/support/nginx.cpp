#include "nginx.h"

#include <chrono>
#include <fstream>

#include "ports.h"
#include "wait.h"

namespace ferry::testing {

::testing::AssertionResult Nginx::Start(const std::vector<uint16_t>& servers,
                                        const std::string& cert, const std::string& key) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePorts(1).at(0);
    const std::string conf = dir_ + "/nginx.conf";
    std::ofstream out(conf);
    out << "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
        << "daemon off;\nerror_log stderr notice;\npid " << dir_ << "/nginx.pid;\n"
        << "events {}\nstream {\n  upstream ferry {\n    hash $remote_addr consistent;\n";
    for (uint16_t s : servers) {
      out << "    server 127.0.0.1:" << s << " max_fails=1 fail_timeout=2s;\n";
    }
    out << "  }\n  server {\n    listen 127.0.0.1:" << port_ << " ssl;\n"
        << "    ssl_certificate " << cert << ";\n    ssl_certificate_key " << key << ";\n"
        << "    proxy_pass ferry;\n    proxy_protocol on;\n    proxy_connect_timeout 1s;\n"
        << "    proxy_timeout 10m;\n  }\n}\n";
    out.close();
    process_ = StartCommand({"nginx", "-e", "stderr", "-c", conf, "-p", dir_});
    if (!process_) return ::testing::AssertionFailure() << "cannot start nginx";
    if (WaitFor([&] { return PortAccepts(port_); }, std::chrono::milliseconds(5000),
                "nginx to listen")) {
      return ::testing::AssertionSuccess();
    }
    CommandResult r = process_->Terminate();  // the port was taken meanwhile: again
    process_.reset();
    if (attempt == 2) return ::testing::AssertionFailure() << "nginx: " << r.ToString();
  }
  return ::testing::AssertionFailure();
}

void Nginx::Stop() {
  if (process_) process_->Terminate();
  process_.reset();
}

}  // namespace ferry::testing
