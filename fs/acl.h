// POSIX access control lists in the form the Linux kernel passes them as the xattrs
// system.posix_acl_access and system.posix_acl_default (<linux/posix_acl_xattr.h>): a
// little-endian version word (2), then 8-byte entries {tag(2), perm(2), id(4)} sorted by tag
// and, within the named tags, by id. With FUSE_POSIX_ACL the kernel enforces ACLs and the
// file system keeps them: it keeps the mode and the access ACL in step and gives new files
// their parent's default ACL. These are the rules for that, as the kernel's own file systems
// apply them (fs/posix_acl.c), free of any volume state so that they are tested alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fs::acl {

inline constexpr std::string_view kAccessName = "system.posix_acl_access";
inline constexpr std::string_view kDefaultName = "system.posix_acl_default";
inline bool IsAclName(std::string_view name) { return name == kAccessName || name == kDefaultName; }

enum Tag : uint16_t {
  kUserObj = 0x01,
  kUser = 0x02,
  kGroupObj = 0x04,
  kGroup = 0x08,
  kMask = 0x10,
  kOther = 0x20,
};
inline constexpr uint32_t kUndefinedId = 0xffffffff;
inline constexpr uint16_t kRead = 4, kWrite = 2, kExecute = 1;  // Entry::perm bits

struct Entry {
  uint16_t tag = 0;
  uint16_t perm = 0;  // rwx bits: 4, 2, 1
  uint32_t id = kUndefinedId;
  bool operator==(const Entry&) const = default;
};
using Acl = std::vector<Entry>;

// Parses and validates an xattr value: exactly one owner, owning group and other entry,
// named entries with distinct ids, a mask whenever there are named entries, no unknown
// tags or permission bits. False for anything else (the caller answers EINVAL). The order of
// the entries in `value` does not matter; *acl comes out sorted.
[[nodiscard]] bool Parse(std::string_view value, Acl* acl);
std::string Encode(const Acl& acl);

// The permission bits (0777) an ACL gives the mode: owner from the owner entry, group from
// the mask if there is one (else from the owning group entry), other from the other entry.
uint32_t ModeBits(const Acl& acl);
// Whether the mode bits say all the ACL says (owner, owning group and other entries only):
// such an access ACL is not stored, the mode is enough.
bool IsMinimal(const Acl& acl);

// chmod on a file with an access ACL: the owner, mask (else owning group) and other
// entries take the new permission bits (posix_acl_chmod).
void Chmod(Acl* acl, uint32_t mode);

// A new file's access ACL from its parent's default ACL: each class's entry is limited by
// the requested mode's bits and the mode by the ACL's (posix_acl_create_masq). *mode keeps
// its file type and special bits.
void ApplyCreateMode(Acl* acl, uint32_t* mode);

}  // namespace fs::acl
