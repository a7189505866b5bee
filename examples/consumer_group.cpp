// consumer_group: a word count in the style of a KCL application. Three
// workers (three ConsumerGroup objects, each on its own thread) share a
// 4-shard stream through leases kept in a checkpoint file; each record
// processor counts the words of its shard and checkpoints after every batch.
// The application is stopped (graceful shutdown: every processor checkpoints,
// leases are released) and restarted from the same file with new workers; the
// totals at the end are checked against what was written.
//
// Delivery is at-least-once: when a lease moves (a worker steals its share
// while the owner is mid-batch) the new owner resumes after the last
// checkpoint, so some records come twice. The application makes its update
// idempotent the usual way: with its totals it keeps, per shard, the last
// sequence number applied, and skips anything at or before it.
//
// The application code (RunApplication, Write, RunWorkers, the processor) is
// generic over the stream (kinlet::KinesisStream, kinlet/stream_concept.hpp)
// and runs unchanged on either: main() hands it an in-process stream, or,
// given an endpoint (--endpoint or AWS_ENDPOINT_URL_KINESIS, when built with
// kinlet::remote), a stream of its own on that Kinesis endpoint (Amazon
// Kinesis, kinlet-gateway, kinesalite), created for the run and deleted after
// it. Region and credentials then come as the AWS SDKs find them (AWS_REGION,
// AWS_ACCESS_KEY_ID, ~/.aws/..., instance metadata).
//
//   consumer_group [--endpoint URL] [checkpoint-file]
//                  (default file: one in the temp directory)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kinlet/kinlet.hpp"

#if KINLET_EXAMPLE_REMOTE
#include "kinlet/remote/config.hpp"
#include "kinlet/remote/credentials.hpp"
#include "kinlet/remote/remote_registry.hpp"
#endif

namespace {

using Stream = kinlet::Stream<std::string>;

// The application's state: word totals, shared by every processor.
struct WordCounts {
  std::mutex mu;
  std::map<std::string, long> counts;
  std::map<std::string, kinlet::SequenceNumber> applied;  // shard -> last record counted
  long sentences = 0;
  long duplicates = 0;  // delivered again after a lease moved, skipped
};

class WordCountProcessor : public kinlet::RecordProcessor<std::string> {
 public:
  explicit WordCountProcessor(WordCounts* totals) : totals_(totals) {}

  void Initialize(const kinlet::InitializationInput& input) override {
    std::printf("  processor for %s starts after %s\n", input.shard_id.c_str(),
                input.checkpoint.c_str());
  }
  void ProcessRecords(const kinlet::ProcessRecordsInput<std::string>& input,
                      kinlet::Checkpointer& checkpointer) override {
    {
      std::lock_guard<std::mutex> lock(totals_->mu);
      for (const auto& record : input.records) {
        auto [last, first_time] =
            totals_->applied.try_emplace(std::string(input.shard_id), record.sequence_number);
        if (!first_time && record.sequence_number <= last->second) {
          ++totals_->duplicates;
          continue;
        }
        last->second = record.sequence_number;
        std::istringstream words(record.data);
        for (std::string word; words >> word;) ++totals_->counts[word];
        ++totals_->sentences;
      }
    }
    (void)checkpointer.Checkpoint();  // a lost lease is reported by LeaseLost
  }
  void ShardEnded(kinlet::Checkpointer& checkpointer) override {
    (void)checkpointer.Checkpoint();  // SHARD_END: lets the children start
  }
  void ShutdownRequested(kinlet::Checkpointer& checkpointer) override {
    (void)checkpointer.Checkpoint();
  }

