// group_worker: one worker of a consumer group that spans processes (issue
// 16, "consumer groups across machines"), for tests/remote/consumer_group_
// remote_test.cpp: a StreamConsumerGroup<kinlet::remote::RemoteStream> whose
// leases live in a shared CheckpointStore, so that several of these processes
// share a stream's shards and take over the leases of one that dies.
//
//   group_worker --endpoint URL --stream NAME --store SPEC --out FILE
//                --worker-id ID [--app NAME] [--failover-ms N]
//                [--max-records N] [--record-delay-ms N] [--fan-out]
//
// --store SPEC picks the lease table:
//   sqlite:<path>                   SqliteCheckpointStore (processes on one host)
//   dynamodb:<table>[@<endpoint>]   DynamoDbCheckpointStore, the KCL's lease
//                                   table (created when missing); without an
//                                   endpoint, DynamoDB's as the SDKs find it
//
// Every record processed appends the line "<shard> <partition key> <data>"
// to --out, written with write(2) before the batch is checkpointed, so a
// record checkpointed is always in the file (a SIGKILL loses nothing written).
// A processor's start appends "init <shard> <checkpoint>", each checkpoint
// after a batch "checkpoint <shard>" (before the write), its end "end <shard>
// <why>": a test can tell one processor's run from the next, and which
// records a killed worker processed without checkpointing them.
// --record-delay-ms sleeps after each record (a batch then takes a while, so
// a kill lands mid-batch).
//
// Credentials and region come from the SDKs' chain (AWS_ACCESS_KEY_ID, ...,
// AWS_REGION; kinlet/remote/credentials.hpp, config.hpp). SIGTERM or SIGINT
// ends it cleanly: processors checkpoint, leases are released, exit 0.
// Exit 2 for bad arguments, 1 when the stream or store cannot be opened.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "kinlet/consumer_group.hpp"
#include "kinlet/remote/config.hpp"
#include "kinlet/remote/credentials.hpp"
#include "kinlet/remote/dynamodb_checkpoint_store.hpp"
#include "kinlet/remote/remote_registry.hpp"
#include "kinlet/remote/sqlite_checkpoint_store.hpp"

namespace {

using kinlet::remote::RemoteStream;

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct Flags {
  std::string endpoint;
  std::string stream;
  std::string store;
  std::string out;
  std::string worker_id;
  std::string app = "group-worker";
  int failover_ms = 1500;
  int max_records = 100;
  int record_delay_ms = 0;
  bool fan_out = false;
};

bool ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--fan-out") {
      flags->fan_out = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    auto number = [&](int* out) { return absl::SimpleAtoi(value, out) && *out >= 0; };
    if (arg == "--endpoint") {
      flags->endpoint = value;
    } else if (arg == "--stream") {
      flags->stream = value;
    } else if (arg == "--store") {
      flags->store = value;
    } else if (arg == "--out") {
      flags->out = value;
    } else if (arg == "--worker-id") {
      flags->worker_id = value;
    } else if (arg == "--app") {
      flags->app = value;
    } else if (arg == "--failover-ms") {
      if (!number(&flags->failover_ms) || flags->failover_ms == 0) return false;
    } else if (arg == "--max-records") {
      if (!number(&flags->max_records)) return false;
    } else if (arg == "--record-delay-ms") {
      if (!number(&flags->record_delay_ms)) return false;
    } else {
      return false;
    }
  }
  return !flags->stream.empty() && !flags->store.empty() && !flags->out.empty() &&
         !flags->worker_id.empty();
}

