// Argument checks of llmhni::sample_negatives, run by the CPU and CUDA kernels before
// any work. The reference twin (llmhni_ext/reference/checks.py, sampler_args) raises the
// same messages.
//
// Always (O(B)): rowptr[-1] == nnz, users in range, and each batch user's row inside col,
// so no call reads out of bounds. With check_rows (the default) also the whole CSR, O(nnz):
// rowptr non-decreasing, columns in [0, n_items) and strictly increasing within a row (the
// binary-search rejection relies on it). check_rows=False trusts those three properties:
// NegativeSampler passes it for the CSR it built and checked itself. Even then the
// kernels never read outside their inputs (the complement fallback ignores columns outside
// [0, n_items)) and never return an id outside [0, n_items).
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <c10/util/Optional.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/checks.h"
#include "sampler/sampler_common.h"

namespace llmhni {
namespace sampler {

struct SampleArgs {
  const at::Tensor& rowptr;
  const at::Tensor& col;
  const at::Tensor& users;
  int64_t n_items;
  const std::string& mode;
  int64_t num_negatives, num_candidates, top_k, max_redraws;
  const c10::optional<at::Tensor>& candidates;
  const c10::optional<at::Tensor>& pop_cdf;
  const c10::optional<at::Tensor>& user_emb;
  const c10::optional<at::Tensor>& item_emb;
  const c10::optional<at::Tensor>& user_sem;
  const c10::optional<at::Tensor>& item_sem;
  bool check_rows;
};

inline Mode parse_mode(const std::string& mode) {
  if (mode == "uniform") return kUniform;
  if (mode == "popularity") return kPopularity;
  if (mode == "dns") return kDns;
  if (mode == "llmhni") return kLlmhni;
  TORCH_CHECK(false, "sample_negatives: mode must be one of uniform, popularity, dns, llmhni, got '", mode, "'");
  return kUniform;
}

inline void check_embedding_pair(const c10::optional<at::Tensor>& a, const c10::optional<at::Tensor>& b,
                                 const char* a_name, const char* b_name, int64_t n_users, int64_t n_items) {
  constexpr const char* op = "sample_negatives";
  TORCH_CHECK(a.has_value() == b.has_value(), op, ": ", a_name, " and ", b_name, " must be given together");
  if (!a.has_value()) return;
  const at::Tensor* ts[2] = {&*a, &*b};
  const char* names[2] = {a_name, b_name};
  const int64_t rows[2] = {n_users, n_items};
  for (int i = 0; i < 2; ++i) {
    const auto s = ts[i]->scalar_type();
    TORCH_CHECK(s == at::kFloat || s == at::kHalf || s == at::kBFloat16, op, ": ", names[i],
                " must be float32, float16 or bfloat16, got ", s);
    TORCH_CHECK(ts[i]->dim() == 2 && ts[i]->size(0) == rows[i], op, ": ", names[i], " must have shape [", rows[i],
                ", d], got ", ts[i]->sizes());
  }
  TORCH_CHECK(a->scalar_type() == b->scalar_type() && a->size(1) == b->size(1), op, ": ", a_name, " (",
              a->scalar_type(), ", d=", a->size(1), ") and ", b_name, " (", b->scalar_type(), ", d=", b->size(1),
              ") must share dtype and width");
}

// Shape, dtype and device checks (no host sync); returns the mode.
inline Mode check_sample_args(const SampleArgs& g) {
  constexpr const char* op = "sample_negatives";
  const at::Tensor* idx[3] = {&g.rowptr, &g.col, &g.users};
  const char* idx_names[3] = {"rowptr", "col", "users"};
  for (int i = 0; i < 3; ++i)
    TORCH_CHECK((idx[i]->scalar_type() == at::kInt || idx[i]->scalar_type() == at::kLong) && idx[i]->dim() == 1,
                op, ": ", idx_names[i], " must be a 1-D int32 or int64 tensor, got ", idx[i]->scalar_type(),
                " of shape ", idx[i]->sizes());
  const Mode mode = parse_mode(g.mode);
  TORCH_CHECK(g.rowptr.numel() >= 1, op, ": rowptr must hold n_users + 1 >= 1 entries");
  TORCH_CHECK(g.n_items >= 1, op, ": n_items must be >= 1, got ", g.n_items);
  TORCH_CHECK(g.num_negatives >= 1, op, ": num_negatives must be >= 1, got ", g.num_negatives);
  TORCH_CHECK(g.num_candidates >= 1 && g.num_candidates <= kMaxCandidates, op, ": num_candidates must lie in [1, ",
              kMaxCandidates, "], got ", g.num_candidates);
  TORCH_CHECK(g.max_redraws >= 0 && g.max_redraws <= kMaxRedraws, op, ": max_redraws must lie in [0, ", kMaxRedraws,
              "], got ", g.max_redraws);
  TORCH_CHECK(mode != kLlmhni || (g.top_k >= 1 && g.top_k <= g.num_candidates), op,
              ": top_k must lie in [1, num_candidates=", g.num_candidates, "], got ", g.top_k);
  const std::pair<const char*, const c10::optional<at::Tensor>*> opts[6] = {
      {"candidates", &g.candidates}, {"pop_cdf", &g.pop_cdf},   {"user_emb", &g.user_emb},
      {"item_emb", &g.item_emb},     {"user_sem", &g.user_sem}, {"item_sem", &g.item_sem}};
  check_same_device(g.users, g.rowptr, op, "users", "rowptr");
  check_same_device(g.users, g.col, op, "users", "col");
  for (const auto& o : opts)
    if (o.second->has_value()) check_same_device(g.users, **o.second, op, "users", o.first);
  const int64_t n_users = g.rowptr.numel() - 1;
  if (mode == kPopularity && !g.candidates.has_value()) {
    TORCH_CHECK(g.pop_cdf.has_value(), op, ": mode 'popularity' needs pop_cdf (int64 cumulative item weights)");
    TORCH_CHECK(g.pop_cdf->scalar_type() == at::kLong && g.pop_cdf->dim() == 1 && g.pop_cdf->size(0) == g.n_items,
                op, ": pop_cdf must be an int64 tensor of shape [n_items=", g.n_items, "], got ",
                g.pop_cdf->scalar_type(), " of shape ", g.pop_cdf->sizes());
  }
  if (mode == kDns || mode == kLlmhni) {
    TORCH_CHECK(g.user_emb.has_value(), op, ": mode '", g.mode, "' needs user_emb");
    TORCH_CHECK(g.item_emb.has_value(), op, ": mode '", g.mode, "' needs item_emb");
  }
  if (mode == kLlmhni) {
    TORCH_CHECK(g.user_sem.has_value(), op, ": mode 'llmhni' needs user_sem");
    TORCH_CHECK(g.item_sem.has_value(), op, ": mode 'llmhni' needs item_sem");
  }
  check_embedding_pair(g.user_emb, g.item_emb, "user_emb", "item_emb", n_users, g.n_items);
  check_embedding_pair(g.user_sem, g.item_sem, "user_sem", "item_sem", n_users, g.n_items);
  const int64_t B = g.users.numel();
  if (g.candidates.has_value()) {
    const auto& c = *g.candidates;
    TORCH_CHECK((c.scalar_type() == at::kInt || c.scalar_type() == at::kLong) && c.dim() == 3 && c.size(0) == B &&
                    c.size(1) == g.num_negatives && c.size(2) == g.num_candidates,
                op, ": candidates must be an int32 or int64 tensor of shape [B=", B, ", num_negatives=",
                g.num_negatives, ", num_candidates=", g.num_candidates, "], got ", c.scalar_type(), " of shape ",
                c.sizes());
  }
  return mode;
}

// Raises on the values gathered by check_sample_values (layout documented there).
// x[row_at..+2] = (a batch user whose row bounds are broken or -1, its rowptr[u], rowptr[u + 1]).
inline void report_sample_values(const SampleArgs& g, Mode mode, const int64_t* x, size_t cand_at, size_t pop_at,
                                 bool cand, bool pop, size_t row_at, bool rows) {
  constexpr const char* op = "sample_negatives";
  const int64_t n_users = g.rowptr.numel() - 1;
  const int64_t B = g.users.numel();
  const bool draws = !g.candidates.has_value();
  (void)mode;
  TORCH_CHECK(x[0] == g.col.numel(), op, ": rowptr[-1] = ", x[0], " but col holds ", g.col.numel(),
              " entries: malformed CSR");
  if (B > 0) {
    TORCH_CHECK(x[1] >= 0 && x[2] < n_users, op, ": users has values in [", x[1], ", ", x[2],
                "] but must lie in [0, ", n_users, ")");
  }
  if (rows) {
    TORCH_CHECK(x[row_at] < 0, op, ": malformed CSR, the row of user ", x[row_at], " spans [", x[row_at + 1], ", ",
                x[row_at + 2], ") which is not a range inside [0, nnz = ", g.col.numel(), "]");
  }
  if (cand) {
    TORCH_CHECK(x[cand_at] >= 0 && x[cand_at + 1] < g.n_items, op, ": candidates has values in [", x[cand_at], ", ",
                x[cand_at + 1], "] but must lie in [0, ", g.n_items, ")");
  }
  if (pop) {
    const int64_t first = x[pop_at], last = x[pop_at + 1];
    TORCH_CHECK(first >= 0 && last > 0 && last <= kMaxCdfTotal && x[pop_at + 2] == 0, op,
                ": pop_cdf must be non-decreasing, start >= 0 and end in (0, 2^46], got [", first, ", ..., ", last,
                "]");
  }
  if (B > 0 && draws) {
    TORCH_CHECK(x[3] < g.n_items, op, ": user ", x[4], " has interacted with all ", g.n_items,
                " items, so it has no negative to sample; drop such users from the batch");
  }
}

// An int32 or int64 contiguous CPU tensor read as int64.
struct IndexView {
  const void* p;
  bool i32;
  explicit IndexView(const at::Tensor& t) : p(t.const_data_ptr()), i32(t.scalar_type() == at::kInt) {}
  int64_t operator[](int64_t k) const {
    return i32 ? static_cast<const int32_t*>(p)[k] : static_cast<const int64_t*>(p)[k];
  }
};

// check_rows: the whole CSR (rowptr[0] == 0, non-decreasing, rowptr[-1] == nnz, columns in
// [0, n_items), strictly increasing within each row), one O(nnz) pass per call.
inline void check_sampler_csr_cpu(const SampleArgs& g) {
  const bool same = g.rowptr.scalar_type() == g.col.scalar_type();
  const auto rp = (same ? g.rowptr : g.rowptr.to(at::kLong)).contiguous();
  const auto cl = (same ? g.col : g.col.to(at::kLong)).contiguous();
  const int64_t n_rows = rp.numel() - 1;
  if (rp.scalar_type() == at::kInt)
    check_csr_cpu<int32_t>("sample_negatives", rp.const_data_ptr<int32_t>(), n_rows, cl.const_data_ptr<int32_t>(),
                           cl.numel(), g.n_items, true);
  else
    check_csr_cpu<int64_t>("sample_negatives", rp.const_data_ptr<int64_t>(), n_rows, cl.const_data_ptr<int64_t>(),
                           cl.numel(), g.n_items, true);
}

// The same values as check_sample_values, by direct loops (no ATen op per check).
inline void check_sample_values_cpu(const SampleArgs& g, Mode mode) {
  const int64_t n_users = g.rowptr.numel() - 1;
  const int64_t B = g.users.numel();
  const bool draws = !g.candidates.has_value();
  const auto rpc = g.rowptr.contiguous(), uc = g.users.contiguous();
  const IndexView rp(rpc);
  std::vector<int64_t> x;
  x.push_back(rp[n_users]);  // 0
  // One pass over the batch: the users' range, the widest row (a user with every item) and
  // each row's bounds inside col (so no read leaves it), typed loads.
  const int64_t nnz = g.col.numel();
  int64_t lo = 0, hi = 0, best = -1, who = 0, bad = -1, blo = 0, bhi = 0;
  auto scan = [&](const auto* r, const auto* u) {
    lo = hi = static_cast<int64_t>(u[0]);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t ub = static_cast<int64_t>(u[b]);
      lo = std::min(lo, ub), hi = std::max(hi, ub);
      if (ub < 0 || ub >= n_users) continue;
      const int64_t rl = static_cast<int64_t>(r[ub]), rh = static_cast<int64_t>(r[ub + 1]);
      if (rh - rl > best) best = rh - rl, who = ub;
      if ((rl < 0) | (rh < rl) | (rh > nnz) && bad < 0) bad = ub, blo = rl, bhi = rh;
    }
  };
  if (B > 0) {
    const bool r32 = rpc.scalar_type() == at::kInt, u32 = uc.scalar_type() == at::kInt;
    if (r32 && u32) scan(rpc.const_data_ptr<int32_t>(), uc.const_data_ptr<int32_t>());
    else if (r32) scan(rpc.const_data_ptr<int32_t>(), uc.const_data_ptr<int64_t>());
    else if (u32) scan(rpc.const_data_ptr<int64_t>(), uc.const_data_ptr<int32_t>());
    else scan(rpc.const_data_ptr<int64_t>(), uc.const_data_ptr<int64_t>());
    x.push_back(lo);  // 1
    x.push_back(hi);  // 2
    if (draws && n_users > 0) {
      x.push_back(best);  // 3 (over the users in range; the others are reported first)
      x.push_back(who);   // 4
    }
  }
  const bool cand = g.candidates.has_value() && g.candidates->numel() > 0;
  const size_t cand_at = x.size();
  if (cand) {
    const auto cc = g.candidates->contiguous();
    const IndexView c(cc);
    int64_t lo = c[0], hi = c[0];
    for (int64_t k = 1; k < cc.numel(); ++k) lo = std::min(lo, c[k]), hi = std::max(hi, c[k]);
    x.push_back(lo);
    x.push_back(hi);
  }
  const bool pop = mode == kPopularity && draws;
  const size_t pop_at = x.size();
  if (pop) {
    const auto cc = g.pop_cdf->contiguous();
    const int64_t* c = cc.const_data_ptr<int64_t>();
    int64_t decreasing = 0;
    for (int64_t k = 1; k < g.n_items; ++k) decreasing |= c[k] < c[k - 1];
    x.push_back(c[0]);
    x.push_back(c[g.n_items - 1]);
    x.push_back(decreasing);
  }
  const bool rows = B > 0 && n_users > 0;
  const size_t row_at = x.size();
  if (rows) {  // every row the kernel reads lies inside col: O(B), on every call
    x.push_back(bad);
    x.push_back(blo);
    x.push_back(bhi);
  }
  if (g.check_rows) check_sampler_csr_cpu(g);
  report_sample_values(g, mode, x.data(), cand_at, pop_at, cand, pop, row_at, rows);
}

// Value checks, with one device->host copy: CSR end, id ranges, the popularity CDF and
// users whose row covers every item.
inline void check_sample_values(const SampleArgs& g, Mode mode) {
  constexpr const char* op = "sample_negatives";
  const int64_t n_users = g.rowptr.numel() - 1;
  const int64_t B = g.users.numel();
  const bool draws = !g.candidates.has_value();
  if (g.users.is_cpu()) {
    check_sample_values_cpu(g, mode);
    return;
  }
  std::vector<at::Tensor> v;
  v.push_back(g.rowptr.select(0, n_users).to(at::kLong));  // 0
  if (B > 0) {
    auto u = g.users.to(at::kLong);
    auto mm = at::aminmax(u);
    v.push_back(std::get<0>(mm));  // 1
    v.push_back(std::get<1>(mm));  // 2
    if (draws && n_users > 0) {  // (users are out of range when there are no users)
      auto uc = u.clamp(0, n_users - 1);
      auto deg = (g.rowptr.index_select(0, uc + 1) - g.rowptr.index_select(0, uc)).to(at::kLong);
      auto am = deg.argmax();
      v.push_back(deg.index_select(0, am.reshape({1})).squeeze(0));  // 3
      v.push_back(u.index_select(0, am.reshape({1})).squeeze(0));    // 4
    }
  }
  const bool cand = g.candidates.has_value() && g.candidates->numel() > 0;
  const size_t cand_at = v.size();
  if (cand) {
    auto mm = at::aminmax(*g.candidates);
    v.push_back(std::get<0>(mm).to(at::kLong));
    v.push_back(std::get<1>(mm).to(at::kLong));
  }
  const bool pop = mode == kPopularity && draws;
  const size_t pop_at = v.size();
  if (pop) {
    const auto& c = *g.pop_cdf;
    v.push_back(c.select(0, 0));
    v.push_back(c.select(0, g.n_items - 1));
    v.push_back(g.n_items > 1 ? (c.slice(0, 1) < c.slice(0, 0, g.n_items - 1)).any().to(at::kLong)
                              : at::zeros({}, c.options()));
  }
  const bool rows = B > 0 && n_users > 0;
  const size_t row_at = v.size();
  if (rows) {
    auto u = g.users.to(at::kLong).clamp(0, n_users - 1);
    auto lo = g.rowptr.index_select(0, u).to(at::kLong), hi = g.rowptr.index_select(0, u + 1).to(at::kLong);
    auto bad = (lo < 0).logical_or(hi < lo).logical_or(hi > g.col.numel());
    auto j = bad.to(at::kLong).argmax().reshape({1});
    v.push_back(at::where(bad.any(), g.users.to(at::kLong).index_select(0, j).squeeze(0),
                          at::full({}, -1, lo.options())));
    v.push_back(lo.index_select(0, j).squeeze(0));
    v.push_back(hi.index_select(0, j).squeeze(0));
  }
  const size_t full_at = v.size();
  const int64_t nnz = g.col.numel();
  if (g.check_rows) {  // same checks and messages as check_sampler_csr_cpu
    auto rp = g.rowptr.to(at::kLong), c = g.col.to(at::kLong);
    v.push_back(rp.select(0, 0));                                                        // +0 rowptr[0]
    auto diffs = n_users > 0 ? rp.slice(0, 1) - rp.slice(0, 0, n_users) : at::zeros({1}, rp.options());
    auto r = diffs.argmin();
    v.push_back(diffs.index_select(0, r.reshape({1})).squeeze(0));                       // +1 smallest row
    v.push_back(n_users > 0 ? r : at::zeros({}, rp.options()));                           // +2 its row
    if (nnz > 0) {
      auto mm = at::aminmax(c);
      v.push_back(std::get<0>(mm));                                                       // +3 col min
      v.push_back(std::get<1>(mm));                                                       // +4 col max
      auto start = at::zeros({nnz + 1}, rp.options().dtype(at::kBool)).index_fill_(0, rp.clamp(0, nnz), true);
      auto viol = (c.slice(0, 1) <= c.slice(0, 0, nnz - 1)).logical_and(start.slice(0, 1, nnz).logical_not());
      auto pos = viol.to(at::kLong).argmax().reshape({1}) + 1;
      auto row = at::searchsorted(rp, pos, /*out_int32=*/false, /*right=*/true).squeeze(0) - 1;
      v.push_back(at::where(viol.any(), row, at::full({}, -1, rp.options())));          // +5 unsorted row
    }
  }
  const auto h = at::stack(v).cpu();
  const int64_t* x = h.data_ptr<int64_t>();
  if (g.check_rows) {
    const int64_t* f = x + full_at;
    TORCH_CHECK(f[0] == 0, op, ": malformed CSR, rowptr[0] must be 0, got ", f[0]);
    TORCH_CHECK(x[0] == nnz, op, ": malformed CSR, rowptr[-1] must equal nnz = col.numel() = ", nnz, ", got ", x[0]);
    TORCH_CHECK(f[1] >= 0, op, ": malformed CSR, rowptr must be non-decreasing (row ", f[2], " has ", f[1],
                " entries)");
    if (nnz > 0) {
      TORCH_CHECK(f[3] >= 0 && f[4] < g.n_items, op, ": col has values in [", f[3], ", ", f[4],
                  "] but must lie in [0, ", g.n_items, ")");
      TORCH_CHECK(f[5] < 0, op, ": the columns of row ", f[5],
                  " are not sorted and duplicate-free (each row of the CSR must be strictly increasing)");
    }
  }
  report_sample_values(g, mode, x, cand_at, pop_at, cand, pop, row_at, rows);
}

}  // namespace sampler
}  // namespace llmhni
