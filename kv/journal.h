// Journal: makes a group commit durable with one fdatasync when it touched several pages.
//
// A group commit that would otherwise fdatasync k > 1 page files instead copies the pages'
// not-yet-durable tails (small by construction) into one journal entry and syncs only the
// journal. The page files stay the store of record: recovery puts journaled tails back into
// pages that lost them, and a checkpoint (sync every page, then empty the journal) keeps the
// journal short. See kv/README.md, "Journal".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kv/env.h"
#include "kv/status.h"

namespace kv {

struct JournalRange {
  uint32_t page;
  uint64_t generation;  // of the page file the bytes belong to
  uint64_t offset;      // where the bytes start in that page file
  std::string bytes;
};

// What replaying one journaled range into its page file found.
enum class ReplayOutcome {
  kApplied,   // the page lacked the bytes: cut there, the bytes written back and synced
  kPresent,   // the page holds them already
  kStale,     // a compaction replaced the page file since: its new file is durable
  kTooShort,  // the page file ends before the range starts: the bytes cannot go back
};

// Puts range `r` back into page file `path` if the page lost it (recovery and repair).
Status ReplayJournalRange(Env* env, const std::string& path, const JournalRange& r,
                          ReplayOutcome* outcome);

class Journal {
 public:
  // Opens (creating) the journal of the store in `dir`.
  static Status Open(Env* env, const std::string& dir, std::unique_ptr<Journal>* journal);

  // Appends one entry holding `ranges` and syncs it. REQUIRES: one caller at a time.
  Status Commit(const std::vector<JournalRange>& ranges);
  // Empties the journal (after every page has been synced). REQUIRES: one caller at a time.
  Status Reset();
  uint64_t size() const { return file_->Size(); }

  // Reads every whole entry of the journal in `dir` (a torn last entry is ignored).
  static Status ReadAll(Env* env, const std::string& dir, std::vector<JournalRange>* ranges);

 private:
  explicit Journal(std::unique_ptr<File> file) : file_(std::move(file)) {}
  std::unique_ptr<File> file_;
};

}  // namespace kv
