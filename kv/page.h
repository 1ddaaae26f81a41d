// Page: one append-only page file of checksummed records and its in-memory KeyIndex.
//
// Locking: mu_ (a shared_mutex) guards the index, the file pointer and the counters.
// Readers hold it shared while they read the file, writers hold it exclusively while they
// append and index. PageStore locks the pages of a batch in ascending page order; nothing
// else ever holds two page locks. compact_mu_ serializes compactions of this page and is
// taken before mu_.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kv/env.h"
#include "kv/key_index.h"
#include "kv/record.h"
#include "kv/store.h"

namespace kv {

// Records of one batch destined for one page, encoded outside the page lock. Append fills
// in the fields only known under the lock (sequence, time, prev, batch framing).
struct PagePart {
  struct Rec {
    size_t offset_in_buf;
    std::string_view key;  // points into the caller's WriteBatch
    RecordHeader header;   // type, flags, raw_len, data_crc, lengths set
  };
  uint32_t page = 0;
  std::string buf;  // the records back to back, headers not yet encoded
  std::vector<Rec> recs;
  uint64_t raw_value_bytes = 0;
  uint64_t stored_value_bytes = 0;
  uint64_t base_offset = 0;  // set by Append: the file offset of buf[0]
};

// A record group (one batch part) found by recovery.
struct RecoveredGroup {
  SequenceNumber sequence = 0;
  uint64_t offset = 0;  // of the group's first record
  uint32_t batch_pages = 0;
};

// What opening a page found, for the store's cross-page checks.
struct PageRecovery {
  std::vector<RecoveredGroup> groups;  // batch parts above the durable watermark
  bool has_last_group = false;
  RecoveredGroup last_group;  // the newest whole batch part (from a hint or the scan)
  bool torn = false;          // a torn tail (or an incomplete last part) was cut off
  bool torn_sequence_known = false;
  SequenceNumber torn_sequence = 0;
  SequenceNumber max_sequence = 0;  // of what remains
};

class Page {
 public:
  Page(Env* env, std::string dir, uint32_t index, uint64_t store_id);
  Page(const Page&) = delete;
  Page& operator=(const Page&) = delete;

  // Writes a new, empty page file and syncs it.
  Status Create();
  // Opens the page file and builds the index (from the hint file when it is current, then
  // the records after it). A torn tail is cut off (left alone when read_only). Appends to
  // *recovery what it found and cut.
  // `salvage` (only with read_only) indexes whatever verifies: no hint, damaged records and
  // broken batch framing skipped, a missing or foreign page file taken as an empty page,
  // version chains ending at a damaged link.
  Status Open(bool read_only, SequenceNumber durable, PageRecovery* recovery, bool salvage = false);
  // Drops every record at or after `offset` (recovery found them to belong to an
  // incomplete batch or to follow a lost write) and rebuilds the index.
  Status CutAt(uint64_t offset, SequenceNumber durable);

  // ---- Reads; each takes mu_ shared. ----
  // The value of key as of sequence `at`. NotFound when absent or deleted.
  // `options`: its keys_only and value_prefix (the store resolves its sequence to `at`).
  Status Get(std::string_view key, SequenceNumber at, const ReadOptions& options,
             std::string* value);
  // The same into buf[0, *size): without a copy through a string when the value is stored raw.
  // InvalidArgument when the value is longer than buf.
  Status GetInto(std::string_view key, SequenceNumber at, std::span<char> buf, size_t* size);
  Status Versions(std::string_view key, std::vector<VersionInfo>* versions);
  struct ScanItem {
    std::string key;
    std::string value;
    SequenceNumber sequence;
  };
  // Appends to *items the live keys as of `at` that start with `prefix` and come after
  // `start` (at or after it unless `exclusive`), stopping after max_items or max_bytes.
  // *exhausted says whether the scan reached the end of the prefix.
  Status Scan(std::string_view prefix, std::string_view start, bool exclusive, SequenceNumber at,
              bool keys_only, size_t max_items, size_t max_bytes, std::vector<ScanItem>* items,
              bool* exhausted);

