// Errno: the one place where kv::Status becomes a POSIX errno.
#include <cerrno>
#include <cstring>

#include "fs/volume.h"
#include "fs/volume_impl.h"

namespace fs {

Errno Errno::FromStatus(const kv::Status& s) {
  using Code = kv::Status::Code;
  switch (s.code()) {
    case Code::kOk:
      return Errno::OK();
    case Code::kNotFound:
      return Errno(ENOENT, s.ToString());
    case Code::kNoSpace:
      return Errno(ENOSPC, s.ToString());
    case Code::kInvalidArgument:
      return Errno(EINVAL, s.ToString());
    case Code::kNotSupported:
      return Errno(EOPNOTSUPP, s.ToString());
    case Code::kBusy:
      return Errno(EBUSY, s.ToString());
    case Code::kCorruption:
    case Code::kIOError:
      break;
  }
  return Errno(EIO, s.ToString());
}

std::string Errno::ToString() const {
  if (ok()) return "OK";
  std::string out = strerrorname_np(value_) ? strerrorname_np(value_) : "errno";
  out += " (";
  out += std::strerror(value_);
  if (!detail_.empty()) {
    out += ": ";
    out += detail_;
  }
  out += ")";
  return out;
}

Errno CheckNewName(std::string_view name) {
  if (name.size() > kNameMax) return Errno(ENAMETOOLONG);
  if (name.empty() || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return Errno(EINVAL, "bad file name");
  }
  if (name == "." || name == "..") return Errno(EEXIST);
  return Errno::OK();
}

}  // namespace fs
