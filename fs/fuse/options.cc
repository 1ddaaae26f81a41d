// Command-line parsing for kvfs, on top of fuse_opt so that "-o a,b" lists, escaping and
// FUSE's own options behave exactly as in every other FUSE file system.
#include "fs/fuse/options.h"

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <fuse_opt.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

namespace fs::fuse {
namespace {

enum Key {
  kKeyHelp,
  kKeyVersion,
  kKeyForeground,
  kKeyDebug,
  kKeyPages,
  kKeyChunkSize,
  kKeyCompression,
  kKeyCacheSize,
  kKeyWriteBuffer,
  kKeyCommitInterval,
  kKeyVersions,
  kKeyAttrTimeout,
  kKeyEntryTimeout,
  kKeyNegativeTimeout,
  kKeyMaxThreads,
  kKeyRingThreads,
  kKeyReadahead,
  kKeyVersionMinAge,
  kKeyTrashRetention,
  kKeyCompact,
  kKeyAcl,
};

const struct fuse_opt kOptions[] = {
    FUSE_OPT_KEY("-h", kKeyHelp),
    FUSE_OPT_KEY("--help", kKeyHelp),
    FUSE_OPT_KEY("-V", kKeyVersion),
    FUSE_OPT_KEY("--version", kKeyVersion),
    FUSE_OPT_KEY("-f", kKeyForeground),
    FUSE_OPT_KEY("-d", kKeyDebug),
    FUSE_OPT_KEY("debug", kKeyDebug),
    FUSE_OPT_KEY("pages=", kKeyPages),
    FUSE_OPT_KEY("chunk_size=", kKeyChunkSize),
    FUSE_OPT_KEY("compression=", kKeyCompression),
    FUSE_OPT_KEY("cache_size=", kKeyCacheSize),
    FUSE_OPT_KEY("write_buffer=", kKeyWriteBuffer),
    FUSE_OPT_KEY("commit_interval=", kKeyCommitInterval),
    FUSE_OPT_KEY("versions=", kKeyVersions),
    FUSE_OPT_KEY("attr_timeout=", kKeyAttrTimeout),
    FUSE_OPT_KEY("entry_timeout=", kKeyEntryTimeout),
    FUSE_OPT_KEY("negative_timeout=", kKeyNegativeTimeout),
    FUSE_OPT_KEY("max_threads=", kKeyMaxThreads),
    FUSE_OPT_KEY("ring_threads=", kKeyRingThreads),
    FUSE_OPT_KEY("readahead=", kKeyReadahead),
    FUSE_OPT_KEY("version_min_age=", kKeyVersionMinAge),
    FUSE_OPT_KEY("trash_retention=", kKeyTrashRetention),
    FUSE_OPT_KEY("compact", kKeyCompact),
    FUSE_OPT_KEY("acl", kKeyAcl),
    FUSE_OPT_END,
};

struct ParseState {
  DaemonOptions* options = nullptr;
  const char* program = "kvfs";
  int positional = 0;
  bool help = false;
  bool version = false;
  bool has_fsname = false;
  bool has_subtype = false;
  bool others_allowed = false;  // allow_other or allow_root
  std::string error;            // first usage error
};

std::string_view ValueOf(const char* arg) {
  const char* eq = std::strchr(arg, '=');
  return eq == nullptr ? std::string_view() : std::string_view(eq + 1);
}

// A non-negative integer with an optional binary suffix (K, M, G; an optional trailing
// "iB" or "B" is accepted too). Returns false on junk or overflow.
bool ParseSize(std::string_view text, uint64_t* value) {
  if (text.empty() || text[0] < '0' || text[0] > '9') return false;
  std::string s(text);
  errno = 0;
  char* end = nullptr;
  unsigned long long n = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0) return false;
  std::string_view suffix(end);
  uint64_t scale = 1;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'k':
      case 'K':
        scale = uint64_t{1} << 10;
        break;
      case 'm':
      case 'M':
        scale = uint64_t{1} << 20;
        break;
      case 'g':
      case 'G':
        scale = uint64_t{1} << 30;
        break;
      default:
        return false;
    }
    suffix.remove_prefix(1);
    if (suffix != "" && suffix != "B" && suffix != "iB") return false;
  }
  if (n > UINT64_MAX / scale) return false;
  *value = n * scale;
  return true;
}

