// tests/model/differential.hpp: runs one sequence of operations against a
// kinlet stream and the reference model, under one ManualClock, and compares
// every result and error. Sequences come from a seeded generator (the
// differential test) or from fuzzer bytes (fuzz/differential_fuzz.cpp), and a
// failing one shrinks to a minimal failing sequence. Fan-out events are pulled
// both ways, copied (Next) and zero-copy (NextView), each compared with the
// model, so the two reads must agree on every position, after expiry (the
// clock past retention), physical trimming (Stream::TrimExpired, an operation
// the model does not see: it must change nothing observable) and overwriting.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kinlet/kinlet.hpp"
#include "model/reference_model.hpp"

namespace kinlet_model {

// One operation. Choices are small integers resolved against the state when
// the operation runs (shard number i means the i-th shard modulo the count),
// so any subsequence of a sequence is itself a valid sequence.
struct Op {
  enum Kind : uint8_t {
    kPut,
    kPutBatch,
    kGetIterator,
    kGetRecords,
    kAdvance,
    kSplit,
    kMerge,
    kRegister,
    kDeregister,
    kSubscribe,
    kNextEvent,
    kTrimExpired,  // Stream::TrimExpired: reclaims expired records' space
    kNextView,     // Subscription::NextView, compared as kNextEvent
    kReopen        // durable profile: close the stream and Stream::Open it again
  };
  Kind kind = kPut;
  uint32_t a = 0, b = 0, c = 0, d = 0;  // meaning per kind, see Describe()
  uint64_t hi = 0, lo = 0;              // an explicit hash key or a split point

  std::string Describe() const {
    std::ostringstream out;
    static const char* const kNames[] = {
        "Put",      "PutBatch",   "GetIterator", "GetRecords", "Advance",     "Split",    "Merge",
        "Register", "Deregister", "Subscribe",   "NextEvent",  "TrimExpired", "NextView", "Reopen"};
    out << kNames[kind] << "(" << a << ", " << b << ", " << c << ", " << d << ", " << hi << ":"
        << lo << ")";
    return out.str();
  }
};

// Where operations come from: a seeded generator or fuzzer bytes.
class Source {
 public:
  explicit Source(uint64_t seed) : rng_(seed) {}
  Source(const uint8_t* data, size_t size) : bytes_(data), size_(size) {}
  uint64_t Next(uint64_t bound) {  // uniform-ish in [0, bound)
    if (bytes_ == nullptr) return std::uniform_int_distribution<uint64_t>(0, bound - 1)(rng_);
    uint64_t v = 0;
    for (int i = 0; i < 8 && at_ < size_; ++i) v = (v << 8) | bytes_[at_++];
    return v % bound;
  }
  bool exhausted() const { return bytes_ != nullptr && at_ >= size_; }

 private:
  std::mt19937_64 rng_{0};
  const uint8_t* bytes_ = nullptr;
  size_t size_ = 0;
  size_t at_ = 0;
};

inline Op NextOp(Source& in) {
  Op op;
  const uint64_t roll = in.Next(100);
  op.kind = roll < 25   ? Op::kPut
            : roll < 33 ? Op::kPutBatch
            : roll < 44 ? Op::kGetIterator
            : roll < 60 ? Op::kGetRecords
            : roll < 69 ? Op::kAdvance
            : roll < 71 ? Op::kTrimExpired
            : roll < 75 ? Op::kSplit
            : roll < 79 ? Op::kMerge
            : roll < 82 ? Op::kRegister
            : roll < 83 ? Op::kDeregister
            : roll < 89 ? Op::kSubscribe
            : roll < 95 ? Op::kNextEvent
            : roll < 97 ? Op::kReopen
                        : Op::kNextView;
  op.a = static_cast<uint32_t>(in.Next(1 << 16));
  op.b = static_cast<uint32_t>(in.Next(1 << 16));
  op.c = static_cast<uint32_t>(in.Next(1 << 16));
  op.d = static_cast<uint32_t>(in.Next(1 << 16));
  op.hi = in.Next(UINT64_MAX);
  op.lo = in.Next(UINT64_MAX);
  return op;
}

inline std::vector<Op> Generate(Source& in, size_t max_ops) {
  std::vector<Op> ops;
  while (ops.size() < max_ops && !in.exhausted()) ops.push_back(NextOp(in));
  return ops;
}

// The stream configuration a sequence runs against.
enum class Profile {
  kPlain,      // no limits, shards never full: the semantics alone
  kLimited,    // small per-shard limits and 8-record shards that refuse when full
  kOverwrite,  // small limits and 8-record shards that drop their oldest record
  // A durable stream whose ring holds 8 records (older ones are read from its
  // segment files) and that Reopen closes and reopens: the semantics of
  // kPlain, which the model gives it, must survive both.
  kDurable,
};
inline constexpr Profile kProfiles[] = {Profile::kPlain, Profile::kLimited, Profile::kOverwrite,
                                        Profile::kDurable};
inline const char* ProfileName(Profile p) {
  return p == Profile::kPlain     ? "plain"
         : p == Profile::kLimited ? "limited"
         : p == Profile::kDurable ? "durable"
                                  : "overwrite";
}

// Runs `ops` on a fresh stream and model; returns the first difference, or
// nullopt if every result matched.
class Differential {
 public:
  using TestStream = kinlet::Stream<std::string, kinlet::ManualClockTraits>;
  static constexpr int kShards = 2;
  static constexpr int64_t kRetentionMs = 24 * 3600 * 1000;
  // Test-only: makes the model misplace the third accepted put, so that the
  // tester's own test can check that it finds and shrinks a difference.
  static inline bool plant_bug = false;
  // How often each outcome ("GetRecords TrimmedDataAccessException", ...) was
  // reached, over every run: the tests check that none is left unexercised.
  static inline std::map<std::string, uint64_t> outcomes;

