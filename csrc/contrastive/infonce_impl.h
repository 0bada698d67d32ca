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
// bit-identical run to run. The same code serves the CPU and CUDA registrations; the
// CUDA one uses larger tiles to keep the GPU busy.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <tuple>

#include "contrastive/contrastive_checks.h"

namespace llmhni {
namespace infonce_detail {

constexpr double kNormEps = 1e-12;

inline at::ScalarType acc_type(at::ScalarType s) { return s == at::kDouble ? at::kDouble : at::kFloat; }

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

inline std::tuple<at::Tensor, at::Tensor> infonce_forward_impl(const at::Tensor& a, const at::Tensor& b,
                                                               double temperature, int64_t tile_elems) {
  using namespace infonce_detail;
  const int64_t P = a.size(0), B = a.size(1);
  const auto acc = acc_type(a.scalar_type());
  auto lse = at::empty({P, B}, a.options().dtype(acc));
  auto loss_acc = at::zeros({P}, a.options().dtype(acc));
  if (B == 0 || P == 0) return {loss_acc.to(a.scalar_type()), lse};
  auto [an, na] = normalize(a);
  auto [bn, nb] = normalize(b);
  auto bnt = bn.transpose(1, 2);
  const double inv_t = 1.0 / temperature;
  const int64_t rows = block_rows(P, B, tile_elems);
  auto pos = at::empty({P, B}, a.options().dtype(acc));
  for (int64_t r0 = 0; r0 < B; r0 += rows) {
    const int64_t r1 = std::min(B, r0 + rows);
    auto s = at::bmm(an.narrow(1, r0, r1 - r0), bnt);  // [P, r, B]
    s.mul_(inv_t);
    lse.narrow(1, r0, r1 - r0).copy_(at::logsumexp(s, {-1}));
    pos.narrow(1, r0, r1 - r0).copy_(s.diagonal(r0, 1, 2));
  }
  auto loss = (lse - pos).sum(-1) / static_cast<double>(B);
  return {loss.to(a.scalar_type()), lse};
}

inline std::tuple<at::Tensor, at::Tensor> infonce_backward_impl(const at::Tensor& grad_loss, const at::Tensor& a,
                                                                const at::Tensor& b, const at::Tensor& lse_in,
                                                                double temperature, int64_t tile_elems) {
  using namespace infonce_detail;
  const int64_t P = a.size(0), B = a.size(1);
  if (B == 0 || P == 0) return {at::zeros_like(a), at::zeros_like(b)};
  const auto acc = acc_type(a.scalar_type());
  auto [an, na] = normalize(a);
  auto [bn, nb] = normalize(b);
  auto bnt = bn.transpose(1, 2);
  auto lse = lse_in.to(acc);
  const double inv_t = 1.0 / temperature;
  // g_p / t, with g_p = grad_loss_p / B
  auto gt = (grad_loss.to(acc) * (inv_t / static_cast<double>(B))).view({P, 1, 1});
  auto d_an = at::empty_like(an);
  auto d_bn = at::zeros_like(bn);
  const int64_t rows = block_rows(P, B, tile_elems);
  for (int64_t r0 = 0; r0 < B; r0 += rows) {
    const int64_t r1 = std::min(B, r0 + rows);
    auto an_blk = an.narrow(1, r0, r1 - r0);
    auto s = at::bmm(an_blk, bnt);  // [P, r, B]
    s.mul_(inv_t).sub_(lse.narrow(1, r0, r1 - r0).unsqueeze(2)).exp_().mul_(gt);
    s.diagonal(r0, 1, 2).sub_(gt.view({P, 1}));
    d_an.narrow(1, r0, r1 - r0).copy_(at::bmm(s, bn));
    d_bn.baddbmm_(s.transpose(1, 2), an_blk);
  }
  auto da = normalize_backward(d_an, an, na, a).to(a.scalar_type());
  auto db = normalize_backward(d_bn, bn, nb, b).to(b.scalar_type());
  return {da, db};
}

}  // namespace llmhni
