"""Data-parallel MFWM updates: :class:`torch.nn.parallel.DistributedDataParallel` over the two trained parts.

One MFWM update (:meth:`genrl.mfwm.model.MFWM.train_step`) is two optimizer steps on two disjoint parameter sets
with two backward passes: the world model on its loss, then connector + aligner on theirs (on the detached
posterior). So the MFWM is not wrapped as one module (its ``forward`` is not the update, and one DDP would expect
every parameter's gradient in each backward); instead each part's *loss* is a module of its own, wrapped in its own
DDP (separate gradient buckets and reducers, all-reduced in the same order on every rank):

* :class:`WorldModelLoss` ``(batch) -> (loss, post, metrics)`` owns ``mfwm.wm``;
* :class:`ConnectorLoss` ``(post, embedding) -> (loss, metrics)`` owns ``mfwm.connector`` and ``mfwm.aligner``.

DDP averages the gradients of each backward over the ranks, so with ``B / N`` sequences per rank the averaged
gradient is the gradient of the batch-mean loss on all ``B`` sequences (every loss term is a mean over batch and
time with the same count on every rank); clipping and the AdamW step then act on the averaged gradient, identically
on every rank, and the optimizer states stay equal. DDP also broadcasts rank 0's weights when it is built (after the
checkpoint load). Exceptions to exactness: the stochastic parts (straight-through latent samples, LAFITE noise,
the connector's sampled initial ``z``) draw from each rank's own generator, and the connector/aligner masks of
all-zero embeddings (official padding only) normalise per rank.

Usage::

    par = DataParallelMFWM(model, device)           # inside a torch.distributed process group
    metrics = par.train_step(batch, opts)           # batch: this rank's B / N sequences; metrics averaged
"""

from __future__ import annotations

import inspect

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from genrl.mfwm.model import MFWM
from genrl.utils.distributed import all_finite, mean_metrics

__all__ = ["WorldModelLoss", "ConnectorLoss", "DataParallelMFWM"]


class WorldModelLoss(nn.Module):
    """``forward(batch) = mfwm.wm.loss(batch)``, as a module that owns exactly the world model's parameters."""

    def __init__(self, model: MFWM):
        super().__init__()
        self.wm = model.wm

    def forward(self, batch: dict[str, torch.Tensor]):
        return self.wm.loss(batch)


class ConnectorLoss(nn.Module):
    """``forward(post, emb) = mfwm.connector_loss(post, emb)``, owning exactly the connector and aligner."""

    def __init__(self, model: MFWM):
        super().__init__()
        self.connector, self.aligner = model.connector, model.aligner
        self._model = (model,)  # a tuple: not registered, so the world model's parameters are not part of this DDP

    def forward(self, post: dict[str, torch.Tensor], emb: torch.Tensor):
        return self._model[0].connector_loss(post, emb)


class DataParallelMFWM:
    """The MFWM update over the ranks of the current process group (one DDP per trained part).

    Args:
        model: the MFWM on this rank's ``device`` (weights loaded; DDP broadcasts rank 0's at construction).
        device: ``cuda:LOCAL_RANK`` (NCCL) or the CPU (gloo).

    Raises:
        RuntimeError: no process group (``torch.distributed.init_process_group`` first).
    """

    def __init__(self, model: MFWM, device: torch.device):
        self.model = model
        ids = [device.index] if device.type == "cuda" else None
        # the only buffer (the reward head's bin centres) is a constant: no per-forward broadcast (torch >= 2.13
        # names this forward_sync_buffers and deprecates broadcast_buffers; syncing a constant once at init is fine)
        no_sync = ({"forward_sync_buffers": False}
                   if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
                   else {"broadcast_buffers": False})
        self.wm_loss = DistributedDataParallel(WorldModelLoss(model), device_ids=ids, **no_sync)
        self.connector_loss = DistributedDataParallel(ConnectorLoss(model), device_ids=ids, **no_sync)

    def _wm(self, batch):
        loss, post, metrics = self.wm_loss(batch)
        if not all_finite(loss):  # every rank stops at once, before any backward or parameter change
            raise FloatingPointError(f"world-model loss is {loss.item()} on this rank or another ({metrics})")
        return loss, post, metrics

    def _connector(self, post, emb):
        loss, metrics = self.connector_loss(post, emb)
        if not all_finite(loss):
            raise FloatingPointError(f"connector/aligner loss is {loss.item()} on this rank or another ({metrics})")
        return loss, metrics

    def train_step(self, batch: dict[str, torch.Tensor], opts: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """One data-parallel update on this rank's share of the batch; returns the metrics averaged over ranks.

        Raises:
            FloatingPointError: a non-finite loss on any rank (raised on every rank, nothing changed).
        """
        metrics = self.model.train_step(batch, opts, wm_loss=self._wm, connector_loss=self._connector)
        return mean_metrics(metrics)
