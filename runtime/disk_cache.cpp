#include "runtime/disk_cache.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <llvm/Config/llvm-config.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "codegen/compile.h"
#include "codegen/target.h"
#include "ir/key.h"

namespace fusejit::runtime {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[4] = {'F', 'J', 'K', 'C'};
constexpr uint32_t kFormat = 1;
constexpr const char* kEntrySuffix = ".fjk";
constexpr int64_t kDefaultLimitBytes = int64_t{512} << 20;
// Stores between two scans of the directory's size: other processes write there too.
constexpr int kStoresPerScan = 256;
// A temporary file this old belongs to a writer that died.
constexpr auto kStaleTemporary = std::chrono::minutes(10);

struct Header {
  char magic[4];
  uint32_t format;
  uint64_t key_bytes;
  uint64_t object_bytes;
  uint64_t checksum;  // of the object
};

uint64_t hash_of(std::string_view bytes) { return ir::KeyHash()(bytes); }

std::string hex(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// The GNU build ID of the loaded file that holds fusejit (the shared library, or whatever links
// it statically): any rebuild of fusejit, with any change to its code generation, changes it.
// Without one, a hash of the file's bytes.
std::string build_identity() {
  struct Search {
    uintptr_t address;
    std::string id;
  } search{reinterpret_cast<uintptr_t>(&build_identity), {}};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto& search = *static_cast<Search*>(data);
        bool holds = false;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& segment = info->dlpi_phdr[i];
          uintptr_t start = info->dlpi_addr + segment.p_vaddr;
          if (segment.p_type == PT_LOAD && search.address >= start && search.address < start + segment.p_memsz)
            holds = true;
        }
        if (!holds) return 0;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& segment = info->dlpi_phdr[i];
          if (segment.p_type != PT_NOTE) continue;
          auto* at = reinterpret_cast<const char*>(info->dlpi_addr + segment.p_vaddr);
          const char* end = at + segment.p_memsz;
          while (at + sizeof(ElfW(Nhdr)) <= end) {
            auto* note = reinterpret_cast<const ElfW(Nhdr)*>(at);
            const char* name = at + sizeof(ElfW(Nhdr));
            const char* desc = name + ((note->n_namesz + 3) & ~3u);
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
              std::string id;
              for (uint32_t b = 0; b < note->n_descsz; ++b) {
                char byte[3];
                std::snprintf(byte, sizeof byte, "%02x", static_cast<unsigned char>(desc[b]));
                id += byte;
              }
              search.id = id;
              return 1;
            }
            at = desc + ((note->n_descsz + 3) & ~3u);
          }
        }
        return 1;
      },
      &search);
  if (!search.id.empty()) return "build-id " + search.id;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&build_identity), &info) && info.dli_fname) {
    std::ifstream file(info.dli_fname, std::ios::binary);
    std::ostringstream bytes;
    bytes << file.rdbuf();
    if (file) return "file " + hex(hash_of(bytes.str()));
  }
  return {};
}

std::string default_dir() {
  if (const char* dir = std::getenv("FUSEJIT_CACHE_DIR")) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/fusejit";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/fusejit";
  return {};
}

int64_t default_limit() {
  if (const char* megabytes = std::getenv("FUSEJIT_CACHE_MAX_MB")) {
    char* end = nullptr;
    long long value = std::strtoll(megabytes, &end, 10);
    if (end != megabytes && *end == '\0' && value >= 0) return value << 20;
    std::fprintf(stderr, "fusejit: ignoring FUSEJIT_CACHE_MAX_MB=%s (expected megabytes, >= 0)\n", megabytes);
  }
  return kDefaultLimitBytes;
}

class DiskCache {
 public:
  DiskCache() : dir_(default_dir()), limit_(default_limit()) {}

  std::string dir() {
    std::lock_guard lock(mutex_);
    return failed_ ? std::string() : dir_;
  }

  void set_dir(const std::string& dir) {
    std::lock_guard lock(mutex_);
    dir_ = dir;
    ready_ = false;
    failed_ = false;
    warned_ = false;
    bytes_ = -1;
  }

  int64_t limit() {
    std::lock_guard lock(mutex_);
    return limit_;
  }

  void set_limit(int64_t bytes) {
    std::lock_guard lock(mutex_);
    limit_ = bytes;
    bytes_ = -1;
  }

  std::optional<std::string> load(std::string_view key) {
    std::string path = entry_path(key);
    if (path.empty()) return std::nullopt;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::optional<std::string> object = read_entry(fd, key);
    if (object) ::futimens(fd, nullptr);  // now the most recently used
    ::close(fd);
    return object;
  }

  void store(std::string_view key, std::string_view object) {
    std::string path = entry_path(key);
    if (path.empty()) return;
    Header header{};
    std::memcpy(header.magic, kMagic, sizeof kMagic);
    header.format = kFormat;
    header.key_bytes = key.size();
    header.object_bytes = object.size();
    header.checksum = hash_of(object);
    static std::atomic<uint64_t> temporaries{0};
    std::string temporary = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(temporaries++);
    int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    bool written = fd >= 0 && write_all(fd, {reinterpret_cast<const char*>(&header), sizeof header}) &&
                   write_all(fd, key) && write_all(fd, object);
    if (fd >= 0) written = ::close(fd) == 0 && written;
    if (!written || std::rename(temporary.c_str(), path.c_str()) != 0) {
      int error = errno;  // before unlink() may change it
      ::unlink(temporary.c_str());
      warn_once("cannot write " + path + ": " + std::strerror(error));
      return;
    }
    account(static_cast<int64_t>(sizeof header + key.size() + object.size()));
  }

