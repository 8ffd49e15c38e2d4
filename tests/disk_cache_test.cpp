// The disk cache: a second process compiles nothing; damaged, foreign and half-written entries
// are never loaded; concurrent writers of one entry leave an intact one; the size limit removes
// the least recently used entries; and in one process, evicted kernels come back from disk.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace fj = fusejit;
namespace fs = std::filesystem;

namespace {

// A directory of its own per test, removed afterwards.
class DiskCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "fusejit_disk_cache_" + std::to_string(getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
  }
  void TearDown() override {
    fj::set_disk_cache_dir("");
    fj::set_disk_cache_limit(int64_t{512} << 20);
    fs::remove_all(dir_);
  }

  struct Run {
    long long compiled = -1, disk_hits = -1;
    std::string results;
  };

  // Starts the child program (tests/disk_cache_child.cpp) with the cache in `dir_`.
  FILE* start_child() const {
    std::string command = "FUSEJIT_CACHE_DIR='" + dir_ + "' '" FUSEJIT_DISK_CACHE_CHILD "'";
    return popen(command.c_str(), "r");
  }

  static Run finish_child(FILE* child) {
    Run run;
    char results[64] = {};
    int fields = child ? std::fscanf(child, "compiled %lld disk_hits %lld results %63s", &run.compiled,
                                     &run.disk_hits, results)
                       : 0;
    int status = child ? pclose(child) : -1;
    EXPECT_EQ(fields, 3);
    EXPECT_EQ(status, 0);
    run.results = results;
    return run;
  }

  Run run_child() const { return finish_child(start_child()); }

  std::vector<fs::path> entries() const {
    std::vector<fs::path> found;
    if (!fs::is_directory(dir_)) return found;
    for (const fs::directory_entry& file : fs::directory_iterator(dir_)) found.push_back(file.path());
    std::sort(found.begin(), found.end());
    return found;
  }

  std::string dir_;
};

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST_F(DiskCacheTest, SecondProcessCompilesNothing) {
  Run first = run_child();
  EXPECT_GE(first.compiled, 4);
  EXPECT_EQ(first.disk_hits, 0);
  EXPECT_EQ(static_cast<long long>(entries().size()), first.compiled);
  Run second = run_child();
  EXPECT_EQ(second.compiled, 0);
  EXPECT_EQ(second.disk_hits, first.compiled);
  EXPECT_EQ(second.results, first.results);
}

// Each entry damaged another way: a flipped bit in the code; another key in the header (the
// code intact, as a colliding name would leave it); another kernel's intact entry; cut short;
// emptied; garbage. None is loaded; each is compiled and written again, and the results stay
// the same bits.
TEST_F(DiskCacheTest, DamagedAndForeignEntriesAreRecompiledNeverLoaded) {
  Run first = run_child();
  std::vector<fs::path> files = entries();
  ASSERT_GE(files.size(), 6u);
  std::vector<std::string> intact;
  for (const fs::path& file : files) intact.push_back(read_file(file));
  constexpr size_t kHeaderBytes = 32;  // magic, format, key and object lengths, checksum
  for (size_t i = 0; i < files.size(); ++i) {
    std::string bytes = intact[i];
    switch (i % 6) {
      case 0: bytes[bytes.size() - 9] ^= 0x10; break;
      case 1: bytes[kHeaderBytes + 3] ^= 0x01; break;
      case 2: bytes = intact[i - 1]; break;
      case 3: bytes.resize(bytes.size() / 2); break;
      case 4: bytes.clear(); break;
      case 5: bytes = std::string(bytes.size(), 'x'); break;
    }
    write_file(files[i], bytes);
  }
  Run damaged = run_child();
  EXPECT_EQ(damaged.compiled, first.compiled);
  EXPECT_EQ(damaged.disk_hits, 0);
  EXPECT_EQ(damaged.results, first.results);
  Run repaired = run_child();
  EXPECT_EQ(repaired.compiled, 0);
  EXPECT_EQ(repaired.results, first.results);
  for (size_t i = 0; i < files.size(); ++i) EXPECT_TRUE(read_file(files[i]) == intact[i]) << files[i];
}

// Four processes compile and write the same entries at once: each entry ends up intact (a later
// process loads every one), and no temporary file is left.
TEST_F(DiskCacheTest, ConcurrentWritersOfTheSameEntries) {
  std::vector<FILE*> children;
  for (int i = 0; i < 4; ++i) children.push_back(start_child());
  std::set<std::string> results;
  for (FILE* child : children) results.insert(finish_child(child).results);
  EXPECT_EQ(results.size(), 1u);
  Run after = run_child();
  EXPECT_EQ(after.compiled, 0);
  EXPECT_EQ(results.count(after.results), 1u);
  for (const fs::path& file : entries()) EXPECT_EQ(file.extension(), ".fjk") << file;
}

