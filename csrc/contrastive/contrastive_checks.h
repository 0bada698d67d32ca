// Argument checks of the contrastive ops, called by the host code of both devices
// before any work.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <utility>

#include "common/checks.h"
#include "common/csr_checks.h"

namespace llmhni {
namespace contrastive {

// Dtypes, devices, sizes and scalars of an edge-drop call on a square CSR.
inline void check_edge_drop_args(const at::Tensor& rowptr, const at::Tensor& col, double keep_prob,
                                 int64_t num_views, const char* op) {
  check_index(rowptr, op, "rowptr");
  check_index(col, op, "col");
  TORCH_CHECK(rowptr.scalar_type() == col.scalar_type(), op, ": rowptr and col must share one index dtype, got ",
              rowptr.scalar_type(), " and ", col.scalar_type());
  check_same_device(rowptr, col, op, "rowptr", "col");
  TORCH_CHECK(rowptr.numel() >= 1, op, ": rowptr must have n_rows + 1 >= 1 entries, got 0");
  TORCH_CHECK(std::isfinite(keep_prob) && keep_prob >= 0.0 && keep_prob <= 1.0, op,
              ": keep_prob must lie in [0, 1], got ", keep_prob);
  TORCH_CHECK(num_views >= 1, op, ": num_views must be at least 1, got ", num_views);
  const int64_t n = rowptr.numel() - 1;
  TORCH_CHECK(n <= (int64_t(1) << 32), op, ": at most 2^32 nodes are supported, got ", n);
  TORCH_CHECK(num_views <= (int64_t(1) << 20), op, ": num_views must be at most 2^20, got ", num_views);
}

// Every check of an edge-drop call; returns contiguous (rowptr, col). The structure is
// check_csr_structure's (columns in [0, n)); on the CPU the columns are checked by the
// keep-drawing pass as it reads them.
inline std::pair<at::Tensor, at::Tensor> edge_drop_inputs(const at::Tensor& rowptr_in, const at::Tensor& col_in,
                                                          double keep_prob, int64_t num_views, const char* op,
                                                          c10::DeviceType device) {
  check_edge_drop_args(rowptr_in, col_in, keep_prob, num_views, op);
  check_device_type(rowptr_in, device, op, "rowptr");
  auto rowptr = rowptr_in.contiguous();
  auto col = col_in.contiguous();
  check_csr_structure(op, rowptr, col, rowptr.numel() - 1, /*cols_in_kernel=*/device == c10::DeviceType::CPU);
  return {rowptr, col};
}

inline void check_infonce_args(const at::Tensor& a, const at::Tensor& b, double temperature, const char* op,
                               c10::DeviceType device) {
  check_floating(a, op, "a");
  check_floating(b, op, "b");
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), op, ": a and b must share one dtype, got ", a.scalar_type(),
              " and ", b.scalar_type());
  check_same_device(a, b, op, "a", "b");
  check_dim(a, 3, op, "a ([P, B, d])");
  TORCH_CHECK(a.sizes() == b.sizes(), op, ": a and b must have the same shape [P, B, d], got ", a.sizes(), " and ",
              b.sizes());
  TORCH_CHECK(a.size(2) >= 1 || a.size(1) == 0, op, ": the representation dimension d must be at least 1");
  TORCH_CHECK(std::isfinite(temperature) && temperature > 0.0, op, ": temperature must be a positive number, got ",
              temperature);
  check_device_type(a, device, op, "a");
}

inline void check_infonce_backward_args(const at::Tensor& grad_loss, const at::Tensor& a, const at::Tensor& b,
                                        const at::Tensor& lse, double temperature, const char* op,
                                        c10::DeviceType device) {
  check_infonce_args(a, b, temperature, op, device);
  check_floating(grad_loss, op, "grad_loss");
  check_floating(lse, op, "lse");
  check_same_device(a, grad_loss, op, "a", "grad_loss");
  check_same_device(a, lse, op, "a", "lse");
  TORCH_CHECK(grad_loss.dim() == 1 && grad_loss.size(0) == a.size(0), op, ": grad_loss must have shape [P] = [",
              a.size(0), "], got ", grad_loss.sizes());
  TORCH_CHECK(lse.dim() == 2 && lse.size(0) == a.size(0) && lse.size(1) == a.size(1), op,
              ": lse must have shape [P, B] = [", a.size(0), ", ", a.size(1), "], got ", lse.sizes());
}

}  // namespace contrastive
}  // namespace llmhni
