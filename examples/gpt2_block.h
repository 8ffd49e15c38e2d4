// One GPT-2 transformer block (pre-norm), written as a user of fusejit writes it: the same
// lines as PyTorch's. Shared by examples/gpt2_block.cpp, its test and the benchmark.
#pragma once

#include <fusejit/fusejit.h>

#include <cstdint>

namespace gpt2 {

struct Config {
  int64_t model = 768;   // d
  int64_t heads = 12;    // of model / heads each
  int64_t hidden = 3072; // the MLP's width
};

struct Block {
  Config config;
  fusejit::Tensor ln1_weight, ln1_bias, qkv_weight, qkv_bias, proj_weight, proj_bias;
  fusejit::Tensor ln2_weight, ln2_bias, fc_weight, fc_bias, out_weight, out_bias;

  // Weights from randn: N(0, 0.02²) as GPT-2 initializes them, layer norms around 1. Evaluated.
  static Block random(Config config, uint64_t seed) {
    using fusejit::randn;
    int64_t d = config.model, h = config.hidden;
    auto weight = [&](fusejit::Shape shape) { return (randn(shape, seed++) * 0.02f).eval(); };
    auto norm = [&] { return (randn({d}, seed++) * 0.02f + 1.0f).eval(); };
    return {config,       norm(),           weight({d}),         weight({3 * d, d}), weight({3 * d}),
            weight({d, d}), weight({d}),    norm(),              weight({d}),        weight({h, d}),
            weight({h}),  weight({d, h}),   weight({d})};
  }

  // x [T, d] -> [T, d]: causal self-attention over the T tokens, then the MLP, each added to
  // its input.
  fusejit::Tensor forward(const fusejit::Tensor& x) const {
    using namespace fusejit;
    int64_t t = x.size(0), d = config.model, heads = config.heads;
    Tensor qkv = linear(layer_norm(x, {d}, ln1_weight, ln1_bias), qkv_weight, qkv_bias);  // [T, 3d]
    auto split_heads = [&](int64_t part) {
      return qkv.narrow(1, part * d, d).view({t, heads, d / heads}).transpose(0, 1);  // [heads, T, d/heads]
    };
    Tensor y = scaled_dot_product_attention(split_heads(0), split_heads(1), split_heads(2), Tensor(), true);
    Tensor merged = y.transpose(0, 1).reshape({t, d});
    Tensor h = x + linear(merged, proj_weight, proj_bias);
    Tensor mlp = gelu(linear(layer_norm(h, {d}, ln2_weight, ln2_bias), fc_weight, fc_bias));
    return h + linear(mlp, out_weight, out_bias);
  }
};

}  // namespace gpt2
