// Physical backup and restore of a page store: a crash-consistent copy of a live store's
// superblock and page files in one self-describing, checksummed archive file, optionally
// incremental over an earlier archive.
//
// Consistency. Backup never takes the store's lock and never writes into the store
// directory, so a daemon may keep the store open, appending and compacting. It reads
// SUPERBLOCK (durable watermark W), opens every page file, then reads SUPERBLOCK again and
// starts over unless it is unchanged. Each page is then read through its open descriptor up
// to the length it had when opened: compaction replaces a page file by rename, so the
// descriptor keeps a consistent older file, and appends below that length are complete.
//   - Every sequence <= W is in the copied pages: W is persisted only after every page file
//     was synced, and a compaction that replaced a page after that kept everything.
//   - No copied page was compacted past W: compaction persists its watermark before it
//     renames, so a replacement made before our opens is covered by the W we read; the
//     second read of SUPERBLOCK rules out a watermark (and so a compaction) in between.
//     Without it a page compacted meanwhile could hold records above our W with their batch
//     framing rewritten and superseded versions dropped, which recovery cannot undo.
// Above W the pages may hold different amounts; restoring runs the store's recovery, which
// cuts them to a prefix of whole batches, exactly as after a crash.
//   - JOURNAL is read (after the page files are opened) and each page is extended by the
//     journaled bytes of the same file generation that continue it: a group commit may
//     journal a page's tail while it is still in the page's write buffer (it reaches the file
//     within 200 ms), so a synced write can be in the journal only. The extension is the
//     same file's later bytes, so each page stays a prefix of its own log.
//   - LOCK and hint files are not copied (the hints are rebuilt when the restore recovers).
//
// The archive format is specified in kv/README.md, "Backup archives".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kv/progress.h"
#include "kv/status.h"
#include "kv/store.h"

namespace kv {

class Env;

inline constexpr uint32_t kArchiveFormatVersion = 1;
inline constexpr uint32_t kArchiveBlockSize = 1 << 20;

struct BackupOptions {
  // File access; nullptr means Env::Default().
  Env* env = nullptr;
  // An earlier archive of the same store: make an incremental archive over it (it and its
  // bases are verified first). Empty: a full archive.
  std::string base_archive;
  ProgressFn progress;  // bytes of page files read, of their total
};

struct BackupStats {
  uint64_t archive_id = 0;
  SequenceNumber durable_sequence = 0;  // W of the copied superblock
  uint64_t bytes_read = 0;              // from the store
  uint64_t bytes_written = 0;           // the archive's size
  uint32_t pages = 0;
  uint64_t blocks = 0;
  uint64_t blocks_referenced = 0;  // stored as references to the base archive
};

// Writes a crash-consistent copy of the store in `store_dir` (open or not) to `archive_path`
// (via archive_path + ".tmp", fsync, rename, fsync of its directory).
Status Backup(const std::string& store_dir, const std::string& archive_path,
              const BackupOptions& options, BackupStats* stats = nullptr);

// What an archive is, from its header, superblock and trailer.
struct ArchiveSummary {
  std::string path;
  uint32_t format_version = 0;
  uint64_t archive_id = 0;
  uint64_t created_ns = 0;
  uint64_t store_id = 0;
  uint32_t page_count = 0;
  uint32_t block_size = 0;
  bool incremental = false;
  uint64_t base_id = 0;
  std::string base_path;  // as recorded
  SequenceNumber durable_sequence = 0;
  std::string sharder_name;
  uint64_t page_bytes = 0;     // the page files' total length
  uint64_t archive_bytes = 0;  // the archive file's length
  uint64_t blocks = 0;
  uint64_t blocks_referenced = 0;
};

// Reads an archive's summary from its header, superblock frame and trailer, checking their
// checksums but not reading the blocks (use VerifyArchive for that).
Status ReadArchiveSummary(const std::string& path, ArchiveSummary* summary, Env* env = nullptr);

struct ArchiveVerifyOptions {
  Env* env = nullptr;
  // Paths of the base archives, nearest first, overriding the recorded ones; an empty
  // string, or a missing entry, uses the recorded path.
  std::vector<std::string> base_paths;
  // Also verify the chain of bases of an incremental archive and every reference into it.
  bool verify_bases = true;
  ProgressFn progress;  // archive bytes read
};

// Reads the whole archive (and, with verify_bases, its chain of bases) and checks every
// checksum, the frame order, the ids and that nothing is truncated. *chain (if not null)
// receives the summaries, the archive's first, then its bases.
Status VerifyArchive(const std::string& path, const ArchiveVerifyOptions& options,
                     std::vector<ArchiveSummary>* chain = nullptr);

struct RestoreOptions {
  Env* env = nullptr;
  // Replace a non-empty target directory (atomically, by renameat2 RENAME_EXCHANGE).
  bool force = false;
  // As ArchiveVerifyOptions::base_paths.
  std::vector<std::string> base_paths;
  // The sharder the store is used with; its name, or one of `earlier_sharders`' names, must
  // match the archived superblock's (the store keeps the archived one). nullptr accepts the
  // archived name: restoring only opens and closes the store to run its recovery, which
  // never routes keys.
  std::shared_ptr<const Sharder> sharder;
  std::vector<std::shared_ptr<const Sharder>> earlier_sharders;
  ProgressFn progress;  // page bytes written, of their total
};

struct RestoreStats {
  uint64_t bytes_read = 0;     // from the archives
  uint64_t bytes_written = 0;  // page and superblock bytes written to the store
  uint32_t pages = 0;
  uint64_t blocks = 0;
  uint64_t blocks_from_base = 0;     // resolved through a base archive
  uint32_t archives = 0;             // the archive and its bases
  SequenceNumber last_sequence = 0;  // of the restored store, after recovery
};

// Restores the archive into `target_dir`. Verifies the archive and its bases entirely before
// writing anything; builds the store in `<target_dir>.restore-tmp`, syncs it, runs the
// store's recovery on it, then moves it into place (an existing directory is swapped out
// atomically and then deleted). A target whose store is open (LOCK held) is refused with
// Busy. On any error the target is untouched and the temporary directory removed.
Status Restore(const std::string& archive_path, const std::string& target_dir,
               const RestoreOptions& options, RestoreStats* stats = nullptr);

}  // namespace kv
