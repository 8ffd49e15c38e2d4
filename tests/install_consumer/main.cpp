#include <fusejit/fusejit.h>

#include <cstdio>

int main() {
  fusejit::Tensor x = fusejit::arange(0, 8);
  float total = 0;
  for (float v : fusejit::relu(x * 2 - 5).to_vector<float>()) total += v;
  std::printf("consumer: sum = %g, kernels compiled = %lld\n", total,
              static_cast<long long>(fusejit::stats().kernels_compiled));
  return total == 25 ? 0 : 1;  // relu(2x - 5) over x = 0..7: 1 + 3 + 5 + 7 + 9
}
