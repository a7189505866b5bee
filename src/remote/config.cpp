// The AWS shared configuration files and the region/endpoint resolution
// (kinlet/remote/config.hpp).
#include "kinlet/remote/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "kinlet/detail/strings.hpp"
#include "kinlet/errors.hpp"

namespace kinlet::remote {
namespace {

std::string Trim(std::string_view s) {
  return std::string(absl::StripAsciiWhitespace(detail::ToAbsl(s)));
}

// The value without a trailing comment (whitespace then '#' or ';').
std::string StripComment(std::string_view value) {
  for (size_t i = 1; i < value.size(); ++i) {
    if ((value[i] == '#' || value[i] == ';') &&
        absl::ascii_isspace(static_cast<unsigned char>(value[i - 1]))) {
      value = value.substr(0, i);
      break;
    }
  }
  return Trim(value);
}

std::string ExpandHome(std::string path) {
  if (path == "~" || absl::StartsWith(path, "~/")) {
    const std::string home = GetEnv("HOME");
    path = home + path.substr(1);
  }
  return path;
}

// Reads `path`: false in *exists when it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path, bool* exists) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    *exists = error != ENOENT && error != ENOTDIR;
    if (!*exists) return std::string();
    return InternalFailure(
        absl::StrCat("Cannot read the AWS shared file ", path, ": ", std::strerror(error)));
  }
  *exists = true;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return InternalFailure(absl::StrCat("Cannot read the AWS shared file ", path));
  }
  return text.str();
}

absl::StatusOr<IniFile> LoadIni(const std::string& path, bool* exists) {
  absl::StatusOr<std::string> text = ReadFile(path, exists);
  if (!text.ok()) return text.status();
  return ParseIniFile(*text, path);
}

bool IsTrue(std::string_view value) {
  return absl::EqualsIgnoreCase(detail::ToAbsl(Trim(value)), "true");
}

