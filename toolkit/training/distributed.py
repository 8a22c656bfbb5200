"""Data parallel training under `torchrun --nproc-per-node N` (gloo on CPU, nccl on GPU).

Without torchrun's environment (WORLD_SIZE unset or 1) everything is a no-op on one process.
Each rank draws its own random crops (seeded by rank), so no sampler is needed.
"""
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


class Dist:
    """device: "auto" (a GPU when torch sees one), "cpu", or "cuda" (ValueError in one line without one)."""

    def __init__(self, device: str = "auto"):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {device!r}; choose auto, cpu or cuda")
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is False)")
        cuda = device != "cpu" and torch.cuda.is_available()
        self.device = torch.device(f"cuda:{local}" if cuda else "cpu")
        self.enabled = self.world > 1
        if self.enabled and not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, module):
        if not self.enabled:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def mean(self, value: float) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t) / self.world

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (a collective decision, e.g. a time slice running out)."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self):
        if self.enabled:
            dist.barrier()

    def close(self):
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def unwrap(module):
    return module.module if isinstance(module, DistributedDataParallel) else module
