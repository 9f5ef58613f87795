"""Sign-SGD for the sparse puzzle embedding (official `CastedSparseEmbeddingSignSGD_Distributed`).

In training mode the model copies the batch's rows of the embedding table into
`local_weights` (a leaf buffer that receives the gradient) and their ids into `local_ids`.
A step gathers (ids, grads) from every rank, sums the gradients of equal ids and applies
    w[id] <- w[id] * (1 - lr * weight_decay) - lr * sign(sum of grads)
to those rows only (decoupled weight decay; Adam is close to sign-SGD for such sparse
gradients, the official rationale). A plain class, not a torch Optimizer: it has no state.
"""

from __future__ import annotations

import torch
import torch.distributed as tdist


class SparseEmbeddingSignSGD:
    def __init__(self, embedding: torch.nn.Module, lr: float = 0.0, weight_decay: float = 0.0):
        self.embedding = embedding  # a CastedSparseEmbedding: weights, local_weights, local_ids
        self.lr = lr
        self.weight_decay = weight_decay

    @torch.no_grad()
    def step(self) -> None:
        emb = self.embedding
        grad = emb.local_weights.grad  # (B, D)
        if grad is None:
            return
        ids = emb.local_ids.to(torch.int64)  # (B,)
        if tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1:
            world = tdist.get_world_size()
            grads = [torch.empty_like(grad) for _ in range(world)]
            id_list = [torch.empty_like(ids) for _ in range(world)]
            tdist.all_gather(grads, grad.contiguous())  # list form: gloo (CPU) and NCCL both have it
            tdist.all_gather(id_list, ids.contiguous())
            grad, ids = torch.cat(grads), torch.cat(id_list)
        uniq, inverse = ids.unique(return_inverse=True)  # (U,), (B*world,)
        summed = grad.new_zeros((uniq.shape[0], grad.shape[1]))
        summed.scatter_add_(0, inverse.unsqueeze(-1).expand(-1, grad.shape[1]), grad)  # (U, D)
        rows = emb.weights[uniq]
        rows.mul_(1.0 - self.lr * self.weight_decay).add_(torch.sign(summed), alpha=-self.lr)
        emb.weights[uniq] = rows

    def zero_grad(self) -> None:
        self.embedding.local_weights.grad = None
