// libFuzzer target: the segment and index readers of kinlet::storage. Arbitrary
// bytes become a shard's files, then go through recovery (ShardLog::Open) and
// every reader (Read, ArrivalAt, LowerBoundArrival), an append and a reopen.
// Each must end OK or with DataLossException (or TrimmedDataAccess below
// Begin), never crash, hang or leak. The first byte picks the shape:
//   0  the bytes are a whole segment file
//   1  the bytes are the frames of a segment behind a valid header
//   2  the bytes are the index file of a real segment (a few records)
//   3  the bytes are XORed onto a real segment from offset 4096
// Seeds (tests/fuzz/corpus/storage_fuzz/) are real segments and indexes.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "kinlet/storage/shard_log.hpp"

namespace {

namespace ks = kinlet::storage;
namespace sd = kinlet::storage::detail;

void Require(bool ok) {
  if (!ok) std::abort();
}

const std::string& Dir() {
  // tmpfs when there is one: the log fsyncs at every segment it creates.
  static const std::string dir =
      ((std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                  : std::filesystem::temp_directory_path()) /
       ("kinlet-storage-fuzz-" + std::to_string(::getpid())))
          .string();
  return dir;
}

ks::ShardLogOptions Options() {
  ks::ShardLogOptions o;
  o.directory = Dir() + "/log";
  o.max_record_bytes = 64;
  o.segment_bytes = 8192;
  return o;
}

void Write(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A real segment of a few records and its index, made once.
struct Real {
  std::string segment;
  std::string index;
};
const Real& RealLog() {
  static const Real real = [] {
    ks::ShardLogOptions o = Options();
    o.directory = Dir() + "/real";
    std::filesystem::remove_all(o.directory);
    Real r;
    {
      auto log = ks::ShardLog::Open(o, 0, nullptr);
      Require(log.ok());
      for (uint64_t i = 0; i < 40; ++i) {
        Require((*log)
                    ->Append(i, static_cast<int64_t>(100 + i), "key" + std::to_string(i % 3),
                             std::string(i % 17, 'x'))
                    .ok());
      }
      Require((*log)->Seal().ok());
    }
    const std::string seg = o.directory + "/" + sd::SegmentFileName(0);
    r.segment = *sd::ReadFile(seg);
    r.index = *sd::ReadFile(seg + ".idx");
    std::filesystem::remove_all(o.directory);
    return r;
  }();
  return real;
}

bool Acceptable(const absl::Status& s) {
  return s.ok() || kinlet::IsDataLoss(s) || kinlet::IsTrimmedDataAccess(s);
}

// Reads the whole log, skipping what is lost; checks every answer's shape.
void ReadEverything(const ks::ShardLog& log) {
  uint64_t pos = log.Begin();
  const uint64_t end = log.End();
  Require(pos <= end);
  for (int steps = 0; pos < end && steps < 100000; ++steps) {
    size_t seen = 0;
    auto n = log.Read(pos, 16, 4096, [&](const ks::LogRecordView& v) {
      Require(v.position == pos + seen);
      Require(v.key.size() + v.data.size() <= 64 || seen == 0);
      ++seen;
    });
    Require(Acceptable(n.status()));
    if (n.ok() && *n > 0) {
      Require(*n == seen);
      pos += *n;
      continue;
    }
    // Lost: skip the lost range (or the one record).
    uint64_t next = pos + 1;
    for (const auto& [a, b] : log.lost()) {
      if (pos >= a && pos < b) next = b;
    }
    pos = next;
  }
  (void)log.ArrivalAt(log.Begin());
  (void)log.ArrivalAt(end == 0 ? 0 : end - 1);
  Require(log.LowerBoundArrival(INT64_MIN) <= end);
  Require(log.LowerBoundArrival(100) <= end);
  Require(log.LowerBoundArrival(INT64_MAX) <= end);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Real& real = RealLog();
  const int mode = data[0] % 4;
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  ks::ShardLogOptions o = Options();
  std::filesystem::remove_all(o.directory);
  std::filesystem::create_directories(o.directory);
  const std::string seg = o.directory + "/" + sd::SegmentFileName(0);
  switch (mode) {
    case 0:
      Write(seg, bytes);
      break;
    case 1: {
      sd::SegmentHeader h;
      h.segment_bytes = sd::kHeaderBytes + bytes.size();
      std::string file(sd::kHeaderBytes, '\0');
      sd::EncodeSegmentHeader(h, file.data());
      file.append(bytes.data(), bytes.size());
      Write(seg, file);
      break;
    }
    case 2:
      Write(seg, real.segment);
      Write(seg + ".idx", bytes);
      break;
    default: {
      std::string file = real.segment;
      for (size_t i = 0; i < bytes.size() && sd::kHeaderBytes + i < file.size(); ++i) {
        file[sd::kHeaderBytes + i] ^= bytes[i];
      }
      Write(seg, file);
      break;
    }
  }
  for (int round = 0; round < 2; ++round) {
    ks::RecoveryReport report;
    auto log = ks::ShardLog::Open(o, 0, &report);
    Require(log.ok());
    Require((*log)->Begin() <= (*log)->End());
    Require(report.records <= (*log)->End() - (*log)->Begin());
    ReadEverything(**log);
    if (round == 0) {
      // The log accepts the next record and reads it back.
      const uint64_t end = (*log)->End();
      auto s = (*log)->Append(end, INT64_MAX / 2, "k", "v");
      if (s.ok()) {
        size_t got = 0;
        auto n = (*log)->Read(end, 1, 64, [&](const ks::LogRecordView& v) {
          Require(v.key == "k" && v.data == "v");
          ++got;
        });
        Require(n.ok() && got == 1);
      } else {
        Require(kinlet::IsInvalidArgument(s));  // arrival below a recovered record's
      }
    }
  }
  std::filesystem::remove_all(Dir());
  return 0;
}
