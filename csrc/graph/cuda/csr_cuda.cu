// CUDA versions of the CSR construction ops (csr_from_coo, bipartite_norm_adj,
// csr_transpose). Built from ATen's device sort and scan, in linear memory (one int64
// key per entry); no dense or (N+M)^2 structure. Run on the caller's current stream.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/dispatch.h"
#include "common/registry.h"
#include "graph/graph_checks.h"

namespace llmhni {
namespace graph {
namespace {

// Sorted, distinct (row, col) keys -> (rowptr, col, row ids) in index dtype `it`.
std::tuple<at::Tensor, at::Tensor, at::Tensor> csr_from_keys(const at::Tensor& keys, int64_t n_rows,
                                                             int64_t n_cols, at::ScalarType it) {
  at::Tensor sorted = std::get<0>(at::sort(keys));
  at::Tensor uniq = std::get<0>(at::unique_consecutive(sorted));
  const int64_t div = std::max<int64_t>(n_cols, 1);
  at::Tensor rows = at::floor_divide(uniq, div);
  at::Tensor cols = uniq - rows * div;
  at::Tensor rowptr = at::_convert_indices_from_coo_to_csr(rows, n_rows, /*out_int32=*/it == at::kInt);
  return {rowptr, cols.to(it), rows};
}

std::tuple<at::Tensor, at::Tensor> csr_from_coo_cuda(const at::Tensor& row, const at::Tensor& col,
                                                     int64_t n_rows, int64_t n_cols) {
  constexpr const char* op = "csr_from_coo";
  check_coo_args(op, row, col, n_rows, n_cols, "row", "col", c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(row.device());
  const auto it = index_dtype(n_rows, n_cols, row.numel());
  auto keys = row.to(at::kLong) * std::max<int64_t>(n_cols, 1) + col.to(at::kLong);
  auto res = csr_from_keys(keys, n_rows, n_cols, it);
  return {std::get<0>(res), std::get<1>(res)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> bipartite_norm_adj_cuda(const at::Tensor& users,
                                                                       const at::Tensor& items,
                                                                       int64_t n_users, int64_t n_items) {
  constexpr const char* op = "bipartite_norm_adj";
  check_coo_args(op, users, items, n_users, n_items, "users", "items", c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(users.device());
  const int64_t n = n_users + n_items;
  const auto it = index_dtype(n, n, 2 * users.numel());
  auto u = users.to(at::kLong);
  auto i = items.to(at::kLong) + n_users;
  const int64_t div = std::max<int64_t>(n, 1);
  auto keys = at::cat({u * div + i, i * div + u});
  auto res = csr_from_keys(keys, n, n, it);
  at::Tensor rowptr = std::get<0>(res), colA = std::get<1>(res), rows = std::get<2>(res);
  auto deg = (rowptr.narrow(0, 1, n) - rowptr.narrow(0, 0, n)).to(at::kDouble);
  auto dinv = at::reciprocal(at::sqrt(at::clamp_min(deg, 1.0)));
  auto value = (dinv.index_select(0, rows) * dinv.index_select(0, colA.to(at::kLong))).to(at::kFloat);
  return {rowptr, colA, value};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> csr_transpose_cuda(const at::Tensor& rowptr,
                                                                  const at::Tensor& col, int64_t n_cols) {
  check_csr_transpose_args(rowptr, col, n_cols, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(col.device());
  const int64_t n_rows = rowptr.numel() - 1;
  auto counts = (rowptr.narrow(0, 1, n_rows) - rowptr.narrow(0, 0, n_rows)).to(at::kLong);
  auto rows = at::repeat_interleave(at::arange(n_rows, col.options().dtype(at::kLong)), counts, std::nullopt,
                                    col.numel());
  auto keys = col.to(at::kLong) * std::max<int64_t>(n_rows, 1) + rows;
  auto perm = std::get<1>(at::sort(keys, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  auto t_col = rows.index_select(0, perm).to(col.scalar_type());
  auto t_rowptr = at::_convert_indices_from_coo_to_csr(col.to(at::kLong).index_select(0, perm), n_cols,
                                                       col.scalar_type() == at::kInt);
  return {t_rowptr, t_col, perm.to(col.scalar_type())};
}

}  // namespace
}  // namespace graph
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("csr_from_coo", "cuda");
LLMHNI_REGISTER_KERNEL("bipartite_norm_adj", "cuda");
LLMHNI_REGISTER_KERNEL("csr_transpose", "cuda");

TORCH_LIBRARY_IMPL(llmhni, CUDA, m) {
  m.impl("csr_from_coo", &llmhni::graph::csr_from_coo_cuda);
  m.impl("bipartite_norm_adj", &llmhni::graph::bipartite_norm_adj_cuda);
  m.impl("csr_transpose", &llmhni::graph::csr_transpose_cuda);
}
