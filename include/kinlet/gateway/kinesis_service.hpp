// kinlet/gateway/kinesis_service.hpp: the Kinesis API (JSON 1.1 and CBOR 1.1)
// as a transport-neutral wire::HttpHandler over a kinlet Registry.
//
//   auto registry = std::make_shared<kinlet::gateway::WireRegistry>();
//   kinlet::gateway::KinesisService service(registry);
//   kinlet::wire::HttpResponse r = service.Handle(request);  // from any server thread
//
// The service speaks the envelope of AWS's awsJson1_1 protocol (POST, the
// X-Amz-Target header, JSON or CBOR bodies answered in the request's format,
// errors as {"__type", "message"}) and every Kinesis operation kinlet
// implements; SubscribeToShard answers with an `application/vnd.amazon.eventstream`
// StreamBody fed by a kinlet enhanced fan-out subscription. Streams created
// over the wire read trimmed data as Kinesis does (from the trim horizon);
// streams created in-process with kinlet's loud TrimmedReads::kReport are read
// the same way through the service: the wire never sends
// TrimmedDataAccessException.
//
// State the core does not keep (tags, enhanced monitoring, encryption, the
// CREATING/DELETING delays) lives in the service, per stream.
//
// Thread safety: Handle() and Stop() are thread-safe and may run concurrently.
// The data plane (PutRecord, PutRecords, GetRecords) takes no lock of the
// service's (only kinlet's own) when no create/delete delay is configured.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "kinlet/gateway/wire_registry.hpp"
#include "kinlet/stream_options.hpp"
#include "kinlet/wire/http.hpp"

namespace kinlet::gateway {

struct KinesisServiceOptions {
  // For ARNs: arn:aws:kinesis:{region}:{account}:stream/{name}. An empty
  // account id takes the registry's.
  std::string region = "us-east-1";
  std::string account_id;
  // Checks a request's credentials before its operation runs; a non-OK status
  // is the error response (its ErrorTypeOf as `__type`). Empty: the default,
  // RequireAuthentication (any signature accepted, none refused).
  std::function<absl::Status(const wire::HttpRequest&)> authenticate;
  // Options of the streams created by CreateStream (name, shard count and mode
  // come from the request). Their region and trimmed_reads are set by the
  // service (TrimmedReads::kContinueFromTrimHorizon), their
  // subscription_lifetime to `subscription_lifetime` and update_duration to
  // `update_delay`. See WireStreamDefaults.
  StreamOptions stream_defaults;
  // How long a stream stays CREATING after CreateStream and DELETING after
  // DeleteStream (0: ACTIVE / gone at once). Transitions happen lazily, at
  // the next call that looks. While CREATING or DELETING the data plane
  // answers ResourceNotFoundException and the control plane
  // ResourceInUseException, as AWS.
  absl::Duration create_delay = absl::ZeroDuration();
  absl::Duration delete_delay = absl::ZeroDuration();
  absl::Duration update_delay = absl::ZeroDuration();
  // How long a SubscribeToShard response lasts (AWS: 5 minutes). Streams
  // created in-process keep their own StreamOptions::subscription_lifetime
  // as well: the shorter ends it (noticed at the next event or heartbeat).
  absl::Duration subscription_lifetime = absl::Minutes(5);
  // Event-stream bytes a subscription buffers for a slow client before it
  // stops reading the shard (the StreamBody backpressure bound).
  size_t subscription_buffer_bytes = size_t{1} << 20;
};

// The StreamOptions of wire-created streams for a `--limits` value: "kinesis"
// (AWS's throughput limits and quotas) or "unlimited" (no throughput limits,
// no per-day reshard quotas, no consumer limit). InvalidArgumentException for
// another value.
absl::StatusOr<StreamOptions> WireStreamDefaults(std::string_view limits);

// The default authenticate hook, as AWS without credentials checking: a
// request with neither an `Authorization` header nor `X-Amz-Algorithm` query
// parameters is MissingAuthenticationTokenException "Missing Authentication
// Token"; one with both is InvalidSignatureException; any other passes.
absl::Status RequireAuthentication(const wire::HttpRequest& request);

class KinesisService {
 public:
  // `registry` is the authority on streams (streams created or deleted
  // in-process are seen at once). Its clock drives the delays.
  explicit KinesisService(std::shared_ptr<WireRegistry> registry,
                          KinesisServiceOptions options = {});
  // Stops (see Stop).
  ~KinesisService();
  KinesisService(const KinesisService&) = delete;
  KinesisService& operator=(const KinesisService&) = delete;

  // Answers one request: never fails (errors are error responses), never
  // blocks for long. Thread-safe; concurrent calls are independent. May move
  // the request's body out.
  wire::HttpResponse Handle(wire::HttpRequest& request);

  // This service as the handler a server takes; the service must outlive it.
  wire::HttpHandler AsHandler();

  // Ends every open SubscribeToShard body with a final event and the end of
  // the stream (the server still pulls their last bytes); later
  // SubscribeToShard calls get InternalFailure. Idempotent; thread-safe.
  void Stop();

  // Implementation (src/gateway/service_impl.hpp).
  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace kinlet::gateway
