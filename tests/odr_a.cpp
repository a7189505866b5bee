// Two translation units include the whole library: a missing `inline` on a
// function defined in a header fails the link (see odr_b.cpp).
#include "kinlet/kinlet.hpp"

std::string OdrA() { return kinlet::ShardIdFor(1) + kinlet::HashKeyToString(1); }
