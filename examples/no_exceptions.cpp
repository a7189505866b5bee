// no_exceptions: kinlet in a translation unit built with -fno-exceptions
// -fno-rtti, as game engines build. Errors come back as absl::Status.
#include <cstdio>
#include <string>

#include "kinlet/kinlet.hpp"

#if defined(__cpp_exceptions) || defined(__cpp_rtti)
#error "this example must be compiled with -fno-exceptions -fno-rtti"
#endif

namespace {

struct Hit {  // a typed, trivially copyable payload
  int entity;
  float damage;
};

}  // namespace

int main() {
  kinlet::StreamOptions options;
  options.name = "hits";
  options.shard_count = 2;
  options.shard_capacity_records = 1024;
  options.shard_capacity_bytes = 4 << 20;
  auto stream = kinlet::Stream<Hit>::Create(options);
  if (!stream.ok()) return 1;
  for (int i = 0; i < 10; ++i) {
    auto put = (*stream)->PutRecord("entity-" + std::to_string(i % 3), Hit{i, 1.5f * i});
    if (!put.ok()) return 1;
  }
  auto bad = (*stream)->PutRecord("", Hit{0, 0});
  std::printf("empty partition key -> %s\n",
              std::string(kinlet::ErrorNameOf(bad.status())).c_str());
  int read = 0;
  for (const auto& shard : (*stream)->OpenShards()) {
    auto it = shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
    if (!it.ok()) return 1;
    auto page = shard->GetRecords(*it, 100);
    if (!page.ok()) return 1;
    read += static_cast<int>(page->records.size());
  }
  std::printf("read %d hits without exceptions or RTTI\n", read);
  return read == 10 && kinlet::IsValidationError(bad.status()) ? 0 : 1;
}
