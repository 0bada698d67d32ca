// CPU kernels of the CSR construction ops: csr_from_coo, bipartite_norm_adj,
// csr_transpose. Counting sort by row (O(nnz + n_rows), no comparison sort over all
// entries, nothing quadratic); peak extra memory is one int64 counter per row, plus
// the merged copy when duplicates exist.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/dispatch.h"
#include "common/registry.h"
#include "graph/graph_checks.h"

namespace llmhni {
namespace graph {
namespace {

// Column-sorted, duplicate-free CSR of the pairs. Index type I for the output.
template <typename I, typename RI, typename CI>
std::pair<at::Tensor, at::Tensor> build_csr(const RI* row, const CI* col, int64_t n, int64_t n_rows,
                                            int64_t n_cols, const at::TensorOptions& opt,
                                            int64_t col_shift = 0) {
  auto rowptr = at::zeros({n_rows + 1}, opt);
  I* rp = rowptr.data_ptr<I>();
  for (int64_t e = 0; e < n; ++e) ++rp[static_cast<int64_t>(row[e]) + 1];
  for (int64_t r = 0; r < n_rows; ++r) rp[r + 1] += rp[r];
  auto out_col = at::empty({n}, opt);
  I* oc = out_col.data_ptr<I>();
  {
    std::vector<int64_t> cursor(rp, rp + n_rows);  // one counter per row
    for (int64_t e = 0; e < n; ++e)
      oc[cursor[static_cast<int64_t>(row[e])]++] = static_cast<I>(static_cast<int64_t>(col[e]) + col_shift);
  }
  // Sort each row, count the distinct columns.
  std::vector<I> kept(n_rows);
  at::parallel_for(0, n_rows, 256, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      I* s = oc + rp[r];
      I* t = oc + rp[r + 1];
      if (!std::is_sorted(s, t)) std::sort(s, t);
      kept[r] = static_cast<I>(std::unique(s, t) - s);
    }
  });
  int64_t total = 0;
  for (int64_t r = 0; r < n_rows; ++r) total += kept[r];
  if (total == n) return {rowptr, out_col};
  // Duplicates: compact in place (rows only move left), then trim.
  int64_t w = 0;
  for (int64_t r = 0; r < n_rows; ++r) {
    const int64_t s = rp[r];
    if (w != s) std::memmove(oc + w, oc + s, sizeof(I) * kept[r]);
    rp[r] = static_cast<I>(w);
    w += kept[r];
  }
  rp[n_rows] = static_cast<I>(w);
  return {rowptr, out_col.narrow(0, 0, total).clone()};
}

std::tuple<at::Tensor, at::Tensor> csr_from_coo_cpu(const at::Tensor& row, const at::Tensor& col,
                                                    int64_t n_rows, int64_t n_cols) {
  constexpr const char* op = "csr_from_coo";
  check_coo_args(op, row, col, n_rows, n_cols, "row", "col", c10::DeviceType::CPU);
  const auto it = index_dtype(n_rows, n_cols, row.numel());
  auto r = row.contiguous();
  auto c = col.contiguous();
  std::pair<at::Tensor, at::Tensor> res;
  with_index_type(it, [&](auto i_tag) {
    using I = decltype(i_tag);
    with_index_type(r.scalar_type(), [&](auto r_tag) {
      using RI = decltype(r_tag);
      with_index_type(c.scalar_type(), [&](auto c_tag) {
        using CI = decltype(c_tag);
        res = build_csr<I>(r.data_ptr<RI>(), c.data_ptr<CI>(), r.numel(), n_rows, n_cols,
                           r.options().dtype(it));
      });
    });
  });
  return {res.first, res.second};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> bipartite_norm_adj_cpu(const at::Tensor& users,
                                                                      const at::Tensor& items,
                                                                      int64_t n_users, int64_t n_items) {
  constexpr const char* op = "bipartite_norm_adj";
  check_coo_args(op, users, items, n_users, n_items, "users", "items", c10::DeviceType::CPU);
  const int64_t n = n_users + n_items;
  const auto it = index_dtype(n, n, 2 * users.numel());
  auto u = users.contiguous();
  auto i = items.contiguous();
  at::Tensor rowptr, colA, value;
  with_index_type(it, [&](auto i_tag) {
    using I = decltype(i_tag);
    const auto opt = u.options().dtype(it);
    // R: users -> items (node ids of items already shifted by n_users).
    std::pair<at::Tensor, at::Tensor> R;
    with_index_type(u.scalar_type(), [&](auto r_tag) {
      using RI = decltype(r_tag);
      with_index_type(i.scalar_type(), [&](auto c_tag) {
        using CI = decltype(c_tag);
        R = build_csr<I>(u.data_ptr<RI>(), i.data_ptr<CI>(), u.numel(), n_users, n_items, opt, n_users);
      });
    });
    const I* rrp = R.first.data_ptr<I>();
    const I* rc = R.second.data_ptr<I>();
    const int64_t m = R.second.numel();
    rowptr = at::empty({n + 1}, opt);
    colA = at::empty({2 * m}, opt);
    value = at::empty({2 * m}, u.options().dtype(at::kFloat));
    I* rp = rowptr.data_ptr<I>();
    I* ac = colA.data_ptr<I>();
    float* av = value.data_ptr<float>();
    // User rows are R's rows; item rows follow, sized by item degree.
    std::copy(rrp, rrp + n_users + 1, rp);
    std::fill(rp + n_users + 1, rp + n + 1, I(0));
    for (int64_t e = 0; e < m; ++e) ++rp[static_cast<int64_t>(rc[e]) + 1];
    for (int64_t r = n_users; r < n; ++r) rp[r + 1] += rp[r];
    std::copy(rc, rc + m, ac);
    {
      std::vector<int64_t> cursor(rp + n_users, rp + n);
      for (int64_t uu = 0; uu < n_users; ++uu)  // users in order: item rows come out sorted
        for (int64_t e = rrp[uu]; e < rrp[uu + 1]; ++e) ac[cursor[rc[e] - n_users]++] = static_cast<I>(uu);
    }
    R = {};
    std::vector<double> dinv(n);
    at::parallel_for(0, n, 4096, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) dinv[r] = 1.0 / std::sqrt(std::max<double>(1.0, rp[r + 1] - rp[r]));
    });
    at::parallel_for(0, n, 1024, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        for (int64_t k = rp[r]; k < rp[r + 1]; ++k) av[k] = static_cast<float>(dinv[r] * dinv[ac[k]]);
    });
  });
  return {rowptr, colA, value};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> csr_transpose_cpu(const at::Tensor& rowptr,
                                                                 const at::Tensor& col, int64_t n_cols) {
  check_csr_transpose_args(rowptr, col, n_cols, c10::DeviceType::CPU);
  const int64_t n_rows = rowptr.numel() - 1, nnz = col.numel();
  at::Tensor trp = at::zeros({n_cols + 1}, col.options());
  at::Tensor tcol = at::empty({nnz}, col.options());
  at::Tensor perm = at::empty({nnz}, col.options());
  with_index_type(col.scalar_type(), [&](auto tag) {
    using I = decltype(tag);
    const I* rp = rowptr.data_ptr<I>();
    const I* c = col.data_ptr<I>();
    I* tp = trp.data_ptr<I>();
    I* tc = tcol.data_ptr<I>();
    I* pm = perm.data_ptr<I>();
    for (int64_t e = 0; e < nnz; ++e) ++tp[static_cast<int64_t>(c[e]) + 1];
    for (int64_t j = 0; j < n_cols; ++j) tp[j + 1] += tp[j];
    std::vector<int64_t> cursor(tp, tp + n_cols);
    for (int64_t r = 0; r < n_rows; ++r)
      for (int64_t e = rp[r]; e < rp[r + 1]; ++e) {
        const int64_t k = cursor[c[e]]++;
        tc[k] = static_cast<I>(r);
        pm[k] = static_cast<I>(e);
      }
  });
  return {trp, tcol, perm};
}

}  // namespace
}  // namespace graph
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("csr_from_coo", "cpu");
LLMHNI_REGISTER_KERNEL("bipartite_norm_adj", "cpu");
LLMHNI_REGISTER_KERNEL("csr_transpose", "cpu");

TORCH_LIBRARY_IMPL(llmhni, CPU, m) {
  m.impl("csr_from_coo", &llmhni::graph::csr_from_coo_cpu);
  m.impl("bipartite_norm_adj", &llmhni::graph::bipartite_norm_adj_cpu);
  m.impl("csr_transpose", &llmhni::graph::csr_transpose_cpu);
}
