// libFuzzer target for the PROXY protocol header parser.
//
// Checks, for any input: a header that parses says how long it is (no
// longer than the input, at least its signature) and names addresses only
// when it is not LOCAL; and the parser is prefix-consistent: every proper
// prefix of a parsed header is "need more bytes", and whatever the input,
// its prefixes never yield a different header.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "core/proxy_protocol.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_proxy_header: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ferry::core::ParseProxyHeader;
  std::span<const uint8_t> in(data, size);
  auto r = ParseProxyHeader(in);
  if (!r.ok()) {
    if (r.status().message().empty()) Fail("error without a message");
    return 0;
  }
  if (!r.value()) return 0;
  const ferry::core::ProxyHeader& h = *r.value();
  if (h.length > size || h.length < 8) Fail("header length out of range");
  if (h.local != h.source.empty()) Fail("LOCAL with an address, or PROXY without one");
  if (h.version != 1 && h.version != 2) Fail("unknown version");
  // The header alone parses to the same header; its prefixes need more.
  auto alone = ParseProxyHeader(in.first(h.length));
  if (!alone.ok() || !alone.value() || alone.value()->source != h.source ||
      alone.value()->length != h.length) {
    Fail("the header alone parses differently");
  }
  for (size_t n = 0; n < h.length; n += 1 + n / 8) {
    auto prefix = ParseProxyHeader(in.first(n));
    if (!prefix.ok() || prefix.value()) Fail("a prefix of a header is not incomplete");
  }
  return 0;
}
