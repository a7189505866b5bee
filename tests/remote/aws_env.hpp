// Test helper: a clean AWS environment for one test. Saves HOME and every
// AWS_* variable, unsets the AWS_* ones, points HOME at a fresh temporary
// directory and disables the instance metadata service (so that nothing can
// fall through to 169.254.169.254); the destructor restores the saved
// environment and removes the directory. Not thread-safe (setenv): construct
// it before starting threads.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace kinlet_test {

class ScopedAwsEnv {
 public:
  ScopedAwsEnv() {
    static int n = 0;
    home_ = std::filesystem::temp_directory_path() /
            ("kinlet-awsenv-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::create_directories(home_ / ".aws");
    Save("HOME");
    std::vector<std::string> names;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry(*e);
      if (entry.rfind("AWS_", 0) == 0) names.push_back(entry.substr(0, entry.find('=')));
    }
    for (const std::string& name : names) {
      Save(name);
      ::unsetenv(name.c_str());
    }
    Set("HOME", home_.string());
    Set("AWS_EC2_METADATA_DISABLED", "true");
  }
  ~ScopedAwsEnv() {
    std::vector<std::string> names;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry(*e);
      if (entry.rfind("AWS_", 0) == 0) names.push_back(entry.substr(0, entry.find('=')));
    }
    for (const std::string& name : names) ::unsetenv(name.c_str());
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
    std::error_code ignored;
    std::filesystem::remove_all(home_, ignored);
  }
  ScopedAwsEnv(const ScopedAwsEnv&) = delete;
  ScopedAwsEnv& operator=(const ScopedAwsEnv&) = delete;

  void Set(const std::string& name, const std::string& value) {
    Save(name);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  void Unset(const std::string& name) {
    Save(name);
    ::unsetenv(name.c_str());
  }
  // Writes `text` to `relative` under the temporary HOME; returns its path.
  std::string Write(const std::string& relative, const std::string& text) const {
    const std::filesystem::path path = home_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    return path.string();
  }
  const std::filesystem::path& home() const { return home_; }

 private:
  void Save(const std::string& name) {
    if (saved_.contains(name)) return;
    const char* value = std::getenv(name.c_str());
    saved_[name] = value ? std::optional<std::string>(value) : std::nullopt;
  }
  std::filesystem::path home_;
  std::map<std::string, std::optional<std::string>> saved_;
};

}  // namespace kinlet_test
