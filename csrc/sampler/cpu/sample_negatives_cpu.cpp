// CPU kernel of llmhni::sample_negatives: one task per (user, negative slot),
// at::parallel_for over slots; per-slot scratch only (no B x M x d buffer).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "common/registry.h"
#include "sampler/sampler_checks.h"
#include "sampler/sampler_common.h"
#include "sampler/sampler_dispatch.h"

namespace llmhni {
namespace sampler {
namespace {

struct Params {
  int64_t B, N, M, K, n_items, d, ds, max_redraws;
  uint64_t seed, offset;
  float thr;
  Mode mode;
};

// uniform / popularity: slots in groups of kGroup whose first draws are searched in
// lockstep, so that the cache misses of the row look-ups overlap. A first draw that
// hits a positive goes through draw_candidate (which replays it), so the samples and
// counts are those of the plain per-slot loop.
constexpr int kGroup = 16;

template <typename I, typename TE>
DrawCounts draw_first_interleaved(const Params& p, const I* rowptr, const I* col, const int64_t* users,
                                  const int64_t* cdf, const TE* ue, const TE* ie, int64_t* neg, float* scores,
                                  int64_t s0, int64_t s1) {
  DrawCounts dc;
  const int64_t* pcdf = p.mode == kPopularity ? cdf : nullptr;
  const int64_t total = pcdf ? pcdf[p.n_items - 1] : 0;
  int64_t u[kGroup], lo[kGroup], hi[kGroup], item[kGroup], n[kGroup];
  const I* base[kGroup];
  for (int64_t s = s0; s < s1; s += kGroup) {
    const int g = static_cast<int>(std::min<int64_t>(kGroup, s1 - s));
    for (int j = 0; j < g; ++j) {
      u[j] = users[(s + j) / p.N];
      lo[j] = static_cast<int64_t>(rowptr[u[j]]);
      hi[j] = static_cast<int64_t>(rowptr[u[j] + 1]);
      const uint64_t index = static_cast<uint64_t>((s + j) * p.M);
      if (p.max_redraws > 0) {
        const Random4 r = random4(p.seed, p.offset, index, 0);
        item[j] = pcdf ? upper_bound_cdf(pcdf, p.n_items,
                                         static_cast<int64_t>(uniform_index(r.x[0], r.x[1], static_cast<uint64_t>(total))))
                       : static_cast<int64_t>(uniform_index(r.x[0], r.x[1], static_cast<uint64_t>(p.n_items)));
      }
      n[j] = hi[j] - lo[j];
      base[j] = col + lo[j];
    }
    if (p.max_redraws > 0) {
      for (bool more = true; more;) {  // branch-free searches, side by side
        more = false;
        for (int j = 0; j < g; ++j) {
          if (n[j] > 1) {
            const int64_t half = n[j] >> 1;
            base[j] = (static_cast<int64_t>(base[j][half]) <= item[j]) ? base[j] + half : base[j];
            n[j] -= half;
            more = true;
          }
        }
      }
    }
    for (int j = 0; j < g; ++j) {
      const bool hit = p.max_redraws == 0 || (n[j] > 0 && static_cast<int64_t>(*base[j]) == item[j]);
      const int64_t it = hit ? draw_candidate(col, lo[j], hi[j], p.n_items, pcdf, p.seed, p.offset,
                                              static_cast<uint64_t>((s + j) * p.M), p.max_redraws, dc)
                             : item[j];
      neg[s + j] = it;
      if (scores) scores[s + j] = lane8_dot(ue + u[j] * p.d, ie + it * p.d, p.d);
    }
  }
  return dc;
}

template <typename I, typename TE, typename TS>
void sample_cpu_impl(const Params& p, const I* rowptr, const I* col, const int64_t* users, const int64_t* cands,
                     const int64_t* cdf, const TE* ue, const TE* ie, const TS* us, const TS* is, int64_t* neg,
                     float* scores, int64_t* counts_out) {
  std::atomic<int64_t> c_rej{0}, c_exh{0}, c_filt{0}, c_fb{0};
  const int64_t S = p.B * p.N;
  const bool scored = p.mode == kDns || p.mode == kLlmhni;
  const int64_t m_draw = scored ? p.M : 1;
  // Uniform draws cost ~0.1 us each: below ~4k slots threads cost more than they save.
  const int64_t grain = scored ? 16 : 4096;
  if (!scored && !cands) {
    at::parallel_for(0, S, grain, [&](int64_t s0, int64_t s1) {
      const DrawCounts dc = draw_first_interleaved(p, rowptr, col, users, cdf, ue, ie, neg, scores, s0, s1);
      c_rej += dc.rejected;
      c_exh += dc.exhausted;
    });
    counts_out[0] = c_rej.load();
    counts_out[1] = c_exh.load();
    counts_out[2] = counts_out[3] = 0;
    return;
  }
  at::parallel_for(0, S, grain, [&](int64_t s0, int64_t s1) {
    std::vector<int64_t> cand(static_cast<size_t>(m_draw));
    std::vector<float> key(scored ? static_cast<size_t>(p.M) : 0);
    std::vector<int64_t> top(p.mode == kLlmhni ? static_cast<size_t>(p.K) : 0);
    DrawCounts dc;
    int64_t filtered = 0, fallbacks = 0;
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t u = users[s / p.N];
      const int64_t lo = static_cast<int64_t>(rowptr[u]), hi = static_cast<int64_t>(rowptr[u + 1]);
      for (int64_t m = 0; m < m_draw; ++m) {
        cand[m] = cands ? cands[s * p.M + m]
                        : draw_candidate(col, lo, hi, p.n_items, p.mode == kPopularity ? cdf : nullptr, p.seed,
                                         p.offset, static_cast<uint64_t>(s * p.M + m), p.max_redraws, dc);
        if (scored) {  // fetch the row while the next candidates are drawn
          const char* r = reinterpret_cast<const char*>(ie + cand[m] * p.d);
          for (int64_t o = 0; o < p.d * static_cast<int64_t>(sizeof(TE)); o += 64) __builtin_prefetch(r + o);
        }
      }
      int64_t pick = 0;
      if (scored) {
        const TE* eu = ue + u * p.d;
        for (int64_t m = 0; m < p.M; ++m) key[m] = rank_key(lane8_dot(eu, ie + cand[m] * p.d, p.d));
        if (p.mode == kDns) {
          float best = key[0];
          for (int64_t m = 1; m < p.M; ++m)
            if (key[m] > best) best = key[m], pick = m;
        } else {
          // top K by (score desc, index asc), by insertion
          int64_t cnt = 0;
          for (int64_t m = 0; m < p.M; ++m) {
            const float k = key[m];
            if (cnt == p.K && !(k > key[top[cnt - 1]])) continue;
            int64_t pos = cnt < p.K ? cnt : p.K - 1;
            while (pos > 0 && key[top[pos - 1]] < k) {
              top[pos] = top[pos - 1];
              --pos;
            }
            top[pos] = m;
            if (cnt < p.K) ++cnt;
          }
          const TS* su = us + u * p.ds;
          const int64_t sem_bytes = p.ds * static_cast<int64_t>(sizeof(TS));
          for (int64_t t = 0; t < cnt; ++t) {
            const char* r = reinterpret_cast<const char*>(is + cand[top[t]] * p.ds);
            for (int64_t o = 0; o < sem_bytes; o += 64) __builtin_prefetch(r + o);
          }
          const float norm_u = fsqrt(lane8_dot(su, su, p.ds));
          int64_t best = -1;
          float best_c = INFINITY;
          for (int64_t t = 0; t < cnt; ++t) {
            const int64_t m = top[t];
            const float c = cosine(su, norm_u, is + cand[m] * p.ds, p.ds);
            if (c <= p.thr) {
              if (best < 0 || c < best_c || (c == best_c && m < best)) best = m, best_c = c;
            } else {
              ++filtered;
            }
          }
          if (best < 0) {  // every top-K candidate is a probable false negative
            ++fallbacks;
            best = 0;
            best_c = cosine(su, norm_u, is + cand[0] * p.ds, p.ds);
            for (int64_t m = 1; m < p.M; ++m) {
              const float c = cosine(su, norm_u, is + cand[m] * p.ds, p.ds);
              if (c < best_c) best = m, best_c = c;
            }
          }
          pick = best;
        }
      }
      const int64_t item = cand[pick];
      neg[s] = item;
      if (scores) scores[s] = lane8_dot(ue + u * p.d, ie + item * p.d, p.d);
    }
    c_rej += dc.rejected;
    c_exh += dc.exhausted;
    c_filt += filtered;
    c_fb += fallbacks;
  });
  counts_out[0] = c_rej.load();
  counts_out[1] = c_exh.load();
  counts_out[2] = c_filt.load();
  counts_out[3] = c_fb.load();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sample_negatives_cpu(
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& users, int64_t n_items, c10::string_view mode_s,
    int64_t num_negatives, int64_t num_candidates, int64_t top_k, double sim_threshold, int64_t seed, int64_t offset,
    int64_t max_redraws, const c10::optional<at::Tensor>& candidates, const c10::optional<at::Tensor>& pop_cdf,
    const c10::optional<at::Tensor>& user_emb, const c10::optional<at::Tensor>& item_emb,
    const c10::optional<at::Tensor>& user_sem, const c10::optional<at::Tensor>& item_sem) {
  const std::string mode_str(mode_s);
  const SampleArgs args{rowptr,   col,     users,    n_items,  mode_str, num_negatives, num_candidates, top_k,
                        max_redraws, candidates, pop_cdf, user_emb, item_emb, user_sem,      item_sem};
  const Mode mode = check_sample_args(args);
  check_device_type(users, c10::DeviceType::CPU, "sample_negatives", "users");
  check_sample_values(args, mode);

  const int64_t B = users.numel();
  Params p{B, num_negatives, num_candidates, top_k, n_items,
           user_emb.has_value() ? user_emb->size(1) : 0, user_sem.has_value() ? user_sem->size(1) : 0, max_redraws,
           static_cast<uint64_t>(seed), static_cast<uint64_t>(offset), static_cast<float>(sim_threshold), mode};
  auto neg = at::empty({B, num_negatives}, users.options().dtype(at::kLong));
  const bool with_scores = user_emb.has_value();
  auto scores = at::empty({with_scores ? B : 0, with_scores ? num_negatives : 0}, users.options().dtype(at::kFloat));
  if (!with_scores) scores = scores.reshape({0});
  auto counts = at::zeros({4}, users.options().dtype(at::kLong));

  const bool same_index = rowptr.scalar_type() == col.scalar_type();
  const auto rp = same_index ? rowptr.contiguous() : rowptr.to(at::kLong).contiguous();
  const auto cl = same_index ? col.contiguous() : col.to(at::kLong).contiguous();
  const auto u64 = users.to(at::kLong).contiguous();
  const auto cands = candidates.has_value() ? candidates->to(at::kLong).contiguous() : at::Tensor();
  const auto cdf = contiguous_or_undefined(mode == kPopularity ? pop_cdf : c10::nullopt);
  const auto ue = contiguous_or_undefined(user_emb), ie = contiguous_or_undefined(item_emb);
  const auto us = contiguous_or_undefined(user_sem), is = contiguous_or_undefined(item_sem);
  if (B == 0) return {neg, scores, counts};

  with_index_type(rp.scalar_type(), [&](auto itag) {
    using I = decltype(itag);
    with_float_type(user_emb, [&](auto etag) {
      using TE = decltype(etag);
      with_float_type(user_sem, [&](auto stag) {
        using TS = decltype(stag);
        sample_cpu_impl<I, TE, TS>(p, rp.const_data_ptr<I>(), cl.const_data_ptr<I>(), u64.const_data_ptr<int64_t>(),
                                   ptr_or_null<int64_t>(cands), ptr_or_null<int64_t>(cdf), ptr_or_null<TE>(ue),
                                   ptr_or_null<TE>(ie), ptr_or_null<TS>(us), ptr_or_null<TS>(is),
                                   neg.data_ptr<int64_t>(), with_scores ? scores.data_ptr<float>() : nullptr,
                                   counts.data_ptr<int64_t>());
      });
    });
  });
  return {neg, scores, counts};
}

}  // namespace
}  // namespace sampler
}  // namespace llmhni

LLMHNI_REGISTER_KERNEL("sample_negatives", "cpu");

TORCH_LIBRARY_IMPL(llmhni, CPU, m) { m.impl("sample_negatives", &llmhni::sampler::sample_negatives_cpu); }