// Checks `url` is http(s)://host[...]; returns it without a trailing '/'.
absl::StatusOr<std::string> CheckEndpoint(std::string url, std::string_view source) {
  url = Trim(url);
  std::string_view rest = url;
  if (absl::StartsWith(url, "https://")) {
    rest.remove_prefix(8);
  } else if (absl::StartsWith(url, "http://")) {
    rest.remove_prefix(7);
  } else {
    return InvalidArgument(absl::StrCat("The endpoint '", url, "' from ", detail::ToAbsl(source),
                                        " is not an http:// or https:// URL"));
  }
  if (rest.empty() || rest.front() == '/' || rest.front() == ':' ||
      rest.find_first_of(" \t\r\n?#") != std::string_view::npos) {
    return InvalidArgument(absl::StrCat("The endpoint '", url, "' from ", detail::ToAbsl(source),
                                        " has no valid host"));
  }
  while (url.size() > 1 && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

std::string GetEnv(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

absl::StatusOr<IniFile> ParseIniFile(std::string_view text, std::string_view path) {
  IniFile file;
  IniFile::Section* section = nullptr;
  std::string parent;  // the property whose sub-properties follow; empty: none
  int line_number = 0;
  for (absl::string_view raw : absl::StrSplit(detail::ToAbsl(text), '\n')) {
    ++line_number;
    std::string_view line(raw.data(), raw.size());
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string trimmed = Trim(line);
    if (trimmed.empty() || trimmed[0] == '#' || trimmed[0] == ';') continue;
    auto error = [&](std::string_view why) {
      return InvalidArgument(absl::StrCat("AWS shared file ", detail::ToAbsl(path), " line ",
                                          line_number, ": ", detail::ToAbsl(why)));
    };
    const bool indented = line[0] == ' ' || line[0] == '\t';
    if (!indented && trimmed[0] == '[') {
      const size_t close = trimmed.find(']');
      if (close == std::string::npos) return error("a section header without ']'");
      const std::string after = StripComment(" " + trimmed.substr(close + 1));
      if (!after.empty()) return error("text after a section header");
      const std::string name = Trim(std::string_view(trimmed).substr(1, close - 1));
      if (name.empty()) return error("an empty section name");
      section = &file.sections[name];
      parent.clear();
      continue;
    }
    const size_t eq = trimmed.find('=');
    if (eq == std::string::npos) return error("expected 'key = value' or '[section]'");
    std::string key = absl::AsciiStrToLower(Trim(std::string_view(trimmed).substr(0, eq)));
    if (key.empty()) return error("a property without a name");
    std::string value = StripComment(std::string_view(trimmed).substr(eq + 1));
    if (section == nullptr) return error("a property outside any section");
    if (indented && !parent.empty()) {
      (*section)[parent + "." + key] = std::move(value);
      continue;
    }
    if (indented) return error("an indented property without a parent property");
    parent = value.empty() ? key : std::string();
    (*section)[std::move(key)] = std::move(value);
  }
  return file;
}

const std::string* AwsProfile::Get(std::string_view key) const {
  if (auto it = credentials.find(key); it != credentials.end()) return &it->second;
  if (auto it = config.find(key); it != config.end()) return &it->second;
  return nullptr;
}

std::string ProfileName(std::string_view explicit_profile) {
  if (!explicit_profile.empty()) return std::string(explicit_profile);
  std::string env = GetEnv("AWS_PROFILE");
  return env.empty() ? std::string("default") : env;
}

absl::StatusOr<AwsProfile> LoadAwsProfile(std::string_view name) {
  AwsProfile profile;
  profile.name = std::string(name);
  profile.config_path = GetEnv("AWS_CONFIG_FILE");
  if (profile.config_path.empty()) profile.config_path = "~/.aws/config";
  profile.config_path = ExpandHome(profile.config_path);
  profile.credentials_path = GetEnv("AWS_SHARED_CREDENTIALS_FILE");
  if (profile.credentials_path.empty()) profile.credentials_path = "~/.aws/credentials";
  profile.credentials_path = ExpandHome(profile.credentials_path);

  bool exists = false;
  absl::StatusOr<IniFile> config = LoadIni(profile.config_path, &exists);
  if (!config.ok()) return config.status();
  // The config file names profiles "[profile x]", the default one "[default]"
  // (a "[profile default]" is accepted too and wins, as in the SDKs).
  auto find = [&](const std::string& section) -> const IniFile::Section* {
    auto it = config->sections.find(section);
    return it == config->sections.end() ? nullptr : &it->second;
  };
  const IniFile::Section* section = find("profile " + profile.name);
  if (section == nullptr && profile.name == "default") section = find("default");
  if (section != nullptr) {
    profile.in_config = true;
    profile.config = *section;
    if (auto it = section->find("services"); it != section->end() && !it->second.empty()) {
      if (const IniFile::Section* services = find("services " + it->second)) {
        profile.services = *services;
      }
    }
  }
  absl::StatusOr<IniFile> credentials = LoadIni(profile.credentials_path, &exists);
  if (!credentials.ok()) return credentials.status();
  if (auto it = credentials->sections.find(profile.name); it != credentials->sections.end()) {
    profile.in_credentials = true;
    profile.credentials = it->second;
  }
  return profile;
}

absl::StatusOr<RemoteConfig> ResolveRemoteConfig(const RemoteConfigOptions& options) {
  const std::string& service_id = options.service;
  if (service_id.empty() || !std::all_of(service_id.begin(), service_id.end(), [](char c) {
        return absl::ascii_islower(static_cast<unsigned char>(c)) ||
               absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    return InvalidArgument(absl::StrCat("RemoteConfigOptions::service '", service_id,
                                        "' is not a service id (lower-case letters and digits)"));
  }
  const std::string service_env = "AWS_ENDPOINT_URL_" + absl::AsciiStrToUpper(service_id);
  RemoteConfig config;
  config.profile = ProfileName(options.profile);
  const bool profile_explicit = !options.profile.empty() || !GetEnv("AWS_PROFILE").empty();
  absl::StatusOr<AwsProfile> profile = LoadAwsProfile(config.profile);
  if (!profile.ok()) return profile.status();
  if (profile_explicit && !profile->found()) {
    return InvalidArgument(absl::StrCat("The AWS profile '", config.profile, "' (from ",
                                        options.profile.empty() ? "AWS_PROFILE" : "options",
                                        ") is in neither ", profile->config_path, " nor ",
                                        profile->credentials_path));
  }
  const std::string profile_source = "profile " + config.profile + " in " + profile->config_path;

  // Region.
  if (!options.region.empty()) {
    config.region = options.region;
    config.region_source = "options";
  } else if (std::string env = GetEnv("AWS_REGION"); !env.empty()) {
    config.region = env;
    config.region_source = "AWS_REGION";
  } else if (std::string env_default = GetEnv("AWS_DEFAULT_REGION"); !env_default.empty()) {
    config.region = env_default;
    config.region_source = "AWS_DEFAULT_REGION";
  } else if (auto it = profile->config.find("region");
             it != profile->config.end() && !it->second.empty()) {
    config.region = it->second;
    config.region_source = profile_source;
  } else {
    return InvalidArgument(absl::StrCat(
        "No AWS region: set RemoteConfigOptions::region, AWS_REGION or AWS_DEFAULT_REGION, or "
        "`region` in the profile '",
        config.profile, "' of ", profile->config_path));
  }
  for (char c : config.region) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return InvalidArgument(absl::StrCat("The AWS region '", config.region, "' from ",
                                          config.region_source,
                                          " is not a region name (letters, digits and '-')"));
    }
  }

  // Endpoint.
  std::string endpoint, source;
  const bool ignore_configured =
      IsTrue(GetEnv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) ||
      (profile->config.contains("ignore_configured_endpoint_urls") &&
       IsTrue(profile->config.find("ignore_configured_endpoint_urls")->second));
  if (!options.endpoint.empty()) {
    endpoint = options.endpoint;
    source = "options";
  } else if (!ignore_configured) {
    auto service = profile->services.find(service_id + ".endpoint_url");
    auto global = profile->config.find("endpoint_url");
    if (std::string env = GetEnv(service_env.c_str()); !env.empty()) {
      endpoint = env;
      source = service_env;
    } else if (std::string env_all = GetEnv("AWS_ENDPOINT_URL"); !env_all.empty()) {
      endpoint = env_all;
      source = "AWS_ENDPOINT_URL";
    } else if (service != profile->services.end() && !service->second.empty()) {
      endpoint = service->second;
      source = absl::StrCat("the services section of ", profile_source);
    } else if (global != profile->config.end() && !global->second.empty()) {
      endpoint = global->second;
      source = profile_source;
    }
  }
  if (endpoint.empty()) {
    const bool china = absl::StartsWith(config.region, "cn-");
    endpoint = absl::StrCat("https://", service_id, ".", config.region,
                            china ? ".amazonaws.com.cn" : ".amazonaws.com");
    source = "the region";
  }
  absl::StatusOr<std::string> checked = CheckEndpoint(endpoint, source);
  if (!checked.ok()) return checked.status();
  config.endpoint = *std::move(checked);
  config.endpoint_source = std::move(source);
  return config;
}

}  // namespace kinlet::remote
