// ferry-bench: an MQTT load generator in the spirit of emqtt_bench.
#include <cstdio>

#include "bench/options.h"
#include "bench/runner.h"

int main(int argc, char** argv) {
  auto options = ferry::bench::ParseOptions(argc, argv);
  if (!options.ok()) {
    if (options.status().message() == "help") {
      std::fputs(ferry::bench::Usage(), stdout);
      return 0;
    }
    std::fprintf(stderr, "ferry-bench: %s\n%s", options.status().message().c_str(),
                 ferry::bench::Usage());
    return 2;
  }
  auto runner = ferry::bench::Runner::Create(*options);
  if (!runner.ok()) {
    std::fprintf(stderr, "ferry-bench: %s\n", runner.status().message().c_str());
    return 2;
  }
  return (*runner)->Run();
}
