// Directories made the way tether makes its own: every missing level, private.
#pragma once

#include <pwd.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether {

// The user's home: $HOME when set, else the password database's entry, else "/".
std::string HomeDir();

// The password database's entry for `name`, or for `uid` when `name` is null, through the
// reentrant calls; its strings live in `buffer`. Nothing when there is no such user.
std::optional<passwd> LookUpUser(const char* name, uid_t uid, std::vector<char>& buffer);

// Makes `dir` and every missing directory above it, 0700 (existing ones keep their mode).
// Returns 0, or the errno of the mkdir that failed with that directory in `*failed`, so
// that each caller says it in its own words.
int MakeDirs(const std::string& dir, std::string* failed);
// MakeDirs of the directory `file` is in; nothing for a bare name or a file under "/".
int MakeParentDirs(const std::string& file, std::string* failed);

// Replaces `path` with `data`, all or nothing: the missing directories above it made as
// MakeParentDirs does, a temporary file of a private name beside it (so the rename is
// atomic) with `mode` whatever the umask, every byte written and synced, then renamed over
// `path`; a symlink at `path` is replaced, not followed. Returns 0, or the errno of the step
// that failed with what it failed on in `*failed` (nothing is left behind then).
int WriteFileAtomically(const std::string& path, std::string_view data, mode_t mode,
                        std::string* failed);

// The whole of `path` in `*data`, by large reads (a program's binary in milliseconds, where
// a stream iterator takes a byte at a time); at most `max` bytes, more is EFBIG. Returns 0
// or the errno (`*data` empty then).
int ReadFile(const std::string& path, std::string* data, size_t max);

}  // namespace tether
