// fusejit_fuzz: long differential fuzzing runs that survive crashes.
//
//   fusejit_fuzz [--seed S] [--count N] [--seconds T] [--only I] [--minimize K]
//
// Program i of a run is generate_program(program_seed(S, i)). Programs run in batches, each in a
// child process forked from this one (which never evaluates anything itself, so it holds no
// threads or JIT state to fork); a batch that dies is resumed after the program that killed it.
// For the first K failures of each kind (an exception's message, a crash's signal, a mismatch's
// verdict), the program is minimized, every candidate in a child of
// its own, and printed as a C++ reproducer. The last line reads
// `graphs N, crashes C, mismatches M`.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "tests/fuzz/check.h"

namespace fz = fusejit::fuzz;

namespace {

struct Options {
  uint64_t seed = 1;
  int64_t count = 1000;
  double seconds = 1e18;
  int64_t only = -1;
  int minimize_per_kind = 3;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", flag.c_str());
      std::exit(2);
    }
    const char* value = argv[++i];
    if (flag == "--seed") o.seed = std::strtoull(value, nullptr, 10);
    else if (flag == "--count") o.count = std::strtoll(value, nullptr, 10);
    else if (flag == "--seconds") o.seconds = std::strtod(value, nullptr);
    else if (flag == "--only") o.only = std::strtoll(value, nullptr, 10);
    else if (flag == "--minimize") o.minimize_per_kind = std::atoi(value);
    else {
      std::fprintf(stderr, "usage: fusejit_fuzz [--seed S] [--count N] [--seconds T] [--only I] [--minimize K]\n");
      std::exit(2);
    }
  }
  return o;
}

void write_all(int fd, const std::string& text) {
  for (size_t done = 0; done < text.size();) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

std::string read_all(int fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<size_t>(n));
  return text;
}

// Runs `body` in a child that writes its report to a pipe; returns the report, and the signal
// that killed the child (0 when it exited).
template <class F>
std::pair<std::string, int> in_child(F body) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    body(fds[1]);
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  std::string report = read_all(fds[0]);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  int signal = WIFSIGNALED(status) ? WTERMSIG(status) : (WEXITSTATUS(status) != 0 ? -WEXITSTATUS(status) : 0);
  return {report, signal};
}

std::string death(int signal) {
  return signal > 0 ? std::string("killed by signal ") + strsignal(signal)
                    : "exited with status " + std::to_string(-signal);
}

// check_program in a child: a crash becomes Verdict::Crash.
fz::Outcome isolated_check(const fz::Program& program) {
  auto [report, signal] = in_child([&](int fd) {
    fz::Outcome o = fz::check_program(program);
    write_all(fd, std::to_string(static_cast<int>(o.verdict)) + " " + std::to_string(o.settings.fused) + " " +
                      std::to_string(o.settings.threads) + "\n" + o.message);
  });
  if (signal != 0) return {fz::Verdict::Crash, death(signal), {true, 2}};
  fz::Outcome o;
  int verdict = 0, fused = 1;
  size_t newline = report.find('\n');
  std::sscanf(report.c_str(), "%d %d %d", &verdict, &fused, &o.settings.threads);
  o.verdict = static_cast<fz::Verdict>(verdict);
  o.settings.fused = fused != 0;
  o.message = newline == std::string::npos ? "" : report.substr(newline + 1);
  return o;
}

void report(const Options& options, int64_t index, fz::Verdict verdict, const std::string& message,
            bool minimize) {
  std::printf("\n=== program %lld (--seed %llu --only %lld): %s\n%s\n", static_cast<long long>(index),
              static_cast<unsigned long long>(options.seed), static_cast<long long>(index), fz::verdict_name(verdict),
              message.c_str());
  if (!minimize) return;
  fz::Program program = fz::generate_program(fz::program_seed(options.seed, static_cast<uint64_t>(index)));
  fz::Program small = fz::minimize(
      program, [&](const fz::Program& p) { return isolated_check(p).verdict == verdict; }, 400);
  fz::Outcome shown = isolated_check(small);
  std::printf("--- minimized reproducer:\n%s", fz::to_cpp(small, shown.settings, shown.message).c_str());
  std::fflush(stdout);
}