  static std::optional<std::string> Run(const std::vector<Op>& ops,
                                        Profile profile = Profile::kPlain) {
    Differential d(profile);
    for (size_t i = 0; i < ops.size(); ++i) {
      std::optional<std::string> diff = d.Apply(ops[i]);
      if (diff) return "op " + std::to_string(i) + " " + ops[i].Describe() + ": " + *diff;
    }
    return std::nullopt;
  }

  // A minimal failing subsequence of a failing `ops` (each remaining op is
  // needed: removing any one makes the difference go away).
  static std::vector<Op> Shrink(std::vector<Op> ops, Profile profile = Profile::kPlain) {
    for (size_t chunk = ops.size() / 2; chunk >= 1; chunk /= 2) {
      for (size_t at = 0; at + chunk <= ops.size();) {
        std::vector<Op> fewer(ops.begin(), ops.begin() + static_cast<std::ptrdiff_t>(at));
        fewer.insert(fewer.end(), ops.begin() + static_cast<std::ptrdiff_t>(at + chunk), ops.end());
        if (Run(fewer, profile)) {
          ops = std::move(fewer);
        } else {
          at += chunk;
        }
      }
      if (chunk == 1) break;
    }
    return ops;
  }

 private:
  // Limits small enough that a sequence meets them every few operations (its
  // clock moves by up to 3 s at a time); records are up to 257 + 47 bytes.
  static constexpr Limits kSmallLimits{/*write_records=*/4, /*write_bytes=*/300,
                                       /*read_calls=*/3, /*read_bytes=*/400,
                                       /*iterator_calls=*/3};
  static constexpr size_t kSmallCapacity = 8;

  static Config ModelConfig(Profile profile) {
    Config c = Model::MakeConfig(kShards, kRetentionMs);
    if (profile != Profile::kPlain && profile != Profile::kDurable) {
      c.limits = kSmallLimits;
      c.capacity_records = kSmallCapacity;
      c.overwrite = profile == Profile::kOverwrite;
    }
    return c;
  }

