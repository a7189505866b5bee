// kinlet-gateway: a local Amazon Kinesis for any language. Serves kinlet streams
// over Kinesis's wire protocol (JSON 1.1 and CBOR; HTTP/1.1, h2c and, with a
// certificate, TLS with h2/http1.1 by ALPN) until SIGINT or SIGTERM.
//
//   kinlet-gateway --port 4567 --create-stream clickstream-data:2
//   aws kinesis list-streams --endpoint-url http://127.0.0.1:4567
//
// Run with --help for every flag.
#include <signal.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "kinlet/gateway/gateway.hpp"

namespace {

constexpr std::string_view kUsage =
    R"(kinlet-gateway: kinlet streams served as Amazon Kinesis (JSON 1.1 and CBOR,
HTTP/1.1, HTTP/2 cleartext and TLS) for the AWS SDKs, the AWS CLI and any language.

usage: kinlet-gateway [flags]

  --bind ADDRESS             address to listen on (default 127.0.0.1; 0.0.0.0 or :: to accept
                             connections from other hosts)
  --port N                   port (default 4567; 0 picks a free port, see --port-file)
  --port-file PATH           write the port to PATH once listening (for scripts and tests)
  --tls-cert PEM             certificate (chain) file: serve TLS (ALPN h2 and http/1.1)
  --tls-key PEM              private key of --tls-cert
  --region REGION            region in ARNs and the signing scope (default us-east-1)
  --account-id ID            12-digit account id in ARNs (default 000000000000)
  --credentials KEY:SECRET[:SESSION_TOKEN]
                             verify SigV4 signatures against these credentials (repeatable).
                             Without it, as AWS, unsigned requests are refused
                             (MissingAuthenticationTokenException) and any signature accepted
  --create-stream NAME:SHARDS
                             create a stream at start (repeatable); SHARDS may be on-demand
  --limits kinesis|unlimited Kinesis's per-shard throughput limits and control-plane quotas
                             for streams (default kinesis), or none
  --create-stream-ms N       time a new stream stays CREATING (default 0: ACTIVE at once)
  --delete-stream-ms N       time a deleted stream stays DELETING (default 0)
  --update-stream-ms N       time a resharded or updated stream stays UPDATING (default 0)
  --shard-capacity-records N records one shard holds in memory (default 65536, rounded up to a
                             power of two); a put into a shard full of unexpired records is
                             refused with ProvisionedThroughputExceededException (retryable)
  --shard-capacity-bytes N   bytes of keys and data one shard holds (default 64 MiB)
  --threads N                event-loop threads (default: one per core)
  --max-body-bytes N         largest request body (default 16777216, for 10 MiB records in
                             base64); larger requests get 413
  --log-level info|debug     debug: one line per request on stderr (default info)
  --help                     this text

Stops cleanly on SIGINT or SIGTERM: requests in flight are answered, SubscribeToShard
responses end with a final event, exit status 0.
)";

struct Flags {
  kinlet::gateway::GatewayOptions options;
  long long shard_capacity_records = 0;  // 0: the default
  long long shard_capacity_bytes = 0;
  std::string port_file;
  std::string limits = "kinesis";
  std::vector<std::pair<std::string, std::string>> create_streams;  // name, shards
  bool debug = false;
};

bool ParseInt(std::string_view text, long long min, long long max, long long* out) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) return false;
  *out = v;
  return true;
}

