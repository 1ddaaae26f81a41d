// CheckVolume (fs/fsck.h). The whole namespace is loaded into memory (one small record per
// inode, dentry and chunk), the invariants are checked phase by phase, and each repair is
// applied to that model as well as written, so that later phases see the repaired state and
// a check without --repair reports what a repair would leave to fix.
#include "fs/fsck.h"

#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include "fs/inode.h"
#include "fs/keys.h"
#include "fs/records.h"
#include "fs/volume.h"

namespace fs {
namespace {

constexpr std::string_view kLostFound = "lost+found";
// Inode numbers are reserved in steps of this many (fs/README.md, "Inode numbers").
constexpr uint64_t kInoReserve = 1024;

struct Dentry {
  uint64_t parent;
  std::string name;
  uint64_t ino;
};

struct Node {
  Inode inode;
  std::vector<uint64_t> chunks;  // chunk indices, ascending
  std::vector<size_t> entries;   // indices into Checker::dentries_ naming this inode
  uint64_t subdirs = 0;          // directories among its entries (directories only)
  bool orphan_record = false;    // has an O key
  bool trash_record = false;     // has a T or W key
};

struct VersionKey {
  uint64_t version;
  kv::SequenceNumber sequence;
};

class Checker {
 public:
  Checker(kv::Store* store, const FsckOptions& options, FsckReport* report)
      : store_(store), options_(options), report_(report) {}

  kv::Status Run() {
    snapshot_ = store_->GetSnapshot();
    read_.snapshot = snapshot_.get();
    KV_RETURN_IF_ERROR(Load());
    if (!super_ok_) return status_;
    for (const RawDentry& d : raw_dentries_) raw_view_.push_back({d.parent, d.name, d.ino});
    ComputePaths();
    CheckRoot();
    CheckDentries();
    CheckTrashAndOrphanRecords();
    CheckReachability();
    CheckLinkCounts();
    KV_RETURN_IF_ERROR(CheckChunks());
    CheckXattrs();
    KV_RETURN_IF_ERROR(CheckVersions());
    CheckInodeLimit();
    ComputePaths();
    Count();
    if (status_.ok() && options_.repair && report_->repaired > 0) status_ = store_->Sync();
    return status_;
  }

 private:
  // ---- Loading ----
  kv::Status Scan(
      std::string_view prefix, bool keys_only,
      const std::function<void(std::string_view, std::string_view, kv::SequenceNumber)>& fn) {
    kv::ReadOptions ro = read_;
    ro.keys_only = keys_only;
    std::unique_ptr<kv::Iterator> it = store_->NewIterator(ro, prefix);
    for (it->SeekToFirst(); it->Valid(); it->Next()) fn(it->key(), it->value(), it->sequence());
    return it->status();
  }

