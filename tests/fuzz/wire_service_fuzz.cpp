// libFuzzer target: request bodies from the network into the Kinesis service
// (kinlet::gateway::KinesisService), past the document decoders into every
// operation's member reading and its calls on a kinlet stream.
//
// Input: byte 0 picks the operation (X-Amz-Target), byte 1 bit 0 the format
// (JSON or CBOR); the rest is the body. A fresh registry with one small stream
// per input. Checked: no crash, hang or sanitizer report; every response is a
// status the protocol uses, in the request's format, and an error response
// carries a `__type`.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kinlet/gateway/kinesis_service.hpp"
#include "kinlet/wire/document.hpp"

namespace {

constexpr std::string_view kOperations[] = {
    "CreateStream",
    "DeleteStream",
    "DescribeStream",
    "DescribeStreamSummary",
    "ListStreams",
    "ListShards",
    "PutRecord",
    "PutRecords",
    "GetShardIterator",
    "GetRecords",
    "SplitShard",
    "MergeShards",
    "UpdateShardCount",
    "UpdateStreamMode",
    "IncreaseStreamRetentionPeriod",
    "DecreaseStreamRetentionPeriod",
    "RegisterStreamConsumer",
    "DeregisterStreamConsumer",
    "DescribeStreamConsumer",
    "ListStreamConsumers",
    "AddTagsToStream",
    "RemoveTagsFromStream",
    "ListTagsForStream",
    "DescribeLimits",
    "EnableEnhancedMonitoring",
    "DisableEnhancedMonitoring",
    "StartStreamEncryption",
    "StopStreamEncryption",
    "SubscribeToShard",
    "NoSuchOperation",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string_view op = kOperations[data[0] % std::size(kOperations)];
  const bool cbor = (data[1] & 1) != 0;
  const kinlet::wire::Format format =
      cbor ? kinlet::wire::Format::kCbor : kinlet::wire::Format::kJson;

  auto registry = std::make_shared<kinlet::gateway::WireRegistry>();
  kinlet::StreamOptions options = kinlet::gateway::WireStreamDefaults("unlimited").value();
  options.name = "s";
  options.shard_count = 2;
  options.shard_capacity_records = 64;
  options.shard_capacity_bytes = 64 << 10;
  options.max_record_size_bytes = 1 << 10;
  if (!registry->CreateStream(options).ok()) __builtin_trap();
  kinlet::gateway::KinesisServiceOptions service_options;
  service_options.stream_defaults = options;
  kinlet::gateway::KinesisService service(registry, service_options);

  kinlet::wire::HttpRequest request;
  request.method = "POST";
  request.target = "/";
  request.headers = {{"content-type", std::string(kinlet::wire::ContentType(format))},
                     {"x-amz-target", "Kinesis_20131202." + std::string(op)},
                     {"x-amz-date", "20261130T000000Z"},
                     {"authorization",
                      "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/kinesis/aws4_request, "
                      "SignedHeaders=host;x-amz-date, Signature=00"}};
  request.body.assign(reinterpret_cast<const char*>(data + 2), size - 2);
  kinlet::wire::HttpResponse response = service.Handle(request);

  if (response.status != 200 && response.status != 400 && response.status != 500) __builtin_trap();
  if (response.stream != nullptr) {
    if (response.status != 200) __builtin_trap();
    response.stream->Cancel(false);
  } else if (response.status != 200 || !response.body.empty()) {
    auto parsed = kinlet::wire::Parse(format, response.body);
    if (!parsed.ok()) __builtin_trap();  // the service always answers a document
    if (response.status != 200 && parsed->Find("__type") == nullptr) __builtin_trap();
  }
  service.Stop();
  return 0;
}
