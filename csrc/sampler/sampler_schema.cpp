// Schema of the fused hard-negative sampler (contract: llmhni_ext.reference.sample_negatives).
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(llmhni, m) {
  // For each user (B of them) and each of num_negatives slots: draw num_candidates items,
  // redraw positives (binary search in the sorted CSR row), choose by mode
  // (uniform | popularity | dns | llmhni). Returns (negatives [B, N] int64,
  // scores [B, N] fp32 or [0] without embeddings, counts [4] int64 =
  // rejected, exhausted, filtered, llmhni fallbacks). check_rows=False skips the O(nnz)
  // check of the CSR (see sampler_checks.h for what is then trusted).
  m.def(
      "sample_negatives(Tensor rowptr, Tensor col, Tensor users, int n_items, str mode, int num_negatives, "
      "int num_candidates, int top_k, float sim_threshold, int seed, int offset, int max_redraws, "
      "Tensor? candidates=None, Tensor? pop_cdf=None, Tensor? user_emb=None, Tensor? item_emb=None, "
      "Tensor? user_sem=None, Tensor? item_sem=None, bool check_rows=True) -> (Tensor, Tensor, Tensor)");
}
