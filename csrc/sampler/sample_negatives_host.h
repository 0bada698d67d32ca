// Host code of sample_negatives, written once for both devices: argument checks,
// allocation of the outputs and the conversion of the inputs. Each kernel file
// (cpu/sample_negatives_cpu.cpp, cuda/sample_negatives_cuda.cu) defines a device policy
// that dispatches on the index and embedding dtypes and launches its kernels, and
// registers sample_negatives_host<Policy>.
//
// A policy `Dev` provides
//   static constexpr c10::DeviceType kType;
//   struct Guard { explicit Guard(const at::Tensor&); };
//   static void run(const Params& p, const SampleInputs& in, at::Tensor& neg, at::Tensor& scores,
//                   at::Tensor& counts);      // called with p.S > 0
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <tuple>

#include "common/dispatch.h"
#include "sampler/sampler_checks.h"
#include "sampler/sampler_common.h"

namespace llmhni {
namespace sampler {

// Contiguous inputs: rowptr and col in one index dtype, users and candidates int64,
// the optional tensors undefined when absent.
struct SampleInputs {
  at::Tensor rowptr, col, users, candidates, pop_cdf, user_emb, item_emb, user_sem, item_sem;
};

template <class Dev>
std::tuple<at::Tensor, at::Tensor, at::Tensor> sample_negatives_host(
    const at::Tensor& rowptr, const at::Tensor& col, const at::Tensor& users, int64_t n_items, c10::string_view mode_s,
    int64_t num_negatives, int64_t num_candidates, int64_t top_k, double sim_threshold, int64_t seed, int64_t offset,
    int64_t max_redraws, const c10::optional<at::Tensor>& candidates, const c10::optional<at::Tensor>& pop_cdf,
    const c10::optional<at::Tensor>& user_emb, const c10::optional<at::Tensor>& item_emb,
    const c10::optional<at::Tensor>& user_sem, const c10::optional<at::Tensor>& item_sem, bool check_rows) {
  const std::string mode_str(mode_s);
  const SampleArgs args{rowptr,      col,        users,   n_items,  mode_str, num_negatives, num_candidates, top_k,
                        max_redraws, candidates, pop_cdf, user_emb, item_emb, user_sem,      item_sem,      check_rows};
  const Mode mode = check_sample_args(args);
  check_device_type(users, Dev::kType, "sample_negatives", "users");
  const typename Dev::Guard guard(users);
  check_sample_values(args, mode);

  const int64_t B = users.numel(), S = B * num_negatives;
  const Params p{B,
                 S,
                 num_negatives,
                 num_candidates,
                 top_k,
                 n_items,
                 user_emb.has_value() ? user_emb->size(1) : 0,
                 user_sem.has_value() ? user_sem->size(1) : 0,
                 max_redraws,
                 static_cast<uint64_t>(seed),
                 static_cast<uint64_t>(offset),
                 static_cast<float>(sim_threshold),
                 mode};
  auto neg = at::empty({B, num_negatives}, users.options().dtype(at::kLong));
  auto scores = user_emb.has_value() ? at::empty({B, num_negatives}, users.options().dtype(at::kFloat))
                                     : at::empty({0}, users.options().dtype(at::kFloat));
  auto counts = at::zeros({4}, users.options().dtype(at::kLong));
  if (S == 0) return {neg, scores, counts};

  const bool same_index = rowptr.scalar_type() == col.scalar_type();
  SampleInputs in;
  in.rowptr = same_index ? rowptr.contiguous() : rowptr.to(at::kLong).contiguous();
  in.col = same_index ? col.contiguous() : col.to(at::kLong).contiguous();
  in.users = users.to(at::kLong).contiguous();
  in.candidates = candidates.has_value() ? candidates->to(at::kLong).contiguous() : at::Tensor();
  in.pop_cdf = contiguous_or_undefined(mode == kPopularity ? pop_cdf : c10::nullopt);
  in.user_emb = contiguous_or_undefined(user_emb);
  in.item_emb = contiguous_or_undefined(item_emb);
  in.user_sem = contiguous_or_undefined(user_sem);
  in.item_sem = contiguous_or_undefined(item_sem);
  Dev::run(p, in, neg, scores, counts);
  return {neg, scores, counts};
}

}  // namespace sampler
}  // namespace llmhni
