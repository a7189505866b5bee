// kinlet/detail/stream_batch.hpp: the body of Stream::PutRecords: the
// request checks, routing, the O(n) grouping by shard (shard_batches.hpp),
// one writer-lock acquisition per shard, rerouting after a reshard and the
// kEveryPut sync. stream.hpp declares and documents PutRecords (errors,
// thread safety, allocation); this file only defines its internals.
// Included by stream.hpp.
#pragma once

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kinlet/detail/shard_batches.hpp"
#include "kinlet/stream.hpp"

namespace kinlet {

template <RecordPayload Payload, StreamTraits Traits>
absl::Status Stream<Payload, Traits>::WriteBatch(std::span<const Entry> entries,
                                                 PutRecordsResult* result) {
  if (deleted()) return context_.NotFound();
  const size_t n = entries.size();
  if (n < 1 || n > static_cast<size_t>(options_.max_put_records_entries)) {
    return detail::PutRecordsCountError(n, options_.max_put_records_entries);
  }
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t size = PayloadTraits<Payload>::Size(entries[i].data);
    if (absl::Status s = ValidateRecord(entries[i].partition_key, size, static_cast<int64_t>(i));
        !s.ok()) {
      return s;
    }
    total += size + entries[i].partition_key.size();
  }
  if (total > options_.max_put_records_bytes) {
    return InvalidArgument(
        absl::StrCat("Records size exceeds ", options_.max_put_records_bytes / kMiB, " MB limit"));
  }
  result->records.resize(n);
  const int64_t now_ms = context_.NowMs();
  MaybeScaleOnDemand(now_ms);
  MaybeReclaim(now_ms);
  detail::ReadSection section;  // routing tables and shards stay alive
  // route[i]: entry i's shard index, or kDone once it is settled (written
  // or failed). Each round routes the pending entries by the routing table
  // in force, groups them by shard (O(n), detail/shard_batches.hpp) and
  // writes each group under one acquisition of its shard's lock, in
  // request order. A group whose shard a reshard closed meanwhile stops
  // there: its remaining entries are routed again in the next round, so the
  // entries of one key keep their order.
  constexpr uint32_t kDone = detail::ShardBatches::kSkip;
  std::vector<uint32_t>& route = result->route_;
  route.assign(n, 0);
  detail::ShardBatches& batches = result->batches_;
  for (;;) {
    const RoutingTable* table = shards_.routing();
    for (size_t i = 0; i < n; ++i) {
      if (route[i] == kDone) continue;
      route[i] = RouteIn(table, entries[i].partition_key, entries[i].explicit_hash_key)->index();
    }
    bool rerouted = false;
    const size_t groups = batches.Group(route);
    for (size_t g = 0; g < groups; ++g) {
      ShardType* shard = ShardAt(batches.shard_of(g));
      const std::span<const uint32_t> group = batches.entries(g);
      size_t settled = 0;
      {
        typename ShardType::WriterGuard lock(&shard->write_mu_);
        for (const uint32_t j : group) {
          PutRecordsResultEntry& out = result->records[j];
          auto outcome =
              shard->AppendLocked(entries[j].partition_key, entries[j].data, now_ms,
                                  &out.sequence_number, ShardType::WriteApi::kPutRecords);
          if (outcome == ShardType::AppendOutcome::kClosed) {
            rerouted = true;  // this entry and the group's later ones: next round
            break;
          }
          route[j] = kDone;
          ++settled;
          if (outcome == ShardType::AppendOutcome::kOk) {
            out.shard_id = shard->shard_id();
            out.error_code = ErrorCode::kNone;
            out.error_message.clear();
          } else {
            out.shard_id = {};
            out.sequence_number = {};
            absl::Status error;
            if (outcome == ShardType::AppendOutcome::kThrottled) {
              error = context_.RateExceeded(shard->shard_id());
            } else if (outcome == ShardType::AppendOutcome::kInternalFailure) {
              error = InternalFailure("Internal Service Failure");
            } else if (outcome == ShardType::AppendOutcome::kStorageFailure) {
              error = shard->TakeDiskErrorLocked();
            } else {
              error = shard->FullError();
            }
            out.error_code = ErrorCodeOf(error);
            out.error_message = std::string(error.message());
            ++result->failed_record_count;
          }
        }
        shard->PublishLocked();  // one release store and wake-up per shard
      }
      if (KINLET_UNLIKELY(shard->sync_every_put())) {
        SyncBatch(shard, group.first(settled), result);
      }
    }
    if (!rerouted) return absl::OkStatus();
  }
}

template <RecordPayload Payload, StreamTraits Traits>
void Stream<Payload, Traits>::SyncBatch(ShardType* shard, std::span<const uint32_t> group,
                                        PutRecordsResult* result) {
  uint64_t end = 0;
  for (const uint32_t j : group) {
    const PutRecordsResultEntry& out = result->records[j];
    if (out.ok()) end = std::max(end, out.sequence_number.position() + 1);
  }
  if (end == 0) return;
  absl::Status s = shard->SyncAfterPut(end);
  if (s.ok()) return;
  for (const uint32_t j : group) {
    PutRecordsResultEntry& out = result->records[j];
    if (!out.ok()) continue;
    out.shard_id = {};
    out.sequence_number = {};
    out.error_code = ErrorCodeOf(s);
    out.error_message = std::string(s.message());
    ++result->failed_record_count;
  }
}

}  // namespace kinlet