  explicit Differential(Profile profile) : model_(ModelConfig(profile)) {
    kinlet::StreamOptions options;
    options.name = "differential";
    options.shard_count = kShards;
    options.limits = kinlet::ThroughputLimits::Unlimited();
    options.shard_capacity_records = 4096;   // never full: a sequence puts at most ~3,000
    options.shard_capacity_bytes = 2 << 20;  // holds the largest record (1 MiB)
    if (profile == Profile::kDurable) {
      static std::atomic<int> runs{0};
      // tmpfs when there is one: the sequences test the semantics, not the
      // disk, and a segment's creation fsyncs several times.
      std::error_code ec;
      const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                             ? std::filesystem::path("/dev/shm")
                                             : std::filesystem::temp_directory_path();
      directory_ = (base / ("kinlet-differential-" + std::to_string(::getpid()) + "-" +
                            std::to_string(runs.fetch_add(1))))
                       .string();
      std::filesystem::remove_all(directory_);
      options.storage.kind = kinlet::StorageKind::kDurable;
      options.storage.directory = directory_;
      options.shard_capacity_records = kSmallCapacity;  // older records come from disk
    } else if (profile != Profile::kPlain) {
      options.limits.write_records_per_second = kSmallLimits.write_records;
      options.limits.write_bytes_per_second = kSmallLimits.write_bytes;
      options.limits.read_calls_per_second = kSmallLimits.read_calls;
      options.limits.read_bytes_per_second = kSmallLimits.read_bytes;
      options.limits.get_shard_iterator_calls_per_second = kSmallLimits.iterator_calls;
      options.shard_capacity_records = kSmallCapacity;
      options.full_policy = profile == Profile::kOverwrite ? kinlet::FullPolicy::kOverwrite
                                                           : kinlet::FullPolicy::kReject;
    }
    options_ = options;
    stream_ = std::move(*TestStream::Create(options, &clock_));
  }

 public:
  ~Differential() {
    for (SubSlot& slot : subscriptions_) slot.kinlet.reset();
    stream_.reset();
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
  }

 private:
  // Closes the durable stream and opens it again from its directory. Its
  // subscriptions end with it (the model's are cancelled too); iterators stay
  // valid (the stream keeps its tag); then the shards must still match.
  std::optional<std::string> ApplyReopen() {
    if (directory_.empty()) return std::nullopt;
    for (SubSlot& slot : subscriptions_) {
      if (slot.kinlet) model_.Cancel(slot.model);
      slot = SubSlot{};
    }
    stream_.reset();
    absl::StatusOr<std::unique_ptr<TestStream>> reopened =
        TestStream::Open(directory_, options_, &clock_);
    if (!reopened.ok()) return "Reopen: " + reopened.status().ToString();
    stream_ = *std::move(reopened);
    Reached("Reopen");
    return CompareOpenShards();
  }

  int64_t Now() const { return clock_.NowMillis(); }

  // A partition key: mostly from a small set, sometimes invalid.
  static std::string KeyFor(uint32_t choice) {
    switch (choice % 64) {
      case 0:
        return "";
      case 1:
        return std::string(257, 'k');
      case 2:
        return "bad\xff";
      case 3:
        return std::string(256, 'k');
      case 4:
        return "\xc3\xa9t\xc3\xa9";  // UTF-8, 3 characters
      default:
        return "key-" + std::to_string(choice % 40);
    }
  }
  static std::string DataFor(uint32_t choice, uint32_t salt) {
    std::string data(choice % 48, static_cast<char>('a' + salt % 26));
    if (!data.empty()) data[0] = static_cast<char>(salt >> 8);
    return data;
  }
  std::optional<kinlet::HashKey> ExplicitHash(const Op& op) const {
    if (op.c % 5 != 0) return std::nullopt;
    return absl::MakeUint128(op.hi, op.lo);
  }
  kinlet::HashKey HashOf(const std::string& key, const std::optional<kinlet::HashKey>& h) const {
    return h ? *h : kinlet::ManualClockTraits::Hasher::Hash(key);
  }

  static std::string Code(kinlet::ErrorCode c) {
    return c == kinlet::ErrorCode::kNone ? "OK" : std::string(kinlet::ErrorName(c));
  }
  // Compares the outcome codes of one call and counts the outcome.
  static std::optional<std::string> Outcome(const std::string& call, kinlet::ErrorCode kinlet,
                                            kinlet::ErrorCode model) {
    ++outcomes[call + " " + Code(model)];
    return Differ(call, Code(kinlet), Code(model));
  }
  static void Reached(const std::string& what) { ++outcomes[what]; }

  static std::optional<std::string> Differ(const std::string& what, const std::string& kinlet,
                                           const std::string& model) {
    if (kinlet == model) return std::nullopt;
    return what + ": kinlet " + kinlet + ", model " + model;
  }

