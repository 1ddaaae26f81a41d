// Unit tests of POSIX ACLs: the pure rules of fs/acl.h, the superblock's feature flag, and the
// system.posix_acl_* xattrs of an fs::Volume (on a real store in a temp directory).
#include "fs/acl.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <vector>

#include "fs/keys.h"
#include "fs/records.h"
#include "fs/volume.h"
#include "kv/store.h"
#include "tests/fs/volume_fixture.h"

namespace fs {
namespace {

using acl::Acl;
using acl::kGroup;
using acl::kGroupObj;
using acl::kMask;
using acl::kOther;
using acl::kUser;
using acl::kUserObj;

// An xattr value in the Linux format, built by hand (not with acl::Encode): a little-endian
// version word, then {u16 tag, u16 perm, u32 id} per entry, in the order given.
std::string AclValue(const Acl& entries, uint32_t version = 2) {
  std::string out;
  auto le = [&out](uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  };
  le(version, 4);
  for (const acl::Entry& e : entries) {
    le(e.tag, 2);
    le(e.perm, 2);
    le(e.id, 4);
  }
  return out;
}

// ---- The pure rules ----

TEST(AclParseTest, AcceptsAnyOrderAndEncodesSorted) {
  // Unsorted, and a non-named entry with an id, which is ignored (as by the kernel).
  const Acl given = {{kOther, 4},      {kUser, 6, 1000}, {kMask, 7},    {kGroup, 5, 50},
                     {kUserObj, 7, 3}, {kGroupObj, 5},   {kUser, 4, 7}, {kGroup, 1, 1000}};
  const Acl sorted = {{kUserObj, 7},   {kUser, 4, 7},     {kUser, 6, 1000}, {kGroupObj, 5},
                      {kGroup, 5, 50}, {kGroup, 1, 1000}, {kMask, 7},       {kOther, 4}};
  Acl parsed;
  ASSERT_TRUE(acl::Parse(AclValue(given), &parsed));
  EXPECT_EQ(parsed, sorted);
  EXPECT_EQ(acl::Encode(parsed), AclValue(sorted));

  const Acl minimal = {{kUserObj, 6}, {kGroupObj, 4}, {kOther, 0}};
  ASSERT_TRUE(acl::Parse(AclValue({minimal[2], minimal[0], minimal[1]}), &parsed));
  EXPECT_EQ(parsed, minimal);
  EXPECT_EQ(acl::Encode(parsed), AclValue(minimal));
}

TEST(AclParseTest, RejectsMalformedValues) {
  const acl::Entry u = {kUserObj, 7}, g = {kGroupObj, 5}, o = {kOther, 4}, m = {kMask, 7};
  const std::string minimal = AclValue({u, g, o});
  const struct {
    const char* what;
    std::string value;
  } cases[] = {
      {"empty", ""},
      {"version 1", AclValue({u, g, o}, 1)},
      {"version 3", AclValue({u, g, o}, 3)},
      {"short header", minimal.substr(0, 3)},
      {"no entries", minimal.substr(0, 4)},
      {"partial entry", minimal + std::string(4, '\0')},
      {"one byte over", minimal + '\0'},
      {"unknown tag", AclValue({u, g, o, {0x40, 4}})},
      {"perm > 7", AclValue({{kUserObj, 8}, g, o})},
      {"no USER_OBJ", AclValue({g, o})},
      {"no GROUP_OBJ", AclValue({u, o})},
      {"no OTHER", AclValue({u, g})},
      {"two USER_OBJ", AclValue({u, {kUserObj, 6}, g, o})},
      {"two GROUP_OBJ", AclValue({u, g, g, o})},
      {"two OTHER", AclValue({u, g, o, {kOther, 0}})},
      {"two MASK", AclValue({u, {kUser, 4, 9}, g, m, {kMask, 5}, o})},
      {"duplicate user id", AclValue({u, {kUser, 4, 9}, {kUser, 6, 9}, g, m, o})},
      {"duplicate group id", AclValue({u, g, {kGroup, 4, 9}, {kGroup, 4, 9}, m, o})},
      {"named user, no MASK", AclValue({u, {kUser, 4, 9}, g, o})},
      {"named group, no MASK", AclValue({u, g, {kGroup, 4, 9}, o})},
      {"named user, undefined id", AclValue({u, {kUser, 4, acl::kUndefinedId}, g, m, o})},
      {"named group, undefined id", AclValue({u, g, {kGroup, 4, acl::kUndefinedId}, m, o})},
  };
  for (const auto& c : cases) {
    Acl parsed;
    EXPECT_FALSE(acl::Parse(c.value, &parsed)) << c.what;
  }
  // The same id as a named user and a named group is two different entries.
  Acl parsed;
  EXPECT_TRUE(acl::Parse(AclValue({u, {kUser, 4, 9}, g, {kGroup, 4, 9}, m, o}), &parsed));
}

TEST(AclModeTest, ModeBitsAndIsMinimal) {
  const Acl minimal = {{kUserObj, 6}, {kGroupObj, 5}, {kOther, 1}};
  EXPECT_EQ(acl::ModeBits(minimal), 0651u);
  EXPECT_TRUE(acl::IsMinimal(minimal));

  const Acl named = {{kUserObj, 7}, {kUser, 7, 1000}, {kGroupObj, 5}, {kMask, 2}, {kOther, 0}};
  EXPECT_EQ(acl::ModeBits(named), 0720u);  // group bits from the mask, not GROUP_OBJ
  EXPECT_FALSE(acl::IsMinimal(named));

  const Acl mask_only = {{kUserObj, 7}, {kGroupObj, 7}, {kMask, 4}, {kOther, 0}};
  EXPECT_EQ(acl::ModeBits(mask_only), 0740u);
  EXPECT_FALSE(acl::IsMinimal(mask_only));
}

TEST(AclModeTest, ChmodSetsOwnerMaskAndOther) {
  Acl with_mask = {{kUserObj, 6},   {kUser, 5, 1000}, {kGroupObj, 4},
                   {kGroup, 6, 50}, {kMask, 6},       {kOther, 4}};
  acl::Chmod(&with_mask, S_IFREG | 0710);
  EXPECT_EQ(with_mask, (Acl{{kUserObj, 7},
                            {kUser, 5, 1000},
                            {kGroupObj, 4},
                            {kGroup, 6, 50},
                            {kMask, 1},
                            {kOther, 0}}));
  EXPECT_EQ(acl::ModeBits(with_mask), 0710u);

  Acl without_mask = {{kUserObj, 6}, {kGroupObj, 4}, {kOther, 4}};
  acl::Chmod(&without_mask, 0751);
  EXPECT_EQ(without_mask, (Acl{{kUserObj, 7}, {kGroupObj, 5}, {kOther, 1}}));
}

TEST(AclModeTest, ApplyCreateModeFollowsCreateMasq) {
  // With a mask: the mask stands for the group class; named entries and GROUP_OBJ stay.
  Acl a = {{kUserObj, 7}, {kUser, 7, 1000}, {kGroupObj, 5}, {kMask, 7}, {kOther, 5}};
  uint32_t mode = S_IFREG | 0666;
  acl::ApplyCreateMode(&a, &mode);
  EXPECT_EQ(a, (Acl{{kUserObj, 6}, {kUser, 7, 1000}, {kGroupObj, 5}, {kMask, 6}, {kOther, 4}}));
  EXPECT_EQ(mode, static_cast<uint32_t>(S_IFREG | 0664));

  // Without a mask GROUP_OBJ is limited; the ACL limits the mode too; type and special
  // bits are kept.
  Acl b = {{kUserObj, 6}, {kGroupObj, 7}, {kOther, 0}};
  mode = S_IFDIR | S_ISGID | 0755;
  acl::ApplyCreateMode(&b, &mode);
  EXPECT_EQ(b, (Acl{{kUserObj, 6}, {kGroupObj, 5}, {kOther, 0}}));
  EXPECT_EQ(mode, static_cast<uint32_t>(S_IFDIR | S_ISGID | 0650));
}

// ---- ACLs in a volume ----

const Acl kMinimal = {{kUserObj, 7}, {kGroupObj, 5}, {kOther, 4}};
// The default ACL of the create tests: user::rwx user:1000:rwx group::r-x mask::rwx other::r-x.
const Acl kDefault = {{kUserObj, 7}, {kUser, 7, 1000}, {kGroupObj, 5}, {kMask, 7}, {kOther, 5}};

class AclVolumeTest : public VolumeFixture {
 protected:
  void Configure(VolumeOptions* options) override {
    options->trash_retention_ns = 0;
    options->posix_acl = AclsOn();
  }
  virtual bool AclsOn() const { return true; }

