// Gateway (the embeddable one-line server) and the kinlet-gateway program, over
// real sockets on 127.0.0.1, driven by the curl CLI.
#include "kinlet/gateway/gateway.hpp"

#include <dirent.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "gateway/process_helpers.hpp"
#include "kinlet/registry.hpp"

using kinlet::gateway::Gateway;
using kinlet::gateway::GatewayOptions;
using kinlet::gateway::testing::Process;
using kinlet::gateway::testing::ProcessResult;
using kinlet::gateway::testing::RunProcess;
using kinlet::gateway::testing::TempDir;

namespace {

constexpr const char* kCurl = "/usr/bin/curl";
// Well-formed SigV4 authorization: accepted (not verified) by the default gateway.
constexpr const char* kAnySignature =
    "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/kinesis/"
    "aws4_request, SignedHeaders=host;x-amz-date, Signature=00";
constexpr const char* kAnyDate = "X-Amz-Date: 20261130T000000Z";

int ThreadCount() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// POSTs a Kinesis call with curl; returns "<status>\n<body>".
ProcessResult Call(const std::string& endpoint, const std::string& operation,
                   const std::string& body, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {kCurl,
                                   "-sS",
                                   "-w",
                                   "\n%{http_code}",
                                   "-H",
                                   "Content-Type: application/x-amz-json-1.1",
                                   "-H",
                                   "X-Amz-Target: Kinesis_20131202." + operation,
                                   "--data-binary",
                                   body};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(endpoint + "/");
  return RunProcess(argv);
}

bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

}  // namespace

TEST_CASE("Gateway serves a registry's streams in-process and Stop leaves no thread", "[gateway]") {
  auto registry = std::make_shared<kinlet::gateway::WireRegistry>();
  // A first gateway started and stopped: threads a runtime creates once, on the
  // process's first thread creation (ThreadSanitizer's background thread), exist
  // before the count.
  REQUIRE(Gateway::Start(registry).ok());
  const int threads_before = ThreadCount();
  kinlet::StreamOptions options;
  options.name = "orders";
  options.shard_count = 2;
  REQUIRE(registry->CreateStream(options).ok());

  auto gateway = Gateway::Start(registry);
  REQUIRE(gateway.ok());
  REQUIRE((*gateway)->port() != 0);
  const std::string endpoint = (*gateway)->endpoint();
  CHECK(endpoint == "http://127.0.0.1:" + std::to_string((*gateway)->port()));

  // A put over the wire is in the C++ stream at once (no copy, no second process).
  ProcessResult put =
      Call(endpoint, "PutRecord", R"({"StreamName":"orders","Data":"aGVsbG8=","PartitionKey":"k"})",
           {"-H", kAnySignature, "-H", kAnyDate});
  REQUIRE(put.exit_code == 0);
  CHECK(put.out.substr(put.out.size() - 3) == "200");
  CHECK(put.out.find("\"SequenceNumber\"") != std::string::npos);
  auto stream = registry->GetStream("orders");
  REQUIRE(stream.ok());
  int found = 0;
  for (const auto& shard : (*stream)->OpenShards()) {
    auto it =
        (*stream)->GetShardIterator(shard->shard_id(), kinlet::IteratorPosition::TrimHorizon());
    REQUIRE(it.ok());
    auto page = (*stream)->GetRecords(*it);
    REQUIRE(page.ok());
    for (const auto& record : page->records) {
      CHECK(record.data == "hello");
      CHECK(record.partition_key == "k");
      ++found;
    }
  }
  CHECK(found == 1);

  // A stream created over the wire is in the registry.
  ProcessResult create = Call(endpoint, "CreateStream", R"({"StreamName":"wired","ShardCount":1})",
                              {"-H", kAnySignature, "-H", kAnyDate});
  CHECK(create.out.substr(create.out.size() - 3) == "200");
  CHECK(registry->GetStream("wired").ok());

  // As AWS: an unsigned request is refused.
  ProcessResult unsigned_call = Call(endpoint, "ListStreams", "{}");
  CHECK(unsigned_call.out.find("MissingAuthenticationTokenException") != std::string::npos);
  CHECK(unsigned_call.out.substr(unsigned_call.out.size() - 3) == "400");

  (*gateway)->Stop();
  (*gateway)->Stop();  // idempotent
  CHECK(ThreadCount() == threads_before);
  // The streams outlive the gateway.
  CHECK(registry->GetStream("orders").ok());
}

TEST_CASE("Gateway verifies SigV4 signatures when given credentials", "[gateway]") {
  auto registry = std::make_shared<kinlet::gateway::WireRegistry>();
  GatewayOptions options;
  options.signatures.verify_signatures = true;
  options.signatures.credentials["AKIDTEST"] = {"AKIDTEST", "secret-test", ""};
  auto gateway = Gateway::Start(registry, options);
  REQUIRE(gateway.ok());
  const std::string endpoint = (*gateway)->endpoint();
  // curl signs with the explicit scope (its own derivation is wrong for IP hosts).
  ProcessResult good =
      Call(endpoint, "ListStreams", "{}",
           {"--aws-sigv4", "aws:amz:us-east-1:kinesis", "--user", "AKIDTEST:secret-test"});
  CHECK(good.out.substr(good.out.size() - 3) == "200");
  CHECK(good.out.find("\"StreamNames\"") != std::string::npos);
  ProcessResult bad_secret =
      Call(endpoint, "ListStreams", "{}",
           {"--aws-sigv4", "aws:amz:us-east-1:kinesis", "--user", "AKIDTEST:wrong"});
  CHECK(bad_secret.out.find("InvalidSignatureException") != std::string::npos);
  ProcessResult unknown_key =
      Call(endpoint, "ListStreams", "{}",
           {"--aws-sigv4", "aws:amz:us-east-1:kinesis", "--user", "AKIDOTHER:secret-test"});
  CHECK(unknown_key.out.find("UnrecognizedClientException") != std::string::npos);
}