  kv::Status Load() {
    std::string value;
    kv::Status s = store_->Get(read_, keys::Super(), &value);
    if (s.IsNotFound()) {
      Report(0, "/", "no file-system superblock (S key): not a kvfs store", nullptr);
      return kv::Status::OK();
    }
    KV_RETURN_IF_ERROR(s);
    if (!DecodeSuperblock(value, &super_) || super_.chunk_size == 0) {
      Report(0, "/", "file-system superblock does not decode", nullptr);
      return kv::Status::OK();
    }
    super_ok_ = true;

    KV_RETURN_IF_ERROR(Scan("I", false, [&](std::string_view key, std::string_view v, auto) {
      if (key.size() != keys::kInoEnd) return BadKey(key);
      uint64_t ino = keys::KeyIno(key);
      max_ino_ = std::max(max_ino_, ino);
      Inode inode;
      if (!DecodeInode(v, &inode)) {
        kv::WriteBatch fix;
        fix.Delete(key);
        Report(ino, "", "inode value does not decode (the inode is dropped)", &fix);
        return;
      }
      nodes_[ino].inode = std::move(inode);
    }));
    KV_RETURN_IF_ERROR(Scan("D", false, [&](std::string_view key, std::string_view v, auto) {
      DentryValue d;
      if (key.size() < keys::kInoEnd || !DecodeDentry(v, &d)) return BadKey(key);
      raw_dentries_.push_back(
          {keys::KeyIno(key), std::string(key.substr(keys::kInoEnd)), d.ino, d.type});
    }));
    KV_RETURN_IF_ERROR(Scan("C", true, [&](std::string_view key, std::string_view, auto) {
      if (key.size() != keys::kChunkKeySize) return BadKey(key);
      chunk_keys_[keys::KeyIno(key)].push_back(keys::ChunkIndex(key));
    }));
    KV_RETURN_IF_ERROR(Scan("X", true, [&](std::string_view key, std::string_view, auto) {
      if (key.size() <= keys::kInoEnd) return BadKey(key);
      xattr_keys_.emplace_back(key);
    }));
    KV_RETURN_IF_ERROR(
        Scan("V", false, [&](std::string_view key, std::string_view v, kv::SequenceNumber seq) {
          VersionRecord rec;
          if (key.size() != keys::kInoEnd + 8 || !DecodeVersion(v, &rec)) return BadKey(key);
          versions_[keys::KeyIno(key)].push_back({DecodeBE64(key.data() + keys::kInoEnd), seq});
        }));
    KV_RETURN_IF_ERROR(Scan("H", false, [&](std::string_view key, std::string_view v, auto) {
      HistoryLink h;
      if (key.size() != keys::kInoEnd || !DecodeHistoryLink(v, &h)) return BadKey(key);
      history_[keys::KeyIno(key)] = h;
    }));
    KV_RETURN_IF_ERROR(Scan("O", false, [&](std::string_view key, std::string_view v, auto) {
      PlaceRecord p;
      if (key.size() != keys::kInoEnd || !DecodePlace(v, &p)) return BadKey(key);
      orphan_records_.push_back(keys::KeyIno(key));
    }));
    KV_RETURN_IF_ERROR(Scan("T", false, [&](std::string_view key, std::string_view v, auto) {
      PlaceRecord p;
      if (key.size() != keys::kTrashKeySize || !DecodePlace(v, &p)) return BadKey(key);
      trash_records_.push_back({std::string(key), keys::TrashIno(key)});
    }));
    KV_RETURN_IF_ERROR(Scan("W", false, [&](std::string_view key, std::string_view v, auto) {
      PlaceRecord p;
      if (key.size() < keys::kInoEnd + 17 || !DecodePlace(v, &p)) return BadKey(key);
      trash_records_.push_back({std::string(key), DecodeBE64(key.data() + key.size() - 8)});
    }));
    KV_RETURN_IF_ERROR(Scan("N", false, [&](std::string_view key, std::string_view v, auto) {
      SnapshotRecord snap;
      if (!DecodeSnapshot(v, &snap)) return BadKey(key);
      ++report_->snapshots;
    }));
    return kv::Status::OK();
  }

  // A key of a known kind whose key or value has the wrong shape: dropped by repair.
  void BadKey(std::string_view key) {
    kv::WriteBatch fix;
    fix.Delete(key);
    uint64_t ino = key.size() >= keys::kInoEnd ? keys::KeyIno(key) : 0;
    Report(ino, "", std::string("malformed '") + key[0] + "' key or value", &fix);
  }

  // ---- Reporting and repairing ----
  // Records a problem; with --repair writes `fix` (when there is one) as one atomic batch.
  void Report(uint64_t ino, std::string path, std::string message, const kv::WriteBatch* fix) {
    FsckProblem p;
    p.path = path.empty() ? report_->PathOf(ino) : std::move(path);
    p.message = std::move(message);
    if (fix != nullptr && Apply(*fix)) {
      p.repaired = true;
      ++report_->repaired;
    }
    report_->problems.push_back(std::move(p));
  }

  // With --repair, writes `batch` as one atomic batch; true when it was written.
  bool Apply(const kv::WriteBatch& batch) {
    if (!options_.repair || !status_.ok()) return false;
    kv::WriteOptions wo;
    wo.flush = true;
    if (!batch.empty()) status_ = store_->Write(wo, batch);
    return status_.ok();
  }

  Node* Find(uint64_t ino) {
    auto it = nodes_.find(ino);
    return it == nodes_.end() ? nullptr : &it->second;
  }
  bool IsLiveDir(uint64_t ino) {
    Node* n = Find(ino);
    return n != nullptr && n->inode.is_dir() && !n->inode.trashed;
  }
  void PutInode(kv::WriteBatch* batch, uint64_t ino) {
    batch->Put(keys::Inode(ino), EncodeInode(nodes_[ino].inode));
  }