bool ParseSeconds(std::string_view text, double* value) {
  std::string s(text);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(d) || d < 0) return false;
  *value = d;
  return true;
}

// Parses "key=value" into *out if it lies in [lo, hi]; records a usage error otherwise.
template <typename T>
void ParseUnsigned(ParseState* st, const char* arg, uint64_t lo, uint64_t hi, T* out) {
  uint64_t v = 0;
  if (!ParseSize(ValueOf(arg), &v) || v < lo || v > hi) {
    if (st->error.empty()) {
      st->error = "bad option '" + std::string(arg) + "' (expected " + std::to_string(lo) + ".." +
                  std::to_string(hi) + ")";
    }
    return;
  }
  *out = static_cast<T>(v);
}

// Seconds up to about 31 years: in nanoseconds they fit an int64_t (the volume's times).
void ParseTimeout(ParseState* st, const char* arg, double* out) {
  constexpr double kMaxSeconds = 1e9;
  double value = 0;
  if (!ParseSeconds(ValueOf(arg), &value) || value > kMaxSeconds) {
    if (st->error.empty()) {
      st->error = "bad option '" + std::string(arg) + "' (expected seconds from 0 to 1e9)";
    }
    return;
  }
  *out = value;
}

// fuse_opt callback: returns 0 to drop the argument, 1 to keep it for fuse_session_new.
int ProcessArg(void* data, const char* arg, int key, struct fuse_args* /*outargs*/) {
  auto* st = static_cast<ParseState*>(data);
  DaemonOptions* o = st->options;
  switch (key) {
    case FUSE_OPT_KEY_NONOPT:
      if (st->positional == 0) {
        o->store = arg;
      } else if (st->positional == 1) {
        o->mountpoint = arg;
      } else if (st->error.empty()) {
        st->error = "unexpected argument '" + std::string(arg) + "'";
      }
      ++st->positional;
      return 0;
    case FUSE_OPT_KEY_OPT:
      // A "-x" that is no option of ours; "-o" list items arrive without the dash and go
      // to libfuse, which rejects the ones it does not know.
      if (arg[0] == '-') {
        if (st->error.empty()) st->error = "unknown option '" + std::string(arg) + "'";
        return 0;
      }
      if (std::strncmp(arg, "fsname=", 7) == 0) st->has_fsname = true;
      if (std::strncmp(arg, "subtype=", 8) == 0) st->has_subtype = true;
      if (std::strcmp(arg, "allow_other") == 0 || std::strcmp(arg, "allow_root") == 0) {
        st->others_allowed = true;
      }
      return 1;
    case kKeyHelp:
      st->help = true;
      return 0;
    case kKeyVersion:
      st->version = true;
      return 0;
    case kKeyForeground:
      o->foreground = true;
      return 0;
    case kKeyDebug:
      // libfuse's request trace goes to stderr, so debugging implies the foreground.
      o->debug = o->foreground = true;
      return 1;
    case kKeyPages:
      ParseUnsigned(st, arg, 1, 65536, &o->pages);
      return 0;
    case kKeyChunkSize: {
      uint32_t cs = 0;
      ParseUnsigned(st, arg, 4096, 4u << 20, &cs);
      if (cs != 0 && (cs & (cs - 1)) != 0 && st->error.empty()) {
        st->error = "bad option '" + std::string(arg) + "' (a power of two, 4K..4M)";
      }
      if (cs != 0) o->chunk_size = cs;
      return 0;
    }
    case kKeyCompression:
      ParseUnsigned(st, arg, 0, 9, &o->compression);
      return 0;
    case kKeyCacheSize:
      ParseUnsigned(st, arg, 0, uint64_t{1} << 40, &o->cache_size);
      return 0;
    case kKeyWriteBuffer:
      ParseUnsigned(st, arg, 0, uint64_t{1} << 40, &o->write_buffer);
      return 0;
    case kKeyCommitInterval:
      ParseTimeout(st, arg, &o->commit_interval);
      return 0;
    case kKeyVersions:
      ParseUnsigned(st, arg, 0, 1u << 20, &o->versions);
      o->retention_given = true;
      return 0;
    case kKeyVersionMinAge:
      ParseTimeout(st, arg, &o->version_min_age);
      o->retention_given = true;
      return 0;
    case kKeyTrashRetention:
      ParseTimeout(st, arg, &o->trash_retention);
      o->retention_given = true;
      return 0;
    case kKeyCompact:
      o->compact = true;
      return 0;
    case kKeyAcl:
      o->acl = true;
      return 0;
    case kKeyAttrTimeout:
      ParseTimeout(st, arg, &o->attr_timeout);
      return 0;
    case kKeyEntryTimeout:
      ParseTimeout(st, arg, &o->entry_timeout);
      return 0;
    case kKeyNegativeTimeout:
      ParseTimeout(st, arg, &o->negative_timeout);
      return 0;
    case kKeyMaxThreads:
      ParseUnsigned(st, arg, 1, 1024, &o->max_threads);
      return 0;
    case kKeyRingThreads:
      ParseUnsigned(st, arg, 0, 64, &o->ring_threads);
      return 0;
    case kKeyReadahead:
      ParseUnsigned(st, arg, 0, size_t{1} << 30, &o->readahead);
      return 0;
  }
  return 1;
}

}  // namespace

