// FUSE_HANDLE_KILLPRIV_V2 on libfuse 3.14, which predates it.
//
// Without it the kernel asks the daemon for security.capability (a GETXATTR round trip)
// before every write(2), in case the write must drop privileges. With it the kernel leaves
// dropping setuid, setgid and security.capability to the daemon, flags the requests that
// must do so, and skips the check on an inode once it has found nothing to drop. On this
// machine that took fio's 4 KiB random writes from one round trip each to none.
//
// libfuse 3.14 neither negotiates the capability nor passes the request flags on, so the
// session's I/O hooks (session_io.h) do both: every request is shown to NoteRequestFlags
// on the thread that handles it, and the INIT reply gets the capability when the kernel
// offers it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fs::fuse {

// Notes, for the calling thread, whether the raw request (fuse_in_header, then its
// arguments) must drop privileges. Call before handing the request to libfuse.
void NoteRequestFlags(const char* request, size_t size);

// Whether the request this thread is handling must drop privileges: a WRITE or O_TRUNC OPEN
// by a caller without CAP_FSETID, a truncating SETATTR by one, or a chown of a non-directory.
bool RequestDropsPrivileges();

// The mode after dropping privileges, as Linux does: setuid goes; setgid goes when the
// group may execute, or when the caller is neither root nor in the file's group (without
// group execute, setgid marks mandatory locking).
uint32_t ModeWithoutPrivileges(uint32_t mode, bool caller_root_or_in_group);

}  // namespace fs::fuse
