// The kvfs command line: `kvfs STORE MOUNTPOINT [-f] [-d] [-o OPTIONS]`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

struct fuse_args;

namespace fs::fuse {

struct DaemonOptions {
  std::string store;        // made absolute by ParseCommandLine
  std::string mountpoint;   // as given
  bool foreground = false;  // -f (and -d)
  bool debug = false;       // -d: libfuse traces every request, LOG_DEBUG shown

  // ---- Store creation (ignored when the store exists) ----
  uint32_t pages = 16;             // -o pages=N
  uint32_t chunk_size = 64 << 10;  // -o chunk_size=BYTES
  // ---- History (stored at creation; given again on a later mount, they replace the stored
  // settings) ----
  uint32_t versions = 32;          // -o versions=N: sealed versions kept per file, 0 = off
  double version_min_age = 0;      // -o version_min_age=SECONDS: younger versions are kept
  double trash_retention = 86400;  // -o trash_retention=SECONDS: 0 = no trash
  bool retention_given = false;    // one of the three was given
  bool compact = false;            // -o compact: prune and compact the store when mounting
  bool acl = false;                // -o acl: turn POSIX ACLs on (stored; stays on)
  // ---- Every open ----
  int compression = 1;              // -o compression=0..9 (zlib level, 0 = none)
  size_t cache_size = 64 << 20;     // -o cache_size=BYTES: decompressed chunk cache
  size_t write_buffer = 256 << 20;  // -o write_buffer=BYTES: buffered writes of all files
  double commit_interval = 1;       // -o commit_interval=S: longest a buffered write waits

  // ---- Kernel caching ----
  double attr_timeout = 1.0;      // -o attr_timeout=SECONDS
  double entry_timeout = 1.0;     // -o entry_timeout=SECONDS
  double negative_timeout = 1.0;  // -o negative_timeout=SECONDS (0: no negative caching)
  unsigned max_threads = 0;       // -o max_threads=N (0: libfuse's default)
  unsigned ring_threads = 2;      // -o ring_threads=N per CPU for FUSE over io_uring (0: off)
  size_t readahead = 1 << 20;     // -o readahead=BYTES (0: the kernel's 128 KiB)
};

enum class ParseResult {
  kRun,     // options and *fuse_args are ready
  kExitOk,  // --help or --version was printed
  kUsage,   // an error and the usage were printed; exit 2
};

// Parses argv. kvfs's own options are removed; what is left in *args (argv[0] followed by
// "-o" options and -d) is for fuse_session_new(): standard FUSE mount options pass through,
// and default_permissions, fsname and subtype are added. *args must be freed with
// fuse_opt_free_args.
ParseResult ParseCommandLine(int argc, char** argv, DaemonOptions* options, fuse_args* args);

// Prints the usage line to stderr, or with `full` (--help) every option to stdout.
void PrintUsage(const char* program, bool full);

}  // namespace fs::fuse
