"""Where a run executes: device, precision, and the data-parallel world (torchrun / torch.distributed).

Design of the data-parallel mode (``torchrun --nproc-per-node N``, any backend: gloo on CPU,
nccl on GPUs):

* Every rank holds the full model and the same retained subset. Every batch stream draws the
  same *global* batch on every rank (same seed) and each rank keeps its slice of it, so N ranks
  see exactly the samples one process would, with the same effective batch size.
* Gradients are averaged by ``nn.parallel.DistributedDataParallel``: every training phase wraps
  the student (:meth:`Runtime.data_parallel`) and the methods' forward calls go through the
  wrapper, so its reducer all-reduces gradient buckets while the backward runs. The anti-memory
  step calls the student twice before one backward (real batch with BatchNorm in training mode,
  synthetic batch with it in eval mode); the reducer handles that because each parameter's
  gradient is accumulated once per backward. A step whose loss never went through the wrapper
  is averaged with one ``all_reduce`` instead (:meth:`Runtime.average_gradients`), so replicas
  can never drift apart. Buffers are not broadcast on forward (see BatchNorm below).
* BatchNorm: on CUDA the retained passes use ``SyncBatchNorm`` statistics over the global batch;
  PyTorch implements it for GPUs only, so on CPU each rank normalises with its slice's statistics
  and the running buffers are averaged over ranks after every step (all ranks hold identical
  weights and buffers at every step).
* The anti-memory generator is fitted once, on rank 0, and broadcast; anti-memory batches are
  split over ranks (each rank draws its share with its own random stream).
* Only rank 0 writes files; the others wait at a barrier.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist
import torch.nn as nn

from .errors import InvalidRequestError

log = logging.getLogger(__name__)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Runtime:
    """Device, autocast dtype and data-parallel position of one run."""

    device: torch.device = torch.device("cpu")
    precision: str = "fp32"
    channels_last: bool = False
    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch (rows ``rank::world_size``)."""
        return rows[self.rank::self.world_size] if self.distributed else rows

    def share(self, count: int) -> int:
        """This rank's part of ``count`` samples (at least 1)."""
        return max(1, count // self.world_size) if self.distributed else count

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = PRECISIONS[self.precision]
        if dtype is None or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=dtype)

    # ------------------------------------------------------------------ collectives

    def _all_reduce_mean_(self, tensors: list[torch.Tensor]) -> None:
        """Replace each tensor by its mean over ranks, with one collective for all of them."""
        if not self.distributed or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    def data_parallel(self, model: nn.Module) -> "DataParallelStudent | None":
        """``model`` wrapped in DistributedDataParallel for one training phase (None in a single process)."""
        if not self.distributed:
            return None
        device_ids = [self.device.index] if self.device.type == "cuda" and self.device.index is not None else None
        # Replicas already hold the same weights; BatchNorm buffers are averaged by average_buffers.
        return DataParallelStudent(model, device_ids=device_ids, forward_sync_buffers=False)

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        self._all_reduce_mean_([p.grad for p in params if p.grad is not None])

    def average_buffers(self, model: nn.Module) -> None:
        """Average floating-point buffers (BatchNorm running statistics) over ranks."""
        self._all_reduce_mean_([b for b in model.buffers() if b.is_floating_point()])

    def all_finite(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank (so all ranks stop together on divergence)."""
        ok = torch.tensor(float(torch.isfinite(loss.detach()).all()), device=loss.device)
        if self.distributed:
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        return bool(ok > 0)

    def broadcast_module(self, module: nn.Module, src: int = 0) -> None:
        if not self.distributed:
            return
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=src)

    def same_on_every_rank(self, values: torch.Tensor, tolerance: float = 0.0) -> bool:
        """Whether ``values`` (float64) agree on every rank, within ``tolerance`` (relative and absolute)."""
        if not self.distributed:
            return True
        low, high = values.clone(), values.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        return bool(torch.allclose(low, high, rtol=tolerance, atol=tolerance))

    def check_in_sync(self, model: nn.Module) -> None:
        """Raise if the ranks ended with different weights (they must be replicas at every step)."""
        if not self.distributed:
            return
        with torch.no_grad():
            sums = torch.stack([t.double().sum() for t in model.state_dict().values() if t.is_floating_point()])
        if not self.same_on_every_rank(sums, tolerance=1e-6):
            raise RuntimeError("the data-parallel ranks ended with different weights; this is a bug, please report it")


class DataParallelStudent(nn.parallel.DistributedDataParallel):
    """DDP whose attribute lookups fall through to the wrapped model, so methods written for the
    plain student (``get_classifier``, ``forward_features``, ``pretrained_cfg``) run unchanged."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def current_world() -> tuple[int, int]:
    """(rank, world size) of an initialised process group, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_environment(device: str = "auto") -> bool:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1) if none is initialised yet:
    nccl when this run uses CUDA, gloo otherwise. Returns whether it initialised one."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return True


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when available (this rank's ``LOCAL_RANK`` GPU under torchrun), else CPU."""
    import os

    if isinstance(device, torch.device):
        resolved = device
    elif not isinstance(device, str):
        raise InvalidRequestError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}")
    elif device == "auto":
        if torch.cuda.is_available():
            resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        else:
            resolved = torch.device("cpu")
    else:
        try:
            resolved = torch.device(device)
        except RuntimeError:
            raise InvalidRequestError(f"device {device!r} is not a device name; use 'auto', 'cpu' or 'cuda'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidRequestError(f"device {device!r} asked for CUDA, but torch sees no CUDA device here; "
                                  "use device='auto' or 'cpu'")
    if resolved.type not in ("cpu", "cuda"):
        raise InvalidRequestError(f"device type {resolved.type!r} is not supported; use 'cpu' or 'cuda'")
    return resolved


def make_runtime(device: str | torch.device, precision: str, channels_last: bool) -> Runtime:
    rank, world_size = current_world()
    resolved = resolve_device(device)
    if precision != "fp32" and resolved.type != "cuda":
        log.info("recipe precision %s applies on CUDA only; this run is fp32 on %s", precision, resolved)
    return Runtime(resolved, precision, channels_last and resolved.type == "cuda", rank, world_size)


def peak_memory(device: str | torch.device = "cpu") -> dict:
    """The peak memory so far, in GiB: on CUDA the device's allocated peak, on the CPU this process's resident
    peak (which never falls: a figure read after several runs is the largest of them)."""
    device = str(device)
    if device.startswith("cuda"):
        return {"gib": torch.cuda.max_memory_allocated(torch.device(device)) / 2**30, "what": f"allocated on {device}"}
    import resource
    import sys

    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in KiB on Linux, bytes on macOS
    return {"gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30, "what": "resident, this process"}


__all__ = ["Runtime", "current_world", "init_from_environment", "make_runtime", "peak_memory", "resolve_device",
           "PRECISIONS"]
