// fusejit_scaling: how cost grows in the loops users write. Each scenario runs in a process of
// its own (fresh caches, its own RSS) and prints one line:
//   changing_scalars  kernels compiled over 200 steps of p - lr_t * g + rand(shape, t) * 1e-3
//   kernel_capacity   RSS after 1,000 and 3,000 distinct kernels at capacity 1,000, and unbounded
//   empty_cache       RSS with 512 MiB of freed buffers pooled, then after empty_cache()
//   residual N        first evaluation of N layers of x = layer_norm(x + gelu(x * w), {64})
//   peak_memory N     peak RSS of 6 such layers over NxN floats: 3 kernels, each result NxN
//   left_sum N        a left-deep sum of N distinct 16-element inputs
//   eager_chain N     an eager chain of N multiplications
// With no argument, runs them all (residual 50 and 200, left_sum 10000 and 40000, eager_chain
// 100000).
#include <fusejit/fusejit.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace fj = fusejit;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double rss_mib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

void changing_scalars() {
  fj::Tensor p = fj::rand({4096}, 1), g = fj::randn({4096}, 2);
  p.eval();
  g.eval();
  fj::reset_stats();
  auto start = std::chrono::steady_clock::now();
  for (int step = 0; step < 200; ++step) {
    float lr = 0.1f / static_cast<float>(1 + step);
    p = (p - lr * g + fj::rand({4096}, static_cast<uint64_t>(step)) * 1e-3f).eval();
  }
  std::printf("changing_scalars: 200 steps, %lld kernels compiled, %.1f us per step\n",
              static_cast<long long>(fj::stats().kernels_compiled), seconds_since(start) / 200 * 1e6);
}

void kernel_capacity(int64_t capacity) {
  fj::set_kernel_cache_capacity(capacity);
  double start = rss_mib(), after_1000 = 0;
  for (int64_t n = 1; n <= 3000; ++n) {
    (fj::ones({n}) * 2.5f + 1.5f).eval();
    if (n == 1000) after_1000 = rss_mib();
  }
  std::printf("kernel_capacity %lld: RSS %.1f MiB at start, %.1f after 1,000 kernels, %.1f after 3,000; "
              "%lld compiled, %lld evicted\n",
              static_cast<long long>(capacity), start, after_1000, rss_mib(),
              static_cast<long long>(fj::stats().kernels_compiled),
              static_cast<long long>(fj::stats().kernels_evicted));
}

void empty_cache() {
  double start = rss_mib();
  {
    std::vector<fj::Tensor> tensors;
    for (int i = 0; i < 8; ++i) tensors.push_back((fj::ones({16 << 20}) * static_cast<float>(i + 2)).eval());
  }
  double pooled = rss_mib();
  fj::empty_cache();
  std::printf("empty_cache: RSS %.1f MiB at start, %.1f with 512 MiB of freed buffers pooled, %.1f after empty_cache()\n",
              start, pooled, rss_mib());
}

void residual(int layers) {
  fj::Tensor w = fj::randn({64}, 2);
  fj::Tensor x = fj::randn({256, 64}, 1);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < layers; ++i) x = fj::layer_norm(x + fj::gelu(x * w), {64});
  x.eval();
  double first = seconds_since(start);
  fj::Tensor y = fj::randn({256, 64}, 3);
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < layers; ++i) y = fj::layer_norm(y + fj::gelu(y * w), {64});
  y.eval();
  std::printf("residual %d: first evaluation %.3f s (%lld kernels compiled in %.3f s), cached %.2f ms\n", layers,
              first, static_cast<long long>(fj::stats().kernels_compiled), fj::stats().compile_ms / 1e3,
              seconds_since(start) * 1e3);
}

// VmHWM: the most this process has had resident.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024;  // kB
  return 0;
}

void peak_memory(int64_t n) {
  fj::Tensor w = fj::randn({n}, 2).eval();
  fj::Tensor x = fj::randn({n, n}, 1).eval();
  for (int i = 0; i < 6; ++i) x = fj::layer_norm(x + fj::gelu(x * w), {n});
  x.dump("fused");  // compiles the kernels, so that the peak below is the run's
  double before = rss_mib(), compiled_peak = peak_rss_mib();
  x.eval();
  std::printf("peak_memory %lld: RSS %.1f MiB before the evaluation (peak %.1f while compiling), "
              "peak %.1f MiB after it; each result %.0f MiB\n",
              static_cast<long long>(n), before, compiled_peak, peak_rss_mib(),
              static_cast<double>(n * n * 4) / (1 << 20));
}

void left_sum(int64_t inputs) {
  std::vector<fj::Tensor> values;
  for (int64_t i = 0; i < inputs; ++i) values.push_back(fj::full({16}, static_cast<float>(i % 7)).eval());
  auto start = std::chrono::steady_clock::now();
  fj::Tensor sum = values[0];
  for (int64_t i = 1; i < inputs; ++i) sum = sum + values[i];
  sum.eval();
  std::printf("left_sum %lld: %.3f s (%lld kernels compiled)\n", static_cast<long long>(inputs),
              seconds_since(start), static_cast<long long>(fj::stats().kernels_compiled));
}

void eager_chain(int64_t steps) {
  fj::FusionGuard eager(false);
  auto start = std::chrono::steady_clock::now();
  fj::Tensor x = fj::ones({16});
  for (int64_t i = 0; i < steps; ++i) x = x * 1.0001f;
  x.eval();
  std::printf("eager_chain %lld: %.3f s\n", static_cast<long long>(steps), seconds_since(start));
}

void run(const std::string& scenario, int64_t size) {
  if (scenario == "changing_scalars") return changing_scalars();
  if (scenario == "kernel_capacity") return kernel_capacity(size);
  if (scenario == "empty_cache") return empty_cache();
  if (scenario == "residual") return residual(static_cast<int>(size));
  if (scenario == "peak_memory") return peak_memory(size);
  if (scenario == "left_sum") return left_sum(size);
  if (scenario == "eager_chain") return eager_chain(size);
  std::fprintf(stderr, "fusejit_scaling: unknown scenario %s\n", scenario.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  fusejit::set_disk_cache_dir("");  // compile times are among the figures: every run compiles
  if (argc > 1) {
    run(argv[1], argc > 2 ? std::atoll(argv[2]) : 0);
    return 0;
  }
  const std::pair<const char*, int64_t> all[] = {
      {"changing_scalars", 0}, {"kernel_capacity", 1000}, {"kernel_capacity", 1 << 30},
      {"empty_cache", 0},      {"residual", 50},          {"residual", 200},
      {"left_sum", 10000},     {"left_sum", 40000},       {"eager_chain", 100000}};
  for (const auto& [scenario, size] : all) {
    std::fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
      run(scenario, size);
      std::fflush(stdout);
      _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  return 0;
}