// Failures of one kind: an exception's message without its numbers (node ids, sizes), else
// the verdict (a mismatch's message says where, not why).
std::string signature(fz::Verdict verdict, const std::string& message) {
  std::string kind = fz::verdict_name(verdict);
  if (verdict != fz::Verdict::Exception && verdict != fz::Verdict::Crash) return kind;
  for (char c : message.substr(0, message.find('\n')))
    if (!std::isdigit(static_cast<unsigned char>(c))) kind += c;
  return kind;
}

}  // namespace

int main(int argc, char** argv) {
  fusejit::set_disk_cache_dir("");  // thousands of one-off kernels: not worth keeping on disk
  Options options = parse(argc, argv);
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  int64_t first = options.only >= 0 ? options.only : 0;
  int64_t end = options.only >= 0 ? options.only + 1 : options.count;
  constexpr int64_t kBatch = 100;
  int64_t graphs = 0, crashes = 0, mismatches = 0;
  std::map<std::string, int> minimized;  // per signature()
  double last_progress = 0;
  for (int64_t next = first; next < end && elapsed() < options.seconds;) {
    int64_t batch_end = std::min(end, next + kBatch);
    // The child reports "<index> <verdict>" per program (a failure's message follows on lines
    // starting with a tab) and "start <index>" before each, so a crash names its program.
    auto [text, signal] = in_child([&](int fd) {
      for (int64_t i = next; i < batch_end; ++i) {
        write_all(fd, "start " + std::to_string(i) + "\n");
        fz::Outcome o = fz::check_program(fz::generate_program(fz::program_seed(options.seed, static_cast<uint64_t>(i))));
        std::string message = o.message;
        for (size_t p = 0; (p = message.find('\n', p)) != std::string::npos; p += 2) message.replace(p, 1, "\n\t");
        write_all(fd, std::to_string(i) + " " + std::to_string(static_cast<int>(o.verdict)) + "\n" +
                          (o.verdict == fz::Verdict::Pass ? "" : "\t" + message + "\n"));
      }
    });
    int64_t started = -1, finished = next - 1;
    std::vector<std::pair<int64_t, std::pair<fz::Verdict, std::string>>> failures;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      std::string line = text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
      pos = eol == std::string::npos ? text.size() : eol + 1;
      long long index = 0;
      int verdict = 0;
      if (line.rfind("start ", 0) == 0) {
        started = std::stoll(line.substr(6));
      } else if (!line.empty() && line[0] == '\t') {
        failures.back().second.second += (failures.back().second.second.empty() ? "" : "\n") + line.substr(1);
      } else if (std::sscanf(line.c_str(), "%lld %d", &index, &verdict) == 2) {
        finished = index;
        ++graphs;
        if (verdict != static_cast<int>(fz::Verdict::Pass)) failures.push_back({index, {static_cast<fz::Verdict>(verdict), ""}});
      }
    }
    for (auto& [index, failure] : failures) {
      ++mismatches;
      report(options, index, failure.first, failure.second,
             minimized[signature(failure.first, failure.second)]++ < options.minimize_per_kind);
    }
    if (started > finished) {  // the child died inside program `started`
      ++graphs;
      ++crashes;
      report(options, started, fz::Verdict::Crash, death(signal),
             minimized[signature(fz::Verdict::Crash, death(signal))]++ < options.minimize_per_kind);
      finished = started;
    } else if (signal != 0) {
      std::printf("batch child %s after its last program\n", death(signal).c_str());
    }
    next = finished + 1;
    if (elapsed() - last_progress > 10 || next >= end) {
      last_progress = elapsed();
      std::printf("[%.0f s] graphs %lld, crashes %lld, mismatches %lld\n", elapsed(), static_cast<long long>(graphs),
                  static_cast<long long>(crashes), static_cast<long long>(mismatches));
      std::fflush(stdout);
    }
  }
  std::printf("graphs %lld, crashes %lld, mismatches %lld\n", static_cast<long long>(graphs),
              static_cast<long long>(crashes), static_cast<long long>(mismatches));
  return crashes + mismatches == 0 ? 0 : 1;
}