// The lease table named by --store. The extension point for other stores:
// "dynamodb:<table>@<endpoint>" is to open the DynamoDB lease store (the
// KCL's table layout) with the same credential chain and region.
absl::StatusOr<std::unique_ptr<kinlet::CheckpointStore>> OpenStore(const std::string& spec) {
  constexpr std::string_view kSqlite = "sqlite:";
  constexpr std::string_view kDynamoDb = "dynamodb:";
  if (spec.rfind(kSqlite, 0) == 0) {
    auto store = kinlet::remote::SqliteCheckpointStore::Open(spec.substr(kSqlite.size()));
    if (!store.ok()) return store.status();
    return std::unique_ptr<kinlet::CheckpointStore>(std::move(*store));
  }
  if (spec.rfind(kDynamoDb, 0) == 0) {
    // dynamodb:<table>[@<endpoint>]: the KCL's lease table, created when
    // missing; without an endpoint, DynamoDB's as the SDKs resolve it.
    const std::string rest = spec.substr(kDynamoDb.size());
    const size_t at = rest.find('@');
    kinlet::remote::RemoteConfigOptions config;
    if (at != std::string::npos) config.endpoint = rest.substr(at + 1);
    auto remote = kinlet::remote::ResolveDynamoDbRemoteOptions(config);
    if (!remote.ok()) return remote.status();
    kinlet::remote::DynamoDbCheckpointStoreOptions options;
    options.table = rest.substr(0, at);
    options.remote = *std::move(remote);
    auto store = kinlet::remote::DynamoDbCheckpointStore::Open(std::move(options));
    if (!store.ok()) {
      return absl::Status(store.status().code(),
                          absl::StrCat("--store ", spec, ": ", store.status().message()));
    }
    return std::unique_ptr<kinlet::CheckpointStore>(std::move(*store));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--store ", spec, ": expected sqlite:<path> or dynamodb:<table>@<endpoint>"));
}

// Appends lines to the output file, each with one write(2) (O_APPEND).
class Output {
 public:
  explicit Output(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {}
  ~Output() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  void Line(const std::string& line) {
    const std::string text = line + "\n";
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }

 private:
  int fd_;
};

class LineProcessor : public kinlet::RecordProcessor<std::string> {
 public:
  LineProcessor(Output* out, int record_delay_ms) : out_(out), delay_ms_(record_delay_ms) {}

  void Initialize(const kinlet::InitializationInput& input) override {
    shard_ = input.shard_id;
    out_->Line(absl::StrCat("init ", shard_, " ", input.checkpoint));
  }
  void ProcessRecords(const kinlet::ProcessRecordsInput<std::string>& input,
                      kinlet::Checkpointer& checkpointer) override {
    for (const auto& record : input.records) {
      out_->Line(
          absl::StrCat(std::string(input.shard_id), " ", record.partition_key, " ", record.data));
      if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    }
    // Written before the checkpoint: the records after a shard's last
    // "checkpoint" line were certainly not checkpointed.
    out_->Line(absl::StrCat("checkpoint ", shard_));
    (void)checkpointer.Checkpoint();  // a lost lease comes as LeaseLost
  }
  void LeaseLost() override { out_->Line(absl::StrCat("end ", shard_, " lease-lost")); }
  void ShardEnded(kinlet::Checkpointer& checkpointer) override {
    if (checkpointer.Checkpoint().ok()) out_->Line(absl::StrCat("end ", shard_, " shard-end"));
  }
  void ShutdownRequested(kinlet::Checkpointer& checkpointer) override {
    (void)checkpointer.Checkpoint();
    out_->Line(absl::StrCat("end ", shard_, " shutdown"));
  }

 private:
  Output* out_;
  int delay_ms_;
  std::string shard_;
};

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    std::fprintf(stderr,
                 "usage: %s --endpoint URL --stream NAME --store sqlite:<path> --out FILE "
                 "--worker-id ID [--app NAME] [--failover-ms N] [--max-records N] "
                 "[--record-delay-ms N] [--fan-out]\n",
                 argv[0]);
    return 2;
  }
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);

  kinlet::remote::RemoteConfigOptions config_options;
  config_options.endpoint = flags.endpoint;
  auto config = kinlet::remote::ResolveRemoteConfig(config_options);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 1;
  }
  kinlet::remote::RemoteOptions options;
  options.endpoint = config->endpoint;
  options.region = config->region;
  options.credentials = std::make_shared<kinlet::remote::DefaultCredentialsChain>();
  auto registry = kinlet::remote::RemoteRegistry::Create(options);
  if (!registry.ok()) {
    std::fprintf(stderr, "%s\n", registry.status().ToString().c_str());
    return 1;
  }
  auto stream = (*registry)->GetStream(flags.stream);
  if (!stream.ok()) {
    std::fprintf(stderr, "stream %s: %s\n", flags.stream.c_str(),
                 stream.status().ToString().c_str());
    return 1;
  }
  auto store = OpenStore(flags.store);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  Output out(flags.out);
  if (!out.ok()) {
    std::fprintf(stderr, "cannot open %s: %s\n", flags.out.c_str(), std::strerror(errno));
    return 1;
  }

  kinlet::ConsumerGroupOptions group_options;
  group_options.application_name = flags.app;
  group_options.worker_id = flags.worker_id;
  group_options.failover_time = absl::Milliseconds(flags.failover_ms);
  group_options.max_records = flags.max_records;
  group_options.enhanced_fan_out = flags.fan_out;
  group_options.shard_sync_interval = absl::Seconds(1);
  group_options.idle_time_between_reads = absl::Milliseconds(10);
  const int delay_ms = flags.record_delay_ms;
  auto group = kinlet::MakeConsumerGroup(
      stream->get(), store->get(),
      [&out, delay_ms] { return std::make_unique<LineProcessor>(&out, delay_ms); }, group_options);
  if (!group.ok()) {
    std::fprintf(stderr, "%s\n", group.status().ToString().c_str());
    return 1;
  }
  (*group)->Start();
  std::fprintf(stdout, "worker %s started\n", flags.worker_id.c_str());
  std::fflush(stdout);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const absl::Status shutdown = (*group)->RequestShutdown().get();
  group->reset();
  if (!shutdown.ok()) {
    std::fprintf(stderr, "shutdown: %s\n", shutdown.ToString().c_str());
    return 1;
  }
  std::fprintf(stdout, "worker %s stopped\n", flags.worker_id.c_str());
  return 0;
}
