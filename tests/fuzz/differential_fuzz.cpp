// libFuzzer target: the differential test's operation language, driven by the
// fuzzer's bytes (56 bytes an operation). Any difference between kinlet and the
// reference model aborts with the difference and the operations.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "model/differential.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kinlet_model::Source in(data, size);
  const std::vector<kinlet_model::Op> ops = kinlet_model::Generate(in, 400);
  if (std::optional<std::string> diff = kinlet_model::Differential::Run(ops)) {
    std::fprintf(stderr, "difference: %s\n", diff->c_str());
    for (const auto& op : kinlet_model::Differential::Shrink(ops)) {
      std::fprintf(stderr, "  %s\n", op.Describe().c_str());
    }
    std::abort();
  }
  return 0;
}
