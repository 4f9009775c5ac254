// The release version, printed by --version and logged at start-up.
#pragma once

namespace informerd {

inline constexpr char kVersion[] = "0.1.0";

}  // namespace informerd
