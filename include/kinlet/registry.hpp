// kinlet/registry.hpp: named streams, as an account's Kinesis endpoint has them.
//
// Registry<Payload, Traits> owns streams by name: CreateStream, DeleteStream,
// ListStreams, DescribeStream. Streams are handed out as shared_ptr; a deleted
// stream's object stays alive while anyone holds it, and every call on it then
// fails with ResourceNotFoundException, so no reader or writer is ever left
// with a dangling reference.
// Thread safety: every method is thread-safe (one internal mutex, never held
// while a stream is read or written).
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kinlet/detail/mutex.hpp"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"
#include "kinlet/stream.hpp"

namespace kinlet {

template <RecordPayload Payload, StreamTraits Traits = DefaultStreamTraits>
class Registry {
 public:
  using StreamType = Stream<Payload, Traits>;
  using Clock = typename Traits::Clock;

  // `clock` is shared by every stream of the registry and must outlive it.
  explicit Registry(Clock* clock = Clock::Default(), std::string account_id = "000000000000")
      : clock_(clock), account_id_(std::move(account_id)) {}

  // The clock shared by the registry's streams, and the account id of their ARNs.
  Clock* clock() const { return clock_; }
  const std::string& account_id() const { return account_id_; }

  // Creates a stream named options.name. ResourceInUseException (absl
  // kAlreadyExists) if the name is taken; the errors of Stream::Create for bad
  // options.
  absl::StatusOr<std::shared_ptr<StreamType>> CreateStream(StreamOptions options) {
    options.account_id = account_id_;
    detail::MutexLock lock(&mu_);
    if (streams_.contains(options.name)) {
      return ResourceInUse(
          absl::StrCat("Stream ", options.name, " under account ", account_id_, " already exists."),
          /*on_create=*/true);
    }
    absl::StatusOr<std::unique_ptr<StreamType>> stream = StreamType::Create(options, clock_);
    if (!stream.ok()) return stream.status();
    std::shared_ptr<StreamType> shared(std::move(*stream));
    streams_.emplace(options.name, shared);
    return shared;
  }

  // Reopens the durable stream in `directory` (see Stream::Open) and adds it
  // under its stored name. ResourceInUseException if a stream of that name
  // is already here; the errors of Stream::Open.
  absl::StatusOr<std::shared_ptr<StreamType>> OpenStream(std::string_view directory,
                                                         StreamOptions options = {}) {
    options.account_id = account_id_;
    absl::StatusOr<std::unique_ptr<StreamType>> stream =
        StreamType::Open(directory, std::move(options), clock_);
    if (!stream.ok()) return stream.status();
    detail::MutexLock lock(&mu_);
    const std::string name = (*stream)->name();
    if (streams_.contains(name)) {
      return ResourceInUse(
          absl::StrCat("Stream ", name, " under account ", account_id_, " already exists."),
          /*on_create=*/true);
    }
    std::shared_ptr<StreamType> shared(std::move(*stream));
    streams_.emplace(name, shared);
    return shared;
  }

  // Deletes the stream: it leaves the registry at once and every call on it
  // fails with ResourceNotFoundException, through every handle still held
  // (the stream, its shards, subscriptions, consumers and consumer groups):
  // each keeps what it points into alive, so handles may be used and
  // destroyed after deletion in any order, on any thread.
  // Errors: ResourceNotFoundException if there is no such stream;
  // ResourceInUseException if it has registered stream consumers (enhanced
  // fan-out) and `enforce_consumer_deletion` is false, as AWS (its
  // EnforceConsumerDeletion parameter): with true, they are deregistered and
  // their subscriptions end. Thread-safe.
  absl::Status DeleteStream(std::string_view name, bool enforce_consumer_deletion = false) {
    std::shared_ptr<StreamType> stream;
    {
      detail::MutexLock lock(&mu_);
      auto it = streams_.find(detail::ToAbsl(name));
      if (it == streams_.end()) return NotFound(name);
      if (!enforce_consumer_deletion) {
        absl::StatusOr<std::vector<StreamConsumerDescription>> consumers =
            it->second->ListStreamConsumers();
        if (consumers.ok() && !consumers->empty()) {
          return ResourceInUse(
              absl::StrCat("Stream ", detail::ToAbsl(name), " under account ", account_id_, " has ",
                           consumers->size(),
                           " registered consumers: deregister them first, or delete with "
                           "EnforceConsumerDeletion."));
        }
      }
      stream = std::move(it->second);
      streams_.erase(it);
    }
    stream->MarkDeleted();
    return absl::OkStatus();
  }

  // The stream with this name, or ResourceNotFoundException.
  absl::StatusOr<std::shared_ptr<StreamType>> GetStream(std::string_view name) const {
    detail::MutexLock lock(&mu_);
    auto it = streams_.find(detail::ToAbsl(name));
    if (it == streams_.end()) return NotFound(name);
    return it->second;
  }

  absl::StatusOr<StreamDescription> DescribeStream(std::string_view name) const {
    absl::StatusOr<std::shared_ptr<StreamType>> stream = GetStream(name);
    if (!stream.ok()) return stream.status();
    return (*stream)->DescribeStream();
  }
  absl::StatusOr<StreamDescriptionSummary> DescribeStreamSummary(std::string_view name) const {
    absl::StatusOr<std::shared_ptr<StreamType>> stream = GetStream(name);
    if (!stream.ok()) return stream.status();
    return (*stream)->DescribeStreamSummary();
  }

  // Names of the streams, sorted.
  std::vector<std::string> ListStreams() const {
    std::vector<std::string> names;
    {
      detail::MutexLock lock(&mu_);
      for (const auto& [name, stream] : streams_) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  absl::Status NotFound(std::string_view name) const {
    return ResourceNotFound(absl::StrCat("Stream ", detail::ToAbsl(name), " under account ",
                                         account_id_, " not found."));
  }

  Clock* const clock_;
  const std::string account_id_;
  mutable detail::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<StreamType>> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kinlet
