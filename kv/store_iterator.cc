// The store iterator: merges ordered batches read from one page (a prefix within one shard
// group) or from every page, as of one sequence number.
#include <memory>

#include "kv/page_store.h"

namespace kv {
namespace {

constexpr size_t kBatchItems = 64;
constexpr size_t kBatchBytes = 1 << 20;

// Reads one page's keys under the prefix in batches; the page lock is held only while a
// batch is read, never between calls.
class PageCursor {
 public:
  PageCursor(Page* page, std::string_view prefix, SequenceNumber at, bool keys_only)
      : page_(page), prefix_(prefix), at_(at), keys_only_(keys_only) {}

  Status Seek(std::string_view target) {
    items_.clear();
    pos_ = 0;
    exhausted_ = false;
    return Load(target, false);
  }
  bool Valid() const { return pos_ < items_.size(); }
  const Page::ScanItem& item() const { return items_[pos_]; }
  Status Next() {
    if (++pos_ < items_.size() || exhausted_) return Status::OK();
    std::string last = std::move(items_.back().key);
    items_.clear();
    pos_ = 0;
    return Load(last, true);
  }

 private:
  Status Load(std::string_view start, bool exclusive) {
    return page_->Scan(prefix_, start, exclusive, at_, keys_only_, kBatchItems, kBatchBytes,
                       &items_, &exhausted_);
  }

  Page* page_;
  const std::string prefix_;
  const SequenceNumber at_;
  const bool keys_only_;
  std::vector<Page::ScanItem> items_;
  size_t pos_ = 0;
  bool exhausted_ = false;
};

class StoreIterator final : public Iterator {
 public:
  StoreIterator(PageStore* store, std::shared_ptr<const Snapshot> pin, SequenceNumber at,
                bool keys_only, std::string_view prefix)
      : pin_(std::move(pin)), prefix_(prefix) {
    std::string_view part;
    if (store->sharder().PrefixShardPart(prefix, &part)) {
      cursors_.push_back(std::make_unique<PageCursor>(
          store->page(store->PageOfPrefix(prefix, part)), prefix, at, keys_only));
    } else {
      const PageRange pages = PagesForPrefix(store->sharder(), prefix, store->ShardCount());
      for (uint32_t i = pages.first; i < pages.first + pages.count; ++i) {
        cursors_.push_back(std::make_unique<PageCursor>(store->page(i), prefix, at, keys_only));
      }
    }
  }

  bool Valid() const override { return current_ != nullptr; }
  void SeekToFirst() override { Seek(prefix_); }
  void Seek(std::string_view target) override {
    for (auto& c : cursors_) {
      if (status_.ok()) status_ = c->Seek(target);
    }
    PickCurrent();
  }
  void Next() override {
    if (current_ == nullptr) return;
    status_ = current_->Next();
    PickCurrent();
  }
  std::string_view key() const override { return current_->item().key; }
  std::string_view value() const override { return current_->item().value; }
  SequenceNumber sequence() const override { return current_->item().sequence; }
  Status status() const override { return status_; }

 private:
  void PickCurrent() {
    current_ = nullptr;
    if (!status_.ok()) return;
    for (auto& c : cursors_) {
      if (c->Valid() && (current_ == nullptr || c->item().key < current_->item().key)) {
        current_ = c.get();
      }
    }
  }

  std::shared_ptr<const Snapshot> pin_;
  const std::string prefix_;
  std::vector<std::unique_ptr<PageCursor>> cursors_;
  PageCursor* current_ = nullptr;
  Status status_;
};

}  // namespace

std::unique_ptr<Iterator> NewStoreIterator(PageStore* store, std::shared_ptr<const Snapshot> pin,
                                           SequenceNumber at, bool keys_only,
                                           std::string_view prefix) {
  return std::make_unique<StoreIterator>(store, std::move(pin), at, keys_only, prefix);
}

}  // namespace kv
