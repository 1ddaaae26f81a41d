// Logging for the kvfs daemon: stderr or syslog, plus the libfuse log hook.
#include "fs/fuse/log.h"

#define FUSE_USE_VERSION 312
#include <fuse_log.h>
#include <syslog.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace fs::fuse {
namespace {
std::mutex g_mu;
bool g_syslog = false;             // GUARDED_BY(g_mu)
bool g_debug = false;              // GUARDED_BY(g_mu)
std::string* g_capture = nullptr;  // GUARDED_BY(g_mu); set by FuseLogCapture

int FromFuseLevel(enum fuse_log_level level) {
  // fuse_log_level mirrors the syslog levels one to one.
  return static_cast<int>(level);
}

void VLog(int priority, const char* format, va_list ap) {
  char line[1024];
  vsnprintf(line, sizeof(line), format, ap);
  std::lock_guard lock(g_mu);
  if (priority >= LOG_DEBUG && !g_debug) return;
  if (g_syslog) {
    syslog(priority, "%s", line);
  } else {
    fprintf(stderr, "kvfs: %s\n", line);
  }
}

void FuseLogger(enum fuse_log_level level, const char* format, va_list ap) {
  char text[1024];
  vsnprintf(text, sizeof(text), format, ap);
  std::string_view msg(text);
  {
    std::lock_guard lock(g_mu);
    if (g_capture != nullptr) {
      g_capture->append(msg);
      return;
    }
  }
  // libfuse messages end in '\n' and often start with "fuse: "; Log adds its own prefix.
  if (msg.starts_with("fuse: ")) msg.remove_prefix(6);
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  if (msg.empty()) return;
  Log(FromFuseLevel(level), "%.*s", static_cast<int>(msg.size()), msg.data());
}
}  // namespace

void LogToSyslog() {
  std::lock_guard lock(g_mu);
  openlog("kvfs", LOG_PID, LOG_DAEMON);
  g_syslog = true;
}

void SetLogDebug(bool debug) {
  std::lock_guard lock(g_mu);
  g_debug = debug;
}

void Log(int priority, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  VLog(priority, format, ap);
  va_end(ap);
}

void InstallFuseLogger() { fuse_set_log_func(FuseLogger); }

FuseLogCapture::FuseLogCapture() {
  std::lock_guard lock(g_mu);
  g_capture = new std::string;
}

FuseLogCapture::~FuseLogCapture() {
  std::lock_guard lock(g_mu);
  delete g_capture;
  g_capture = nullptr;
}

std::string FuseLogCapture::Text() const {
  std::string text;
  {
    std::lock_guard lock(g_mu);
    if (g_capture != nullptr) text = *g_capture;
  }
  // One line: libfuse may log several, each "fuse: ...\n".
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view part(text.data() + pos, end - pos);
    if (part.starts_with("fuse: ")) part.remove_prefix(6);
    if (!part.empty()) {
      if (!out.empty()) out += "; ";
      out.append(part);
    }
    pos = end + 1;
  }
  return out;
}

}  // namespace fs::fuse