 private:
  WordCounts* totals_;
};

const char* const kWords[] = {"stream", "shard", "record", "lease", "checkpoint", "worker"};

// Writes `n` sentences and adds their words to `expected`.
template <kinlet::KinesisStream S>
bool Write(S& stream, int n, int first, std::map<std::string, long>* expected) {
  for (int i = first; i < first + n; ++i) {
    std::string sentence;
    for (int w = 0; w < 1 + i % 5; ++w) {
      const std::string word = kWords[(i * 7 + w * 3) % 6];
      sentence += (w ? " " : "") + word;
      ++(*expected)[word];
    }
    if (!stream.PutRecord("user-" + std::to_string(i % 50), sentence).ok()) return false;
  }
  return true;
}

// Starts three workers on `store`, waits until `sentences` have been counted,
// then shuts them down gracefully.
template <kinlet::KinesisStream S>
bool RunWorkers(S* stream, kinlet::CheckpointStore* store, WordCounts* totals, long sentences,
                const char* phase) {
  std::vector<std::unique_ptr<kinlet::StreamConsumerGroup<S>>> workers;
  for (int w = 0; w < 3; ++w) {
    kinlet::ConsumerGroupOptions options;
    options.application_name = "word-count";
    options.worker_id = std::string(phase) + "-worker-" + std::to_string(w);
    options.idle_time_between_reads = absl::Milliseconds(20);
    auto worker = kinlet::MakeConsumerGroup(
        stream, store, [totals] { return std::make_unique<WordCountProcessor>(totals); }, options);
    if (!worker.ok()) return false;
    (*worker)->Start();
    workers.push_back(*std::move(worker));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(totals->mu);
      if (totals->sentences >= sentences) break;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Let the lease balancing settle, then show who held what.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (const auto& worker : workers) {
    std::printf("  %s holds %zu shard(s)\n", worker->worker_id().c_str(),
                worker->HeldShards().size());
  }
  for (auto& worker : workers) {
    if (!worker->RequestShutdown().get().ok()) return false;
  }
  return true;
}

// The whole application over any stream: two runs of three workers with a
// restart between them, checked against what was written.
template <kinlet::KinesisStream S>
bool RunApplication(S* stream, const std::string& path) {
  WordCounts totals;
  std::map<std::string, long> expected;

  std::printf("run 1: 600 sentences, three workers, checkpoints in %s\n", path.c_str());
  if (!Write(*stream, 600, 0, &expected)) return false;
  {
    auto store = kinlet::FileCheckpointStore::Open(path);
    if (!store.ok() || !RunWorkers(stream, store->get(), &totals, 600, "run1")) return false;
  }

  std::printf("run 2: restarted from the checkpoint file, 400 more sentences\n");
  if (!Write(*stream, 400, 600, &expected)) return false;
  {
    auto store = kinlet::FileCheckpointStore::Open(path);
    if (!store.ok() || !RunWorkers(stream, store->get(), &totals, 1000, "run2")) return false;
    const absl::StatusOr<std::vector<kinlet::Lease>> leases = (*store)->ListLeases();
    if (!leases.ok()) return false;
    for (const kinlet::Lease& lease : *leases) {
      std::printf("  lease %s: owner '%s', counter %llu, checkpoint %s\n", lease.lease_key.c_str(),
                  lease.owner.c_str(), static_cast<unsigned long long>(lease.lease_counter),
                  lease.checkpoint.c_str());
    }
  }

  const bool complete = totals.sentences == 1000 && totals.counts == expected;
  for (const auto& [word, count] : totals.counts) {
    std::printf("  %-10s %5ld (expected %ld)\n", word.c_str(), count, expected[word]);
  }
  std::printf(
      "%ld sentences counted once each across the restart (%ld redeliveries skipped): "
      "counts %s\n",
      totals.sentences, totals.duplicates, complete ? "complete" : "WRONG");
  return complete;
}

#if KINLET_EXAMPLE_REMOTE
// The application on a stream of its own at `endpoint`.
bool RunRemote(const std::string& endpoint, const std::string& path) {
  kinlet::remote::RemoteConfigOptions config_options;
  config_options.endpoint = endpoint;
  auto config = kinlet::remote::ResolveRemoteConfig(config_options);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return false;
  }
  kinlet::remote::RemoteOptions options;
  options.endpoint = config->endpoint;
  options.region = config->region;
  options.credentials = std::make_shared<kinlet::remote::DefaultCredentialsChain>();
  auto registry = kinlet::remote::RemoteRegistry::Create(options);
  if (!registry.ok()) {
    std::fprintf(stderr, "%s\n", registry.status().ToString().c_str());
    return false;
  }
  kinlet::StreamOptions stream_options;
  stream_options.name = "sentences-" + std::to_string(::getpid());
  stream_options.shard_count = 4;
  auto stream = (*registry)->CreateStream(stream_options);
  if (!stream.ok()) {
    std::fprintf(stderr, "%s\n", stream.status().ToString().c_str());
    return false;
  }
  std::printf("remote stream %s at %s (%s)\n", stream_options.name.c_str(),
              config->endpoint.c_str(), config->region.c_str());
  const bool ok = RunApplication(stream->get(), path);
  (void)(*registry)->DeleteStream(stream_options.name);
  return ok;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--endpoint" && i + 1 < argc) {
      endpoint = argv[++i];
    } else if (path.empty() && arg.rfind("--", 0) != 0) {
      path = arg;
    } else {
      std::fprintf(stderr, "usage: %s [--endpoint URL] [checkpoint-file]\n", argv[0]);
      return 2;
    }
  }
  if (endpoint.empty()) {
    if (const char* env = std::getenv("AWS_ENDPOINT_URL_KINESIS"); env != nullptr) endpoint = env;
  }
  if (path.empty()) {
    path = (std::filesystem::temp_directory_path() /
            ("kinlet-word-count-" + std::to_string(::getpid()) + ".checkpoints"))
               .string();
  }
  std::filesystem::remove(path);

  bool complete = false;
  if (!endpoint.empty()) {
#if KINLET_EXAMPLE_REMOTE
    complete = RunRemote(endpoint, path);
#else
    std::fprintf(stderr, "this build has no remote streams (kinlet::remote): %s not used\n",
                 endpoint.c_str());
    return 2;
#endif
  } else {
    kinlet::StreamOptions options;
    options.name = "sentences";
    options.shard_count = 4;
    auto stream = std::move(*Stream::Create(options));
    std::printf("in-process stream %s\n", options.name.c_str());
    complete = RunApplication(stream.get(), path);
  }
  std::filesystem::remove(path);
  return complete ? 0 : 1;
}
