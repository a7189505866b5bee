// Encryption at rest in ShardLog, with a test-only cipher and KMS: no
// plaintext key or payload on disk, the wrapped key stored per segment, key
// rotation (old segments readable), a flipped ciphertext bit is DataLoss, and
// the provider's errors surface as KMS errors.
#include <catch2/catch.hpp>
#include <set>

#include "kinlet/storage/shard_log.hpp"
#include "storage/storage_test_util.hpp"

namespace {

using kinlet::storage::LogRecordView;
using kinlet::storage::RecoveryReport;
using kinlet::storage::ShardLog;
using kinlet::storage::ShardLogOptions;
using namespace kinlet::storage::testing;
namespace sd = kinlet::storage::detail;

std::string AllSegmentBytes(const std::string& dir) {
  std::string all;
  for (const auto& f : SegmentFiles(dir)) all += Slurp(f);
  return all;
}

Rec Secret(uint64_t i) {
  return Rec{i, static_cast<int64_t>(i), "partition-key-" + std::to_string(i),
             "top-secret-payload-" + std::to_string(i)};
}

sd::SegmentHeader HeaderOf(const std::string& path) {
  std::string bytes = Slurp(path);
  sd::SegmentHeader h;
  REQUIRE(sd::DecodeSegmentHeader(bytes.data(), bytes.size(), &h).empty());
  return h;
}

TEST_CASE("Encrypted segments hold no plaintext and read back", "[storage][encryption]") {
  TempDir dir;
  auto kms = std::make_shared<TestKeyProvider>();
  auto factory = std::make_shared<XorCipherFactory>();
  kms->AddKey("alias/stream");
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  o.key_provider = kms;
  o.cipher_factory = factory;
  std::vector<Rec> want;
  {
    auto log = std::move(*ShardLog::Open(o, 0, nullptr));
    REQUIRE(log->Append(0, 0, "plain-key-0", "plain-payload-0").ok());
    want.push_back(Rec{0, 0, "plain-key-0", "plain-payload-0"});
    REQUIRE(log->SetEncryption(kms, factory, "alias/stream").ok());
    for (uint64_t i = 1; i < 300; ++i) {
      want.push_back(Secret(i));
      REQUIRE(AppendRec(*log, want.back()).ok());
    }
    kms->Rotate("alias/stream");  // new segments use version 2
    for (uint64_t i = 300; i < 600; ++i) {
      want.push_back(Secret(i));
      REQUIRE(AppendRec(*log, want.back()).ok());
    }
    CHECK(ReadAll(*log, 0) == want);
  }
  const std::string disk = AllSegmentBytes(o.directory);
  CHECK(disk.find("plain-payload-0") != std::string::npos);  // written before encryption
  CHECK(disk.find("top-secret-payload") == std::string::npos);
  CHECK(disk.find("partition-key-") == std::string::npos);
  // Each encrypted segment stores its key id, key version and wrapped key.
  auto files = SegmentFiles(o.directory);
  CHECK_FALSE(HeaderOf(files[0]).encrypted);
  std::set<uint32_t> versions;
  std::set<std::string> wrapped;
  for (size_t i = 1; i < files.size(); ++i) {
    sd::SegmentHeader h = HeaderOf(files[i]);
    CHECK(h.encrypted);
    CHECK(h.key_id == "alias/stream");
    CHECK(h.wrapped_key.size() == 36);
    versions.insert(h.key_version);
    wrapped.insert(h.wrapped_key);
  }
  CHECK(versions == std::set<uint32_t>{1, 2});
  CHECK(wrapped.size() == files.size() - 1);  // a data key per segment
  // Reopened: both key versions unwrap; writing goes on encrypted.
  RecoveryReport report;
  auto log = std::move(*ShardLog::Open(o, 0, &report));
  CHECK(report.records == want.size());
  CHECK(ReadAll(*log, 0) == want);
  want.push_back(Secret(600));
  REQUIRE(AppendRec(*log, want.back()).ok());
  CHECK(ReadAll(*log, 590) == std::vector<Rec>(want.end() - 11, want.end()));
  log.reset();
  CHECK(AllSegmentBytes(o.directory).find("top-secret-payload-600") == std::string::npos);
  // Stopping: new records are plaintext again.
  log = std::move(*ShardLog::Open(o, 0, nullptr));
  REQUIRE(log->SetEncryption(nullptr, nullptr, "").ok());
  REQUIRE(log->Append(601, 601, "k", "visible-again").ok());
  log.reset();
  CHECK(AllSegmentBytes(o.directory).find("visible-again") != std::string::npos);
}

TEST_CASE("A flipped ciphertext bit is DataLoss", "[storage][encryption]") {
  TempDir dir;
  auto kms = std::make_shared<TestKeyProvider>();
  auto factory = std::make_shared<XorCipherFactory>();
  kms->AddKey("k");
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  o.key_provider = kms;
  o.cipher_factory = factory;
  {
    auto log = std::move(*ShardLog::Open(o, 0, nullptr));
    REQUIRE(log->SetEncryption(kms, factory, "k").ok());
    for (uint64_t i = 0; i < 3; ++i) REQUIRE(AppendRec(*log, Secret(i)).ok());
  }
  auto files = SegmentFiles(o.directory);
  REQUIRE(files.size() == 1);  // the empty plaintext segment was replaced
  std::string bytes = Slurp(files[0]);
  const Rec r0 = Secret(0);
  // Flip a ciphertext bit of record 1 and fix up the frame checksum, so only
  // the cipher's authentication can notice.
  size_t off = sd::kHeaderBytes + sd::FrameBytes(r0.key.size() + r0.data.size() + 8);
  bytes[off + sd::kFrameHeaderBytes + 3] ^= 0x01;
  const uint32_t body = sd::Load32(bytes.data() + off + 8);
  sd::Store64(bytes.data() + off, sd::Checksum(bytes.data() + off + 8, 24 + body));
  Spit(files[0], bytes);
  RecoveryReport report;
  auto log = std::move(*ShardLog::Open(o, 0, &report));
  CHECK(report.records == 3);  // the frame is intact; its contents are not
  absl::Status status;
  auto got = ReadAll(*log, 0, &status);
  CHECK(got.size() == 1);
  CHECK(kinlet::IsDataLoss(status));
  CHECK(kinlet::IsDataLoss(log->Read(1, 1, 1 << 20, [](const LogRecordView&) {}).status()));
  CHECK(ReadAll(*log, 2).size() == 1);
}

TEST_CASE("KeyProvider errors surface as KMS errors", "[storage][encryption]") {
  TempDir dir;
  auto kms = std::make_shared<TestKeyProvider>();
  auto factory = std::make_shared<XorCipherFactory>();
  kms->AddKey("k");
  ShardLogOptions o = SmallOptions(dir.sub("log"));
  o.key_provider = kms;
  o.cipher_factory = factory;
  auto log = std::move(*ShardLog::Open(o, 0, nullptr));
  REQUIRE(log->Append(0, 0, "a", "b").ok());
  const size_t segments = log->segment_count();
  // Checked before anything changes.
  auto s = log->SetEncryption(kms, factory, "missing");
  CHECK(kinlet::ErrorCodeOf(s) == kinlet::ErrorCode::kKmsNotFound);
  CHECK(log->segment_count() == segments);
  kms->Disable("k", true);
  CHECK(kinlet::ErrorCodeOf(log->SetEncryption(kms, factory, "k")) ==
        kinlet::ErrorCode::kKmsDisabled);
  CHECK(log->segment_count() == segments);
  CHECK(kinlet::IsInvalidArgument(log->SetEncryption(nullptr, factory, "k")));
  kms->Disable("k", false);
  REQUIRE(log->SetEncryption(kms, factory, "k").ok());
  REQUIRE(log->Append(1, 1, "c", "d").ok());
  log.reset();
  // Reading needs the key: disabled or deleted keys are KMS errors, plaintext still reads.
  kms->Disable("k", true);
  log = std::move(*ShardLog::Open(o, 0, nullptr));
  CHECK(log->Read(0, 1, 1 << 20, [](const LogRecordView&) {}).ok());
  CHECK(kinlet::ErrorCodeOf(log->Read(1, 1, 1 << 20, [](const LogRecordView&) {}).status()) ==
        kinlet::ErrorCode::kKmsDisabled);
  CHECK(kinlet::IsKmsError(log->Append(2, 2, "e", "f")));  // the writer needs the key too
  kms->Disable("k", false);
  CHECK(log->Read(1, 1, 1 << 20, [](const LogRecordView&) {}).ok());
  log.reset();
  kms->Delete("k");
  log = std::move(*ShardLog::Open(o, 0, nullptr));
  CHECK(kinlet::ErrorCodeOf(log->Read(1, 1, 1 << 20, [](const LogRecordView&) {}).status()) ==
        kinlet::ErrorCode::kKmsNotFound);
  // No provider configured at all.
  log.reset();
  ShardLogOptions bare = o;
  bare.key_provider.reset();
  bare.cipher_factory.reset();
  log = std::move(*ShardLog::Open(bare, 0, nullptr));
  CHECK(kinlet::IsKmsError(log->Read(1, 1, 1 << 20, [](const LogRecordView&) {}).status()));
}

}  // namespace
