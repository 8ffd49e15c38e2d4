// fusejit: lazy PyTorch-style tensors compiled into fused, vectorized kernels.
//
// Every operation records a node; nothing runs until a value is needed (eval(), to_vector(),
// item(), data_ptr()). Then the pending graph is simplified, fused into as few kernels as the
// rules allow, compiled for the host CPU (cached per shape) and run.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fusejit/core.h"

namespace fusejit {

namespace ir {
struct Node;
}
namespace frontend {
struct TensorCell;
struct CellAccess;
}

class Tensor {
 public:
  Tensor() = default;
  // A 0-d tensor holding `value`, so a float works wherever a tensor operand does
  // (x * 2, where(x > 0, x, 0)).
  Tensor(float value);  // NOLINT(google-explicit-constructor)
  explicit Tensor(std::shared_ptr<ir::Node> node);

  // Copies of a Tensor are one tensor, as in libtorch: an in-place update through one is seen
  // through all of them.
  bool defined() const { return cell_ != nullptr; }
  const Shape& sizes() const;
  int64_t size(int64_t dim) const;
  int64_t dim() const;
  int64_t numel() const;
  DType dtype() const;

  // Computes the value now (and keeps it); later uses read the stored result.
  const Tensor& eval() const;
  bool is_evaluated() const;

  // T is float for Float32 tensors, bool for Bool ones and int64_t for Int64 ones.
  template <class T>
  std::vector<T> to_vector() const;  // in row-major order, whatever the strides
  template <class T>
  T item() const;
  // Materializes the tensor and returns its first element's address in its storage (valid while
  // this tensor, or a view of it, lives). Element i1..in is at strides()-weighted offsets from
  // there: a view may not be contiguous (contiguous() makes it so).
  template <class T>
  T* data_ptr() const;

  // ---- views: zero-copy, lazy like everything else ----
  // Each reads this tensor's elements through another shape, strides and offset, with no
  // copy: a view of an evaluated tensor reads its storage in place (from_blob memory too); a
  // view of a pending tensor stays lazy, and kernels read through it (the index map is part of
  // the load). Dims may be negative (counted from the end). Errors name the op and the shape.
  // One dim of `shape` may be -1 (inferred). view() throws where the strides cannot express
  // the new shape; reshape() copies only then.
  Tensor reshape(Shape shape) const;
  Tensor view(Shape shape) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;  // transpose(0, 1) of a 2-d tensor; a 0-d or 1-d tensor unchanged
  Tensor permute(Shape dims) const;
  // Indices start, start + step, ... below end of `dim`; bounds count from the end when
  // negative and clamp to the dim, as Python slices do. step > 0.
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;  // in range, or Error
  Tensor select(int64_t dim, int64_t index) const;                  // drops `dim`
  // Size-1 dims stretched (stride 0) and new leading dims; -1 keeps a dim's size.
  Tensor expand(Shape shape) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze() const;             // every size-1 dim dropped
  Tensor squeeze(int64_t dim) const;  // `dim` dropped if its size is 1
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  // This tensor if its elements are in row-major order, else a (lazy) contiguous copy.
  Tensor contiguous() const;
  bool is_contiguous() const;
  // This tensor if it is of `dtype`, else a converted copy: Bool counts as 0/1; a float converts
  // into Int64 truncated towards zero (saturating at int64's ends, NaN to 0), into Bool as
  // "nonzero".
  Tensor to(DType dtype) const;
  // In elements. A pending tensor that is no view is contiguous, from offset 0.
  Shape strides() const;
  int64_t storage_offset() const;

  // The text of the requested stages ("graph,fused,llvm,opt,asm", any subset) for
  // evaluating this tensor, without running it. Kernels are compiled (and cached) as needed.
  std::string dump(const std::string& stages = "graph,fused") const;

  // ---- in place ----
  // Each updates this tensor (and every copy of it) and returns it, lazily like every op: a
  // value recorded before the update keeps seeing the old value. The update is written into
  // the tensor's own storage when nothing else can see the old value, else into new memory
  // (copy-on-write). `other` broadcasts to this tensor's shape; a float is a 0-d tensor.
  // Arithmetic needs a Float32 tensor; copy_, fill_ and zero_ convert to the tensor's dtype.
  // Through a view they update the tensor viewed and its other views (a view with stride-0 or
  // overlapping elements throws Error).
  Tensor& add_(const Tensor& other);
  Tensor& sub_(const Tensor& other);
  Tensor& mul_(const Tensor& other);
  Tensor& div_(const Tensor& other);
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(float value);
  Tensor& zero_();
  Tensor& clamp_(float min, float max);
  Tensor& relu_();

