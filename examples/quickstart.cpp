// quickstart: the README's quick start, compiled and run by the test suite so
// that it stays true.
#include <cstdio>
#include <kinlet/kinlet.hpp>

int main() {
  kinlet::StreamOptions options;
  options.name = "clickstream-data";
  options.shard_count = 4;
  auto stream =
      kinlet::Stream<std::string>::Create(options);  // absl::StatusOr<std::unique_ptr<...>>
  auto put = (*stream)->PutRecord("user123", R"({"user":"abinaya","event":"viewed_product"})");
  // put->shard_id == "shardId-000000000001", put->sequence_number
  auto it = (*stream)->GetShardIterator(
      put->shard_id, kinlet::IteratorPosition::AtSequenceNumber(put->sequence_number));
  auto page = (*stream)->GetRecords(*it, /*limit=*/100);
  // page->records[i].{sequence_number, approximate_arrival_timestamp, partition_key, data}
  // page->next_shard_iterator, page->millis_behind_latest, page->child_shards
  if (!page.ok() || page->records.size() != 1 || put->shard_id != "shardId-000000000001") return 1;
  std::printf("%s %s: %s\n", page->records[0].partition_key.c_str(),
              put->sequence_number.ToString().c_str(), page->records[0].data.c_str());
  return 0;
}
