// Consumer check of the crypto component (find_package(kinlet COMPONENTS crypto) or
// kinlet::crypto from add_subdirectory): exits 0 iff a data key from a fresh local key file
// seals and opens one record.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <kinlet/crypto/aes_gcm.hpp>
#include <kinlet/crypto/local_key_provider.hpp>
#include <string>

namespace {
int Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "%s failed: %s\n", what, status.ToString().c_str());
  return 1;
}
int Check(const std::string& dir) {
  auto provider = kinlet::crypto::LocalKeyProvider::Open(dir + "/keys");
  if (!provider.ok()) return Fail("LocalKeyProvider::Open", provider.status());
  auto key_id = (*provider)->CreateKey("install-check");
  if (!key_id.ok()) return Fail("CreateKey", key_id.status());
  auto data_key = (*provider)->GenerateDataKey("alias/install-check");
  if (!data_key.ok()) return Fail("GenerateDataKey", data_key.status());
  auto unwrapped = (*provider)->UnwrapDataKey(*key_id, data_key->key_version, data_key->wrapped);
  if (!unwrapped.ok()) return Fail("UnwrapDataKey", unwrapped.status());
  kinlet::crypto::Aes256GcmCipherFactory factory;
  auto cipher = factory.Make(*unwrapped);
  if (!cipher.ok()) return Fail("Make", cipher.status());
  const std::string record = "partition-key:payload";
  std::string sealed(record.size() + (*cipher)->Overhead(), '\0');
  if (auto s = (*cipher)->Seal(1, "frame", record, sealed.data()); !s.ok()) return Fail("Seal", s);
  std::string opened(record.size(), '\0');
  if (auto s = (*cipher)->Open(1, "frame", sealed, opened.data()); !s.ok()) return Fail("Open", s);
  if (opened != record || sealed.find(record) != std::string::npos) {
    std::fprintf(stderr, "round trip mismatch\n");
    return 1;
  }
  return 0;
}
}  // namespace

int main() {
  std::string dir =
      (std::filesystem::temp_directory_path() / "kinlet-crypto-check-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const int rc = Check(dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (rc == 0) std::printf("crypto install-check: ok\n");
  return rc;
}
