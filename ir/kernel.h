// The kernel description that codegen consumes, and the schedule of kernels for one eval.
//
// A kernel is a loop nest over `domain` (row-major, already collapsed: adjacent dims that every
// access walks contiguously are merged) whose body is a list of ops in SSA order. Loads and
// generators address the domain through per-dim strides (0 = broadcast).
//
// An elementwise kernel writes every output contiguously over the domain. A reduction kernel
// reduces the dims [reduce_begin, reduce_end):
// - row reduction (reduce_end = rank): each row (one index of the kept leading dims) is
//   reduced in registers. Ops marked `row` are values per row: the reductions and what is
//   computed from them. Ops that read a row value run in a later pass over the row, so a
//   row is swept once per reduction stage plus once to store full-domain outputs (softmax:
//   max, then sum, then the output). Row outputs are stored contiguously over the kept dims.
// - column reduction (kept dims after the reduced ones): whole vectors of the trailing kept
//   dims accumulate in the output, which is stored contiguously over the kept dims.
// A matmul kernel computes one MatMul op over its domain [batch..., M, N] (never collapsed), and
// elementwise work on its result (the epilogue), stored contiguously over the domain. An
// attention kernel likewise computes one Attention op over [batch..., L, Ev] and its epilogue.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace fusejit::ir {

struct KernelOp {
  OpCode op = OpCode::Input;  // Input = a load of `slot`; Constant; a generator; elementwise
  DType dtype = DType::Float32;
  std::vector<int32_t> args;  // earlier ops of the same kernel
  // Input: the kernel input slot. Scalar, Rand, Randn: the parameter slot of the run-time value.
  int32_t slot = -1;
  OpParams params;
  // Input: element strides of the slot; generators: strides of the flat index; Gather: the
  // strides of its input's slot but along the gathered dim (0 there).
  Strides strides;
  bool row = false;  // row reductions: a value per row, computed once per row
  int64_t gather_stride = 0;  // Gather: the input's stride along the gathered dim, times args[0]
  // Input: an operand of the MatMul or Attention op, which reads it itself; Input or generator:
  // an op of a MatMul operand's prologue (the elementwise ops that compute the operand, applied
  // while it is packed). `strides` address the operand's [batch..., rows, columns] (the domain's
  // batch dims, then its own last two), not the domain.
  bool operand = false;
};

// What loop a kernel runs. Fusion sets it; codegen emits the kind's strategy and the executor
// splits the work by the kind's rule (parallel_range, thread_split): nothing re-derives it.
enum class KernelKind : uint8_t {
  Fill,             // elementwise, one float32 output holding one value (zeros, full, a scalar)
  Elementwise,      // every output stored over the whole domain
  RowReduction,     // reduces the trailing dims [reduce_begin, rank): each row in registers
  ColumnReduction,  // reduces dims followed by kept dims: vectors of the trailing ones accumulate
  MatMul,           // one MatMul over [batch..., M, N] (Kernel::contraction), its operands' prologues, its epilogue
  Attention,        // one Attention over [batch..., L, Ev] (Kernel::contraction, attended), its epilogue
};
std::string_view kernel_kind_name(KernelKind kind);

// What the kernel entry's [begin, end) range indexes: dim `dim` of the domain, or (chunked
// reductions) the blocks of `chunk` indices of dim 0.
struct ParallelRange {
  int32_t dim = 0;
  bool chunks = false;
  int64_t extent = 1;       // indices in the range
  bool innermost = false;   // the innermost dim: threads' parts are cut at whole vectors
};

// A MatMul of at least this many result rows copies its operands into cache-resident panels
// before multiplying (codegen's blocked form). Only these apply an operand's elementwise
// producers (its prologue) while copying; fewer rows read each operand where it lies.
inline constexpr int64_t kPackedProductRows = 64;

// Kernels of at least this many elements are split across threads (fork/join costs
// 0.1-0.6 µs here; splitting pays from roughly 64k elements).
inline constexpr int64_t kParallelThreshold = 1 << 16;

// The split of [0, extent) among threads: parts of `part` indices (the last may be shorter).
struct ThreadSplit {
  int64_t extent = 0;
  int64_t part = 0;
  int64_t parts() const { return part ? (extent + part - 1) / part : 0; }
};

