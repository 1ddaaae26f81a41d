// Where the kvfs daemon's messages go: stderr while it runs on a terminal, syslog once it
// has detached. libfuse's own messages take the same route (InstallFuseLogger).
#pragma once

#include <string>

namespace fs::fuse {

// Sends later messages to syslog (ident "kvfs", facility daemon) instead of stderr.
void LogToSyslog();
// Whether LOG_DEBUG messages are shown (-d).
void SetLogDebug(bool debug);
// printf-style; priority is a syslog level (LOG_ERR ...). On stderr each message becomes
// "kvfs: <message>\n". Thread-safe.
void Log(int priority, const char* format, ...) __attribute__((format(printf, 2, 3)));
// Routes fuse_log() through Log().
void InstallFuseLogger();

// While alive, libfuse's messages are collected instead of printed, so that a failure of a
// libfuse call (session options, mount) is reported as one line carrying libfuse's reason.
// Only one may exist at a time, on the startup thread.
class FuseLogCapture {
 public:
  FuseLogCapture();
  ~FuseLogCapture();
  FuseLogCapture(const FuseLogCapture&) = delete;
  FuseLogCapture& operator=(const FuseLogCapture&) = delete;
  // What libfuse said, joined into one line without a "fuse: " prefix.
  std::string Text() const;
};

}  // namespace fs::fuse