 private:
  // The entry's file, creating the directory on first use; "" when off or unusable.
  std::string entry_path(std::string_view key) {
    std::lock_guard lock(mutex_);
    if (dir_.empty() || failed_) return {};
    if (!ready_) {
      std::error_code error;
      fs::create_directories(dir_, error);
      if (error || !fs::is_directory(dir_, error)) {
        failed_ = true;
        warn_once_locked("disk cache off: cannot use " + dir_ + ": " + error.message());
        return {};
      }
      ready_ = true;
    }
    return dir_ + "/" + hex(hash_of(key)) + kEntrySuffix;
  }

  static bool write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t written = ::write(fd, bytes.data(), bytes.size());
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(written));
    }
    return true;
  }

  // The object of an intact entry for `key`: its header, lengths, key and checksum all agree.
  static std::optional<std::string> read_entry(int fd, std::string_view key) {
    struct stat status;
    Header header;
    if (::fstat(fd, &status) != 0 || ::pread(fd, &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header))
      return std::nullopt;
    if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0 || header.format != kFormat ||
        header.key_bytes != key.size() ||
        static_cast<uint64_t>(status.st_size) != sizeof header + header.key_bytes + header.object_bytes)
      return std::nullopt;
    std::string bytes(header.key_bytes + header.object_bytes, '\0');
    size_t read = 0;
    while (read < bytes.size()) {
      ssize_t got = ::pread(fd, bytes.data() + read, bytes.size() - read, static_cast<off_t>(sizeof header + read));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return std::nullopt;
      read += static_cast<size_t>(got);
    }
    if (std::string_view(bytes).substr(0, key.size()) != key) return std::nullopt;
    std::string object = bytes.substr(key.size());
    if (hash_of(object) != header.checksum) return std::nullopt;
    return object;
  }

  // Adds a stored entry's bytes to the directory's total and trims it when over the limit. The
  // total is rescanned now and then, since other processes write beside this one.
  void account(int64_t bytes) {
    std::lock_guard lock(mutex_);
    if (bytes_ < 0 || ++stores_since_scan_ >= kStoresPerScan) {
      bytes_ = scan_locked(/*trim=*/false);
      stores_since_scan_ = 0;
    } else {
      bytes_ += bytes;
    }
    if (bytes_ > limit_) bytes_ = scan_locked(/*trim=*/true);
  }

  // The entries' total size, after (with `trim`) removing the least recently used until within
  // the limit, and in any case temporary files left by writers that died.
  int64_t scan_locked(bool trim) {
    struct Found {
      fs::file_time_type used;
      int64_t bytes;
      fs::path path;
    };
    std::vector<Found> entries;
    int64_t total = 0;
    std::error_code error;
    auto now = fs::file_time_type::clock::now();
    for (const fs::directory_entry& file : fs::directory_iterator(dir_, error)) {
      std::error_code ignored;
      std::string name = file.path().filename().string();
      fs::file_time_type used = file.last_write_time(ignored);
      if (name.find(".tmp.") != std::string::npos) {
        if (!ignored && now - used > kStaleTemporary) fs::remove(file.path(), ignored);
        continue;
      }
      if (!name.ends_with(kEntrySuffix)) continue;
      auto bytes = static_cast<int64_t>(file.file_size(ignored));
      if (ignored) continue;
      entries.push_back({used, bytes, file.path()});
      total += bytes;
    }
    if (!trim || total <= limit_) return total;
    std::sort(entries.begin(), entries.end(), [](const Found& a, const Found& b) { return a.used < b.used; });
    for (const Found& entry : entries) {
      if (total <= limit_) break;
      std::error_code ignored;
      if (fs::remove(entry.path, ignored)) total -= entry.bytes;
    }
    return total;
  }

  void warn_once(const std::string& message) {
    std::lock_guard lock(mutex_);
    warn_once_locked(message);
  }

  void warn_once_locked(const std::string& message) {
    if (warned_) return;
    warned_ = true;
    std::fprintf(stderr, "fusejit: %s\n", message.c_str());
  }

  std::mutex mutex_;
  std::string dir_;
  int64_t limit_;
  bool ready_ = false;   // dir_ exists
  bool failed_ = false;  // dir_ cannot be made: off until set again
  bool warned_ = false;
  int64_t bytes_ = -1;   // the entries' total as last known; -1: not yet scanned
  int stores_since_scan_ = 0;
};

DiskCache& disk_cache() {
  static DiskCache* instance = new DiskCache;  // never destroyed: kernels compile during exit too
  return *instance;
}

}  // namespace

std::string disk_cache_dir() { return disk_key_prefix().empty() ? std::string() : disk_cache().dir(); }
void set_disk_cache_dir(const std::string& dir) { disk_cache().set_dir(dir); }
int64_t disk_cache_limit() { return disk_cache().limit(); }
void set_disk_cache_limit(int64_t bytes) { disk_cache().set_limit(bytes); }

const std::string& disk_key_prefix() {
  static const std::string prefix = [] {
    std::string build = build_identity();
    const codegen::Target& target = codegen::host_target();
    // Without an identity for this build, code from another build could be taken for its own.
    if (build.empty()) return std::string();
    return "fusejit " FUSEJIT_VERSION " " + build + "|LLVM " LLVM_VERSION_STRING "|" + target.key + "|" +
           target.description() + "|" + codegen::optimization_settings() + "|";
  }();
  return prefix;
}

std::optional<std::string> load_kernel_object(std::string_view key) { return disk_cache().load(key); }

void store_kernel_object(std::string_view key, std::string_view object) { disk_cache().store(key, object); }

}  // namespace fusejit::runtime