  std::optional<std::string> Apply(const Op& op) {
    switch (op.kind) {
      case Op::kPut:
        return ApplyPut(op);
      case Op::kPutBatch:
        return ApplyBatch(op);
      case Op::kGetIterator:
        return ApplyGetIterator(op);
      case Op::kGetRecords:
        return ApplyGetRecords(op);
      case Op::kAdvance: {
        const int64_t ms = op.a % 10 == 0   ? int64_t{25} * 3600 * 1000  // past retention
                           : op.a % 10 == 1 ? int64_t{301} * 1000        // past iterator TTL
                                            : op.b % 3000;
        clock_.Advance(absl::Milliseconds(ms));
        return std::nullopt;
      }
      case Op::kSplit:
        return ApplySplit(op);
      case Op::kMerge:
        return ApplyMerge(op);
      case Op::kRegister: {
        const std::string name = "consumer-" + std::to_string(op.a % 3);
        return Outcome("RegisterStreamConsumer",
                       kinlet::ErrorCodeOf(stream_->RegisterStreamConsumer(name).status()),
                       model_.RegisterConsumer(name));
      }
      case Op::kDeregister: {
        const std::string name = "consumer-" + std::to_string(op.a % 3);
        return Outcome("DeregisterStreamConsumer",
                       kinlet::ErrorCodeOf(stream_->DeregisterStreamConsumer(name)),
                       model_.DeregisterConsumer(name, Now()));
      }
      case Op::kSubscribe:
        return ApplySubscribe(op);
      case Op::kNextEvent:
        return ApplyNextEvent(op, /*view=*/false);
      case Op::kNextView:
        return ApplyNextEvent(op, /*view=*/true);
      case Op::kTrimExpired:
        (void)stream_->TrimExpired();  // how many it reclaims is kinlet's own business
        last_trim_ms_ = Now();
        return std::nullopt;
      case Op::kReopen:
        return ApplyReopen();
    }
    return std::nullopt;
  }

  std::optional<std::string> ApplyPut(const Op& op) {
    const std::string key = KeyFor(op.a);
    const std::string data = DataFor(op.b, op.d);
    const auto hash = ExplicitHash(op);
    kinlet::PutRecordOptions put_options;
    put_options.explicit_hash_key = hash;
    auto got = stream_->PutRecord(key, data, put_options);
    const PutResult want = model_.Put(key, data, HashOf(key, hash), Now());
    if (auto d = Outcome("PutRecord", kinlet::ErrorCodeOf(got.status()), want.error)) {
      return d;
    }
    if (!got.ok()) return std::nullopt;
    return Placed("PutRecord", got->shard_id, got->sequence_number, want);
  }

  std::optional<std::string> Placed(const std::string& what, std::string_view shard_id,
                                    kinlet::SequenceNumber seq, PutResult want) {
    tag_ = seq.stream_tag();
    if (plant_bug && history_.size() == 2) ++want.position;
    if (auto d = Differ(what + " shard", std::string(shard_id), model_.shards()[want.shard].id)) {
      return d;
    }
    if (auto d = Differ(what + " position", std::to_string(seq.position()),
                        std::to_string(want.position))) {
      return d;
    }
    history_.push_back({want.shard, want.position});
    return std::nullopt;
  }

  std::optional<std::string> ApplyBatch(const Op& op) {
    const size_t n = op.a % 37 == 0 ? 0 : 1 + op.a % 8;
    std::vector<std::string> keys, data;
    std::vector<Model::Entry> model_entries;
    for (size_t i = 0; i < n; ++i) {
      keys.push_back(KeyFor(op.b % 7 == 0 ? op.c + static_cast<uint32_t>(i)
                                          : 5 + (op.c + static_cast<uint32_t>(i) * 7) % 59));
      data.push_back(DataFor(op.d + static_cast<uint32_t>(i), op.b + static_cast<uint32_t>(i)));
    }
    std::vector<kinlet::PutRecordsRequestEntry<std::string>> entries;
    for (size_t i = 0; i < n; ++i) {
      entries.push_back({keys[i], data[i], {}});
      model_entries.push_back({keys[i], data[i], HashOf(keys[i], std::nullopt)});
    }
    kinlet::PutRecordsResult result;
    const absl::Status got = stream_->PutRecords(entries, &result);
    auto [error, placed] = model_.PutBatch(model_entries, Now());
    if (auto d = Outcome("PutRecords", kinlet::ErrorCodeOf(got), error)) return d;
    if (!got.ok()) return std::nullopt;
    int failed = 0;
    for (size_t i = 0; i < n; ++i) {
      const auto& r = result.records[i];
      const std::string what = "PutRecords entry " + std::to_string(i);
      if (auto d = Outcome("PutRecords entry", r.error_code, placed[i].error)) {
        return what + ": " + *d;
      }
      if (!r.ok()) {
        ++failed;
        continue;
      }
      if (auto d = Placed(what, r.shard_id, r.sequence_number, placed[i])) return d;
    }
    return Differ("PutRecords failed_record_count", std::to_string(result.failed_record_count),
                  std::to_string(failed));
  }