  // Paths of every inode reachable from the root through the accepted dentries.
  void ComputePaths() {
    report_->paths.clear();
    if (Find(kRootIno) == nullptr) return;
    std::map<uint64_t, std::vector<size_t>> children;
    const auto& list = dentries_checked_ ? dentries_ : raw_view_;
    for (size_t i = 0; i < list.size(); ++i) children[list[i].parent].push_back(i);
    report_->paths[kRootIno] = "/";
    std::deque<uint64_t> queue{kRootIno};
    while (!queue.empty()) {
      uint64_t dir = queue.front();
      queue.pop_front();
      const std::string& base = report_->paths[dir];
      for (size_t i : children[dir]) {
        const Dentry& d = list[i];
        if (report_->paths.count(d.ino) || Find(d.ino) == nullptr) continue;
        report_->paths[d.ino] = (base == "/" ? "" : base) + "/" + d.name;
        if (nodes_[d.ino].inode.is_dir()) queue.push_back(d.ino);
      }
    }
  }

  // ---- Phases ----
  void CheckRoot() {
    Node* root = Find(kRootIno);
    if (root != nullptr && root->inode.is_dir() && !root->inode.trashed) return;
    const char* what = root == nullptr ? "the root directory is missing"
                                       : "the root inode is not a live directory";
    Inode fresh;
    fresh.mode = S_IFDIR | 0755;
    fresh.nlink = 2;
    fresh.parent = kRootIno;
    if (root != nullptr) {
      fresh.uid = root->inode.uid;
      fresh.gid = root->inode.gid;
      fresh.atime_ns = fresh.mtime_ns = fresh.ctime_ns = root->inode.mtime_ns;
    }
    nodes_[kRootIno] = Node{};
    nodes_[kRootIno].inode = fresh;
    kv::WriteBatch fix;
    PutInode(&fix, kRootIno);
    Report(kRootIno, "/", std::string(what) + " (a new empty root is made)", &fix);
  }

  void CheckDentries() {
    for (const RawDentry& d : raw_dentries_) {
      std::string path = report_->PathOf(d.parent);
      path = (path == "/" ? "" : path) + "/" + d.name;
      const char* wrong = nullptr;
      Node* child = Find(d.ino);
      if (!IsLiveDir(d.parent)) {
        wrong = "entry in a directory that does not exist";
      } else if (d.name.empty() || d.name.size() > kNameMax ||
                 d.name.find('/') != std::string::npos || d.name == "." || d.name == ".." ||
                 d.name.find('\0') != std::string::npos) {
        wrong = "invalid name";
      } else if (d.ino == kRootIno || child == nullptr) {
        wrong = "entry names an inode that does not exist";
      } else if (child->inode.trashed) {
        wrong = "entry names a deleted (trashed) inode";
      }
      if (wrong != nullptr) {
        kv::WriteBatch fix;
        fix.Delete(keys::Dentry(d.parent, d.name));
        Report(0, path,
               std::string(wrong) + " (inode " + std::to_string(d.ino) + "; the entry is removed)",
               &fix);
        continue;
      }
      if (d.type != (child->inode.mode & S_IFMT)) {
        kv::WriteBatch fix;
        fix.Put(keys::Dentry(d.parent, d.name), EncodeDentry({d.ino, child->inode.mode & S_IFMT}));
        Report(0, path, "entry's file type disagrees with the inode's", &fix);
      }
      child->entries.push_back(dentries_.size());
      dentries_.push_back({d.parent, d.name, d.ino});
    }
    // A directory has exactly one name: keep the one its parent field and its own recorded
    // name agree with (else the one in its parent, else the first), drop the others.
    for (auto& [ino, node] : nodes_) {
      if (!node.inode.is_dir() || node.entries.size() <= 1) continue;
      auto score = [&](size_t e) {
        return (dentries_[e].parent == node.inode.parent ? 2 : 0) +
               (dentries_[e].name == node.inode.data ? 1 : 0);
      };
      size_t keep = node.entries[0];
      for (size_t e : node.entries) {
        if (score(e) > score(keep)) keep = e;
      }
      for (size_t e : node.entries) {
        if (e == keep) continue;
        kv::WriteBatch fix;
        fix.Delete(keys::Dentry(dentries_[e].parent, dentries_[e].name));
        Report(ino, "",
               "directory has a second name in inode " + std::to_string(dentries_[e].parent) +
                   " (removed)",
               &fix);
        dentries_[e].ino = 0;  // dropped
      }
      node.entries = {keep};
    }
    dentries_checked_ = true;
    for (auto& [ino, node] : nodes_) {
      if (!node.inode.is_dir() || node.entries.empty()) continue;
      const Dentry& d = dentries_[node.entries[0]];
      nodes_[d.parent].subdirs++;
      if (node.inode.parent != d.parent) {
        node.inode.parent = d.parent;
        kv::WriteBatch fix;
        PutInode(&fix, ino);
        Report(ino, "", "directory's parent field disagrees with its entry (fixed)", &fix);
      }
    }
  }

