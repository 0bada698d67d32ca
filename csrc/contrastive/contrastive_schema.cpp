// Contrastive-learning ops: randomly edge-dropped views of a normalised graph and a
// batched cosine InfoNCE over in-batch negatives (SGL-style graph contrastive losses).
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(llmhni, m) {
  // Dropped views of the symmetric CSR (rowptr, col) over n = rowptr.numel() - 1 nodes.
  // Each undirected edge {r, c} is decided once per view from the Philox word keyed by
  // min(r, c) * n + max(r, c) (sub = view / 4, word view % 4): kept iff
  // uniform_float(word) < float32(keep_prob). Values are D'^-1/2 A' D'^-1/2 with the
  // kept degrees D' (float32); rows that lose every edge are empty.
  //
  // edge_drop_mask: values [num_views, nnz] on the input structure, 0 where dropped.
  m.def(
      "edge_drop_mask(Tensor rowptr, Tensor col, float keep_prob, int num_views, int seed, "
      "int offset) -> Tensor");
  // edge_drop_compact: per view, the CSR of the kept entries (rowptr, col in the
  // input's index dtype; value float32).
  m.def(
      "edge_drop_compact(Tensor rowptr, Tensor col, float keep_prob, int num_views, int seed, "
      "int offset) -> (Tensor[], Tensor[], Tensor[])");
  // Cosine InfoNCE per pair p of a, b [P, B, d] (float32/64, bf16, fp16):
  //   loss_p = 1/B sum_i [ log sum_j exp(s_ij) - s_ii ],  s_ij = cos(a_pi, b_pj) / temperature
  // Returns (loss [P] in a's dtype, lse [P, B] fp32 (fp64 for fp64 inputs)). Memory
  // O(B*d): scores are made one row block at a time, never as a B x B matrix.
  m.def("infonce(Tensor a, Tensor b, float temperature) -> (Tensor, Tensor)");
  // Gradients of sum_p grad_loss[p] * loss_p w.r.t. a and b, recomputing the scores.
  m.def(
      "infonce_backward(Tensor grad_loss, Tensor a, Tensor b, Tensor lse, float temperature) -> "
      "(Tensor, Tensor)");
}