class DiskCacheInProcess : public DiskCacheTest {
 protected:
  // Evaluates a small chain on an n-element tensor and returns the new file, if any.
  fs::path evaluate(int64_t n, float* value = nullptr) {
    std::vector<fs::path> before = entries();
    fj::Tensor x = fj::arange(0, static_cast<double>(n));
    float result = fj::exp(x * 0.001f + 1.0f).to_vector<float>().back();
    if (value) *value = result;
    std::vector<fs::path> after = entries(), added;
    std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(added));
    return added.empty() ? fs::path() : added.front();
  }

  // Drops the compiled kernels from memory: the kernel cache keeps one (of a new shape), and
  // the cached schedules holding the others are dropped as that one's schedule is remembered.
  void evict_from_memory() {
    int64_t capacity = fj::kernel_cache_capacity();
    fj::set_kernel_cache_capacity(1);
    static int64_t fresh_shape = 9001;  // never evaluated before in this process
    evaluate(fresh_shape++);
    fj::set_kernel_cache_capacity(capacity);
  }
};

TEST_F(DiskCacheInProcess, EvictedKernelsComeBackFromDisk) {
  fj::set_disk_cache_dir(dir_);
  EXPECT_EQ(fj::disk_cache_dir(), dir_);
  float compiled_value = 0, loaded_value = 0;
  fj::reset_stats();
  EXPECT_FALSE(evaluate(1001, &compiled_value).empty());
  EXPECT_EQ(fj::stats().kernels_compiled, 1);
  EXPECT_EQ(fj::stats().disk_hits, 0);
  evict_from_memory();
  fj::reset_stats();
  evaluate(1001, &loaded_value);
  EXPECT_EQ(fj::stats().kernels_compiled, 0);
  EXPECT_EQ(fj::stats().disk_hits, 1);
  EXPECT_EQ(loaded_value, compiled_value);
}

TEST_F(DiskCacheInProcess, ThreadsSharingTheDiskCache) {
  fj::set_disk_cache_dir(dir_);
  auto work = [](int64_t first) {
    for (int64_t n = first; n < first + 20; ++n) {
      fj::Tensor x = fj::arange(0, static_cast<double>(n));
      std::vector<float> y = fj::sqrt(x * x + 1.0f).to_vector<float>();
      ASSERT_NEAR(y.back(), std::sqrt(static_cast<float>((n - 1) * (n - 1)) + 1.0f), 1e-3f * static_cast<float>(n));
    }
  };
  std::thread a(work, 3000), b(work, 3010);  // overlapping shapes: both ask for some keys
  a.join();
  b.join();
  evict_from_memory();
  fj::reset_stats();
  work(3000);
  work(3010);
  EXPECT_EQ(fj::stats().kernels_compiled, 0);
  EXPECT_EQ(fj::stats().disk_hits, 30);
}

// With room for about two entries, compiling a third removes the least recently used one: the
// first entry, refreshed by a load, outlives the second.
TEST_F(DiskCacheInProcess, SizeLimitRemovesTheLeastRecentlyUsed) {
  fj::set_disk_cache_dir(dir_);
  fs::path first = evaluate(2001), second = evaluate(2002);
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  fj::set_disk_cache_dir("");  // the shape that evicts is not written
  evict_from_memory();
  fj::set_disk_cache_dir(dir_);
  auto bytes = static_cast<int64_t>(std::max(fs::file_size(first), fs::file_size(second)));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a later modification time
  fj::reset_stats();
  evaluate(2001);
  ASSERT_EQ(fj::stats().disk_hits, 1);
  fj::set_disk_cache_limit(bytes * 5 / 2);
  fs::path third = evaluate(2003);
  EXPECT_TRUE(fs::exists(first));
  EXPECT_FALSE(fs::exists(second));
  EXPECT_TRUE(fs::exists(third));
  int64_t total = 0;
  for (const fs::path& file : entries()) total += static_cast<int64_t>(fs::file_size(file));
  EXPECT_LE(total, bytes * 5 / 2);
}

TEST_F(DiskCacheInProcess, OffOrUnusable) {
  fj::set_disk_cache_dir("");
  EXPECT_EQ(fj::disk_cache_dir(), "");
  evaluate(4001);
  EXPECT_FALSE(fs::exists(dir_));
  EXPECT_THROW(fj::set_disk_cache_limit(-1), fj::Error);
  // A file where the directory should be: the kernel still runs, compiled in memory.
  write_file(dir_, "not a directory");
  fj::set_disk_cache_dir(dir_ + "/cache");
  float value = 0;
  ::testing::internal::CaptureStderr();
  evaluate(4002, &value);
  std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(warning.find("disk cache off"), std::string::npos) << warning;
  EXPECT_FLOAT_EQ(value, std::exp(4001 * 0.001f + 1.0f));
  EXPECT_EQ(fj::disk_cache_dir(), "");
  fs::remove(dir_);
}

}  // namespace
