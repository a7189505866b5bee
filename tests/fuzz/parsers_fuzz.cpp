// libFuzzer target: every parser of external input. The first byte picks one;
// the rest is its input. Each must reject bad input with a status (never crash,
// never hang) and round-trip what it accepts:
//   0 SequenceNumber::Parse     1 ParseHashKey          2 ShardIterator::Parse
//   3 IteratorPosition::FromKinesis (type and starting sequence number)
//   4 partition keys (any bytes, invalid UTF-8 included) through PutRecord and GetRecords
//   5 a checkpoint file (FileCheckpointStore::Open of these bytes)
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "kinlet/kinlet.hpp"

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

void PartitionKey(std::string_view key) {
  static auto stream = [] {
    kinlet::StreamOptions options;
    options.name = "fuzzed";
    options.limits = kinlet::ThroughputLimits::Unlimited();
    options.full_policy = kinlet::FullPolicy::kOverwrite;
    return std::move(*kinlet::Stream<std::string>::Create(options));
  }();
  auto put = stream->PutRecord(key, "payload");
  if (!put.ok()) {
    Require(kinlet::IsValidationError(put.status()) || kinlet::IsInvalidArgument(put.status()));
    return;
  }
  auto it = stream->GetShardIterator(
      put->shard_id, kinlet::IteratorPosition::AtSequenceNumber(put->sequence_number));
  Require(it.ok());
  auto page = stream->GetRecords(*it, 1);
  Require(page.ok() && page->records.size() == 1 && page->records[0].partition_key == key);
}

void CheckpointFile(std::string_view bytes) {
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("kinlet-fuzz-" + std::to_string(::getpid())))
          .string();
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
  auto store = kinlet::FileCheckpointStore::Open(path);
  if (!store.ok()) {
    Require(absl::IsDataLoss(store.status()));
    return;
  }
  // Accepted: the table survives a rewrite unchanged.
  auto leases = (*store)->ListLeases();
  Require(leases.ok());
  kinlet::Lease probe;
  probe.lease_key = "probe";
  Require((*store)->CreateLeaseIfNotExists(probe).ok() || !leases->empty());
  auto again = kinlet::FileCheckpointStore::Open(path);
  Require(again.ok() && *(*again)->ListLeases() == *(*store)->ListLeases());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0:
      if (auto s = kinlet::SequenceNumber::Parse(text); s.ok()) {
        Require(*kinlet::SequenceNumber::Parse(s->ToString()) == *s);
      }
      break;
    case 1:
      if (auto h = kinlet::ParseHashKey(text); h.ok()) {
        Require(*kinlet::ParseHashKey(kinlet::HashKeyToString(*h)) == *h);
      }
      break;
    case 2:
      if (auto it = kinlet::ShardIterator::Parse(text); it.ok()) {
        auto again = kinlet::ShardIterator::Parse(it->ToString());
        Require(again.ok() && again->position() == it->position() &&
                again->shard_index() == it->shard_index());
      }
      break;
    case 3: {
      const size_t split = text.find('|');
      const std::string_view type = text.substr(0, split);
      std::optional<std::string_view> seq;
      if (split != std::string_view::npos) seq = text.substr(split + 1);
      (void)kinlet::IteratorPosition::FromKinesis(type, seq);
      break;
    }
    case 4:
      PartitionKey(text);
      break;
    case 5:
      CheckpointFile(text);
      break;
  }
  return 0;
}