  Attr MakeFile(Ino parent, const std::string& name, uint32_t mode, const Caller& caller) {
    Attr a;
    uint64_t fh;
    Errno err = vol_->Create(parent, name, mode, O_RDWR, caller, &a, &fh);
    EXPECT_TRUE(err.ok()) << err.ToString();
    if (err.ok()) {
      EXPECT_TRUE(vol_->Release(fh).ok());
    }
    return a;
  }
  Attr MakeDir(Ino parent, const std::string& name, uint32_t mode, const Caller& caller) {
    Attr a;
    Errno err = vol_->Mkdir(parent, name, mode, caller, &a);
    EXPECT_TRUE(err.ok()) << err.ToString();
    return a;
  }
  uint32_t ModeOf(Ino ino) {
    Attr a;
    Errno err = vol_->GetAttr(ino, &a);
    EXPECT_TRUE(err.ok()) << err.ToString();
    return a.mode;
  }
  int SetAcl(Ino ino, std::string_view name, const std::string& value) {
    return vol_->SetXattr(ino, name, value, 0).value();
  }
  // The xattr's value, or "errno <n>".
  std::string GetAcl(Ino ino, std::string_view name) {
    std::string v;
    Errno err = vol_->GetXattr(ino, name, &v);
    return err.ok() ? v : "errno " + std::to_string(err.value());
  }
  std::vector<std::string> Names(Ino ino) {
    std::vector<std::string> names;
    Errno err = vol_->ListXattr(ino, &names);
    EXPECT_TRUE(err.ok()) << err.ToString();
    return names;
  }
  Superblock StoredSuperblock() {
    std::string value;
    Superblock sb;
    kv::Status s = vol_->store()->Get(kv::ReadOptions(), keys::Super(), &value);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(DecodeSuperblock(value, &sb));
    return sb;
  }