  // ---- Writes: PageStore holds mu() exclusively around these. ----
  std::shared_mutex& mu() { return mu_; }
  // REQUIRES: mu_ held exclusively. Makes sure `bytes` more can be appended without ENOSPC.
  Status ReserveLocked(uint64_t bytes);
  // REQUIRES: mu_ held exclusively. Encodes the headers and appends part.buf, to the write
  // buffer when it is small.
  Status AppendLocked(PagePart* part, SequenceNumber seq, uint64_t time_ns, uint32_t batch_pages);
  // REQUIRES: mu_ held exclusively, AppendLocked succeeded. Indexes the appended records.
  void ApplyLocked(const PagePart& part);
  // REQUIRES: mu_ held exclusively. Cuts a failed append back to `end`.
  Status RollbackLocked(uint64_t end);
  // The page's logical end: the file plus the bytes still in the write buffer.
  uint64_t EndLocked() const { return file_->Size() + wbuf_.size(); }
  // Hands the write buffer to the file (the operating system). Takes mu_ exclusively.
  Status Flush();

  // Gives back the disk space reserved past the end of the file (on close).
  Status TrimReservation();
  // ---- Durability. Bytes below journaled_end_ are durable in the page file or the journal;
  // bytes below synced_end_ are durable in the page file itself. ----
  struct Tail {
    uint64_t generation = 0;
    uint64_t from = 0;  // the durable end
    uint64_t to = 0;    // the file's end
  };
  // The bytes not yet durable anywhere.
  Tail UnjournaledTail();
  // The bytes not yet durable in the page file.
  Tail UnsyncedTail();
  // Reads the tail's bytes; *current is false (and nothing read) when a compaction has
  // replaced the file meanwhile (the new file is durable already).
  Status ReadTail(const Tail& tail, std::string* bytes, bool* current);
  // Records that the tail is durable in the journal.
  void MarkJournaled(const Tail& tail);
  // fdatasyncs the page file, without holding mu_ during the sync.
  Status SyncFile();

  // The page's end and newest sequence number, for advancing the durable watermark.
  struct End {
    uint64_t generation;
    uint64_t offset;
    SequenceNumber max_sequence;
  };
  End CaptureEnd();
  // Records that everything before `offset` (in file generation `generation`) is at or
  // below the durable watermark `watermark`. Compaction rewrites only that part.
  void SetDurableEnd(uint64_t generation, uint64_t offset, SequenceNumber watermark);

  // Rewrites the durable part of the page keeping what `policy` and the live snapshots
  // keep, and copies the rest as it is. Reads and writes go on meanwhile.
  // Every record with sequence number `protect` (the store's newest batch) is kept, and so
  // is every record of the watermark's batch: after a crash that loses everything above the
  // watermark, that batch is the newest, and recovery checks that it is whole.
  // With `min_reclaim` > 0 (background compaction) the page is left as it is when less than
  // that fraction of its durable part would go (e.g. history retention keeps what was
  // overwritten): copying it would cost a page's worth of I/O for nothing.
  Status Compact(const RetentionPolicy& policy, const std::vector<SequenceNumber>& snapshots,
                 SequenceNumber protect, double min_reclaim = 0);
  // Writes the index snapshot (hint file), when the whole page is durable.
  Status WriteHint();

  ShardStats Stats();
  size_t IndexMemory();
  // Bytes superseded since the last compaction (what compaction could reclaim).
  uint64_t CompactableGarbage();
  const std::string& path() const { return path_; }
  uint32_t index() const { return index_no_; }

 private:
  struct Counters {
    uint64_t records = 0;
    uint64_t live_keys = 0;
    uint64_t tombstones = 0;
    uint64_t live_bytes = 0;
    uint64_t raw_value_bytes = 0;
    uint64_t stored_value_bytes = 0;
  };

