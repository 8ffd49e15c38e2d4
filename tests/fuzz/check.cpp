#include "tests/fuzz/check.h"

#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

#include "frontend/lazy.h"
#include "ir/shape.h"
#include "tests/fuzz/bounds.h"

namespace fusejit::fuzz {

const char* verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::Pass: return "pass";
    case Verdict::Invalid: return "invalid";
    case Verdict::Exception: return "exception";
    case Verdict::OutsideReference: return "outside the reference bounds";
    case Verdict::FusedEagerDiffer: return "fused and eager differ";
    case Verdict::ThreadsDiffer: return "1 and 2 threads differ";
    case Verdict::Crash: return "crash";
  }
  return "?";
}

namespace {

std::vector<double> read(const Tensor& t) {
  std::vector<double> out;
  switch (t.dtype()) {
    case DType::Float32:
      for (float v : t.to_vector<float>()) out.push_back(v);
      break;
    case DType::Bool:
      for (bool v : t.to_vector<bool>()) out.push_back(v);
      break;
    case DType::Int64:
      for (int64_t v : t.to_vector<int64_t>()) out.push_back(static_cast<double>(v));
      break;
  }
  return out;
}

// Bitwise, except that every NaN equals every NaN.
bool same_bits(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::memcmp(&a, &b, sizeof a) == 0;
}

std::string describe(const RunSettings& s) {
  return std::string(s.fused ? "fused" : "eager") + ", " + std::to_string(s.threads) + " thread" +
         (s.threads == 1 ? "" : "s");
}

std::string number(double v) {
  std::ostringstream text;
  text.precision(9);
  text << v;
  return text.str();
}

std::string where_in(const Program& program, size_t output, const Shape& shape, size_t element) {
  return "output " + std::to_string(output) + " (v" + std::to_string(program.outputs[output]) + ", shape " +
         ir::shape_string(shape) + ") element " + std::to_string(element);
}

}  // namespace

Outcome check_program(const Program& program) {
  std::vector<std::vector<Bound>> bounds;
  std::vector<size_t> bound_of;  // program output -> graph output (repeats share one)
  std::vector<Shape> shapes;
  bool has_reduction = false;
  try {
    std::vector<Tensor> values = build(program, false);
    std::vector<Tensor> roots;
    std::vector<const ir::Node*> seen;
    for (int output : program.outputs) {
      const Tensor& t = values[output];
      shapes.push_back(t.sizes());
      size_t k = std::find(seen.begin(), seen.end(), t.node().get()) - seen.begin();
      if (k == seen.size()) {
        seen.push_back(t.node().get());
        roots.push_back(t);
      }
      bound_of.push_back(k);
    }
    ir::Graph graph = frontend::graph_of(roots);
    for (const ir::GraphNode& node : graph.nodes) has_reduction = has_reduction || ir::is_reduction(node.op);
    bounds = reference_bounds(graph);
  } catch (const Error& e) {
    return {Verdict::Invalid, e.what(), {}};
  }

  const RunSettings runs[] = {{true, 2}, {true, 1}, {false, 1}};
  std::vector<std::vector<double>> results[3];
  for (int r = 0; r < 3; ++r) {
    try {
      FusionGuard fusion(runs[r].fused);
      NumThreadsGuard threads(runs[r].threads);
      std::vector<Tensor> values = build(program, true);
      std::vector<Tensor> outputs;
      for (int output : program.outputs) outputs.push_back(values[output]);
      eval(outputs);
      for (const Tensor& t : outputs) results[r].push_back(read(t));
    } catch (const std::exception& e) {
      return {Verdict::Exception, describe(runs[r]) + ": " + e.what(), runs[r]};
    }
  }

  for (int r : {0, 2}) {
    for (size_t o = 0; o < program.outputs.size(); ++o) {
      const std::vector<Bound>& allowed = bounds[bound_of[o]];
      const std::vector<double>& got = results[r][o];
      if (got.size() != allowed.size())
        return {Verdict::OutsideReference,
                describe(runs[r]) + ": output " + std::to_string(o) + " has " + std::to_string(got.size()) +
                    " elements, the reference " + std::to_string(allowed.size()),
                runs[r]};
      for (size_t i = 0; i < got.size(); ++i) {
        const Bound& b = allowed[i];
        if (b.allows(got[i])) continue;
        std::string range = b.lo <= b.hi ? "[" + number(b.lo) + ", " + number(b.hi) + "]" : "no number";
        return {Verdict::OutsideReference,
                describe(runs[r]) + ": " + where_in(program, o, shapes[o], i) + " is " + number(got[i]) +
                    "; the reference allows " + range + (b.nan ? " or NaN" : ""),
                runs[r]};
      }
    }
  }
  auto first_difference = [&](int x, int y, Verdict verdict) -> Outcome {
    for (size_t o = 0; o < program.outputs.size(); ++o)
      for (size_t i = 0; i < results[x][o].size(); ++i)
        if (!same_bits(results[x][o][i], results[y][o][i]))
          return {verdict,
                  where_in(program, o, shapes[o], i) + ": " + describe(runs[x]) + " " + number(results[x][o][i]) +
                      ", " + describe(runs[y]) + " " + number(results[y][o][i]),
                  runs[y]};
    return {};
  };
  if (Outcome o = first_difference(0, 1, Verdict::ThreadsDiffer); o.verdict != Verdict::Pass) return o;
  // Elementwise programs: "Fused and eager results are bit-identical" (README, Accuracy).
  if (!has_reduction)
    if (Outcome o = first_difference(0, 2, Verdict::FusedEagerDiffer); o.verdict != Verdict::Pass) return o;
  return {};
}

