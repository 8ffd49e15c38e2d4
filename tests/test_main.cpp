// Every test binary's main: the disk cache is off, so that each run compiles the kernels it
// counts whatever earlier runs left on disk (the disk cache's own tests choose a directory).
#include <gtest/gtest.h>

#include "fusejit/fusejit.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  fusejit::set_disk_cache_dir("");
  return RUN_ALL_TESTS();
}