  // A starting position drawn from `op`, in both forms.
  struct Start {
    Model::Type type = Model::Type::kTrimHorizon;
    kinlet::IteratorPosition position;
    bool same_stream = true;
    size_t seq_shard = 0;
    uint64_t seq_position = 0;
    int64_t timestamp_ms = 0;
  };
  Start StartFor(const Op& op) const {
    const auto& shards = model_.shards();
    Start st;
    st.type = static_cast<Model::Type>(op.b % 5);
    switch (st.type) {
      case Model::Type::kTrimHorizon:
        st.position = kinlet::IteratorPosition::TrimHorizon();
        break;
      case Model::Type::kLatest:
        st.position = kinlet::IteratorPosition::Latest();
        break;
      case Model::Type::kAtSequence:
      case Model::Type::kAfterSequence: {
        if (!history_.empty() && op.c % 6 != 0) {
          const auto& [s, p] = history_[op.c % history_.size()];
          st.seq_shard = s;
          st.seq_position = p;
        } else {  // a number nobody wrote: a future position, or another stream's
          st.seq_shard = op.c % shards.size();
          st.seq_position = 1000000 + op.d;
          st.same_stream = op.c % 12 != 0;
        }
        const kinlet::SequenceNumber seq(st.same_stream ? tag_ : tag_ + 1,
                                         static_cast<uint32_t>(st.seq_shard), st.seq_position);
        st.position = st.type == Model::Type::kAtSequence
                          ? kinlet::IteratorPosition::AtSequenceNumber(seq)
                          : kinlet::IteratorPosition::AfterSequenceNumber(seq);
        break;
      }
      case Model::Type::kAtTimestamp:
        st.timestamp_ms = Now() - static_cast<int64_t>(op.c % 7000) + (op.d % 9 == 0 ? 5000 : 0);
        st.position = kinlet::IteratorPosition::AtTimestamp(absl::FromUnixMillis(st.timestamp_ms));
        break;
    }
    return st;
  }

  std::string ShardIdFor(uint32_t choice) const {
    const auto& shards = model_.shards();
    return choice % 17 == 0 ? "shardId-000000999999" : shards[choice % shards.size()].id;
  }

  std::optional<std::string> ApplyGetIterator(const Op& op) {
    const std::string shard_id = ShardIdFor(op.a);
    const Start st = StartFor(op);
    auto got = stream_->GetShardIterator(shard_id, st.position);
    auto [error, it] = model_.GetShardIterator(shard_id, st.type, st.same_stream, st.seq_shard,
                                               st.seq_position, st.timestamp_ms, Now());
    if (auto d = Outcome("GetShardIterator", kinlet::ErrorCodeOf(got.status()), error)) {
      return d;
    }
    if (!got.ok()) return std::nullopt;
    if (auto d = Differ("iterator position", std::to_string(got->position()),
                        std::to_string(it.position))) {
      return d;
    }
    slots_[op.d % kSlots] = Slot{*got, it};
    return std::nullopt;
  }

  std::optional<std::string> ApplySubscribe(const Op& op) {
    const std::string consumer = "consumer-" + std::to_string(op.a % 3);
    const std::string shard_id = ShardIdFor(op.a / 3);
    const Start st = StartFor(op);
    auto got = stream_->SubscribeToShard(consumer, shard_id, st.position);
    auto [error, id] = model_.Subscribe(consumer, shard_id, st.type, st.same_stream, st.seq_shard,
                                        st.seq_position, st.timestamp_ms, Now());
    if (auto d = Outcome("SubscribeToShard", kinlet::ErrorCodeOf(got.status()), error)) {
      return *d + " (" + consumer + ", " + shard_id + ")";
    }
    if (!got.ok()) return std::nullopt;
    SubSlot& slot = subscriptions_[op.d % kSlots];
    if (slot.kinlet) model_.Cancel(slot.model);  // the handle it replaces is destroyed
    slot = SubSlot{*std::move(got), id, shard_id};
    return std::nullopt;
  }

