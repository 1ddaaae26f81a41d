// Progress reporting for long store-wide operations (verify, repair, reshard, backup,
// restore): called now and then with the work done so far and the total, in bytes.
#pragma once

#include <cstdint>
#include <functional>

namespace kv {

using ProgressFn = std::function<void(uint64_t done_bytes, uint64_t total_bytes)>;

}  // namespace kv
