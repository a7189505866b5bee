// The remote component consumed from an installed kinlet: a RemoteRegistry
// reaches a gateway on a free port of 127.0.0.1 (the endpoint any AWS SDK
// would use), creates a stream, puts a record and reads it back.
#include <cstdio>
#include <kinlet/gateway/gateway.hpp>
#include <kinlet/remote/remote_registry.hpp>
#include <kinlet/remote/remote_stream.hpp>
#include <memory>

int main() {
  auto registry = std::make_shared<kinlet::gateway::WireRegistry>();
  auto gateway = kinlet::gateway::Gateway::Start(registry);
  if (!gateway.ok()) return 1;
  kinlet::remote::RemoteOptions options;
  options.endpoint = (*gateway)->endpoint();
  options.region = "us-east-1";
  options.credentials = std::make_shared<kinlet::remote::StaticCredentialsProvider>(
      kinlet::wire::Credentials{"AKIDEXAMPLE", "secret", ""});
  auto remote = kinlet::remote::RemoteRegistry::Create(options);
  if (!remote.ok()) return 2;
  kinlet::StreamOptions stream_options;
  stream_options.name = "installed";
  auto stream = (*remote)->CreateStream(stream_options);
  if (!stream.ok()) return 3;
  auto put = (*stream)->PutRecord("key", "installed record");
  if (!put.ok()) return 4;
  auto it = (*stream)->GetShardIterator(std::string(put->shard_id),
                                        kinlet::IteratorPosition::TrimHorizon());
  if (!it.ok()) return 5;
  auto page = (*stream)->GetRecords(*it, 10);
  if (!page.ok() || page->records.size() != 1 || page->records[0].data != "installed record") {
    std::fprintf(stderr, "GetRecords did not return the record\n");
    return 6;
  }
  std::printf("remote put and get through %s\n", (*gateway)->endpoint().c_str());
  (*gateway)->Stop();
  return 0;
}