  // One event as pulled from kinlet, by Next or by NextView (copied out of the
  // views while the visitor runs).
  struct GotEvent {
    absl::Status status;
    bool visited = true;  // NextView: the visitor ran
    std::vector<Record> records;
    std::optional<kinlet::SequenceNumber> continuation;
    bool continuation_at_start = false;
    bool end_of_shard = false;
    std::vector<std::string> children;
    int64_t millis_behind_latest = 0;
    kinlet::ShardIteratorType resume = kinlet::ShardIteratorType::kTrimHorizon;

    void Header(const kinlet::SubscribeToShardEventHeader& h) {
      continuation = h.continuation_sequence_number;
      continuation_at_start = h.continuation_at_shard_start;
      end_of_shard = h.end_of_shard;
      millis_behind_latest = h.millis_behind_latest;
      resume = h.ResumePosition().type;
    }
  };

  static Record ToModel(kinlet::SequenceNumber seq, absl::Time arrival, std::string_view key,
                        std::string_view data) {
    return Record{seq.position(), absl::ToUnixMillis(arrival), std::string(key), std::string(data)};
  }

  static GotEvent Pull(kinlet::Subscription<std::string, kinlet::ManualClockTraits>& sub,
                       bool view) {
    GotEvent got;
    if (!view) {
      kinlet::SubscribeToShardEvent<std::string> event;
      got.status = sub.Next(&event, absl::ZeroDuration());
      got.Header(event);
      for (const auto& r : event.records()) {
        got.records.push_back(
            ToModel(r.sequence_number, r.approximate_arrival_timestamp, r.partition_key, r.data));
      }
      for (const auto& c : event.child_shards()) got.children.push_back(c.shard_id);
      return got;
    }
    got.visited = false;
    got.status = sub.NextView(
        [&](const kinlet::SubscribeToShardEventView<std::string>& event) {
          got.visited = true;
          got.Header(event);
          for (const auto& r : event.records) {
            got.records.push_back(ToModel(r.sequence_number, r.approximate_arrival_timestamp,
                                          r.partition_key, r.data));
          }
          for (const auto& c : event.child_shards) got.children.push_back(c.shard_id);
        },
        absl::ZeroDuration());
    return got;
  }

  std::optional<std::string> ApplyNextEvent(const Op& op, bool view) {
    SubSlot& slot = subscriptions_[op.a % kSlots];
    if (!slot.kinlet) return std::nullopt;
    const std::string call = view ? "SubscribeToShardEventView" : "SubscribeToShardEvent";
    const GotEvent got = Pull(*slot.kinlet, view);
    const Shard& shard = model_.shards()[*model_.Find(slot.shard)];
    const uint64_t position = model_.Position(slot.model);
    const bool behind = position < shard.dropped;
    const bool expired =
        !behind && position < shard.records.size() && model_.Gone(shard, position, Now());
    const Event want = model_.Next(slot.model, Now());
    if (want.error == ErrorCode::kTrimmedDataAccess) {
      if (behind) Reached(call + " TrimmedDataAccessException (overwritten)");
      if (expired) Reached(call + " TrimmedDataAccessException (expired)");
      // Expired before the last TrimExpired: its space was reclaimed too.
      if (expired && last_trim_ms_ != kNoTrim &&
          shard.records[position].arrival_ms < last_trim_ms_ - kRetentionMs) {
        Reached(call + " TrimmedDataAccessException (expired and reclaimed)");
      }
    }
    // A normal end (lifetime, shard end) is OutOfRange with no Kinesis name:
    // ErrorCodeOf gives kUnknown, as the model says.
    if (auto d = Outcome(call, kinlet::ErrorCodeOf(got.status), want.error)) {
      return *d + " (" + slot.shard + ")";
    }
    if (!got.status.ok()) return std::nullopt;
    if (auto d = Differ(call + " visitor called", got.visited ? "yes" : "no", "yes")) return d;
    if (!want.records.empty()) Reached(call + " records");
    if (want.kind == EventKind::kShardEnd) Reached(call + " shard end");
    if (want.kind == EventKind::kHeartbeat && want.continuation_at_start) {
      Reached(call + " heartbeat at the shard's start");
    }
    if (auto d = Differ("event records", std::to_string(got.records.size()),
                        std::to_string(want.records.size()))) {
      return d;
    }
    for (size_t i = 0; i < got.records.size(); ++i) {
      const Record& r = got.records[i];
      const Record& m = want.records[i];
      if (auto d = Differ("event record " + std::to_string(i),
                          std::to_string(r.position) + " " + std::to_string(r.arrival_ms) + " " +
                              r.key + " " + r.data,
                          std::to_string(m.position) + " " + std::to_string(m.arrival_ms) + " " +
                              m.key + " " + m.data)) {
        return d;
      }
    }
    const std::string continuation = got.continuation
                                         ? std::to_string(got.continuation->position()) +
                                               (got.continuation_at_start ? " (shard start)" : "")
                                         : "none";
    if (auto d = Differ("continuation", continuation,
                        want.continuation ? std::to_string(*want.continuation) +
                                                (want.continuation_at_start ? " (shard start)" : "")
                                          : "none")) {
      return d;
    }
    // Resuming AFTER the shard's start would skip record 0.
    const auto want_resume = want.continuation && !want.continuation_at_start
                                 ? kinlet::ShardIteratorType::kAfterSequenceNumber
                                 : kinlet::ShardIteratorType::kTrimHorizon;
    if (auto d = Differ("resume position", std::to_string(static_cast<int>(got.resume)),
                        std::to_string(static_cast<int>(want_resume)))) {
      return d;
    }
    if (auto d = Differ("event end_of_shard", got.end_of_shard ? "yes" : "no",
                        want.kind == EventKind::kShardEnd ? "yes" : "no")) {
      return d;
    }
    std::string children;
    for (const auto& c : got.children) children += c + " ";
    std::string want_children;
    for (const auto& c : want.children) want_children += c + " ";
    if (auto d = Differ("event child shards", children, want_children)) return d;
    return Differ("event millis_behind_latest", std::to_string(got.millis_behind_latest),
                  std::to_string(want.millis_behind_latest));
  }

