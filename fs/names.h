// Display names of the .kvfs views: version files ("0007_2026-11-23T04-05-06.123Z") and trash
// entries ("2026-11-23T04-05-06.123Z__dir__file.txt"). Times are UTC with milliseconds and
// use '-' instead of ':' so that the names are portable; they sort in time order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fs::names {

// "2026-11-23T04-05-06.123Z" for a time in ns since the epoch (24 bytes).
std::string FormatTime(int64_t time_ns);
inline constexpr size_t kTimeSize = 24;
// The time FormatTime printed at the start of `name`, rounded down to its millisecond.
// False when `name` does not start with such a time.
bool ParseTime(std::string_view name, int64_t* time_ns);

// "<number, zero-padded to `width` digits>_<time>".
std::string VersionName(uint64_t number, int64_t time_ns, int width);
// The width for the version names of a file whose highest version number is `highest`: its
// digits, and at least 4. One width for all of a file's names makes `ls` list them oldest
// first past version 9999 too.
int VersionNumberWidth(uint64_t highest);
// The number at the start of a version name. False if there is none.
bool ParseVersionNumber(std::string_view name, uint64_t* number);

// "<time>__<path with every '/' written as '__'><suffix>", at most 255 bytes: a long path
// loses its beginning ("..." marks the cut).
std::string TrashName(int64_t time_ns, std::string_view path, std::string_view suffix);

}  // namespace fs::names