namespace {

// Drops the steps that no output needs (an Eval step stays while its value does), renumbering.
Program compacted(const Program& p) {
  std::vector<bool> live(p.steps.size(), false);
  for (int o : p.outputs) live[o] = true;
  for (size_t i = p.steps.size(); i-- > 0;)
    if (live[i])
      for (int a : p.steps[i].args)
        if (a >= 0) live[a] = true;
  for (size_t i = 0; i < p.steps.size(); ++i)
    if (p.steps[i].op == Op::Eval && live[p.steps[i].args[0]]) live[i] = true;
  Program out;
  std::vector<int> renamed(p.steps.size(), -1);
  for (size_t i = 0; i < p.steps.size(); ++i) {
    if (!live[i]) continue;
    Step s = p.steps[i];
    for (int& a : s.args)
      if (a >= 0) a = renamed[a];
    renamed[i] = static_cast<int>(out.steps.size());
    out.steps.push_back(std::move(s));
  }
  for (int o : p.outputs) out.outputs.push_back(renamed[o]);
  return out;
}

// Every use of value `from` (later args, outputs) reads `to` instead.
Program redirected(Program p, int from, int to) {
  for (size_t i = from + 1; i < p.steps.size(); ++i)
    for (int& a : p.steps[i].args)
      if (a == from) a = to;
  for (int& o : p.outputs)
    if (o == from) o = to;
  return compacted(p);
}

// The candidates one minimization round tries, most shrinking first.
std::vector<Program> candidates(const Program& p) {
  std::vector<Program> out;
  for (size_t o = 0; p.outputs.size() > 1 && o < p.outputs.size(); ++o) {
    Program q = p;
    q.outputs.erase(q.outputs.begin() + static_cast<int64_t>(o));
    out.push_back(compacted(q));
  }
  for (size_t i = p.steps.size(); i-- > 0;) {
    const Step& s = p.steps[i];
    std::set<int> args(s.args.begin(), s.args.end());
    for (int a : args)
      if (a >= 0) out.push_back(redirected(p, static_cast<int>(i), a));
    if (s.op == Op::LayerNorm)
      for (size_t k = 1; k < 3; ++k)
        if (s.args[k] >= 0) {
          Program q = p;
          q.steps[i].args[k] = -1;
          out.push_back(compacted(q));
        }
  }
  // Leaves into constants, then simpler constants and data.
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const Step& s = p.steps[i];
    Program q = p;
    Step& t = q.steps[i];
    if (s.op == Op::Input || s.op == Op::Rand || s.op == Op::Randn || s.op == Op::Arange) {
      for (float value : {s.op == Op::Input ? input_value(s.seed, 0, s.distribution) : 0.5f, 1.0f}) {
        t = {.op = Op::Full, .shape = s.op == Op::Arange ? Shape{static_cast<int64_t>(std::llround((s.y - s.x) / s.z))}
                                                          : s.shape,
             .x = value};
        out.push_back(q);
      }
    } else if ((s.op == Op::Full || s.op == Op::Scalar) && s.x != 1) {
      t.x = 1;
      out.push_back(q);
    }
    if (s.op == Op::Input && s.distribution != Distribution::Uniform) {
      t = s;
      t.distribution = Distribution::Uniform;
      out.push_back(q);
    }
    if (s.keepdim || s.all_elements) {
      t = s;
      t.keepdim = false;
      t.all_elements = false;
      out.push_back(q);
    }
  }
  // Every dim of size n > 1 in the leaves becomes 1, 2 or n/2 at once (so shapes stay compatible).
  std::set<int64_t> sizes;
  for (const Step& s : p.steps) {
    for (int64_t d : s.shape)
      if (d > 1) sizes.insert(d);
    if (s.op == Op::Arange) sizes.insert(std::llround((s.y - s.x) / s.z));
  }
  for (int64_t n : sizes)
    for (int64_t m : {int64_t{1}, int64_t{2}, n / 2}) {
      if (m >= n || m < 1) continue;
      Program q = p;
      for (Step& s : q.steps) {
        for (int64_t& d : s.shape)
          if (d == n) d = m;
        if (s.op == Op::Arange && std::llround((s.y - s.x) / s.z) == n) s.y = s.x + s.z * static_cast<float>(m);
      }
      out.push_back(q);
    }
  return out;
}

}  // namespace

Program minimize(Program program, const std::function<bool(const Program&)>& still_fails, int budget) {
  program = compacted(program);
  bool progress = true;
  while (progress && budget > 0) {
    progress = false;
    for (const Program& candidate : candidates(program)) {
      if (budget-- <= 0) break;
      if (still_fails(candidate)) {
        program = candidate;
        progress = true;
        break;
      }
    }
  }
  return program;
}

}  // namespace fusejit::fuzz