  // GetRecords, copying or (every other op, by op.d) lending the records in
  // place (GetRecordsView): both forms must give the model's answer.
  std::optional<std::string> ApplyGetRecords(const Op& op) {
    std::optional<Slot>& slot = slots_[op.a % kSlots];
    if (!slot) return std::nullopt;
    if (op.d % 2 == 1) {
      kinlet::GetRecordsView<std::string> page;
      std::optional<std::string> d = CompareGetRecords(op, slot, &page);
      if (page.lent()) Reached("GetRecords lent in place");
      if (!page.records.empty() && page.copied_records() != 0) Reached("GetRecords lent a copy");
      return d;
    }
    kinlet::GetRecordsResult<std::string> page;
    return CompareGetRecords(op, slot, &page);
  }

  // (`slot`: a std::optional<Slot>, declared below.)
  template <typename KinletPage, typename SlotRef>
  std::optional<std::string> CompareGetRecords(const Op& op, SlotRef& slot, KinletPage* page) {
    const int limit = op.b % 29 == 0 ? 0 : op.b % 31 == 0 ? 10001 : 1 + static_cast<int>(op.c % 12);
    const std::string& shard_id = model_.shards()[slot->model.shard].id;
    const absl::Status got = stream_->GetRecords(slot->kinlet, limit, page);
    const Page want = model_.GetRecords(slot->model, limit, Now());
    if (auto d = Outcome("GetRecords", kinlet::ErrorCodeOf(got), want.error)) {
      return *d + " (" + shard_id + ")";
    }
    if (want.error == ErrorCode::kTrimmedDataAccess &&
        slot->model.position < model_.shards()[slot->model.shard].dropped) {
      Reached("GetRecords TrimmedDataAccessException (overwritten)");
    }
    if (!got.ok()) {
      return Differ("records after an error", std::to_string(page->records.size()), "0");
    }
    if (!want.records.empty()) Reached("GetRecords records");
    if (!want.children.empty()) Reached("GetRecords shard end");
    if (auto d = Differ("record count", std::to_string(page->records.size()),
                        std::to_string(want.records.size()))) {
      return d;
    }
    for (size_t i = 0; i < page->records.size(); ++i) {
      const auto& r = page->records[i];
      const Record& m = want.records[i];
      const std::string at = "record " + std::to_string(i) + " ";
      if (auto d = Differ(at + "position", std::to_string(r.sequence_number.position()),
                          std::to_string(m.position))) {
        return d;
      }
      if (auto d = Differ(at + "key", std::string(r.partition_key), m.key)) return d;
      if (auto d = Differ(at + "data", std::string(r.data), m.data)) return d;
      if (auto d = Differ(at + "arrival",
                          std::to_string(absl::ToUnixMillis(r.approximate_arrival_timestamp)),
                          std::to_string(m.arrival_ms))) {
        return d;
      }
    }
    if (auto d = Differ("next iterator", page->next_shard_iterator ? "yes" : "no",
                        want.next ? "yes" : "no")) {
      return d;
    }
    std::string children;
    for (const auto& c : page->child_shards) children += c.shard_id + " ";
    std::string want_children;
    for (const auto& c : want.children) want_children += c + " ";
    if (auto d = Differ("child shards", children, want_children)) return d;
    if (auto d = Differ("millis_behind_latest", std::to_string(page->millis_behind_latest),
                        std::to_string(want.millis_behind_latest))) {
      return d;
    }
    if (page->next_shard_iterator) {
      if (auto d = Differ("next position", std::to_string(page->next_shard_iterator->position()),
                          std::to_string(want.next->position))) {
        return d;
      }
      slot = typename SlotRef::value_type{*page->next_shard_iterator, *want.next};
    } else {
      slot.reset();
    }
    return std::nullopt;
  }

