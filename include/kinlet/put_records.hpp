// kinlet/put_records.hpp: the shapes of Stream::PutRecord and PutRecords
// (options, results, request entries) and the checks of a record against the
// stream's limits, with AWS's messages.
//
//   kinlet::PutRecordsResult result;   // reuse it: PutRecords then allocates nothing
//   std::vector<kinlet::PutRecordsRequestEntry<std::string>> entries = ...;
//   absl::Status s = stream->PutRecords(entries, &result);
//
// Thread safety: plain values and pure functions. The operations themselves
// are Stream methods (stream.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kinlet/config.hpp"
#include "kinlet/detail/shard_batches.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/hash_key.hpp"
#include "kinlet/payload.hpp"
#include "kinlet/retry.hpp"
#include "kinlet/sequence_number.hpp"
#include "kinlet/traits.hpp"

namespace kinlet {

template <RecordPayload Payload, StreamTraits Traits>
class Stream;

struct PutRecordOptions {
  // Places the record by this hash key instead of its partition key's hash.
  std::optional<HashKey> explicit_hash_key;
  // The sequence number of the previous record from this client and key; the
  // new record's number will be greater. Must be a number this stream issued.
  std::optional<SequenceNumber> sequence_number_for_ordering;
};

struct PutRecordResult {
  std::string_view shard_id;  // valid as long as the stream
  SequenceNumber sequence_number;
};

// One entry of PutRecords. It refers to its key and payload (a string_view or
// an ObjectRef): they must stay alive until PutRecords returns, so build
// entries from named objects, not temporaries.
template <typename Payload>
struct PutRecordsRequestEntry {
  std::string_view partition_key;
  typename PayloadTraits<Payload>::View data;
  std::optional<HashKey> explicit_hash_key;
};

struct PutRecordsResultEntry {
  // Set on success.
  std::string_view shard_id;
  SequenceNumber sequence_number;
  // Set on failure: kProvisionedThroughputExceeded (with AWS's "Rate exceeded
  // for shard ..." message), kInternalFailure ("Internal Service Failure", an
  // injected fault) or kShardFull.
  ErrorCode error_code = ErrorCode::kNone;
  std::string error_message;

  bool ok() const { return error_code == ErrorCode::kNone; }
};

// Reuse one result across PutRecords calls: it then allocates nothing.
struct PutRecordsResult {
  int failed_record_count = 0;
  std::vector<PutRecordsResultEntry> records;  // same length and order as the request