  // Loads the hint (if current) and scans records up to `limit`. Sets *valid_end to the end
  // of the last whole record group. REQUIRES: mu_ held exclusively (or not yet shared).
  Status LoadLocked(uint64_t limit, SequenceNumber durable, PageRecovery* recovery,
                    uint64_t* valid_end);
  bool LoadHintLocked(uint64_t file_size, uint64_t* covered, RecoveredGroup* last_group);
  static void IndexRecord(std::string_view key, const RecordHeader& h, uint64_t offset,
                          KeyIndex* index, Counters* counters);
  // Reads and verifies the whole record at offset. With `buffered`, `file` is file_, mu_ is
  // held (either way) and the bytes may still be in the write buffer; without, the bytes
  // are in the file already (compaction reads the durable part of a page without mu_).
  Status ReadRecordLocked(const File& file, bool buffered, uint64_t offset, uint64_t size,
                          RecordHeader* header, std::string* record) const;
  // The same for file_ with mu_ held, without a copy when the record is in the file's
  // mapping: *record then points there, else into *scratch.
  Status ViewRecordLocked(uint64_t offset, uint64_t size, RecordHeader* header,
                          std::string* scratch, std::string_view* record) const;
  // Decodes and verifies the record bytes read from offset.
  Status CheckRecord(uint64_t offset, std::string_view record, RecordHeader* header) const;
  Status ReadHeaderLocked(const File& file, bool buffered, uint64_t offset,
                          RecordHeader* header) const;
  // The value's first `prefix` bytes (0: all of it).
  Status ValueFromRecord(const RecordHeader& h, std::string_view record, size_t prefix,
                         std::string* value) const;
  // The record of the version of `key` visible at `at` (NotFound when none or a deletion).
  // `in_memory`: find the key by the index's copy of it, without reading the page file
  // (unless an older version is asked for).
  Status LocateLocked(std::string_view key, SequenceNumber at, bool in_memory, uint64_t* offset,
                      uint64_t* size);
  // The version of `key` visible at `at`, following the on-disk chain from `entry`.
  // Returns false in *found when none.
  Status ResolveLocked(std::string_view key, const IndexEntry& entry, SequenceNumber at,
                       bool* found, RecordHeader* header, uint64_t* offset);
  Status CorruptionAt(uint64_t offset, const Status& what) const;
  // REQUIRES: mu_ held exclusively.
  Status FlushLocked();
  // Reads [offset, offset+n) of `file`, the part past its end from the write buffer when
  // `buffered` (then REQUIRES: mu_ held and file is file_).
  Status ReadLocked(const File& file, bool buffered, uint64_t offset, size_t n, char* buf,
                    size_t* got) const;
  std::string HintPath() const;

  Env* const env_;
  const std::string dir_;
  const std::string path_;
  const uint32_t index_no_;
  const uint64_t store_id_;

  std::mutex compact_mu_;  // taken before mu_
  mutable std::shared_mutex mu_;
  std::shared_ptr<File> file_;             // GUARDED_BY(mu_); copied out by SyncFile
  uint64_t generation_ = 0;                // GUARDED_BY(mu_)
  std::unique_ptr<KeyIndex> index_;        // GUARDED_BY(mu_)
  Counters counters_;                      // GUARDED_BY(mu_)
  SequenceNumber max_sequence_ = 0;        // GUARDED_BY(mu_)
  uint64_t compactions_ = 0;               // GUARDED_BY(mu_)
  uint64_t garbage_after_compaction_ = 0;  // GUARDED_BY(mu_)
  uint64_t reserved_end_ = 0;              // GUARDED_BY(mu_): fallocated up to here
  uint64_t durable_end_ = 0;               // GUARDED_BY(mu_): records before it are durable
  SequenceNumber durable_watermark_ = 0;   // GUARDED_BY(mu_): the watermark durable_end_ is at
  RecoveredGroup last_group_;              // GUARDED_BY(mu_): newest batch part, for hints
  // Small appends collect here and reach the file in one write when it fills, before any
  // sync, on Flush and every 200 ms: fewer system calls than one write per batch.
  std::string wbuf_;            // GUARDED_BY(mu_)
  uint64_t synced_end_ = 0;     // GUARDED_BY(mu_)
  uint64_t journaled_end_ = 0;  // GUARDED_BY(mu_)
  bool read_only_ = false;
  bool salvage_ = false;
};

std::string PageFileName(uint32_t index);
std::string HintFileName(uint32_t index);
// The 40-byte page file header.
std::string EncodePageHeader(uint32_t index, uint64_t generation, uint64_t store_id);

// The identifying fields of a hint file, for the store checker.
struct HintSummary {
  uint32_t page = 0;
  uint64_t generation = 0;
  uint64_t store_id = 0;
  uint64_t covered = 0;  // the page had been written up to here when the hint was made
};
// Reads the hint file at `path`: NotFound when missing, Corruption when its magic, checksum
// or version is wrong.
Status ReadHintSummary(Env* env, const std::string& path, HintSummary* summary);

}  // namespace kv
