// Store-level maintenance for the page store, used by kvfsck: verifying every record of a
// store without opening it, repairing a damaged store so that it opens again, and
// rewriting a store with another page count. Reading a damaged store is Options::salvage
// (kv/store.h). See kv/README.md for the on-disk format these work on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kv/env.h"
#include "kv/progress.h"
#include "kv/status.h"
#include "kv/store.h"

namespace kv {

// ---- Verify ----

struct VerifyOptions {
  Env* env = nullptr;  // nullptr: Env::Default()
  // Inflates every compressed value and checks its length (CPU-bound; the checksums are
  // checked either way).
  bool check_values = true;
  ProgressFn progress;  // over the bytes of the page files
};

// One problem found. `page` is -1 for the store as a whole (superblock, journal).
struct VerifyProblem {
  int64_t page = -1;
  bool has_offset = false;
  uint64_t offset = 0;  // file offset in the page file
  // The damaged record's key, when its header verified (the key bytes themselves are
  // covered by the data checksum, which may be what failed).
  bool has_key = false;
  std::string key;
  // The keys that lost data here, sorted and without duplicates, as far as can be told
  // without the damaged bytes: those whose newest version, according to the page's hint
  // file, lies in the damaged or missing bytes (when the hint is current for the page file:
  // same page, store id and generation; for a missing page file, same page and store id),
  // and those whose version chain, as the check read it, leads into the damaged bytes (an
  // older version was lost). Filled for unreadable bytes in a page, an incomplete record or
  // a truncated end below the hint's covered offset, and a missing page file; it may hold
  // `key`. Records written after the hint are not in it, so the list can be incomplete.
  // At most kMaxLostKeys keys, to bound memory; lost_keys_capped says that more were left out.
  static constexpr size_t kMaxLostKeys = 10000;
  std::vector<std::string> lost_keys;
  bool lost_keys_capped = false;
  // Complete and self-contained, e.g. "page-0003.kv offset 81234: record data checksum
  // mismatch".
  std::string message;
};

struct VerifyReport {
  std::vector<VerifyProblem> problems;  // damage: data was lost or cannot be read
  std::vector<std::string> notes;       // normal conditions worth a mention (torn tails)
  uint32_t page_count = 0;              // per the superblock
  uint32_t pages = 0;                   // page files read
  uint64_t records = 0;                 // records that verified
  uint64_t bytes = 0;                   // bytes of page files read
  SequenceNumber durable_sequence = 0;  // per the superblock
  SequenceNumber max_sequence = 0;      // the newest record found
  bool ok() const { return problems.empty(); }
};

// Checks every record of the store in `dir` without opening it and without the writer lock,
// so it may run while a process has the store open and appends to it (an incomplete last
// record of a page is then a torn tail: a note, not a problem). Checks the superblock, each
// page file's header, each record's header and data checksums, compressed values, version
// chains and batch framing, and that no page is shorter than its hint file says it was.
// Returns OK when the check ran (whatever it found: see report->problems); NotSupported for
// a store of a newer format version; NotFound when `dir` holds no store; IOError when files
// cannot be read.
Status VerifyStore(const std::string& dir, const VerifyOptions& options, VerifyReport* report);

// ---- Repair ----

struct RepairOptions {
  Env* env = nullptr;  // nullptr: Env::Default()
  ProgressFn progress;
};

// What repair dropped: a damaged byte range, a record of a batch that lost other records, or
// a missing page (recreated empty).
struct RepairAction {
  int64_t page = -1;
  uint64_t offset = 0;
  uint64_t bytes = 0;
  bool has_key = false;
  std::string key;
  std::string message;
};

struct RepairReport {
  std::vector<RepairAction> dropped;
  uint32_t pages_rewritten = 0;
  uint32_t pages_recreated = 0;
  uint64_t records_kept = 0;         // in rewritten pages
  SequenceNumber last_sequence = 0;  // of the repaired store
  bool changed() const { return pages_rewritten + pages_recreated > 0 || !dropped.empty(); }
};

// Makes the damaged store in `dir` openable, under its writer lock (Busy "store is in use by
// pid N" when a process has it open). Replays the journal, recreates a missing page file as
// an empty page, and rewrites every damaged page (temporary file, fdatasync, rename,
// directory fsync: a crash at any step leaves the old or the new page) with every record
// that verifies, all versions, version chains relinked around what was dropped. Records at
// or below the durable watermark are kept whatever else was lost (recovery never checks
// batches there); above it, a batch part that lost records is dropped whole, and recovery
// then keeps the prefix of writes before the first lost one, as after any crash. Finally
// opens and closes the store once, so that it is recovered, has a current watermark and
// fresh hints: VerifyStore then finds nothing. An undamaged store is left as it is.
// A damaged superblock cannot be repaired (Corruption).
Status RepairStore(const std::string& dir, const RepairOptions& options, RepairReport* report);

// ---- Reshard ----

struct ReshardOptions {
  // The sharder the rewritten store uses; nullptr: WholeKeySharder(). The store must have
  // been created with it or with one of `earlier_sharders` (see Options::earlier_sharders).
  std::shared_ptr<const Sharder> sharder;
  std::vector<std::shared_ptr<const Sharder>> earlier_sharders;
  Env* env = nullptr;   // nullptr: Env::Default()
  ProgressFn progress;  // over the bytes of the old page files
};

// Rewrites the store in `dir` with `new_page_count` pages (0: as many as it has), placing
// every key by options.sharder, under its writer lock. Every
// record stays: all versions, with their sequence numbers, times and values (stored bytes
// copied as they are), and the store keeps its id. The store is first recovered (opened and
// closed), then copied into `<dir>.reshard-tmp`, fsynced, checked by opening it, and swapped
// in with renameat2(RENAME_EXCHANGE); the old copy is deleted last. A crash at any point
// leaves the old or the new store, complete, under `dir`; the next reshard or writable open
// deletes a leftover `<dir>.reshard-tmp`.
Status ReshardStore(const std::string& dir, uint32_t new_page_count, const ReshardOptions& options);

// Deletes `<dir>.reshard-tmp` when a reshard left it behind (it must hold only store files,
// and no process may hold its lock). OK when there is none.
Status RemoveReshardLeftovers(Env* env, const std::string& dir);

}  // namespace kv