void PrintUsage(const char* program, bool full) {
  // The full text is asked for (--help): stdout, like fuse_lowlevel_help(). A usage error:
  // stderr.
  FILE* out = full ? stdout : stderr;
  fprintf(out, "usage: %s STORE MOUNTPOINT [-f] [-d] [-o OPTION[,OPTION...]]\n", program);
  if (!full) {
    fprintf(out, "Try '%s --help' for more information.\n", program);
    return;
  }
  fprintf(out,
          "\nMounts the kvfs store in directory STORE (created on first use) on MOUNTPOINT.\n"
          "\n"
          "  -f                     stay in the foreground (log to stderr, not syslog)\n"
          "  -d, -o debug           trace every FUSE request (implies -f)\n"
          "  -h, --help             this help;  -V, --version: versions\n"
          "\n"
          "Store options (pages, chunk_size apply when the store is created):\n"
          "  -o pages=N             page files of a new store (default 16)\n"
          "  -o chunk_size=BYTES    file data chunk, power of two 4K..4M (default 64K)\n"
          "\n"
          "History (.kvfs/history, .kvfs/trash, .kvfs/snapshots); stored in the store, and\n"
          "replaced when given on a later mount:\n"
          "  -o versions=N          newest sealed versions kept per file, 0 = off (default 32)\n"
          "  -o version_min_age=S   also keep every version younger than S seconds (default 0)\n"
          "  -o trash_retention=S   seconds deleted files stay in the trash, 0 = none\n"
          "                         (default 86400)\n"
          "  -o compact             drop pruned versions and expired trash and compact the\n"
          "                         store before mounting\n"
          "  -o acl                 turn POSIX ACLs on (getfacl, setfacl, default ACLs); the\n"
          "                         store keeps them on, and the kernel checks permissions\n"
          "\n"
          "  -o compression=0..9    zlib level for stored values, 0 = none (default 1)\n"
          "  -o cache_size=BYTES    cache of decompressed chunks (default 64M)\n"
          "  -o write_buffer=BYTES  written data of all files held before it is committed\n"
          "                         (default 256M; each file holds at most 4M)\n"
          "  -o commit_interval=S   seconds written data of open files may stay buffered\n"
          "                         (default 1; 0 = until close or fsync)\n"
          "\n"
          "Kernel cache and threads:\n"
          "  -o attr_timeout=S      seconds the kernel caches attributes (default 1)\n"
          "  -o entry_timeout=S     seconds the kernel caches names (default 1)\n"
          "  -o negative_timeout=S  seconds the kernel caches missing names (default 1)\n"
          "  -o max_threads=N       FUSE worker threads (default: libfuse's, 10)\n"
          "  -o ring_threads=N      threads per CPU serving FUSE over io_uring when the\n"
          "                         kernel offers it (fuse.enable_uring=Y; default 2, 0 = off)\n"
          "  -o readahead=BYTES     the kernel's readahead on the mount (default 1M; 0 keeps\n"
          "                         the kernel's 128K; needs root)\n"
          "  -o [no_]writeback_cache, max_write=N, max_readahead=N, readdirplus=yes|no|auto\n"
          "                         override the capabilities kvfs negotiates\n"
          "\n"
          "default_permissions (the kernel checks permissions) is on unless root mounts\n"
          "without allow_other or allow_root, where only root can enter the mount.\n"
          "FUSE mount options:\n");
  fflush(out);
  fuse_lowlevel_help();
}