// Parses argv into *flags. Returns false (after printing why) on a bad flag;
// prints the usage and exits 0 for --help.
bool ParseFlags(int argc, char** argv, Flags* flags) {
  auto& o = flags->options;
  o.http.port = 4567;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (arg.substr(0, 2) != "--") {
      std::cerr << "kinlet-gateway: unexpected argument '" << arg << "' (see --help)\n";
      return false;
    }
    std::string name(arg.substr(2));
    std::string value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      std::cerr << "kinlet-gateway: --" << name << " needs a value (see --help)\n";
      return false;
    }
    long long n = 0;
    auto bad = [&](std::string_view why) {
      std::cerr << "kinlet-gateway: --" << name << " " << value << ": " << why << "\n";
      return false;
    };
    if (name == "bind") {
      o.http.bind_address = value;
    } else if (name == "port") {
      if (!ParseInt(value, 0, 65535, &n)) return bad("not a port (0..65535)");
      o.http.port = static_cast<uint16_t>(n);
    } else if (name == "port-file") {
      flags->port_file = value;
    } else if (name == "tls-cert") {
      o.http.tls_certificate_file = value;
    } else if (name == "tls-key") {
      o.http.tls_private_key_file = value;
    } else if (name == "region") {
      o.service.region = value;
    } else if (name == "account-id") {
      if (value.size() != 12 || value.find_first_not_of("0123456789") != std::string::npos) {
        return bad("an account id is 12 digits");
      }
      o.service.account_id = value;
    } else if (name == "credentials") {
      std::vector<std::string> parts = absl::StrSplit(value, absl::MaxSplits(':', 2));
      if (parts.size() < 2 || parts[0].empty() || parts[1].empty()) {
        return bad("expected KEY:SECRET or KEY:SECRET:SESSION_TOKEN");
      }
      kinlet::wire::Credentials c;
      c.access_key_id = parts[0];
      c.secret_access_key = parts[1];
      if (parts.size() == 3) c.session_token = parts[2];
      o.signatures.verify_signatures = true;
      o.signatures.credentials[c.access_key_id] = c;
    } else if (name == "create-stream") {
      std::vector<std::string> parts = absl::StrSplit(value, absl::MaxSplits(':', 1));
      if (parts.size() != 2 || parts[0].empty()) return bad("expected NAME:SHARDS");
      if (parts[1] != "on-demand" && !ParseInt(parts[1], 1, 100000, &n)) {
        return bad("SHARDS is a count (1..100000) or on-demand");
      }
      flags->create_streams.emplace_back(parts[0], parts[1]);
    } else if (name == "limits") {
      if (value != "kinesis" && value != "unlimited") return bad("expected kinesis or unlimited");
      flags->limits = value;
    } else if (name == "create-stream-ms" || name == "delete-stream-ms" ||
               name == "update-stream-ms") {
      if (!ParseInt(value, 0, 86'400'000, &n)) return bad("milliseconds (0..86400000)");
      const absl::Duration d = absl::Milliseconds(n);
      if (name[0] == 'c') o.service.create_delay = d;
      if (name[0] == 'd') o.service.delete_delay = d;
      if (name[0] == 'u') o.service.update_delay = d;
    } else if (name == "shard-capacity-records") {
      if (!ParseInt(value, 16, 1LL << 30, &n)) return bad("a record count (16..2^30)");
      flags->shard_capacity_records = n;
    } else if (name == "shard-capacity-bytes") {
      if (!ParseInt(value, 1LL << 16, 1LL << 40, &n)) return bad("bytes (64 KiB..1 TiB)");
      flags->shard_capacity_bytes = n;
    } else if (name == "threads") {
      if (!ParseInt(value, 1, 1024, &n)) return bad("a thread count (1..1024)");
      o.http.threads = static_cast<int>(n);
    } else if (name == "max-body-bytes") {
      if (!ParseInt(value, 1024, (1LL << 40), &n)) return bad("bytes (>= 1024)");
      o.http.max_request_body_bytes = static_cast<size_t>(n);
    } else if (name == "log-level") {
      if (value != "info" && value != "debug") return bad("expected info or debug");
      flags->debug = value == "debug";
    } else {
      std::cerr << "kinlet-gateway: unknown flag --" << name << " (see --help)\n";
      return false;
    }
  }
  if (o.http.tls_certificate_file.empty() != o.http.tls_private_key_file.empty()) {
    std::cerr << "kinlet-gateway: --tls-cert and --tls-key go together\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  auto& o = flags.options;

  absl::StatusOr<kinlet::StreamOptions> defaults =
      kinlet::gateway::WireStreamDefaults(flags.limits);
  if (!defaults.ok()) {
    std::cerr << "kinlet-gateway: " << defaults.status().message() << "\n";
    return 2;
  }
  o.service.stream_defaults = *defaults;
  if (flags.shard_capacity_records > 0) {
    o.service.stream_defaults.shard_capacity_records =
        static_cast<size_t>(flags.shard_capacity_records);
  }
  if (flags.shard_capacity_bytes > 0) {
    o.service.stream_defaults.shard_capacity_bytes =
        static_cast<size_t>(flags.shard_capacity_bytes);
  }
  if (o.service.account_id.empty()) o.service.account_id = "000000000000";
  if (flags.debug) {
    o.request_log = [](const kinlet::gateway::GatewayRequestLog& r) {
      // One line per request; one fprintf keeps lines whole across threads.
      std::fprintf(
          stderr, "%s %.*s HTTP/%s %.*s %d %zu bytes%s %.3f ms\n",
          absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()).c_str(),
          static_cast<int>(r.remote_address.size()), r.remote_address.data(),
          r.http_version == 20 ? "2" : (r.http_version == 10 ? "1.0" : "1.1"),
          static_cast<int>(r.operation.size()), r.operation.data(), r.status, r.response_bytes,
          r.streamed ? " (event stream)" : "",
          std::chrono::duration<double, std::milli>(r.duration).count());
    };
  }

  // SIGINT and SIGTERM are taken by sigwait below, never by a server thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto registry = std::make_shared<kinlet::gateway::WireRegistry>(
      kinlet::gateway::WireRegistry::Clock::Default(), o.service.account_id);
  for (const auto& [name, shards] : flags.create_streams) {
    kinlet::StreamOptions stream = o.service.stream_defaults;
    stream.name = name;
    stream.region = o.service.region;
    stream.trimmed_reads = kinlet::TrimmedReads::kContinueFromTrimHorizon;
    if (shards == "on-demand") {
      stream.stream_mode = kinlet::StreamMode::kOnDemand;
      stream.shard_count = 4;  // AWS's initial on-demand shard count
    } else {
      stream.shard_count = std::stoi(shards);
    }
    if (auto created = registry->CreateStream(stream); !created.ok()) {
      std::cerr << "kinlet-gateway: --create-stream " << name << ":" << shards << ": "
                << created.status().message() << "\n";
      return 1;
    }
  }

  absl::StatusOr<std::unique_ptr<kinlet::gateway::Gateway>> gateway =
      kinlet::gateway::Gateway::Start(registry, o);
  if (!gateway.ok()) {
    std::cerr << "kinlet-gateway: " << gateway.status().message() << "\n";
    return 1;
  }
  std::cerr << "kinlet-gateway: listening on " << (*gateway)->endpoint() << " (region "
            << o.service.region << ", account " << o.service.account_id << ", limits "
            << flags.limits << ", signatures "
            << (o.signatures.verify_signatures ? "verified" : "required, not verified") << ")\n";
  if (!flags.port_file.empty()) {
    // Written whole under a temporary name, then renamed: a reader never sees half a port.
    const std::string tmp = flags.port_file + ".tmp";
    std::ofstream(tmp) << (*gateway)->port() << "\n";
    if (std::rename(tmp.c_str(), flags.port_file.c_str()) != 0) {
      std::cerr << "kinlet-gateway: cannot write --port-file " << flags.port_file << ": "
                << std::strerror(errno) << "\n";
      return 1;
    }
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::cerr << "kinlet-gateway: " << (signal_number == SIGINT ? "SIGINT" : "SIGTERM")
            << ", stopping\n";
  (*gateway)->Stop();
  return 0;
}