 private:
  template <RecordPayload P, StreamTraits T>
  friend class Stream;
  // Scratch, kept for reuse: each entry's shard index (ShardBatches::kSkip
  // once written) and the entries grouped by shard.
  std::vector<uint32_t> route_;
  detail::ShardBatches batches_;
};

namespace detail {

// A record's checks past the common case (ValidateRecord): the partition key
// is 1..256 Unicode characters of valid UTF-8 and key + data fit in
// `max_record_size` bytes. `entry`: the PutRecords entry index, or -1 for
// PutRecord. Messages are built only on failure.
ABSL_ATTRIBUTE_NOINLINE inline absl::Status ValidateRecordSlow(std::string_view key,
                                                               size_t data_size, int64_t entry,
                                                               size_t max_record_size,
                                                               std::string_view stream_name) {
  // Fast path: short ASCII keys are 1..256 characters and valid UTF-8.
  int64_t chars = static_cast<int64_t>(key.size());
  if (key.size() > 256 || !detail::IsAscii(key)) chars = detail::Utf8CodePoints(key);
  if (KINLET_LIKELY(chars >= 1 && chars <= 256 && data_size + key.size() <= max_record_size)) {
    return absl::OkStatus();
  }
  const std::string field = entry < 0 ? "" : absl::StrCat("records.", entry + 1, ".member.");
  const std::string_view operation = entry < 0 ? "PutRecord" : "PutRecords";
  if (chars < 0) {
    return InvalidArgument(absl::StrCat("Partition key in ", detail::ToAbsl(operation),
                                        " on stream ", detail::ToAbsl(stream_name),
                                        " is not valid UTF-8."));
  }
  if (chars < 1 || chars > 256) {
    return ValidationError(
        absl::StrCat("1 validation error detected: Value at '", field,
                     "partitionKey' failed to satisfy constraint: Member must have length ",
                     chars < 1 ? "greater than or equal to 1" : "less than or equal to 256"));
  }
  if (data_size > max_record_size) {
    return ValidationError(absl::StrCat(
        "1 validation error detected: Value at '", field,
        "data' failed to satisfy constraint: Member must have length less than or equal to ",
        max_record_size));
  }
  if (data_size + key.size() > max_record_size) {
    return InvalidArgument(absl::StrCat("Record size (data ", data_size, " + partition key ",
                                        key.size(), " bytes) exceeds the maximum record size of ",
                                        max_record_size, " bytes in ", detail::ToAbsl(operation),
                                        " on stream ", detail::ToAbsl(stream_name), "."));
  }
  return absl::OkStatus();
}

// As above, with the common case inline: a short ASCII key and a record
// within the limit. Allocates nothing unless it fails.
inline absl::Status ValidateRecord(std::string_view key, size_t data_size, int64_t entry,
                                   size_t max_record_size, std::string_view stream_name) {
  if (KINLET_LIKELY(!key.empty() && key.size() <= 256 &&
                    data_size + key.size() <= max_record_size && detail::IsAscii(key))) {
    return absl::OkStatus();
  }
  return ValidateRecordSlow(key, data_size, entry, max_record_size, stream_name);
}

// PutRecords with `n` entries, over 0 or `max_entries`.
inline absl::Status PutRecordsCountError(size_t n, int max_entries) {
  return ValidationError(absl::StrCat(
      "1 validation error detected: Value '[...]' at 'records' failed to satisfy constraint: "
      "Member must have length ",
      n < 1 ? "greater than or equal to 1" : absl::StrCat("less than or equal to ", max_entries)));
}

// Stream::PutRecordsWithRetry's body: `put(entries, result)` (PutRecords),
// then again for the entries that failed with a retryable error (throttling,
// full ring, InternalFailure), with backoff through `clock`, until none fails
// or attempts or time run out.
template <typename Clock, typename Entry, typename Put>
absl::Status PutRecordsRetrying(Clock& clock, const RetryOptions& retry,
                                std::span<const Entry> entries, PutRecordsResult* result, Put put) {
  absl::Status status = put(entries, result);
  if (!status.ok() || result->failed_record_count == 0) return status;
  Backoff backoff(retry);
  std::vector<Entry> pending;
  std::vector<size_t> where;
  PutRecordsResult partial;
  for (int attempt = 2; attempt <= retry.max_attempts && result->failed_record_count > 0;
       ++attempt) {
    const absl::Time wake = clock.Now() + backoff.Next();
    if (wake > retry.deadline) break;
    SleepUntil(clock, wake);
    pending.clear();
    where.clear();
    for (size_t i = 0; i < result->records.size(); ++i) {
      const PutRecordsResultEntry& r = result->records[i];
      if (!r.ok() &&
          (r.error_code == ErrorCode::kProvisionedThroughputExceeded ||
           r.error_code == ErrorCode::kShardFull || r.error_code == ErrorCode::kInternalFailure)) {
        pending.push_back(entries[i]);
        where.push_back(i);
      }
    }
    if (pending.empty()) break;
    status = put(std::span<const Entry>(pending), &partial);
    if (!status.ok()) return status;
    for (size_t k = 0; k < where.size(); ++k) {
      if (partial.records[k].ok()) --result->failed_record_count;
      result->records[where[k]] = std::move(partial.records[k]);
    }
  }
  return absl::OkStatus();
}

}  // namespace detail
// PutRecord and PutRecords with retries, over any stream with PutRecord,
// PutRecords and clock() (every KinesisStream, stream_concept.hpp; Stream's
// members of the same names call these). PutRecordWithRetry: PutRecord,
// retried with exponential backoff and full jitter (retry.hpp) while it is
// throttled, the shard is full or InternalFailure, until it succeeds,
// attempts run out or the deadline would pass; sleeps through the stream's
// clock. Errors: the last attempt's. Thread-safe if the stream is.
template <typename S>
requires requires(S& s) { *s.clock(); }
absl::StatusOr<PutRecordResult> PutRecordWithRetry(S& stream, std::string_view partition_key,
                                                   typename S::View data,
                                                   const RetryOptions& retry = {},
                                                   const PutRecordOptions& options = {}) {
  return RetryWithBackoff(*stream.clock(), retry,
                          [&] { return stream.PutRecord(partition_key, data, options); });
}

// PutRecords, then again for the entries that failed with a retryable error,
// with backoff, until none fails or attempts or time run out; a retry resends
// only the failed entries, in request order. `result` holds, in request order,
// each entry's final outcome. Request-level errors return at once. Entries
// that succeed are never written twice. Thread-safe if the stream is.
template <typename S>
requires requires(S& s) { *s.clock(); }
absl::Status PutRecordsWithRetry(S& stream, std::span<const typename S::Entry> entries,
                                 const RetryOptions& retry, PutRecordsResult* result) {
  return detail::PutRecordsRetrying(
      *stream.clock(), retry, entries, result,
      [&](std::span<const typename S::Entry> batch, PutRecordsResult* out) {
        return stream.PutRecords(batch, out);
      });
}

}  // namespace kinlet