  std::optional<std::string> ApplySplit(const Op& op) {
    const auto& shards = model_.shards();
    const Shard& s = shards[op.a % shards.size()];
    kinlet::HashKey at = s.start + (s.end - s.start) / 2;
    if (op.b % 4 == 1) at = s.start + 1;                      // invalid: not above start + 1
    if (op.b % 4 == 2) at = absl::MakeUint128(op.hi, op.lo);  // anywhere
    const std::string id = s.id;
    const absl::Status got = stream_->SplitShard(id, at);
    const ErrorCode want = model_.Split(id, at, Now());
    if (auto d = Outcome("SplitShard", kinlet::ErrorCodeOf(got), want)) return *d + " (" + id + ")";
    return CompareOpenShards();
  }

  std::optional<std::string> ApplyMerge(const Op& op) {
    const auto& shards = model_.shards();
    const std::string a = shards[op.a % shards.size()].id;
    std::string b = shards[op.b % shards.size()].id;
    if (op.c % 3 != 0) {  // mostly a neighbour: the open shard just above a's range
      for (const Shard& s : shards) {
        if (s.open && s.start == shards[op.a % shards.size()].end + 1) b = s.id;
      }
    }
    const absl::Status got = stream_->MergeShards(a, b);
    const ErrorCode want = model_.Merge(a, b, Now());
    if (auto d = Outcome("MergeShards", kinlet::ErrorCodeOf(got), want)) {
      return *d + " (" + a + ", " + b + ")";
    }
    return CompareOpenShards();
  }

  std::optional<std::string> CompareOpenShards() const {
    std::string got;
    for (const auto& s : stream_->OpenShards()) {
      got += s->shard_id() + "[" + kinlet::HashKeyToString(s->hash_key_range().starting_hash_key) +
             "] ";
    }
    std::vector<const Shard*> open;  // in hash key order, as OpenShards()
    for (const Shard& s : model_.shards()) {
      if (s.open) open.push_back(&s);
    }
    std::sort(open.begin(), open.end(),
              [](const Shard* x, const Shard* y) { return x->start < y->start; });
    std::string want;
    for (const Shard* s : open) want += s->id + "[" + kinlet::HashKeyToString(s->start) + "] ";
    return Differ("open shards", got, want);
  }

  struct Slot {
    kinlet::ShardIterator kinlet;
    Iterator model;
  };
  static constexpr size_t kSlots = 8;
  struct SubSlot {
    std::unique_ptr<kinlet::Subscription<std::string, kinlet::ManualClockTraits>> kinlet;
    size_t model = 0;
    std::string shard;
  };

  kinlet::ManualClock clock_;
  kinlet::StreamOptions options_;
  std::string directory_;  // kDurable: the stream's directory, removed at the end
  std::unique_ptr<TestStream> stream_;
  Model model_;
  uint32_t tag_ = 0;
  static constexpr int64_t kNoTrim = INT64_MIN;
  int64_t last_trim_ms_ = kNoTrim;                    // the clock at the last TrimExpired operation
  std::vector<std::pair<size_t, uint64_t>> history_;  // (shard, position) of every put
  std::optional<Slot> slots_[kSlots];
  SubSlot subscriptions_[kSlots];  // declared last: destroyed before the stream
};

}  // namespace kinlet_model
