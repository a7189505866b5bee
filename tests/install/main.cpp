// Consumer check: builds against an installed kinlet (find_package) or a kinlet source tree
// (add_subdirectory) and exits 0 iff a record could be put on a fresh stream.
#include <cstdio>
#include <kinlet/kinlet.hpp>
#include <string>

int main() {
  kinlet::StreamOptions options;
  options.name = "install-check";
  options.shard_count = 2;
  auto stream = kinlet::Stream<std::string>::Create(options);
  if (!stream.ok()) {
    std::fprintf(stderr, "Create failed: %s\n", std::string(stream.status().message()).c_str());
    return 1;
  }
  auto put = (*stream)->PutRecord("key", "value");
  if (!put.ok()) {
    std::fprintf(stderr, "PutRecord failed\n");
    return 1;
  }
  std::printf("install-check: ok\n");
  return 0;
}
