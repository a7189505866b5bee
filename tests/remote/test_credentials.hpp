// Test helper: the one set of keys the remote tests sign with (AWS's
// documentation example keys), as a kinlet::remote::StaticCredentialsProvider.
#pragma once

#include <memory>

#include "kinlet/remote/credentials.hpp"

namespace kinlet_test {

inline constexpr const char* kTestAccessKey = "AKIDEXAMPLE";
inline constexpr const char* kTestSecretKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

inline std::shared_ptr<kinlet::remote::CredentialsProvider> TestCredentials() {
  return std::make_shared<kinlet::remote::StaticCredentialsProvider>(
      kinlet::wire::Credentials{kTestAccessKey, kTestSecretKey, ""});
}

}  // namespace kinlet_test
