// Certificates for TLS tests, made at test time with the openssl command-line
// tool into the test's own directory: a CA, a server certificate for
// 127.0.0.1 and localhost, a client certificate (CN "client1"), and a second,
// unrelated CA with a client certificate of its own (CN "intruder"); and
// for cluster nodes, which both dial and answer, a certificate for either
// use from each CA. Keys are
// EC P-256 (quick to make); certificates are valid for two days.
//
// Also here: the bytes of a real TLS ClientHello, for tests that send part of
// a handshake and stop.
//
// Thread: the test's thread.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "types.h"

namespace ferry::testing {

struct TestCerts {
  std::string ca;                 // CA certificate (PEM)
  std::string server_cert;        // signed by ca; SAN IP:127.0.0.1, DNS:localhost
  std::string server_key;
  std::string server_pem;         // server_cert then server_key, as HAProxy wants
  std::string client_cert;        // signed by ca; CN client1
  std::string client_key;
  std::string other_ca;           // an unrelated CA
  std::string other_client_cert;  // signed by other_ca; CN intruder
  std::string other_client_key;
  std::string node_cert;        // signed by ca, for server and client use: a cluster node
  std::string node_key;
  std::string other_node_cert;  // the same, signed by other_ca
  std::string other_node_key;

  // For clients: trust `ca`, optionally presenting a client certificate.
  TlsClientFiles Trusting() const { return {ca, "", ""}; }
  TlsClientFiles AsClient1() const { return {ca, client_cert, client_key}; }
  TlsClientFiles AsIntruder() const { return {ca, other_client_cert, other_client_key}; }
};

// Writes the files into `dir` (which must exist). Fails with openssl's
// output if a command fails.
::testing::AssertionResult MakeTestCerts(const std::string& dir, TestCerts* out);

// The first flight a TLS 1.2/1.3 client sends (a ClientHello record).
Bytes TlsClientHello();

}  // namespace ferry::testing
