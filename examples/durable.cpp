// examples/durable.cpp: a durable stream survives its process. The first half
// writes a day of telemetry into a stream on disk and "crashes" (drops the
// stream without a goodbye); the second half reopens it, as a restarted
// process would, and reads everything back, older records from the files.
#include <cstdio>
#include <filesystem>
#include <string>

#include "kinlet/kinlet.hpp"

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1]
                                   : (std::filesystem::temp_directory_path() /
                                      ("kinlet-durable-example-" + std::to_string(::getpid())))
                                         .string();
  std::filesystem::remove_all(dir);

  kinlet::StreamOptions options;
  options.name = "telemetry";
  options.shard_count = 2;
  options.limits = kinlet::ThroughputLimits::Unlimited();  // not Kinesis's 1,000 puts/s/shard
  options.retention_period = absl::Hours(24 * 7);          // a week on disk...
  options.shard_capacity_records = 1024;                   // ...and a small ring in memory
  options.storage.kind = kinlet::StorageKind::kDurable;
  options.storage.directory = dir;
  options.storage.sync = kinlet::SyncPolicy::kEveryPut;  // acknowledged = on stable storage

  {
    auto stream = kinlet::Stream<std::string>::Create(options);
    if (!stream.ok()) {
      std::fprintf(stderr, "create: %s\n", stream.status().ToString().c_str());
      return 1;
    }
    for (int i = 0; i < 10000; ++i) {
      auto put = (*stream)->PutRecord("sensor-" + std::to_string(i % 10),
                                      "{\"reading\":" + std::to_string(i) + "}");
      if (!put.ok()) return 1;
    }
    (void)(*stream)->RegisterStreamConsumer("dashboard");
  }  // the process "dies" here

  auto stream = kinlet::Stream<std::string>::Open(dir, options);
  if (!stream.ok()) {
    std::fprintf(stderr, "open: %s\n", stream.status().ToString().c_str());
    return 1;
  }
  for (const std::string& note : (*stream)->recovery_notes())
    std::printf("note: %s\n", note.c_str());
  size_t records = 0;
  for (const auto& shard : (*stream)->OpenShards()) {
    auto it = shard->GetShardIterator(kinlet::IteratorPosition::TrimHorizon());
    kinlet::GetRecordsResult<std::string> page;
    while (it.ok() && shard->GetRecords(*it, 1000, &page).ok() && !page.records.empty()) {
      records += page.records.size();
      it = *page.next_shard_iterator;
    }
  }
  std::printf("reopened %s: %zu records, %zu registered consumer(s)\n", (*stream)->name().c_str(),
              records, (*stream)->ListStreamConsumers()->size());
  stream->reset();
  if (argc <= 1) std::filesystem::remove_all(dir);
  return records == 10000 ? 0 : 1;
}
