// Status formatting and errno mapping.
#include "kv/status.h"

#include <cerrno>
#include <cstring>

namespace kv {

Status Status::FromErrno(int err, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  switch (err) {
    case ENOENT:
      return NotFound(msg);
    case ENOSPC:
    case EDQUOT:
      return NoSpace(msg);
    case EWOULDBLOCK:
      return Busy(msg);
    case EINVAL:
    case ENAMETOOLONG:
      return InvalidArgument(msg);
    default:
      return IOError(msg);
  }
}

std::string Status::ToString() const {
  const char* kind = "OK";
  switch (code_) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      kind = "not found";
      break;
    case Code::kCorruption:
      kind = "corruption";
      break;
    case Code::kIOError:
      kind = "I/O error";
      break;
    case Code::kNoSpace:
      kind = "no space left";
      break;
    case Code::kInvalidArgument:
      kind = "invalid argument";
      break;
    case Code::kBusy:
      kind = "busy";
      break;
    case Code::kNotSupported:
      kind = "not supported";
      break;
  }
  return std::string(kind) + ": " + message_;
}

}  // namespace kv
