// libFuzzer target: the differential test's operation language, driven by the
// fuzzer's bytes (56 bytes an operation), run in each stream profile (no
// limits; small limits with shards that refuse when full; with shards that
// overwrite). Any difference between kinlet and the reference model aborts
// with the profile, the difference and the shrunk operations.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "model/differential.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kinlet_model::Source in(data, size);
  const std::vector<kinlet_model::Op> ops = kinlet_model::Generate(in, 400);
  for (kinlet_model::Profile profile : kinlet_model::kProfiles) {
    if (std::optional<std::string> diff = kinlet_model::Differential::Run(ops, profile)) {
      std::fprintf(stderr, "profile %s, difference: %s\n", kinlet_model::ProfileName(profile),
                   diff->c_str());
      for (const auto& op : kinlet_model::Differential::Shrink(ops, profile)) {
        std::fprintf(stderr, "  %s\n", op.Describe().c_str());
      }
      std::abort();
    }
  }
  return 0;
}