  Tensor matmul(const Tensor& other) const;  // fusejit::matmul(*this, other)

  const std::shared_ptr<ir::Node>& node() const;

 private:
  friend struct frontend::CellAccess;
  const ir::Node& checked_node() const;
  std::shared_ptr<frontend::TensorCell> cell_;
};

// ---- creation ----
// From values in row-major order. An lvalue vector is copied (into pooled memory, in parallel
// when large); an rvalue one (std::move, or a braced list) is adopted without a copy.
Tensor tensor(const std::vector<float>& data, Shape shape);
Tensor tensor(std::vector<float>&& data, Shape shape);
Tensor from_blob(float* data, Shape shape);  // no copy: the caller keeps `data` alive
// No copy, of memory that `owner` keeps alive (a NumPy array, a DLPack tensor): fusejit holds
// `owner` while any tensor or view reads `data` and releases it after the last one. `data`
// holds elements of `dtype` (float, bool as one byte 0 or 1, int64_t), aligned to their size,
// at `strides` (in elements, each >= 0; empty = row-major). A strided tensor is a view of the
// memory it spans, so an in-place update through it writes there, as through any view.
Tensor from_blob(void* data, Shape shape, Shape strides, DType dtype, std::shared_ptr<void> owner);
Tensor zeros(Shape shape);
Tensor ones(Shape shape);
Tensor full(Shape shape, float value);
Tensor arange(double start, double end, double step = 1);
Tensor rand(Shape shape, uint64_t seed);   // uniform in [0, 1)
Tensor randn(Shape shape, uint64_t seed);  // standard normal

// ---- views (the members above, as functions) ----
Tensor reshape(const Tensor& x, Shape shape);
Tensor view(const Tensor& x, Shape shape);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor t(const Tensor& x);
Tensor permute(const Tensor& x, Shape dims);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor expand(const Tensor& x, Shape shape);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start = 0, int64_t end = -1);
Tensor contiguous(const Tensor& x);

// ---- joins ----
// The tensors joined along `dim` (negative counts from the end): one dtype, the same sizes in
// every other dim. Lazy: the kernel computing each part stores it straight into its place.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
// The tensors, of one shape and dtype, joined along a new dim `dim`.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
// x with dim `dim` taken at the positions `index` lists (Int64, 0-d or 1-d): an embedding lookup
// is index_select(table, 0, ids). The index is evaluated and checked when this is called (an
// index out of range throws Error); the gather stays lazy and fuses with what consumes it.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);

// ---- linear algebra ----
// The matrix product with torch.matmul's rules: 1-d by 1-d is a dot product (0-d); a 1-d
// operand is a row (first) or a column (second) whose dim leaves the result; operands of 2 or
// more dims multiply their last two dims, their leading (batch) dims broadcasting. Operands may
// be any views (a transposed weight is read in place, not copied). Sums run in float32.
Tensor matmul(const Tensor& a, const Tensor& b);
// x [..., in] times weight [out, in] transposed, plus bias (broadcast to [..., out]) when given.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// softmax(q kᵀ · scale + mask) v with torch's rules: q [..., L, E], k [..., S, E], v [..., S, Ev]
// (leading dims broadcast) give [..., L, Ev]; the scale is 1/√E unless given; attn_mask, Bool
// (true = attend) or Float32 (added to the scores), broadcasts to [..., L, S]; is_causal lets
// query i attend keys j <= i only (no attn_mask then). One kernel, tiled: the L x S scores never
// reach memory, and causal tiles above the diagonal are skipped. A row whose scores are all
// -inf (every key masked) is NaN, as softmax gives; causally hidden keys are never read.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask = Tensor(), bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

// ---- elementwise (NumPy broadcasting) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, float exponent);
Tensor maximum(const Tensor& a, const Tensor& b);  // NaN-propagating, as torch.maximum
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor clamp(const Tensor& x, float min, float max);

Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);

