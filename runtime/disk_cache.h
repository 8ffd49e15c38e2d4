// Compiled kernels on disk, so that a later process loads what an earlier one compiled.
//
// One file per kernel, `<hash of key>.fjk`: a header (magic, format, lengths, a checksum of the
// object), the full key and the object. A file is written whole under a temporary name and
// renamed into place, so a reader (another process, at any moment) sees either no entry or a
// complete one. Loading checks the header, the key (a foreign entry, or a hash collision) and
// the checksum; an entry that fails is ignored, and the kernel compiled and written again. The
// directory is kept under a size limit by removing the least recently used entries (a hit
// refreshes an entry's modification time). No LLVM: objects are bytes here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fusejit::runtime {

// The directory in use ("" when the disk cache is off). Initially FUSEJIT_CACHE_DIR if set (set
// but empty: off), else $XDG_CACHE_HOME/fusejit, else $HOME/.cache/fusejit.
std::string disk_cache_dir();
void set_disk_cache_dir(const std::string& dir);

// The directory's bound in bytes: FUSEJIT_CACHE_MAX_MB megabytes initially, else 512 MiB.
int64_t disk_cache_limit();
void set_disk_cache_limit(int64_t bytes);

// What makes compiled code differ besides the kernel: fusejit's build, LLVM's version, the
// target and the optimization settings. The disk key is this followed by the kernel's key.
const std::string& disk_key_prefix();

// The object stored under `key`, if an intact entry holds it; refreshes its recency.
std::optional<std::string> load_kernel_object(std::string_view key);

// Writes (or replaces) the entry for `key`; then trims the directory to its limit. Failures (a
// full disk, no permission) are reported once on stderr and otherwise ignored: the kernel is
// compiled in memory all the same.
void store_kernel_object(std::string_view key, std::string_view object);

}  // namespace fusejit::runtime