  void CheckTrashAndOrphanRecords() {
    for (const auto& [key, ino] : trash_records_) {
      Node* n = Find(ino);
      if (n != nullptr && n->inode.trashed) {
        n->trash_record = true;
        if (key[0] == keys::kTrash) ++report_->trash_entries;
        continue;
      }
      kv::WriteBatch fix;
      fix.Delete(key);
      Report(ino, "",
             std::string("trash record names ") +
                 (n == nullptr ? "an inode that does not exist" : "a live inode") +
                 " (record removed)",
             &fix);
    }
    for (uint64_t ino : orphan_records_) {
      Node* n = Find(ino);
      if (n != nullptr && !n->inode.trashed && n->entries.empty()) {
        n->orphan_record = true;
        continue;
      }
      kv::WriteBatch fix;
      fix.Delete(keys::Orphan(ino));
      Report(ino, "",
             std::string("open-but-unlinked record names ") +
                 (n == nullptr ? "an inode that does not exist" : "a linked inode") +
                 " (record removed)",
             &fix);
    }
    // A trashed inode no trash record reaches can be neither restored nor purged: bring it
    // back as a live inode (linked into lost+found by the next phase).
    for (auto& [ino, node] : nodes_) {
      if (!node.inode.trashed || node.trash_record) continue;
      node.inode.trashed = false;
      kv::WriteBatch fix;
      PutInode(&fix, ino);
      Report(ino, "", "deleted inode that no trash entry lists (recovered to /lost+found)", &fix);
    }
  }

  bool Reached(uint64_t ino) const { return report_->paths.count(ino) != 0; }

  void CheckReachability() {
    ComputePaths();
    for (;;) {
      std::vector<uint64_t> orphans;  // unreached, without any name
      uint64_t loop_dir = 0;          // an unreached directory with a name (a cycle)
      for (auto& [ino, node] : nodes_) {
        if (node.inode.trashed || node.orphan_record || Reached(ino)) continue;
        if (node.entries.empty()) {
          orphans.push_back(ino);
        } else if (node.inode.is_dir() && loop_dir == 0) {
          loop_dir = ino;
        }
      }
      if (orphans.empty() && loop_dir == 0) break;
      if (orphans.empty()) {
        // Every unreached inode has a name in an unreached directory: a directory cycle.
        // Cut it at one directory, which then becomes an orphan.
        Node& n = nodes_[loop_dir];
        const Dentry& d = dentries_[n.entries[0]];
        kv::WriteBatch fix;
        fix.Delete(keys::Dentry(d.parent, d.name));
        nodes_[d.parent].subdirs--;
        Report(loop_dir, "", "directory is in a cycle unreachable from the root (cut)", &fix);
        dentries_[n.entries[0]].ino = 0;
        n.entries.clear();
        continue;
      }
      for (uint64_t ino : orphans) LinkIntoLostFound(ino);
      ComputePaths();
    }
  }

  // Gives orphan `ino` the name "#<ino>" in /lost+found (made when missing).
  void LinkIntoLostFound(uint64_t ino) {
    uint64_t lf = LostFound();
    if (lf == 0) return;
    Node& n = nodes_[ino];
    Node& dir = nodes_[lf];
    std::string name = "#" + std::to_string(ino);
    kv::WriteBatch fix;
    fix.Put(keys::Dentry(lf, name), EncodeDentry({ino, n.inode.mode & S_IFMT}));
    n.entries.push_back(dentries_.size());
    dentries_.push_back({lf, name, ino});
    if (n.inode.is_dir()) {
      n.inode.parent = lf;
      dir.subdirs++;
      dir.inode.nlink = 2 + dir.subdirs;
      PutInode(&fix, lf);
    } else {
      n.inode.nlink = static_cast<uint32_t>(n.entries.size());
    }
    PutInode(&fix, ino);
    std::string what = n.inode.is_dir() ? "directory" : "inode";
    Report(ino, "",
           "orphan " + what + " not reachable from the root (moved to /lost+found/" + name + ")",
           &fix);
  }

