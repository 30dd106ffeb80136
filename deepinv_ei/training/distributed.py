r"""Data-parallel training under ``torchrun``: one process per GPU (NCCL), or several CPU
processes (gloo), each training on its shard of the data with synchronised gradients.

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every function here is a no-op, so the same
script runs in one process or many::

    info, device = init_distributed("cuda")
    model = wrap_ddp(model.to(device), info, device)
    loader = shuffled_loader(dataset, batch_size=4, info=info)
    ...  # Trainer(model=model, train_dataloader=loader, device=device, ...).train()
    shutdown(info)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the process group (rank 0 of 1 without ``torchrun``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group that ``torchrun`` set up (``WORLD_SIZE`` > 1), else stay single.

    :return: the rank information and this process's device (``cuda:LOCAL_RANK`` on GPUs).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), torch.device(device)
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return info, dev


def is_main_process() -> bool:
    """``True`` in a single process and on rank 0 of a process group."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def barrier(info: DistInfo) -> None:
    """Wait for every process of the group (no-op in a single process)."""
    if info.enabled and dist.is_initialized():
        dist.barrier()


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process (any picklable object); ``obj`` itself in a single
    process. Decisions that must agree across processes (stop now, a score, a verdict on the
    output folder) go through here."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap_ddp(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """:class:`~torch.nn.parallel.DistributedDataParallel` when ``info.enabled``, else
    ``model``. On GPUs batch-norm statistics are synchronised across processes (torch's
    SyncBatchNorm has no CPU kernel, so gloo runs keep per-process statistics)."""
    if not info.enabled:
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def bare_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


class EpochSampler(DistributedSampler):
    """A :class:`~torch.utils.data.DistributedSampler` that reshuffles at every pass
    (deepinv's Trainer re-creates the loader iterator each epoch but never calls
    ``set_epoch``; :class:`~deepinv_ei.training.Trainer` sets the first epoch on resume)."""

    def __iter__(self):
        it = super().__iter__()
        self.epoch += 1
        return it


def shuffled_loader(
    dataset: Dataset, batch_size: int, info: DistInfo | None = None, **kwargs
) -> DataLoader:
    """A training loader reshuffled every epoch: from torch's global generator in a single
    process, this process's shard through an :class:`EpochSampler` under ``torchrun``."""
    if info is not None and info.enabled:
        sampler = EpochSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **kwargs)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, **kwargs)


def shutdown(info: DistInfo) -> None:
    """Leave the process group (no-op in a single process)."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
