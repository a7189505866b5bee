// The gateway component consumed from an installed kinlet: a gateway starts on a
// free port of 127.0.0.1, serves a stream created in C++, and stops.
#include <cstdio>
#include <kinlet/gateway/gateway.hpp>

int main() {
  auto registry = std::make_shared<kinlet::gateway::WireRegistry>();
  kinlet::StreamOptions options;
  options.name = "installed";
  if (!registry->CreateStream(options).ok()) return 1;
  auto gateway = kinlet::gateway::Gateway::Start(registry);
  if (!gateway.ok() || (*gateway)->port() == 0) {
    std::fprintf(stderr, "Gateway::Start failed\n");
    return 1;
  }
  std::printf("gateway on %s\n", (*gateway)->endpoint().c_str());
  (*gateway)->Stop();
  return 0;
}