  uint64_t LostFound() {
    for (size_t e = 0; e < dentries_.size(); ++e) {
      const Dentry& d = dentries_[e];
      if (d.parent == kRootIno && d.name == kLostFound && d.ino != 0 && IsLiveDir(d.ino)) {
        return d.ino;
      }
    }
    // Make it: a fresh inode number past everything in use, reserving as allocation does.
    uint64_t ino = std::max(super_.ino_limit, max_ino_ + 1);
    max_ino_ = ino;
    super_.ino_limit = ino + kInoReserve;
    Node& root = nodes_[kRootIno];
    Node& n = nodes_[ino];
    n.inode.mode = S_IFDIR | 0700;
    n.inode.nlink = 2;
    n.inode.parent = kRootIno;
    n.inode.data = std::string(kLostFound);
    n.inode.atime_ns = n.inode.mtime_ns = n.inode.ctime_ns = root.inode.mtime_ns;
    n.entries.push_back(dentries_.size());
    dentries_.push_back({kRootIno, std::string(kLostFound), ino});
    root.subdirs++;
    root.inode.nlink = 2 + root.subdirs;
    kv::WriteBatch batch;
    batch.Put(keys::Super(), EncodeSuperblock(super_));
    batch.Put(keys::Inode(ino), EncodeInode(n.inode));
    batch.Put(keys::Dentry(kRootIno, kLostFound), EncodeDentry({ino, S_IFDIR}));
    PutInode(&batch, kRootIno);
    report_->paths[ino] = "/lost+found";
    Apply(batch);
    return status_.ok() ? ino : 0;
  }

  void CheckLinkCounts() {
    for (auto& [ino, node] : nodes_) {
      if (node.inode.trashed) continue;
      uint32_t want = node.inode.is_dir() ? static_cast<uint32_t>(2 + node.subdirs)
                                          : static_cast<uint32_t>(node.entries.size());
      if (node.inode.is_dir() && node.orphan_record) want = 0;
      if (node.inode.nlink == want) continue;
      std::string msg = "link count " + std::to_string(node.inode.nlink) + ", expected " +
                        std::to_string(want) + " (fixed)";
      node.inode.nlink = want;
      kv::WriteBatch fix;
      PutInode(&fix, ino);
      Report(ino, "", msg, &fix);
    }
  }

  kv::Status CheckChunks() {
    const uint64_t cs = super_.chunk_size;
    for (auto& [ino, indices] : chunk_keys_) {
      report_->chunks += indices.size();
      Node* n = Find(ino);
      if (n == nullptr || !n->inode.is_reg() || n->inode.inline_data) {
        kv::WriteBatch fix;
        for (uint64_t i : indices) fix.Delete(keys::Chunk(ino, i));
        const char* owner = n == nullptr         ? "an inode that does not exist"
                            : !n->inode.is_reg() ? "an inode that is not a regular file"
                                                 : "a file whose data is inline";
        Report(ino, "",
               std::to_string(indices.size()) + " orphan data chunk(s) of " + owner + " (removed)",
               &fix);
        continue;
      }
      const uint64_t size = n->inode.size;
      kv::WriteBatch past;
      for (uint64_t i : indices) {
        if (i * cs >= size) past.Delete(keys::Chunk(ino, i));
      }
      if (!past.empty()) {
        Report(ino, "",
               std::to_string(past.size()) + " data chunk(s) at or past the file size " +
                   std::to_string(size) + " (removed)",
               &past);
      }
      uint64_t last = (size - 1) / cs;
      if (size == 0 || !std::binary_search(indices.begin(), indices.end(), last)) continue;
      std::string value;
      kv::Status s = store_->Get(read_, keys::Chunk(ino, last), &value);
      if (!s.ok()) {
        if (s.IsNotFound()) continue;
        return s;
      }
      uint64_t room = size - last * cs;
      if (value.size() > room) {
        kv::WriteBatch fix;
        fix.Put(keys::Chunk(ino, last), std::string_view(value).substr(0, room));
        Report(ino, "", "last data chunk runs past the file size (trimmed)", &fix);
      }
    }
    for (auto& [ino, node] : nodes_) {
      if (!node.inode.inline_data || node.inode.data.size() == node.inode.size) continue;
      std::string msg = "inline file of size " + std::to_string(node.inode.size) + " holds " +
                        std::to_string(node.inode.data.size()) + " bytes (size fixed)";
      node.inode.size = node.inode.data.size();
      kv::WriteBatch fix;
      PutInode(&fix, ino);
      Report(ino, "", msg, &fix);
    }
    return kv::Status::OK();
  }

