// Display names of the .kvfs views: see fs/names.h.
#include "fs/names.h"

#include <algorithm>
#include <ctime>

#include "fs/volume.h"

namespace fs::names {

std::string FormatTime(int64_t time_ns) {
  int64_t ms = time_ns / 1'000'000;
  if (time_ns < 0 && time_ns % 1'000'000 != 0) --ms;
  time_t secs = static_cast<time_t>(ms / 1000);
  int millis = static_cast<int>(ms % 1000);
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  struct tm tm = {};
  gmtime_r(&secs, &tm);
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d-%02d-%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

bool ParseTime(std::string_view name, int64_t* time_ns) {
  if (name.size() < kTimeSize) return false;
  std::string t(name.substr(0, kTimeSize));
  int year, mon, day, hour, min, sec, millis;
  char z = 0;
  if (sscanf(t.c_str(), "%4d-%2d-%2dT%2d-%2d-%2d.%3d%c", &year, &mon, &day, &hour, &min, &sec,
             &millis, &z) != 8 ||
      z != 'Z') {
    return false;
  }
  struct tm tm = {};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  time_t secs = timegm(&tm);
  *time_ns = (static_cast<int64_t>(secs) * 1000 + millis) * 1'000'000;
  return true;
}

std::string VersionName(uint64_t number, int64_t time_ns, int width) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%0*llu_", width, static_cast<unsigned long long>(number));
  return buf + FormatTime(time_ns);
}

int VersionNumberWidth(uint64_t highest) {
  int digits = 1;
  for (; highest >= 10; highest /= 10) ++digits;
  return std::max(digits, 4);
}

bool ParseVersionNumber(std::string_view name, uint64_t* number) {
  uint64_t n = 0;
  size_t i = 0;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) {
    if (n > (~uint64_t{0} - 9) / 10) return false;
    n = n * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  if (i == 0 || i >= name.size() || name[i] != '_') return false;
  *number = n;
  return true;
}

std::string TrashName(int64_t time_ns, std::string_view path, std::string_view suffix) {
  std::string flat;
  for (char c : path) {
    if (c == '/') {
      flat += "__";
    } else {
      flat.push_back(c);
    }
  }
  std::string head = FormatTime(time_ns) + "__";
  const size_t room = kNameMax - head.size() - suffix.size();
  if (flat.size() > room) flat = "..." + flat.substr(flat.size() - (room - 3));
  return head + flat + std::string(suffix);
}

}  // namespace fs::names