  static std::string Err(int e) { return "errno " + std::to_string(e); }
};

class NoAclVolumeTest : public AclVolumeTest {
 protected:
  bool AclsOn() const override { return false; }
};

TEST_F(NoAclVolumeTest, AclNamesAreNotSupported) {
  EXPECT_FALSE(vol_->posix_acl());
  const Ino f = MakeFile(kRootIno, "f", 0644, caller_).ino;
  const std::string value = AclValue(kDefault);
  for (std::string_view name : {acl::kAccessName, acl::kDefaultName}) {
    EXPECT_EQ(SetAcl(f, name, value), EOPNOTSUPP) << name;
    EXPECT_EQ(SetAcl(kRootIno, name, value), EOPNOTSUPP) << name;
    EXPECT_EQ(GetAcl(f, name), Err(EOPNOTSUPP)) << name;
    EXPECT_EQ(vol_->RemoveXattr(f, name).value(), EOPNOTSUPP) << name;
  }
  EXPECT_EQ(ModeOf(f), static_cast<uint32_t>(S_IFREG | 0644));
  ASSERT_TRUE(vol_->SetXattr(f, "user.x", "1", 0).ok());
  EXPECT_EQ(Names(f), (std::vector<std::string>{"user.x"}));
}

// An ACL xattr already in the store of a volume without ACLs (put there behind the volume's
// back, as code that knew no ACLs could have) is not listed, as it cannot be read either.
TEST_F(AclVolumeTest, AccessAclSetsTheModeAndMinimalOnesAreNotStored) {
  EXPECT_TRUE(vol_->posix_acl());
  const Ino f = MakeFile(kRootIno, "f", 0644, caller_).ino;
  const Acl named = {{kUserObj, 6}, {kUser, 4, 1000}, {kGroupObj, 4}, {kMask, 7}, {kOther, 0}};
  ASSERT_EQ(
      SetAcl(f, acl::kAccessName, AclValue({named[4], named[1], named[3], named[0], named[2]})), 0);
  EXPECT_EQ(GetAcl(f, acl::kAccessName), AclValue(named));
  EXPECT_EQ(ModeOf(f), static_cast<uint32_t>(S_IFREG | 0670));  // group bits = mask
  EXPECT_EQ(Names(f), (std::vector<std::string>{std::string(acl::kAccessName)}));

  ASSERT_EQ(SetAcl(f, acl::kAccessName, AclValue(kMinimal)), 0);
  EXPECT_EQ(GetAcl(f, acl::kAccessName), Err(ENODATA));
  EXPECT_EQ(ModeOf(f), static_cast<uint32_t>(S_IFREG | 0754));
  EXPECT_TRUE(Names(f).empty());
  Reopen();
  EXPECT_EQ(GetAcl(f, acl::kAccessName), Err(ENODATA));
  EXPECT_EQ(ModeOf(f), static_cast<uint32_t>(S_IFREG | 0754));
}

TEST_F(AclVolumeTest, KillSgidFlagClearsSetgidWithAnAccessAcl) {
  const Ino f = MakeFile(kRootIno, "f", 02770, caller_).ino;
  const Acl named = {{kUserObj, 7}, {kUser, 4, 1234}, {kGroupObj, 7}, {kMask, 7}, {kOther, 0}};
  // A caller in the group (no flag) keeps the bit; the flag clears it.
  ASSERT_EQ(vol_->SetXattr(f, acl::kAccessName, AclValue(named), 0).value(), 0);
  EXPECT_EQ(ModeOf(f), static_cast<uint32_t>(S_IFREG | 02770));
  ASSERT_EQ(vol_->SetXattr(f, acl::kAccessName, AclValue(named), kXattrAclKillSgid).value(), 0);
  EXPECT_EQ(ModeOf(f), static_cast<uint32_t>(S_IFREG | 0770));
  // It only concerns access ACLs.
  const Ino d = MakeDir(kRootIno, "d", 02775, caller_).ino;
  ASSERT_EQ(vol_->SetXattr(d, acl::kDefaultName, AclValue(kDefault), kXattrAclKillSgid).value(), 0);
  ASSERT_EQ(vol_->SetXattr(d, "user.x", "1", kXattrAclKillSgid).value(), 0);
  EXPECT_EQ(ModeOf(d), static_cast<uint32_t>(S_IFDIR | 02775));
}

TEST_F(AclVolumeTest, MalformedAclIsInvalidAndChangesNothing) {
  const Ino f = MakeFile(kRootIno, "f", 0644, caller_).ino;
  const Ino d = MakeDir(kRootIno, "d", 0755, caller_).ino;
  ASSERT_EQ(SetAcl(f, acl::kAccessName, AclValue(kDefault)), 0);
  const std::string bad = AclValue({{kUserObj, 0}, {kUser, 7, 5}, {kGroupObj, 0}, {kOther, 0}});
  EXPECT_EQ(SetAcl(f, acl::kAccessName, bad), EINVAL);
  EXPECT_EQ(SetAcl(f, acl::kAccessName, "junk"), EINVAL);
  EXPECT_EQ(SetAcl(d, acl::kDefaultName, bad), EINVAL);
  EXPECT_EQ(SetAcl(d, acl::kAccessName, bad), EINVAL);
  EXPECT_EQ(GetAcl(f, acl::kAccessName), AclValue(kDefault));
  EXPECT_EQ(ModeOf(f), static_cast<uint32_t>(S_IFREG | 0775));
  EXPECT_EQ(GetAcl(d, acl::kDefaultName), Err(ENODATA));
  EXPECT_EQ(GetAcl(d, acl::kAccessName), Err(ENODATA));
  EXPECT_EQ(ModeOf(d), static_cast<uint32_t>(S_IFDIR | 0755));
}

TEST_F(AclVolumeTest, DefaultAclOnlyOnDirectories) {
  const Ino f = MakeFile(kRootIno, "f", 0644, caller_).ino;
  const Ino d = MakeDir(kRootIno, "d", 0700, caller_).ino;
  const Acl unsorted = {kDefault[4], kDefault[2], kDefault[0], kDefault[3], kDefault[1]};
  EXPECT_EQ(SetAcl(f, acl::kDefaultName, AclValue(unsorted)), EACCES);
  EXPECT_EQ(GetAcl(f, acl::kDefaultName), Err(ENODATA));
  EXPECT_EQ(ModeOf(f), static_cast<uint32_t>(S_IFREG | 0644));

  ASSERT_EQ(SetAcl(d, acl::kDefaultName, AclValue(unsorted)), 0);
  EXPECT_EQ(GetAcl(d, acl::kDefaultName), AclValue(kDefault));
  EXPECT_EQ(ModeOf(d), static_cast<uint32_t>(S_IFDIR | 0700));  // a default ACL leaves it
  EXPECT_EQ(Names(d), (std::vector<std::string>{std::string(acl::kDefaultName)}));
}

TEST_F(AclVolumeTest, ChmodRewritesTheAccessAcl) {
  const Ino f = MakeFile(kRootIno, "f", 0644, caller_).ino;
  const Ino plain = MakeFile(kRootIno, "plain", 0644, caller_).ino;
  ASSERT_EQ(
      SetAcl(f, acl::kAccessName,
             AclValue({{kUserObj, 6}, {kUser, 7, 1000}, {kGroupObj, 4}, {kMask, 6}, {kOther, 4}})),
      0);
  SetAttrRequest chmod;
  chmod.valid = SetAttrRequest::kMode;
  chmod.mode = 0750;
  Attr a;
  ASSERT_TRUE(vol_->SetAttr(f, chmod, &a).ok());
  EXPECT_EQ(a.mode, static_cast<uint32_t>(S_IFREG | 0750));
  const std::string expected =
      AclValue({{kUserObj, 7}, {kUser, 7, 1000}, {kGroupObj, 4}, {kMask, 5}, {kOther, 0}});
  EXPECT_EQ(GetAcl(f, acl::kAccessName), expected);
  // A file without an access ACL does not get one.
  ASSERT_TRUE(vol_->SetAttr(plain, chmod, &a).ok());
  EXPECT_EQ(GetAcl(plain, acl::kAccessName), Err(ENODATA));
  Reopen();
  EXPECT_EQ(GetAcl(f, acl::kAccessName), expected);
  EXPECT_EQ(ModeOf(f), static_cast<uint32_t>(S_IFREG | 0750));
}

TEST_F(AclVolumeTest, NewNodesInheritTheDefaultAclAndIgnoreTheUmask) {
  const Ino d = MakeDir(kRootIno, "d", 0755, caller_).ino;
  ASSERT_EQ(SetAcl(d, acl::kDefaultName, AclValue(kDefault)), 0);
  const Caller masked{1000, 1000, 077};

  // The example of posix_acl_create_masq: 0666 under kDefault.
  const Attr f = MakeFile(d, "f", 0666, masked);
  EXPECT_EQ(f.mode, static_cast<uint32_t>(S_IFREG | 0664));
  EXPECT_EQ(ModeOf(f.ino), static_cast<uint32_t>(S_IFREG | 0664));
  EXPECT_EQ(GetAcl(f.ino, acl::kAccessName),
            AclValue({{kUserObj, 6}, {kUser, 7, 1000}, {kGroupObj, 5}, {kMask, 6}, {kOther, 4}}));
  EXPECT_EQ(GetAcl(f.ino, acl::kDefaultName), Err(ENODATA));

  Attr n;
  ASSERT_TRUE(vol_->Mknod(d, "n", S_IFREG | 0640, 0, masked, &n).ok());
  EXPECT_EQ(ModeOf(n.ino), static_cast<uint32_t>(S_IFREG | 0640));
  EXPECT_EQ(GetAcl(n.ino, acl::kAccessName),
            AclValue({{kUserObj, 6}, {kUser, 7, 1000}, {kGroupObj, 5}, {kMask, 4}, {kOther, 0}}));
  EXPECT_EQ(Names(n.ino), (std::vector<std::string>{std::string(acl::kAccessName)}));

  const Attr sub = MakeDir(d, "sub", 0777, masked);
  EXPECT_EQ(ModeOf(sub.ino), static_cast<uint32_t>(S_IFDIR | 0775));
  EXPECT_EQ(GetAcl(sub.ino, acl::kAccessName), AclValue(kDefault));
  EXPECT_EQ(GetAcl(sub.ino, acl::kDefaultName), AclValue(kDefault));
  // ... and passes it on.
  EXPECT_EQ(ModeOf(MakeFile(sub.ino, "g", 0600, masked).ino),
            static_cast<uint32_t>(S_IFREG | 0600));

  Attr l;
  ASSERT_TRUE(vol_->Symlink(d, "l", "f", masked, &l).ok());
  EXPECT_EQ(ModeOf(l.ino), static_cast<uint32_t>(S_IFLNK | 0777));
  EXPECT_TRUE(Names(l.ino).empty());

  // A minimal default ACL limits the mode (not the umask) and gives no access ACL.
  const Ino m = MakeDir(kRootIno, "m", 0755, caller_).ino;
  ASSERT_EQ(SetAcl(m, acl::kDefaultName, AclValue({{kUserObj, 7}, {kGroupObj, 5}, {kOther, 0}})),
            0);
  const Ino mf = MakeFile(m, "f", 0666, masked).ino;
  EXPECT_EQ(ModeOf(mf), static_cast<uint32_t>(S_IFREG | 0640));
  EXPECT_TRUE(Names(mf).empty());
  Reopen();
  EXPECT_EQ(GetAcl(f.ino, acl::kAccessName),
            AclValue({{kUserObj, 6}, {kUser, 7, 1000}, {kGroupObj, 5}, {kMask, 6}, {kOther, 4}}));
  EXPECT_EQ(GetAcl(sub.ino, acl::kDefaultName), AclValue(kDefault));
}

TEST_F(AclVolumeTest, UmaskAppliesWithoutADefaultAcl) {
  const Caller masked{1000, 1000, 077};
  const Ino f = MakeFile(kRootIno, "f", 0666, masked).ino;
  EXPECT_EQ(ModeOf(f), static_cast<uint32_t>(S_IFREG | 0600));
  Attr n;
  ASSERT_TRUE(vol_->Mknod(kRootIno, "n", S_IFIFO | 0644, 0, masked, &n).ok());
  EXPECT_EQ(ModeOf(n.ino), static_cast<uint32_t>(S_IFIFO | 0600));
  const Ino d = MakeDir(kRootIno, "d", 01777, masked).ino;
  EXPECT_EQ(ModeOf(d), static_cast<uint32_t>(S_IFDIR | 01700));  // special bits are kept
  for (Ino ino : {f, n.ino, d}) EXPECT_TRUE(Names(ino).empty());
}

TEST_F(AclVolumeTest, HistoryViewsCarryTheFilesAclReadOnly) {
  const Ino f = MakeFile(kRootIno, "f", 0640, caller_).ino;
  const Acl acl = {{kUserObj, 6}, {kUser, 6, 1234}, {kGroupObj, 0}, {kMask, 6}, {kOther, 0}};
  ASSERT_EQ(SetAcl(f, acl::kAccessName, AclValue(acl)), 0);
  uint64_t fh = 0;
  ASSERT_TRUE(vol_->Open(f, O_RDWR, &fh).ok());
  size_t written = 0;
  ASSERT_TRUE(vol_->Write(fh, 0, "data", &written).ok());
  ASSERT_TRUE(vol_->Release(fh).ok());  // seals a version with the ACL
  Attr a;
  ASSERT_TRUE(vol_->Lookup(kRootIno, ".kvfs", &a).ok());
  ASSERT_TRUE(vol_->Lookup(a.ino, "history", &a).ok());
  ASSERT_TRUE(vol_->Lookup(a.ino, "f", &a).ok());
  const Ino history = a.ino;
  // The history directory: whoever may read the file may list it (r becomes r-x).
  EXPECT_EQ(GetAcl(history, acl::kAccessName),
            AclValue({{kUserObj, 5}, {kUser, 5, 1234}, {kGroupObj, 0}, {kMask, 5}, {kOther, 0}}));
  EXPECT_EQ(Names(history), (std::vector<std::string>{std::string(acl::kAccessName)}));
  // A version: the ACL of its time, without write bits.
  Ino version = 0;
  ASSERT_TRUE(vol_->ReadDir(history, 0,
                            [&](const DirEntry& e) {
                              if (e.name != "." && e.name != "..") version = e.ino;
                              return true;
                            })
                  .ok());
  ASSERT_NE(version, 0u);
  EXPECT_EQ(GetAcl(version, acl::kAccessName),
            AclValue({{kUserObj, 4}, {kUser, 4, 1234}, {kGroupObj, 0}, {kMask, 4}, {kOther, 0}}));
}

TEST_F(AclVolumeTest, AclsStayOnAcrossReopens) {
  const Ino f = MakeFile(kRootIno, "f", 0644, caller_).ino;
  const Ino d = MakeDir(kRootIno, "d", 0755, caller_).ino;
  ASSERT_EQ(SetAcl(f, acl::kAccessName, AclValue(kDefault)), 0);
  ASSERT_EQ(SetAcl(d, acl::kDefaultName, AclValue(kDefault)), 0);
  Superblock sb = StoredSuperblock();
  EXPECT_EQ(sb.format, 3u);
  EXPECT_EQ(sb.features, Superblock::kPosixAcl);

  options_.posix_acl = false;
  Reopen();
  EXPECT_TRUE(vol_->posix_acl());
  EXPECT_EQ(GetAcl(f, acl::kAccessName), AclValue(kDefault));
  EXPECT_EQ(GetAcl(d, acl::kDefaultName), AclValue(kDefault));
  EXPECT_EQ(ModeOf(MakeFile(d, "g", 0666, caller_).ino), static_cast<uint32_t>(S_IFREG | 0664));
  sb = StoredSuperblock();
  EXPECT_EQ(sb.format, 3u);
  EXPECT_EQ(sb.features, Superblock::kPosixAcl);
}

TEST_F(NoAclVolumeTest, VolumeWithoutAclsKeepsFormat2UntilTurnedOn) {
  Reopen();
  EXPECT_FALSE(vol_->posix_acl());
  Superblock sb = StoredSuperblock();
  EXPECT_EQ(sb.format, 2u);
  EXPECT_EQ(sb.features, 0u);
  options_.update_retention = true;  // rewrites S
  Reopen();
  EXPECT_FALSE(vol_->posix_acl());
  EXPECT_EQ(StoredSuperblock().format, 2u);

  // Turned on at a later open, for good.
  options_.update_retention = false;
  options_.posix_acl = true;
  Reopen();
  EXPECT_TRUE(vol_->posix_acl());
  sb = StoredSuperblock();
  EXPECT_EQ(sb.format, 3u);
  EXPECT_EQ(sb.features, Superblock::kPosixAcl);
  options_.posix_acl = false;
  Reopen();
  EXPECT_TRUE(vol_->posix_acl());
  EXPECT_EQ(SetAcl(kRootIno, acl::kDefaultName, AclValue(kDefault)), 0);
}

}  // namespace
}  // namespace fs