// Comparisons give Bool tensors; arithmetic on a Bool tensor treats it as 0/1.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// Picks a where cond is true (a Float32 cond counts as true where nonzero).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// ---- activations ----
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor gelu(const Tensor& x, const std::string& approximate = "none");  // "none" (erf) or "tanh"
Tensor silu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, float negative_slope = 0.01f);
Tensor elu(const Tensor& x, float alpha = 1.0f);
Tensor softplus(const Tensor& x, float beta = 1.0f, float threshold = 20.0f);

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- reductions ----
// The one-argument forms reduce over all elements to a 0-d tensor. `dims` may count from the
// end (-1 is the last); an empty list means every dim. keepdim keeps reduced dims as size 1.
// Over zero elements sum is 0, prod 1, mean NaN; amax/amin/max/min throw. NaN propagates.
// Full reductions are split into fixed blocks: the result is bitwise the same for any thread
// count.
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, Shape dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, Shape dims, bool keepdim = false);
Tensor prod(const Tensor& x);
Tensor prod(const Tensor& x, Shape dims, bool keepdim = false);
Tensor amax(const Tensor& x);
Tensor amax(const Tensor& x, Shape dims, bool keepdim = false);
Tensor amin(const Tensor& x);
Tensor amin(const Tensor& x, Shape dims, bool keepdim = false);
Tensor max(const Tensor& x);  // over all elements
Tensor min(const Tensor& x);
// The index (Int64) of the first max/min along `dim`; NaN counts as the max and the min, as in
// PyTorch. Dims of at most 2^24 elements.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
// Divides the sum of squared deviations by (count - correction), as torch.var; the one-argument
// forms use correction 1 (var(x, {}, 0) is the population variance of all elements).
Tensor var(const Tensor& x);
Tensor var(const Tensor& x, Shape dims, double correction = 1, bool keepdim = false);
Tensor std(const Tensor& x);
Tensor std(const Tensor& x, Shape dims, double correction = 1, bool keepdim = false);
// Normalizes over the trailing `normalized_shape` dims; weight and bias may be undefined
// (Tensor()) for no affine transform.
Tensor layer_norm(const Tensor& x, Shape normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

// A float on either side is a 0-d tensor that broadcasts.
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);

// Evaluates several tensors in one schedule: shared work is computed once.
void eval(const std::vector<Tensor>& outputs);

// ---- settings ----
// Off = eager: every op is its own kernel and every result is materialized.
void set_fusion_enabled(bool enabled);
bool fusion_enabled();
// Threads used by large kernels (default: the machine's cores).
void set_num_threads(int threads);
int num_threads();

class FusionGuard {
 public:
  explicit FusionGuard(bool enabled);
  ~FusionGuard();
  FusionGuard(const FusionGuard&) = delete;
  FusionGuard& operator=(const FusionGuard&) = delete;

 private:
  bool previous_;
};

class NumThreadsGuard {
 public:
  explicit NumThreadsGuard(int threads);
  ~NumThreadsGuard();
  NumThreadsGuard(const NumThreadsGuard&) = delete;
  NumThreadsGuard& operator=(const NumThreadsGuard&) = delete;

 private:
  int previous_;
};

// ---- bounds ----
// Compiled kernels are cached per shape, up to `kernels` of them (default 4096, about 11 KB of
// JIT memory each); beyond that the least recently looked up is evicted and its memory freed
// once nothing uses it. An evicted kernel needed again is compiled again. Lowering the capacity
// evicts at once. Throws Error for kernels < 1.
void set_kernel_cache_capacity(int64_t kernels);
int64_t kernel_cache_capacity();
// Frees every buffer the allocator keeps for reuse (freed tensors' memory, up to 2 GiB or an
// eighth of the RAM, whichever is less), as torch.cuda.empty_cache does; live tensors keep theirs.
void empty_cache();

// ---- disk cache ----
// Compiled kernels are also written to disk, and a later process loads them from there instead
// of compiling them again (Stats::disk_hits). The directory is FUSEJIT_CACHE_DIR if set (set but
// empty: no disk cache), else $XDG_CACHE_HOME/fusejit, else $HOME/.cache/fusejit, created when
// first needed. An entry is valid only for the same kernel, fusejit build, LLVM version, CPU
// (name and features) and optimization settings; a damaged or foreign entry is ignored and
// written again. The directory is kept under a size limit (FUSEJIT_CACHE_MAX_MB megabytes,
// default 512) by removing the least recently used entries; a directory that cannot be used
// turns the disk cache off with one line on stderr.
void set_disk_cache_dir(const std::string& dir);  // "" turns the disk cache off
std::string disk_cache_dir();                     // "" when off
void set_disk_cache_limit(int64_t bytes);         // Error if bytes < 0
int64_t disk_cache_limit();

// ---- introspection ----
struct Stats {
  int64_t kernels_compiled = 0;
  int64_t cache_hits = 0;
  int64_t cache_misses = 0;
  int64_t kernels_launched = 0;
  int64_t kernels_evicted = 0;
  // Kernels loaded from the disk cache instead of compiled (counted among cache_misses).
  int64_t disk_hits = 0;
  double compile_ms = 0;
  // Tensor buffers handed out (fresh or reused from the pool): results, and copied inputs.
  int64_t buffers_allocated = 0;
};
Stats stats();  // monotonic since process start (or the last reset_stats())
void reset_stats();

// The CPU that kernels are compiled for, e.g. "znver3 (avx2, 8 floats per vector)".
std::string target_description();

}  // namespace fusejit