struct Kernel {
  KernelKind kind = KernelKind::Elementwise;
  Shape domain;
  int32_t reduce_begin = 0;  // reduced dims: [reduce_begin, reduce_end); none when equal
  int32_t reduce_end = 0;
  // Row reductions over the whole domain, when nonzero: each block of `chunk` indices of dim 0
  // is one row whose result is a partial (a later kernel combines the partials in order).
  int64_t chunk = 0;
  std::vector<DType> input_dtypes;  // one per input slot
  int32_t parameters = 0;           // parameter slots: run-time values (has_run_time_value)
  std::vector<KernelOp> ops;
  std::vector<int32_t> outputs;  // the op each output slot stores
  // Empty, or one per output: the element strides over the domain of where it is stored (the
  // parts of a concatenation); empty means every output is contiguous over the domain.
  std::vector<Strides> output_strides;
  // MatMul kernels: K, the extent of the dim the product sums over; Attention kernels: E, that
  // of the queries' and keys' rows.
  int64_t contraction = 0;
  // Attention kernels: S, the keys each query attends (before a causal mask).
  int64_t attended = 0;
  // Stores an in-place update (Graph::in_place), over lines it has just read: its stores go
  // through the cache, never streamed (streaming them evicts the lines the loads brought in:
  // the Adam step ran 9% slower).
  bool in_place = false;

  // Canonical text: equal keys mean interchangeable compiled code.
  std::string key() const;
  int64_t elements() const { return numel(domain); }
  bool reduces() const { return reduce_end > reduce_begin; }
  // The Input op whose value the kernel's one output stores unchanged (through copies), or -1.
  int32_t copied_input() const;
  // Dim 0; or the chunks of a chunked reduction; or the trailing kept dim of a column
  // reduction without leading kept dims; a row reduction of one row has one index; a matmul's
  // first dim larger than 1 but N (a batch dim, or M), or N when there is none; an attention's
  // first dim larger than 1 but Ev (a batch dim, or L), or L.
  ParallelRange parallel_range() const;
  // `threads` share the range in at most that many parts (one below kParallelThreshold
  // elements); `lanes` floats per vector step.
  ThreadSplit thread_split(int threads, int64_t lanes) const;
};

// The kind of a kernel whose domain, reduced dims and outputs are set (fusion's last step).
KernelKind classify(const Kernel& kernel);

// Where a kernel argument's data lives for one launch.
struct BufferRef {
  int32_t buffer = -1;  // index into Schedule::buffers
  int64_t offset = 0;   // element offset of the first element read
};

struct ScheduledKernel {
  Kernel kernel;
  std::vector<BufferRef> inputs;
  std::vector<int32_t> parameters;  // per parameter slot: an index into Schedule::parameters
  std::vector<int32_t> outputs;     // buffers written
  std::vector<int64_t> output_offsets;  // empty, or per output: its first element's offset
  std::vector<NodeId> nodes;        // graph nodes computed here (in order)
  std::vector<NodeId> output_nodes; // the graph node each output slot holds
  std::vector<std::string> notes;   // why the boundaries are where they are

  int64_t output_offset(size_t output) const { return output_offsets.empty() ? 0 : output_offsets[output]; }
  // Whether Input op `op` reads its buffer exactly where output slot `output` is stored: same
  // first element, same strides over the domain (each element reads the one it writes).
  bool reads_where_it_writes(const KernelOp& op, size_t output) const;
};

struct ScheduleBuffer {
  DType dtype;
  Shape shape;
  View external;  // set for graph inputs; empty for buffers the executor allocates
};

// A run-time value the kernels read: a Scalar's float32 or a generator's seed.
struct ScheduleParameter {
  NodeId source;  // the lowered graph's node holding it (GraphNode::source)
  uint64_t bits;  // its value when the schedule was made (run_time_value)
};

struct Schedule {
  std::vector<ScheduleBuffer> buffers;
  std::vector<ScheduleParameter> parameters;
  std::vector<ScheduledKernel> kernels;  // in execution order
  std::vector<int32_t> outputs;          // buffer holding each graph output
};

struct FusionOptions {
  bool fuse = true;                // false: every op its own kernel (eager)
  int max_ops_per_kernel = 256;    // longer chains are cut (compile time grows with size)
  int max_reduction_stages = 4;    // a row kernel sweeps each row once per stage (softmax: 2)
  int recompute_cost_limit = 4;    // cheaper values are recomputed per consumer kernel
  bool explain = true;             // write ScheduledKernel::notes (the fused dump's reasons)
};

// Whether the kernels that write buffer `output` may write it over the memory of buffer
// `input` (an in-place update; both buffers address that memory from its start): every kernel
// reading `input` runs before the first of them, or writes `output` and reads `input` only
// where it writes (an elementwise kernel's own element: same offset, same strides).
bool may_write_over(const Schedule& schedule, int32_t output, int32_t input);

// Groups the graph into kernels. Same-shape connected elementwise nodes share a kernel; so do a
// reduction, the elementwise work on its input (prologue), and for row reductions the work on
// its result and what broadcasts it back over the rows (epilogue). A value consumed by
// another kernel is recomputed there when its cost is at most `recompute_cost_limit`, else
// materialized; reductions are always materialized. Graph outputs are always materialized.
Schedule schedule_kernels(const Graph& graph, const FusionOptions& options);

std::string print_kernel(const Kernel& kernel);
std::string print_schedule(const Schedule& schedule);

}  // namespace fusejit::ir
