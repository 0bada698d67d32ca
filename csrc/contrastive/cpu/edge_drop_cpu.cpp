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

#include "common/philox.h"
#include "contrastive/cpu/philox_simd.h"
#include "common/registry.h"
#include "contrastive/contrastive_checks.h"

namespace llmhni {
namespace {

constexpr int64_t kRowGrain = 256;
constexpr int64_t kChunk = 2048;  // entries per Philox batch (fits in L1 with its words)

// keep iff uniform_float(w) < p, i.e. (w >> 8) < ceil(p * 2^24) (p float32: exact).
inline uint32_t keep_threshold(float p) { return static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0)); }

// keep[v * nnz + k] in {0, 1}; deg[v * n + r] = kept entries of row r in view v.
template <typename idx_t>
void draw_keep(const idx_t* rp, const idx_t* col, int64_t n, int64_t nnz, int64_t views, uint64_t seed,
               uint64_t offset, float p, uint8_t* keep, int32_t* deg) {
  const uint64_t un = static_cast<uint64_t>(n);
  const uint32_t threshold = keep_threshold(p);
  at::parallel_for(0, n, kRowGrain, [&](int64_t begin, int64_t end) {
    std::vector<uint64_t> keys(kChunk);
    std::vector<uint32_t> words(4 * kChunk);
    const int64_t e0 = rp[begin], e1 = rp[end];
    int64_t r = begin;
    for (int64_t c0 = e0; c0 < e1; c0 += kChunk) {
      const int64_t m = std::min<int64_t>(kChunk, e1 - c0);
      // canonical key min(r, c) * n + max(r, c) of every entry in the chunk
      for (int64_t i = 0; i < m; ++i) {
        const int64_t k = c0 + i;
        while (static_cast<int64_t>(rp[r + 1]) <= k) ++r;
        const uint64_t c = static_cast<uint64_t>(col[k]), ur = static_cast<uint64_t>(r);
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
    for (int64_t v = 0; v < views; ++v) {
      const uint8_t* kv = keep + v * nnz;
      for (int64_t rr = begin; rr < end; ++rr) {
        int32_t cnt = 0;
        for (int64_t k = rp[rr]; k < rp[rr + 1]; ++k) cnt += kv[k];
        deg[v * n + rr] = cnt;
      }
    }
  });
}

// dinv[v * n + r] = deg > 0 ? 1 / sqrt(deg) : 0, in double (correctly rounded like the reference).
at::Tensor inverse_sqrt_degrees(const at::Tensor& deg) {
  auto dinv = at::empty(deg.sizes(), deg.options().dtype(at::kDouble));
  const int32_t* d = deg.data_ptr<int32_t>();
  double* o = dinv.data_ptr<double>();
  at::parallel_for(0, deg.numel(), 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) o[i] = d[i] > 0 ? 1.0 / std::sqrt(static_cast<double>(d[i])) : 0.0;
  });
  return dinv;
}

template <typename idx_t>
void validate(const at::Tensor& rowptr, const at::Tensor& col, const char* op) {
  check_csr_content_cpu<idx_t>(rowptr, col, op);
}

at::Tensor edge_drop_mask_cpu(const at::Tensor& rowptr_in, const at::Tensor& col_in, double keep_prob,
                              int64_t num_views, int64_t seed, int64_t offset) {
  constexpr const char* op = "edge_drop_mask";
  check_edge_drop_args(rowptr_in, col_in, keep_prob, num_views, op);
  check_device_type(rowptr_in, c10::kCPU, op, "rowptr");
  const auto rowptr = rowptr_in.contiguous();
  const auto col = col_in.contiguous();
  const int64_t n = rowptr.numel() - 1, nnz = col.numel();
  auto value = at::empty({num_views, nnz}, col.options().dtype(at::kFloat));
  AT_DISPATCH_INDEX_TYPES(rowptr.scalar_type(), "edge_drop_mask_cpu", [&] {
    validate<index_t>(rowptr, col, op);
    const index_t* rp = rowptr.data_ptr<index_t>();
    const index_t* cp = col.data_ptr<index_t>();
    auto keep = at::empty({num_views, nnz}, col.options().dtype(at::kByte));
    auto deg = at::empty({num_views, n}, col.options().dtype(at::kInt));
    draw_keep<index_t>(rp, cp, n, nnz, num_views, static_cast<uint64_t>(seed), static_cast<uint64_t>(offset),
                       static_cast<float>(keep_prob), keep.data_ptr<uint8_t>(), deg.data_ptr<int32_t>());
    const auto dinv = inverse_sqrt_degrees(deg);
    const double* di = dinv.data_ptr<double>();
    const uint8_t* kp = keep.data_ptr<uint8_t>();
    float* out = value.data_ptr<float>();
    at::parallel_for(0, n, kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t v = 0; v < num_views; ++v) {
        const double* dv = di + v * n;
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
  check_edge_drop_args(rowptr_in, col_in, keep_prob, num_views, op);
  check_device_type(rowptr_in, c10::kCPU, op, "rowptr");
  const auto rowptr = rowptr_in.contiguous();
  const auto col = col_in.contiguous();
  const int64_t n = rowptr.numel() - 1, nnz = col.numel();
  std::vector<at::Tensor> rowptrs, cols, values;
  AT_DISPATCH_INDEX_TYPES(rowptr.scalar_type(), "edge_drop_compact_cpu", [&] {
    validate<index_t>(rowptr, col, op);
    const index_t* rp = rowptr.data_ptr<index_t>();
    const index_t* cp = col.data_ptr<index_t>();
    auto keep = at::empty({num_views, nnz}, col.options().dtype(at::kByte));
    auto deg = at::empty({num_views, n}, col.options().dtype(at::kInt));
    draw_keep<index_t>(rp, cp, n, nnz, num_views, static_cast<uint64_t>(seed), static_cast<uint64_t>(offset),
                       static_cast<float>(keep_prob), keep.data_ptr<uint8_t>(), deg.data_ptr<int32_t>());
    const auto dinv = inverse_sqrt_degrees(deg);
    for (int64_t v = 0; v < num_views; ++v) {
      const int32_t* dg = deg.data_ptr<int32_t>() + v * n;
      auto rp_out = at::empty({n + 1}, rowptr.options());
      index_t* ro = rp_out.data_ptr<index_t>();
      int64_t run = 0;
      ro[0] = 0;
      for (int64_t r = 0; r < n; ++r) {
        run += dg[r];
        ro[r + 1] = static_cast<index_t>(run);
      }
      auto col_out = at::empty({run}, col.options());
      auto val_out = at::empty({run}, col.options().dtype(at::kFloat));
      index_t* co = col_out.data_ptr<index_t>();
      float* vo = val_out.data_ptr<float>();
      const double* dv = dinv.data_ptr<double>() + v * n;
      const uint8_t* kv = keep.data_ptr<uint8_t>() + v * nnz;
      at::parallel_for(0, n, kRowGrain, [&](int64_t begin, int64_t end) {
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
      rowptrs.push_back(rp_out);
      cols.push_back(col_out);
      values.push_back(val_out);
    }
  });
  return {rowptrs, cols, values};
}

}  // namespace
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("edge_drop_mask", "cpu");
LLMHNI_REGISTER_KERNEL("edge_drop_compact", "cpu");

TORCH_LIBRARY_IMPL(llmhni, CPU, m) {
  m.impl("edge_drop_mask", &llmhni::edge_drop_mask_cpu);
  m.impl("edge_drop_compact", &llmhni::edge_drop_compact_cpu);
}
