#include "mosquitto_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <iostream>

#include "raw_client.h"
#include "wait.h"

namespace ferry::testing {

namespace {

uint16_t FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

MosquittoProcess::MosquittoProcess() = default;

MosquittoProcess::~MosquittoProcess() {
  Stop();
  if (::testing::Test::HasFailure()) {
    std::cerr << "---- mosquitto log (" << dir_.File("mosquitto.log") << ") ----\n"
              << Log() << "---- end of mosquitto log ----\n";
  }
}

::testing::AssertionResult MosquittoProcess::Start(const std::vector<std::string>& lines,
                                                   const std::vector<std::string>& listener_lines) {
  port_ = FreeLoopbackPort();
  std::string conf = "listener " + std::to_string(port_) + " 127.0.0.1\n";
  for (const std::string& l : listener_lines) conf += l + "\n";
  conf += "allow_anonymous true\npersistence false\n";
  // Started as root, mosquitto would switch to the "mosquitto" user, who
  // cannot read the test's private directory.
  if (geteuid() == 0) conf += "user root\n";
  conf += "log_dest file " + dir_.File("mosquitto.log") + "\nlog_type all\n";
  for (const std::string& l : lines) conf += l + "\n";
  if (!WriteFile(dir_.File("mosquitto.conf"), conf)) {
    return ::testing::AssertionFailure() << "cannot write mosquitto.conf";
  }
  SpawnOptions spawn;
  spawn.argv = {"/usr/sbin/mosquitto", "-c", dir_.File("mosquitto.conf")};
  if (auto r = child_.Start(spawn); !r) return r;
  if (!WaitFor(
          [&] {
            RawClient probe;
            return child_.Running() && probe.Connect(port_, std::chrono::milliseconds(200));
          },
          kDefaultTimeout, "mosquitto to accept connections")) {
    return ::testing::AssertionFailure() << "mosquitto did not start:\n" << Log();
  }
  return ::testing::AssertionSuccess();
}

void MosquittoProcess::Stop() {
  if (!child_.Running()) return;
  child_.Signal(SIGTERM);
  if (!child_.Wait(std::chrono::seconds(5))) child_.Kill();
}

std::string MosquittoProcess::Log() const { return ReadFileOrEmpty(dir_.File("mosquitto.log")); }

::testing::AssertionResult MakeTestCertificates(const std::string& dir) {
  WriteFile(dir + "/san.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  const std::vector<std::vector<std::string>> steps = {
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt", "-days", "2", "-subj",
       "/CN=ferry test CA"},
      {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", dir + "/server.key", "-out", dir + "/server.csr", "-subj", "/CN=localhost"},
      {"openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt", "-CAkey",
       dir + "/ca.key", "-CAcreateserial", "-out", dir + "/server.crt", "-days", "2", "-extfile",
       dir + "/san.cnf"},
  };
  for (const auto& argv : steps) {
    CommandResult r = RunCommand(argv);
    if (!r.Succeeded()) return ::testing::AssertionFailure() << r.ToString();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace ferry::testing