ParseResult ParseCommandLine(int argc, char** argv, DaemonOptions* options, fuse_args* args) {
  const char* program = "kvfs";
  if (argc > 0 && argv[0] != nullptr && argv[0][0] != '\0') {
    const char* slash = std::strrchr(argv[0], '/');
    program = slash != nullptr ? slash + 1 : argv[0];
  }
  *args = FUSE_ARGS_INIT(argc, argv);
  ParseState st;
  st.options = options;
  st.program = program;
  if (fuse_opt_parse(args, &st, kOptions, ProcessArg) == -1) {
    // fuse_opt has printed why (e.g. "-o" without a value).
    fuse_opt_free_args(args);
    PrintUsage(program, false);
    return ParseResult::kUsage;
  }
  if (st.help || st.version) {
    if (st.help) {
      PrintUsage(program, true);
    } else {
      printf("kvfs (libfuse %s, FUSE API %d)\n", fuse_pkgversion(), FUSE_USE_VERSION);
    }
    fuse_opt_free_args(args);
    return ParseResult::kExitOk;
  }
  if (st.error.empty() && st.positional < 2) st.error = "STORE and MOUNTPOINT are required";
  if (st.error.empty() && (options->store.empty() || options->mountpoint.empty())) {
    st.error = "STORE and MOUNTPOINT must not be empty";
  }
  if (st.error.empty()) {
    // Absolute, because the daemon changes to "/" and the store keeps using the path.
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(options->store, ec);
    if (ec) {
      st.error = "store path '" + options->store + "': " + ec.message();
    } else {
      options->store = abs.lexically_normal().string();
      while (options->store.size() > 1 && options->store.back() == '/') {
        options->store.pop_back();
      }
    }
  }
  if (!st.error.empty()) {
    fprintf(stderr, "%s: %s\n", program, st.error.c_str());
    PrintUsage(program, false);
    fuse_opt_free_args(args);
    return ParseResult::kUsage;
  }
  // The volume leaves permission checks to the kernel (fs/volume.h): default_permissions is
  // on whenever a user other than root can reach the mount. Without allow_other, the kernel
  // admits only processes of the mounting user; when that is root the check could only
  // grant (root overrides modes, and exec of a file without x bits is refused by the kernel
  // either way), while it costs a GETATTR of the directory after every change in it. Given
  // explicitly, default_permissions stays. fsname shows the store in mount(8) and df(1);
  // subtype makes the type "fuse.kvfs", which is how scripts recognise a kvfs mount.
  int rc = 0;
  if (getuid() != 0 || st.others_allowed) rc = fuse_opt_add_arg(args, "-odefault_permissions");
  if (rc == 0 && !st.has_fsname) {
    // Escaped: a store path may contain ',' or '\\', which separate and escape options.
    char* opt = nullptr;
    std::string fsname = "fsname=" + options->store;
    rc = fuse_opt_add_opt_escaped(&opt, fsname.c_str());
    if (rc == 0) rc = fuse_opt_add_arg(args, ("-o" + std::string(opt)).c_str());
    free(opt);
  }
  if (rc == 0 && !st.has_subtype) rc = fuse_opt_add_arg(args, "-osubtype=kvfs");
  if (rc != 0) {
    fprintf(stderr, "%s: out of memory\n", program);
    fuse_opt_free_args(args);
    return ParseResult::kUsage;
  }
  return ParseResult::kRun;
}

}  // namespace fs::fuse
