// Edge-drop views on the CPU: one pass draws each stored entry's keep decisions (the
// same Philox word for both directions of an undirected edge) and counts kept degrees
// per row; a second pass writes D'^-1/2 A' D'^-1/2, either on the input structure
// (edge_drop_mask) or compacted to the kept entries (edge_drop_compact). Both passes
// are row-parallel with no shared writes, so results never depend on the thread count.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "common/balanced_rows.h"
#include "common/dispatch.h"
#include "common/philox.h"
#include "common/registry.h"
#include "contrastive/contrastive_checks.h"
#include "contrastive/cpu/philox_simd.h"

namespace llmhni {
namespace contrastive {
namespace {

constexpr int64_t kChunk = 2048;       // entries per Philox batch (fits in L1 with its words)
constexpr int64_t kWorkChunks = 64;     // row ranges of about equal work, spread over the threads

// keep iff uniform_float(w) < p, i.e. (w >> 8) < ceil(p * 2^24) (p float32: exact).
inline uint32_t keep_threshold(float p) { return static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0)); }

template <typename F>
void for_each_row_range(const std::vector<int64_t>& bound, const F& f) {
  at::parallel_for(0, kWorkChunks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      if (bound[t] < bound[t + 1]) f(bound[t], bound[t + 1]);
    }
  });
}

// keep[v * nnz + k] in {0, 1}; deg[v * n + r] = kept entries of row r in view v.
// Columns are range-checked on the way (before anything is indexed by them): false when
// one lies outside [0, n) (the caller raises with report_bad_columns).
template <typename idx_t>
bool draw_keep(const idx_t* rp, const idx_t* col, int64_t n, int64_t nnz, int64_t views, uint64_t seed,
               uint64_t offset, float p, uint8_t* keep, int32_t* deg, const std::vector<int64_t>& bound) {
  const uint64_t un = static_cast<uint64_t>(n);
  const uint32_t threshold = keep_threshold(p);
  std::vector<int64_t> bad_at(kWorkChunks, -1);
  at::parallel_for(0, kWorkChunks, 1, [&](int64_t t0, int64_t t1) {
    std::vector<uint64_t> keys(kChunk);
    std::vector<uint32_t> words(4 * kChunk);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t begin = bound[t], end = bound[t + 1];
      if (begin >= end) continue;
      const int64_t e0 = rp[begin], e1 = rp[end];
      int64_t r = begin;
      bool bad = false;
      for (int64_t c0 = e0; c0 < e1; c0 += kChunk) {
        const int64_t m = std::min<int64_t>(kChunk, e1 - c0);
        // canonical key min(r, c) * n + max(r, c) of every entry in the chunk
        for (int64_t i = 0; i < m; ++i) {
          const int64_t k = c0 + i;
          while (static_cast<int64_t>(rp[r + 1]) <= k) ++r;
          const uint64_t c = static_cast<uint64_t>(static_cast<int64_t>(col[k])), ur = static_cast<uint64_t>(r);
          bad |= c >= un;  // negative columns wrap to huge values
          keys[i] = (ur < c ? ur : c) * un + (ur < c ? c : ur);
        }
        for (int64_t g = 0; g < views; g += 4) {
          philox_many(seed, offset, keys.data(), m, static_cast<uint32_t>(g / 4), words.data());
          const int64_t w = std::min<int64_t>(4, views - g);
          for (int64_t j = 0; j < w; ++j) {
            const uint32_t* wj = words.data() + j * m;
            uint8_t* kj = keep + (g + j) * nnz + c0;
            for (int64_t i = 0; i < m; ++i) kj[i] = (wj[i] >> 8) < threshold ? 1 : 0;
          }
        }
      }
      if (bad) {
        for (int64_t k = e0; k < e1; ++k) {
          if (col[k] < 0 || static_cast<int64_t>(col[k]) >= n) {
            bad_at[t] = k;
            break;
          }
        }
      }
      for (int64_t v = 0; v < views; ++v) {
        const uint8_t* kv = keep + v * nnz;
        for (int64_t rr = begin; rr < end; ++rr) {
          int32_t cnt = 0;
          for (int64_t k = rp[rr]; k < rp[rr + 1]; ++k) cnt += kv[k];
          deg[v * n + rr] = cnt;
        }
      }
    }
  });
  for (int64_t t = 0; t < kWorkChunks; ++t)
    if (bad_at[t] >= 0) return false;
  return true;
}

// The keep decisions and kept degrees of every view, and the row ranges both passes use.
struct Drawn {
  std::vector<int64_t> bound;
  at::Tensor keep, deg;
};

template <typename idx_t>
Drawn draw(const at::Tensor& rowptr, const at::Tensor& col, double keep_prob, int64_t views, int64_t seed,
           int64_t offset, const char* op) {
  const int64_t n = rowptr.numel() - 1, nnz = col.numel();
  const idx_t* rp = rowptr.data_ptr<idx_t>();
  Drawn d{balanced_rows(rp, n, kWorkChunks), at::empty({views, nnz}, col.options().dtype(at::kByte)),
          at::empty({views, n}, col.options().dtype(at::kInt))};
  if (!draw_keep<idx_t>(rp, col.data_ptr<idx_t>(), n, nnz, views, static_cast<uint64_t>(seed),
                        static_cast<uint64_t>(offset), static_cast<float>(keep_prob), d.keep.data_ptr<uint8_t>(),
                        d.deg.data_ptr<int32_t>(), d.bound))
    report_bad_columns(op, rowptr, col, n);
  return d;
}

