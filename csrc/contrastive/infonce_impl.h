// Batched cosine InfoNCE, forward and backward, one row block of scores at a time.
//
// For each pair p and row i (anchors a, candidates b, both L2-normalised like
// F.normalize with eps 1e-12, s_ij = <a^_i, b^_j> / t):
//   lse_i = log sum_j exp(s_ij),   loss_p = 1/B sum_i (lse_i - s_ii)
//   dL/da^_i = g/t (sum_j P_ij b^_j - b^_i),   dL/db^_j = g/t (sum_i P_ij a^_i - a^_j)
// with P_ij = exp(s_ij - lse_i) and g = grad_loss_p / B. Scores are computed for a
// block of rows against all B columns (a [P, rows, B] tile whose size is bounded by
// `tile_elems`), reduced and discarded; the backward recomputes them. Nothing of
// size B x B is ever held, the matmuls run in fp32 (fp64 for fp64 inputs) on the
// device's BLAS, and every sum has a fixed order (blocks in sequence), so results are
// bit-identical run to run (on the CPU whatever the thread count). The same code serves
// the CPU and CUDA registrations; the CUDA one uses larger tiles to keep the GPU busy.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <tuple>

#include "common/dispatch.h"
#include "contrastive/contrastive_checks.h"

namespace llmhni {
namespace contrastive {
namespace infonce_detail {

constexpr double kNormEps = 1e-12;

// (x / max(|x|, eps), max(|x|, eps)) in the accumulation dtype.
inline std::tuple<at::Tensor, at::Tensor> normalize(const at::Tensor& x) {
  auto xf = x.to(acc_type(x.scalar_type())).contiguous();
  auto norm = at::linalg_vector_norm(xf, 2, {-1}, /*keepdim=*/true).clamp_min(kNormEps);
  return {xf / norm, norm};
}

inline int64_t block_rows(int64_t P, int64_t B, int64_t tile_elems) {
  const int64_t per_row = std::max<int64_t>(1, P * B);
  return std::max<int64_t>(1, std::min<int64_t>(std::max<int64_t>(B, 1), tile_elems / per_row));
}

// Chain rule through x^ = x / max(|x|, eps): (dx^ - x^ <x^, dx^>) / |x| where |x| >= eps,
// dx^ / eps where the norm was clamped.
inline at::Tensor normalize_backward(const at::Tensor& grad_hat, const at::Tensor& x_hat, const at::Tensor& norm,
                                     const at::Tensor& x) {
  auto raw_norm = at::linalg_vector_norm(x.to(grad_hat.scalar_type()), 2, {-1}, /*keepdim=*/true);
  auto proj = grad_hat - x_hat * (x_hat * grad_hat).sum(-1, /*keepdim=*/true);
  return at::where(raw_norm >= kNormEps, proj, grad_hat) / norm;
}

}  // namespace infonce_detail

// Above this 1/t the fixed shift 1/t can underflow a whole row (exp(-2/t) < 2^-126), so
// the forward takes the row maximum instead.
constexpr double kMaxFixedShift = 40.0;

namespace infonce_detail {

// lse and the positive score s_ii of rows [r0, r0 + r) of one pair: an_p = a^ / t [B, d],
// bnt_p = b^T [d, B].
inline void forward_rows(const at::Tensor& an_p, const at::Tensor& bnt_p, int64_t r0, int64_t r, double inv_t,
                         at::Tensor lse_p, at::Tensor pos_p) {
  auto an_blk = an_p.narrow(0, r0, r);
  if (inv_t <= kMaxFixedShift) {
    // s - 1/t <= 0 for cosine scores: exp never overflows and no row maximum is needed
    auto e = at::addmm(at::full({1}, -inv_t, an_p.options()), an_blk, bnt_p);  // [r, B]
    pos_p.narrow(0, r0, r).copy_(e.diagonal(r0)).add_(inv_t);
    lse_p.narrow(0, r0, r).copy_(e.exp_().sum(-1).log_()).add_(inv_t);
  } else {
    auto sc = at::mm(an_blk, bnt_p);
    pos_p.narrow(0, r0, r).copy_(sc.diagonal(r0));
    lse_p.narrow(0, r0, r).copy_(at::logsumexp(sc, {-1}));
  }
}

}  // namespace infonce_detail

// Forward. `parallel_blocks` (CPU): row blocks are spread over threads, each block's
// matmul and elementwise work running single-threaded inside its thread (one parallel
// region per pair instead of several per block). Otherwise (CUDA) blocks run in order
// on the stream.
inline std::tuple<at::Tensor, at::Tensor> infonce_forward_impl(const at::Tensor& a, const at::Tensor& b,
                                                               double temperature, int64_t tile_elems,
                                                               bool parallel_blocks) {
  using namespace infonce_detail;
  const int64_t P = a.size(0), B = a.size(1);
  const auto acc = acc_type(a.scalar_type());
  auto lse = at::empty({P, B}, a.options().dtype(acc));
  if (B == 0 || P == 0) return {at::zeros({P}, a.options()), lse};
  const double inv_t = 1.0 / temperature;
  auto an = std::get<0>(normalize(a)).mul_(inv_t);  // a^ / t, so one matmul gives s
  auto bnt = std::get<0>(normalize(b)).transpose(1, 2).contiguous();
  auto pos = at::empty({P, B}, a.options().dtype(acc));
  const int64_t rows = block_rows(1, B, tile_elems), nblk = (B + rows - 1) / rows;
  for (int64_t p = 0; p < P; ++p) {
    const auto an_p = an.select(0, p), bnt_p = bnt.select(0, p);
    auto lse_p = lse.select(0, p), pos_p = pos.select(0, p);
    auto run = [&](int64_t blk) {
      const int64_t r0 = blk * rows;
      forward_rows(an_p, bnt_p, r0, std::min(B, r0 + rows) - r0, inv_t, lse_p, pos_p);
    };
    if (parallel_blocks) {
      at::parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t blk = b0; blk < b1; ++blk) run(blk);
      });
    } else {
      for (int64_t blk = 0; blk < nblk; ++blk) run(blk);
    }
  }
  auto loss = (lse - pos).sum(-1) / static_cast<double>(B);
  return {loss.to(a.scalar_type()), lse};
}