  void CheckXattrs() {
    std::map<uint64_t, kv::WriteBatch> orphans;
    for (const std::string& key : xattr_keys_) {
      uint64_t ino = keys::KeyIno(key);
      if (Find(ino) == nullptr) orphans[ino].Delete(key);
    }
    for (auto& [ino, fix] : orphans) {
      Report(ino, "",
             std::to_string(fix.size()) +
                 " extended attribute(s) of an inode that does not exist (removed)",
             &fix);
    }
  }

  kv::Status CheckVersions() {
    // Walk every history chain from its head (an inode that exists); each inode a chain
    // reaches owns its V keys.
    std::set<uint64_t> owned;
    for (auto& [ino, node] : nodes_) {
      owned.insert(ino);
      std::set<uint64_t> seen{ino};
      uint64_t cur = ino;
      while (history_.count(cur) && history_[cur].prev != 0) {  // prev 0: pruned there
        uint64_t prev = history_[cur].prev;
        const char* wrong = nullptr;
        if (seen.count(prev)) {
          wrong = "history link closes a cycle";
        } else if (!versions_.count(prev)) {
          // The versions of one file of the chain are gone: link past it to the next file
          // that has some, so that the older history stays reachable.
          uint64_t next = prev;
          std::set<uint64_t> skipped;
          while (!versions_.count(next) && history_.count(next) && !seen.count(next) &&
                 skipped.insert(next).second) {
            next = history_[next].prev;
          }
          if (versions_.count(next) && !seen.count(next)) {
            history_[cur].prev = next;
            kv::WriteBatch fix;
            fix.Put(keys::History(cur), EncodeHistoryLink(history_[cur]));
            Report(ino, "",
                   "history link points to a file without versions (inode " + std::to_string(prev) +
                       "; relinked to inode " + std::to_string(next) + ")",
                   &fix);
            continue;
          }
          wrong = "history link points to a file without versions";
        }
        if (wrong != nullptr) {
          // End the chain here; the link keeps its base, so the numbers of the versions
          // before it stay as they are.
          history_[cur].prev = 0;
          kv::WriteBatch fix;
          fix.Put(keys::History(cur), EncodeHistoryLink(history_[cur]));
          Report(ino, "",
                 std::string(wrong) + " (inode " + std::to_string(cur) + " -> " +
                     std::to_string(prev) + "; the history ends there now)",
                 &fix);
          break;
        }
        seen.insert(prev);
        owned.insert(prev);
        cur = prev;
      }
    }
    for (auto& [ino, link] : history_) {
      if (owned.count(ino)) continue;
      kv::WriteBatch fix;
      fix.Delete(keys::History(ino));
      Report(ino, "", "history link of a file no history reaches (removed)", &fix);
    }
    for (auto& [ino, list] : versions_) {
      report_->versions += list.size();
      Node* n = Find(ino);
      if (!owned.count(ino)) {
        kv::WriteBatch fix;
        for (const VersionKey& v : list) fix.Delete(keys::Version(ino, v.version));
        Report(ino, "",
               std::to_string(list.size()) + " version(s) of a file no history reaches (removed)",
               &fix);
        continue;
      }
      kv::WriteBatch fix;
      std::string first_problem;
      for (const VersionKey& v : list) {
        std::string why;
        if (n != nullptr && v.version > n->inode.version) {
          why = "version " + std::to_string(v.version) + " is newer than the file's count " +
                std::to_string(n->inode.version);
        } else {
          kv::ReadOptions at;
          at.sequence = v.sequence;
          std::string value;
          Inode old;
          kv::Status s = store_->Get(at, keys::Inode(ino), &value);
          if (!s.ok() && !s.IsNotFound()) return s;
          if (s.IsNotFound() || !DecodeInode(value, &old)) {
            why = "version " + std::to_string(v.version) + "'s inode is gone at its sequence " +
                  std::to_string(v.sequence);
          }
        }
        if (why.empty()) continue;
        fix.Delete(keys::Version(ino, v.version));
        if (first_problem.empty()) first_problem = why;
      }
      if (!fix.empty()) {
        Report(ino, "",
               "broken version history: " + first_problem + " (" + std::to_string(fix.size()) +
                   " version(s) removed)",
               &fix);
      }
    }
    return kv::Status::OK();
  }