// 1 / sqrt(deg) (0 for isolated rows) in double: correctly rounded, like the reference.
inline double inv_sqrt_degree(int32_t d) { return d > 0 ? 1.0 / std::sqrt(static_cast<double>(d)) : 0.0; }

at::Tensor edge_drop_mask_cpu(const at::Tensor& rowptr_in, const at::Tensor& col_in, double keep_prob,
                              int64_t num_views, int64_t seed, int64_t offset) {
  constexpr const char* op = "edge_drop_mask";
  at::Tensor rowptr, col;
  std::tie(rowptr, col) = edge_drop_inputs(rowptr_in, col_in, keep_prob, num_views, op, c10::DeviceType::CPU);
  const int64_t n = rowptr.numel() - 1, nnz = col.numel();
  auto value = at::empty({num_views, nnz}, col.options().dtype(at::kFloat));
  with_index_type(rowptr.scalar_type(), [&](auto tag) {
    using index_t = decltype(tag);
    const index_t* rp = rowptr.data_ptr<index_t>();
    const index_t* cp = col.data_ptr<index_t>();
    const Drawn d = draw<index_t>(rowptr, col, keep_prob, num_views, seed, offset, op);
    std::vector<double> dinv(static_cast<size_t>(num_views * n));
    const int32_t* dg = d.deg.data_ptr<int32_t>();
    for (int64_t i = 0; i < num_views * n; ++i) dinv[i] = inv_sqrt_degree(dg[i]);
    const uint8_t* kp = d.keep.data_ptr<uint8_t>();
    float* out = value.data_ptr<float>();
    for_each_row_range(d.bound, [&](int64_t begin, int64_t end) {
      for (int64_t v = 0; v < num_views; ++v) {
        const double* dv = dinv.data() + v * n;
        const uint8_t* kv = kp + v * nnz;
        float* ov = out + v * nnz;
        for (int64_t r = begin; r < end; ++r) {
          const double dr = dv[r];
          for (int64_t k = rp[r]; k < rp[r + 1]; ++k) ov[k] = kv[k] ? static_cast<float>(dr * dv[cp[k]]) : 0.0f;
        }
      }
    });
  });
  return value;
}

std::tuple<std::vector<at::Tensor>, std::vector<at::Tensor>, std::vector<at::Tensor>> edge_drop_compact_cpu(
    const at::Tensor& rowptr_in, const at::Tensor& col_in, double keep_prob, int64_t num_views, int64_t seed,
    int64_t offset) {
  constexpr const char* op = "edge_drop_compact";
  at::Tensor rowptr, col;
  std::tie(rowptr, col) = edge_drop_inputs(rowptr_in, col_in, keep_prob, num_views, op, c10::DeviceType::CPU);
  const int64_t n = rowptr.numel() - 1, nnz = col.numel();
  std::vector<at::Tensor> rowptrs(num_views), cols(num_views), values(num_views);
  with_index_type(rowptr.scalar_type(), [&](auto tag) {
    using index_t = decltype(tag);
    const index_t* rp = rowptr.data_ptr<index_t>();
    const index_t* cp = col.data_ptr<index_t>();
    const Drawn d = draw<index_t>(rowptr, col, keep_prob, num_views, seed, offset, op);
    std::vector<double> dv(static_cast<size_t>(n));
    for (int64_t v = 0; v < num_views; ++v) {
      // serial O(n): the view's rowptr (exclusive scan of kept degrees) and D^-1/2
      const int32_t* dg = d.deg.data_ptr<int32_t>() + v * n;
      auto rp_out = at::empty({n + 1}, rowptr.options());
      index_t* ro = rp_out.data_ptr<index_t>();
      int64_t run = 0;
      ro[0] = 0;
      for (int64_t r = 0; r < n; ++r) {
        run += dg[r];
        ro[r + 1] = static_cast<index_t>(run);
        dv[r] = inv_sqrt_degree(dg[r]);
      }
      auto col_out = at::empty({run}, col.options());
      auto val_out = at::empty({run}, col.options().dtype(at::kFloat));
      index_t* co = col_out.data_ptr<index_t>();
      float* vo = val_out.data_ptr<float>();
      const uint8_t* kv = d.keep.data_ptr<uint8_t>() + v * nnz;
      for_each_row_range(d.bound, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          int64_t pos = ro[r];
          const double dr = dv[r];
          for (int64_t k = rp[r]; k < rp[r + 1]; ++k) {
            if (!kv[k]) continue;
            co[pos] = cp[k];
            vo[pos] = static_cast<float>(dr * dv[cp[k]]);
            ++pos;
          }
        }
      });
      std::tie(rowptrs[v], cols[v], values[v]) = std::make_tuple(rp_out, col_out, val_out);
    }
  });
  return {rowptrs, cols, values};
}

}  // namespace
}  // namespace contrastive
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("edge_drop_mask", "cpu");
LLMHNI_REGISTER_KERNEL("edge_drop_compact", "cpu");

TORCH_LIBRARY_IMPL(llmhni, CPU, m) {
  m.impl("edge_drop_mask", &llmhni::contrastive::edge_drop_mask_cpu);
  m.impl("edge_drop_compact", &llmhni::contrastive::edge_drop_compact_cpu);
}
