// kinlet/remote/config.hpp: a remote stream's region, endpoint and profile,
// found as the AWS SDKs find them, and the shared configuration files
// (~/.aws/config, ~/.aws/credentials) they come from.
//
// Region: RemoteConfigOptions::region, then AWS_REGION, then
// AWS_DEFAULT_REGION, then the profile's `region` in the config file.
// Endpoint: RemoteConfigOptions::endpoint, then AWS_ENDPOINT_URL_KINESIS, then
// AWS_ENDPOINT_URL, then the profile's services section (`services = name`,
// `[services name]` with `kinesis =` and an indented `endpoint_url = ...`),
// then the profile's `endpoint_url`, else https://kinesis.{region}.amazonaws.com
// (amazonaws.com.cn for cn-* regions). AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true
// (or the profile's ignore_configured_endpoint_urls = true) skips the
// environment and file endpoints, as the SDKs do.
// Profile: RemoteConfigOptions::profile, then AWS_PROFILE, then "default".
// Files: AWS_CONFIG_FILE (default ~/.aws/config, sections `[default]` and
// `[profile name]`) and AWS_SHARED_CREDENTIALS_FILE (default
// ~/.aws/credentials, sections `[name]`); "~/" is $HOME. A missing file is an
// empty one.
//
// Thread safety: every function is thread-safe; they read the process
// environment (getenv), so the caller must not change it concurrently.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kinlet::remote {

// One parsed INI file of the AWS format: sections of `key = value`
// properties; a property with an empty value followed by indented
// `key = value` lines has sub-properties (stored as "parent.key"). Keys are
// lower-cased; values are trimmed; lines starting with '#' or ';' are
// comments, as is the rest of a value after whitespace and '#' or ';'.
struct IniFile {
  using Section = std::map<std::string, std::string, std::less<>>;
  std::map<std::string, Section, std::less<>> sections;  // by name as written, trimmed
};

// Parses `text` (the contents of `path`, named in error messages). Errors:
// InvalidArgumentException naming the file and line for a line that is not a
// section header, property, sub-property, comment or blank.
absl::StatusOr<IniFile> ParseIniFile(std::string_view text, std::string_view path);

// One profile as seen through both shared files.
struct AwsProfile {
  std::string name;
  std::string config_path;  // the files read (after AWS_* and ~ expansion)
  std::string credentials_path;
  bool in_config = false;        // the config file has the profile's section
  bool in_credentials = false;   // the credentials file has it
  IniFile::Section config;       // the config file's section
  IniFile::Section credentials;  // the credentials file's section
  IniFile::Section services;     // the `[services x]` section the profile names

  bool found() const { return in_config || in_credentials; }
  // A property of the profile: the credentials file's, else the config file's;
  // nullptr when neither has it. The pointer lives as long as this object.
  const std::string* Get(std::string_view key) const;
};

// The profile's name: `explicit_profile` if not empty, else AWS_PROFILE if set
// and not empty, else "default".
std::string ProfileName(std::string_view explicit_profile);

// Loads profile `name` from the shared files (AWS_CONFIG_FILE,
// AWS_SHARED_CREDENTIALS_FILE, ~/.aws/...). A profile in neither file is
// returned with found() false. Errors: InvalidArgumentException for a file
// that does not parse; InternalFailureException for a file that exists but
// cannot be read (the message names it and the reason).
absl::StatusOr<AwsProfile> LoadAwsProfile(std::string_view name);

struct RemoteConfigOptions {
  std::string region;    // e.g. "eu-west-1"; empty: from the environment/profile
  std::string endpoint;  // e.g. "http://127.0.0.1:4567"; empty: as above
  std::string profile;   // empty: AWS_PROFILE, else "default"
  // The service whose endpoint is resolved, as the SDKs name it: "kinesis" or
  // "dynamodb" (lower-case letters and digits). It replaces "kinesis" above:
  // AWS_ENDPOINT_URL_<SERVICE> (upper-cased), the services section's
  // `<service> =` and https://<service>.{region}.amazonaws.com.
  std::string service = "kinesis";
};

struct RemoteConfig {
  std::string region;
  std::string endpoint;  // scheme://host[:port][/path], no trailing '/'
  std::string profile;
  // Where each came from, for logs: "options", "AWS_REGION", "profile default", ...
  std::string region_source;
  std::string endpoint_source;
};

// Resolves region and endpoint as described at the top. Errors:
// InvalidArgumentException for a bad options.service, when no region is found ("No AWS region: ..."
// naming every place looked at), when an endpoint is not an http:// or
// https:// URL with a host (naming where it came from), when a profile named
// explicitly (options or AWS_PROFILE) is in neither file, or when a shared
// file does not parse; InternalFailureException when one cannot be read.
absl::StatusOr<RemoteConfig> ResolveRemoteConfig(const RemoteConfigOptions& options);

// The environment variable `name`, or "" when unset. Thread-safe as getenv.
std::string GetEnv(const char* name);

}  // namespace kinlet::remote