// Backward. With E = P - I (softmax rows minus 1 at the positive) and c_p = g_p / t:
//   dL/da^ = c E b^,  dL/db^ = c E^T a^.
// parallel_blocks (CPU): phase 1 over row blocks computes dL/da^ (E_I b^); phase 2 over
// column blocks recomputes the column tile E_{:,J} and computes dL/db^_J = E_{:,J}^T a^.
// Every output row is written by one block with a fixed summation order: the result
// does not depend on the thread count. Otherwise (CUDA) one pass over row blocks in
// stream order accumulates E_I^T a^_I into dL/db^.
inline std::tuple<at::Tensor, at::Tensor> infonce_backward_impl(const at::Tensor& grad_loss, const at::Tensor& a,
                                                                const at::Tensor& b, const at::Tensor& lse_in,
                                                                double temperature, int64_t tile_elems,
                                                                bool parallel_blocks) {
  using namespace infonce_detail;
  const int64_t P = a.size(0), B = a.size(1);
  if (B == 0 || P == 0) return {at::zeros_like(a), at::zeros_like(b)};
  const auto acc = acc_type(a.scalar_type());
  auto [an, na] = normalize(a);
  auto [bn, nb] = normalize(b);
  const double inv_t = 1.0 / temperature;
  auto an_t = an * inv_t;
  auto bnt = bn.transpose(1, 2).contiguous();
  auto lse = lse_in.to(acc).contiguous();
  // c_p = g_p / t, with g_p = grad_loss_p / B
  auto ct = (grad_loss.to(acc) * (inv_t / static_cast<double>(B))).view({P, 1, 1});
  auto d_an = at::empty_like(an);
  auto d_bn = parallel_blocks ? at::empty_like(bn) : at::zeros_like(bn);
  const int64_t rows = block_rows(1, B, tile_elems), nblk = (B + rows - 1) / rows;
  for (int64_t p = 0; p < P; ++p) {
    const auto an_t_p = an_t.select(0, p), an_p = an.select(0, p), bnt_p = bnt.select(0, p),
               bn_p = bn.select(0, p), lse_p = lse.select(0, p);
    auto d_an_p = d_an.select(0, p), d_bn_p = d_bn.select(0, p);
    const auto neg_lse_col = lse_p.neg().unsqueeze(1);  // [B, 1]
    auto row_block = [&](int64_t blk) {
      const int64_t r0 = blk * rows, r = std::min(B, r0 + rows) - r0;
      // E_I = exp(s_I - lse_I) - I, rows r0..r0+r
      auto e = at::addmm(neg_lse_col.narrow(0, r0, r), an_t_p.narrow(0, r0, r), bnt_p).exp_();  // [r, B]
      e.diagonal(r0).sub_(1.0);
      auto d_an_blk = d_an_p.narrow(0, r0, r);
      at::mm_out(d_an_blk, e, bn_p);
      if (!parallel_blocks) d_bn_p.addmm_(e.t(), an_p.narrow(0, r0, r));
    };
    auto col_block = [&](int64_t blk) {
      const int64_t c0 = blk * rows, c = std::min(B, c0 + rows) - c0;
      // E_{:,J} = exp(s_{:,J} - lse) - I, columns c0..c0+c
      auto e = at::addmm(neg_lse_col, an_t_p, bnt_p.narrow(1, c0, c)).exp_();  // [B, c]
      e.diagonal(-c0).sub_(1.0);
      auto d_bn_blk = d_bn_p.narrow(0, c0, c);
      at::mm_out(d_bn_blk, e.t(), an_p);
    };
    if (parallel_blocks) {
      at::parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t blk = b0; blk < b1; ++blk) row_block(blk);
      });
      at::parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t blk = b0; blk < b1; ++blk) col_block(blk);
      });
    } else {
      for (int64_t blk = 0; blk < nblk; ++blk) row_block(blk);
    }
  }
  d_an.mul_(ct);
  d_bn.mul_(ct);
  auto da = normalize_backward(d_an, an, na, a).to(a.scalar_type());
  auto db = normalize_backward(d_bn, bn, nb, b).to(b.scalar_type());
  return {da, db};
}

}  // namespace contrastive
}  // namespace llmhni
