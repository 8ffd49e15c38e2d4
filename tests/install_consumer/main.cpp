#include <fusejit/core.h>  // first: it must stand on its own where it is installed
#include <fusejit/fusejit.h>

#include <cstdio>

int main() {
  fusejit::Tensor x = fusejit::arange(0, 8);
  float total = 0;
  for (float v : fusejit::relu(x * 2 - 5).to_vector<float>()) total += v;
  std::printf("consumer: sum = %g (%s), kernels compiled = %lld\n", total, fusejit::dtype_name(x.dtype()),
              static_cast<long long>(fusejit::stats().kernels_compiled));
  return total == 25 ? 0 : 1;  // relu(2x - 5) over x = 0..7: 1 + 3 + 5 + 7 + 9
}
