// Encryption at rest: AES-256-GCM Seal and Open per record (kinlet::crypto), against the
// same work on a fresh EVP_CIPHER_CTX per call (what a cipher without a context pool pays),
// one thread and readers sharing one cipher.
#include <benchmark/benchmark.h>

#include <string>

#include "kinlet/crypto/aes_gcm.hpp"

namespace {

const std::string kKey(32, '\x42');
const std::string kAad(24, 'h');  // a frame header's worth of aad

const kinlet::crypto::Aes256GcmCipher& SharedCipher() {
  static const auto cipher = std::move(*kinlet::crypto::Aes256GcmCipher::Create(kKey));
  return *cipher;
}

void BM_Seal(benchmark::State& state) {
  const auto& cipher = SharedCipher();
  const std::string plaintext(static_cast<size_t>(state.range(0)), 'p');
  std::string sealed(plaintext.size() + cipher.Overhead(), '\0');
  uint64_t nonce = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cipher.Seal(++nonce, kAad, plaintext, sealed.data()));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.SetItemsProcessed(state.iterations());
}

void BM_Open(benchmark::State& state) {
  const auto& cipher = SharedCipher();
  const std::string plaintext(static_cast<size_t>(state.range(0)), 'p');
  std::string sealed(plaintext.size() + cipher.Overhead(), '\0');
  (void)cipher.Seal(7, kAad, plaintext, sealed.data());
  std::string out(plaintext.size(), '\0');
  for (auto _ : state) {
    benchmark::DoNotOptimize(cipher.Open(7, kAad, sealed, out.data()));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.SetItemsProcessed(state.iterations());
}

// Baseline: a new context (key schedule included) for every record.
void BM_SealFreshContext(benchmark::State& state) {
  const std::string plaintext(static_cast<size_t>(state.range(0)), 'p');
  std::string sealed(plaintext.size() + 16, '\0');
  uint64_t nonce = 0;
  for (auto _ : state) {
    EVP_CIPHER_CTX* ctx = kinlet::crypto::detail::NewAes256GcmContext(
        reinterpret_cast<const unsigned char*>(kKey.data()));
    unsigned char iv[kinlet::crypto::kGcmIvSize];
    kinlet::crypto::detail::GcmIvFromNonce(++nonce, iv);
    auto* out = reinterpret_cast<unsigned char*>(sealed.data());
    benchmark::DoNotOptimize(kinlet::crypto::detail::GcmCrypt(
        ctx, true, iv, kAad, reinterpret_cast<const unsigned char*>(plaintext.data()),
        plaintext.size(), out, out + plaintext.size()));
    EVP_CIPHER_CTX_free(ctx);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_Seal)->Arg(64)->Arg(1024)->Arg(64 << 10);
BENCHMARK(BM_SealFreshContext)->Arg(64)->Arg(1024)->Arg(64 << 10);
BENCHMARK(BM_Open)->Arg(64)->Arg(1024)->Arg(64 << 10);
// Readers of one segment share its cipher.
BENCHMARK(BM_Open)->Arg(1024)->Threads(2)->Threads(4)->UseRealTime();