  void CheckInodeLimit() {
    for (auto& [ino, list] : versions_) max_ino_ = std::max(max_ino_, ino);
    if (super_.ino_limit > max_ino_) return;
    std::string msg = "next inode number " + std::to_string(super_.ino_limit) +
                      " is already in use (up to " + std::to_string(max_ino_) + "; fixed)";
    super_.ino_limit = max_ino_ + 1;
    kv::WriteBatch fix;
    fix.Put(keys::Super(), EncodeSuperblock(super_));
    Report(0, "/", msg, &fix);
  }

  void Count() {
    for (auto& [ino, node] : nodes_) {
      ++report_->inodes;
      if (node.inode.is_dir()) ++report_->directories;
      if (node.inode.is_reg()) ++report_->files;
      if (node.inode.is_symlink()) ++report_->symlinks;
    }
  }

  struct RawDentry {
    uint64_t parent;
    std::string name;
    uint64_t ino;
    uint32_t type;
  };

  kv::Store* const store_;
  const FsckOptions options_;
  FsckReport* const report_;
  kv::Status status_;
  std::shared_ptr<const kv::Snapshot> snapshot_;
  kv::ReadOptions read_;

  Superblock super_;
  bool super_ok_ = false;
  uint64_t max_ino_ = 0;
  std::map<uint64_t, Node> nodes_;
  std::vector<RawDentry> raw_dentries_;
  std::vector<Dentry> raw_view_;  // the raw dentries, for naming before they are checked
  std::vector<Dentry> dentries_;  // accepted dentries (ino 0: dropped later)
  bool dentries_checked_ = false;
  std::map<uint64_t, std::vector<uint64_t>> chunk_keys_;
  std::vector<std::string> xattr_keys_;
  std::map<uint64_t, std::vector<VersionKey>> versions_;
  std::map<uint64_t, HistoryLink> history_;
  std::vector<uint64_t> orphan_records_;
  std::vector<std::pair<std::string, uint64_t>> trash_records_;
};

}  // namespace

std::string FsckReport::PathOf(uint64_t ino) const {
  auto it = paths.find(ino);
  if (it != paths.end()) return it->second;
  return "<inode " + std::to_string(ino) + ">";
}

std::string FsckReport::PathOfKey(std::string_view key) const {
  if (!key.empty() && key[0] == keys::kDentry && key.size() > keys::kInoEnd) {
    const std::string dir = PathOf(keys::KeyIno(key));
    return (dir == "/" ? "" : dir) + "/" + std::string(key.substr(keys::kInoEnd));
  }
  if (key.size() >= keys::kInoEnd &&
      std::string_view("ICXVHO").find(key[0]) != std::string_view::npos) {
    return PathOf(keys::KeyIno(key));
  }
  return DescribeKey(key);
}

std::string FsckReport::DescribeKey(std::string_view key) const {
  if (key.empty()) return "<empty key>";
  if (key[0] == keys::kSuper) return "<file-system superblock>";
  if (key.size() < keys::kInoEnd) return "<key '" + std::string(1, key[0]) + "'>";
  uint64_t ino = keys::KeyIno(key);
  switch (key[0]) {
    case keys::kInode:
      return PathOf(ino) + " (inode)";
    case keys::kDentry:
      return (ino == 1 ? "" : PathOf(ino)) + "/" + std::string(key.substr(keys::kInoEnd)) +
             " (directory entry)";
    case keys::kChunk:
      if (key.size() != keys::kChunkKeySize) break;
      return PathOf(ino) + " (data chunk " + std::to_string(keys::ChunkIndex(key)) + ")";
    case keys::kXattr:
      return PathOf(ino) + " (xattr " + std::string(key.substr(keys::kInoEnd)) + ")";
    case keys::kVersion:
      return PathOf(ino) + " (version record)";
    case keys::kHistory:
      return PathOf(ino) + " (history link)";
    case keys::kOrphan:
      return PathOf(ino) + " (open-but-unlinked record)";
    default:
      break;
  }
  return "<key '" + std::string(1, key[0]) + "'>";
}

kv::Status CheckVolume(kv::Store* store, const FsckOptions& options, FsckReport* report) {
  *report = FsckReport();
  Checker checker(store, options, report);
  return checker.Run();
}

}  // namespace fs