TEST_CASE("Gateway::Start reports a port in use", "[gateway]") {
  auto registry = std::make_shared<kinlet::gateway::WireRegistry>();
  auto first = Gateway::Start(registry);
  REQUIRE(first.ok());
  GatewayOptions options;
  options.http.port = (*first)->port();
  auto second = Gateway::Start(registry, options);
  CHECK_FALSE(second.ok());
}

TEST_CASE("kinlet-gateway documents its flags, serves and exits cleanly on SIGTERM",
          "[gateway][program]") {
  const std::string program =
      std::string(KINLET_BINARY_DIR) + "/tools/kinlet-gateway/kinlet-gateway";
  ProcessResult help = RunProcess({program, "--help"});
  REQUIRE(help.exit_code == 0);
  for (const char* flag :
       {"--bind", "--port", "--port-file", "--tls-cert", "--tls-key", "--region", "--account-id",
        "--credentials", "--create-stream", "--limits", "--create-stream-ms", "--delete-stream-ms",
        "--update-stream-ms", "--shard-capacity-records", "--shard-capacity-bytes", "--threads",
        "--max-body-bytes", "--log-level", "--help"}) {
    CHECK(help.out.find(flag) != std::string::npos);
  }
  ProcessResult bad = RunProcess({program, "--limits", "infinite"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--limits") != std::string::npos);

  TempDir dir;
  const std::string port_file = dir.path() + "/port";
  Process gateway({program, "--port", "0", "--port-file", port_file, "--create-stream",
                   "clickstream-data:2", "--region", "eu-west-1", "--account-id", "123456789012",
                   "--log-level", "debug"});
  REQUIRE(Eventually([&] { return !kinlet::gateway::testing::ReadWholeFile(port_file).empty(); }));
  const std::string endpoint =
      "http://127.0.0.1:" +
      std::to_string(std::stoi(kinlet::gateway::testing::ReadWholeFile(port_file)));
  ProcessResult describe =
      Call(endpoint, "DescribeStreamSummary", R"({"StreamName":"clickstream-data"})",
           {"-H", kAnySignature, "-H", kAnyDate});
  CHECK(describe.out.find("arn:aws:kinesis:eu-west-1:123456789012:stream/clickstream-data") !=
        std::string::npos);
  CHECK(describe.out.find("\"OpenShardCount\":2") != std::string::npos);
  REQUIRE(::kill(gateway.pid(), SIGTERM) == 0);
  ProcessResult done = gateway.Wait(std::chrono::seconds(20));
  CHECK(done.exit_code == 0);
  // --log-level debug: one line per request, naming the operation.
  CHECK(done.err.find("DescribeStreamSummary 200") != std::string::npos);
}

TEST_CASE("kinlet-gateway --shard-capacity-records bounds a shard, refusing as a throttle",
          "[gateway][program]") {
  const std::string program =
      std::string(KINLET_BINARY_DIR) + "/tools/kinlet-gateway/kinlet-gateway";
  TempDir dir;
  const std::string port_file = dir.path() + "/port";
  Process gateway({program, "--port", "0", "--port-file", port_file, "--create-stream", "small:1",
                   "--limits", "unlimited", "--shard-capacity-records", "16"});
  REQUIRE(Eventually([&] { return !kinlet::gateway::testing::ReadWholeFile(port_file).empty(); }));
  const std::string endpoint =
      "http://127.0.0.1:" +
      std::to_string(std::stoi(kinlet::gateway::testing::ReadWholeFile(port_file)));
  // One PutRecords of 16 fills the shard; the next put is refused, retryably.
  std::string records;
  for (int i = 0; i < 16; ++i) {
    records += std::string(i ? "," : "") + R"({"Data":"eA==","PartitionKey":"k)" +
               std::to_string(i) + R"("})";
  }
  ProcessResult fill =
      Call(endpoint, "PutRecords", R"({"StreamName":"small","Records":[)" + records + "]}",
           {"-H", kAnySignature, "-H", kAnyDate});
  CHECK(fill.out.find("\"FailedRecordCount\":0") != std::string::npos);
  ProcessResult full =
      Call(endpoint, "PutRecord", R"({"StreamName":"small","Data":"eA==","PartitionKey":"k"})",
           {"-H", kAnySignature, "-H", kAnyDate});
  CHECK(full.out.find("ProvisionedThroughputExceededException") != std::string::npos);
  CHECK(full.out.substr(full.out.size() - 3) == "400");
  REQUIRE(::kill(gateway.pid(), SIGTERM) == 0);
  CHECK(gateway.Wait(std::chrono::seconds(20)).exit_code == 0);
}
