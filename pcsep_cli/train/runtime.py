"""Where a training run runs: its device, its precision, and its share of a distributed run.

``torchrun --nproc-per-node N -m pcsep_cli.train CONFIG`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in their environment (on several
machines, ``--nnodes`` more of them). Each process calls :func:`start`, which joins the process
group (gloo for CPU tensors, NCCL for CUDA ones); :meth:`Runtime.wrap` then makes every
BatchNorm layer synchronous (:mod:`pcsep_cli.train.syncbn`) and wraps the step in
``DistributedDataParallel``. The config's ``batch_size`` is the global batch: process ``r``
builds its contiguous share (:meth:`Runtime.shard`) of the batch one process would draw, so
the losses and weights follow a single process's up to float rounding. Process 0 alone
validates and writes logs, checkpoints and the model.

Without ``WORLD_SIZE`` (or with 1) nothing of this runs: one process, no process group.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from pcsep_cli.train.config import TrainConfig, TrainConfigError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def env_rank() -> int:
    """This process's rank in a torchrun job (0 outside one)."""
    return int(os.environ.get("RANK", "0") or 0)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise TrainConfigError(
            f"environment variable {name}={value!r} is not a number",
            hint="start distributed runs with torchrun, which sets it",
        ) from None


@dataclass
class Runtime:
    """One process's place in a run.

    Attributes:
        device: where the model and batches live.
        amp: autocast dtype (``None``: float32 throughout).
        rank: this process's rank (0 .. world - 1).
        world: processes in the run.
        bn_group: the process group the synchronous BatchNorm layers reduce over.
        owns_group: :func:`start` made the process group (and :meth:`close` ends it).
    """

    device: torch.device
    amp: torch.dtype | None = None
    rank: int = 0
    world: int = 1
    bn_group: Any = None
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Whether this process writes (rank 0)."""
        return self.rank == 0

    def shard(self, count: int) -> range:
        """This process's contiguous share of ``count`` batch items (the first
        ``count % world`` processes take one more)."""
        per, extra = divmod(count, self.world)
        start = self.rank * per + min(self.rank, extra)
        return range(start, start + per + (self.rank < extra))

    def all_sum(self, values: Tensor) -> Tensor:
        """``values`` summed over the processes (a copy; not differentiable)."""
        out = values.detach().clone()
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(out)
        return out

    def autocast(self) -> contextlib.AbstractContextManager:
        """The mixed-precision context of the forward pass (a no-op at float32)."""
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """Loss scaling for fp16 (bf16 has float32's range and needs none)."""
        if self.amp != torch.float16:
            return None
        return torch.amp.GradScaler(self.device.type)

    def wrap(self, step: nn.Module) -> nn.Module:
        """The module to run a training step with: ``step`` itself in one process; under
        torchrun, ``step`` with synchronous BatchNorm inside ``DistributedDataParallel``.

        Parameters keep their objects and order, so optimiser state and checkpoints are the
        same either way.
        """
        if self.world == 1:
            return step
        from torch.nn.parallel import DistributedDataParallel

        from pcsep_cli.train.syncbn import sync_batch_norm

        sync_batch_norm(step, self.bn_group)
        # Which sub-networks a step uses changes from step to step (clouds or labels), the
        # same on every process (the parameters left out keep no gradient, as in one process).
        # BatchNorm's running statistics are equal everywhere by construction: no broadcast.
        params = inspect.signature(DistributedDataParallel).parameters
        quiet = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
        return DistributedDataParallel(step, find_unused_parameters=True, **{quiet: False})

    def check_same_start(self, step: int, where: Any) -> None:
        """Refuse to go on when the processes resumed from different checkpoints.

        Raises:
            ModelError: e.g. a run folder that is not on a filesystem every machine shares.
        """
        if self.world == 1:
            return
        from pcsep_cli.errors import ModelError

        got = self.all_max(torch.tensor([step, -step], dtype=torch.float64))
        high, low = int(got[0]), -int(got[1])
        if high != low:
            raise ModelError(
                f"the processes found different checkpoints (steps {low} and {high})",
                where,
                "put out_dir on a filesystem that every machine of the run shares",
            )

    def all_max(self, values: Tensor) -> Tensor:
        """Elementwise maximum over the processes."""
        import torch.distributed as dist

        out = values.to(self.device).clone()
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
        return out.cpu()

    def close(self) -> None:
        """Leave the process group if :func:`start` joined it."""
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False


def resolve_device(name: str, local_rank: int = 0, world: int = 1) -> torch.device:
    """The device of this process for the config's ``device``.

    Raises:
        TrainConfigError: CUDA asked for where there is none, or a GPU index under torchrun.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise TrainConfigError(
            f"device {name}: CUDA is not available on this machine",
            hint='use --device cpu, or "device": "cpu" in the config',
        )
    if world > 1 and name != "cuda":
        raise TrainConfigError(
            f"device {name}: under torchrun each process takes the GPU of its LOCAL_RANK",
            hint="use --device cuda",
        )
    index = local_rank if name == "cuda" else int(name.split(":")[1])
    if index >= torch.cuda.device_count():
        raise TrainConfigError(
            f"device {name}: GPU {index} asked for, {torch.cuda.device_count()} present",
            hint="start at most one process per GPU (torchrun --nproc-per-node)",
        )
    return torch.device("cuda", index)


def resolve_amp(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the config's ``amp`` on ``device``.

    Raises:
        TrainConfigError: fp16 on the CPU, or bf16 on a GPU without it.
    """
    cuda = device.type == "cuda"
    if name == "auto":
        if not cuda:
            return None
        name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name == "off":
        return None
    if name == "fp16" and not cuda:
        raise TrainConfigError(
            "amp fp16 needs a CUDA GPU", hint="use --amp bf16 or --amp off on the CPU"
        )
    if name == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise TrainConfigError("amp bf16: this GPU has no bfloat16", hint="use --amp fp16")
    return _DTYPES[name]


def start(cfg: TrainConfig) -> Runtime:
    """This process's runtime: device and precision checked, the process group joined under
    torchrun (``WORLD_SIZE`` > 1).

    Raises:
        TrainConfigError: a device or precision this machine cannot run, or a batch too small
            to give every process a share.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    device = resolve_device(cfg.device, local_rank, world)
    amp = resolve_amp(cfg.amp, device)
    if world == 1:
        return Runtime(device, amp)
    for name in ("batch_size", "visual_batch"):
        value = getattr(cfg, name)
        if 0 < value < world:
            raise TrainConfigError(
                f"{name} {value} is below the {world} processes: each needs a share of it",
                hint=f"raise {name} (it is the global batch) or start fewer processes",
            )
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        bind = {}  # NCCL binds its communicator to this process's GPU (torch >= 2.3)
        if (
            device.type == "cuda"
            and "device_id" in inspect.signature(dist.init_process_group).parameters
        ):
            bind["device_id"] = device
        dist.init_process_group(backend, rank=rank, world_size=world, **bind)
    # BatchNorm reduces on a group of its own: its collectives run inside the forward and
    # backward passes, beside DDP's gradient buckets, and must not share their sequence.
    bn_group = dist.new_group(list(range(world)))
    return Runtime(device, amp, dist.get_rank(), dist.get_world_size(), bn_group, owns)


@contextlib.contextmanager
def started(cfg: TrainConfig) -> Iterator[Runtime]:
    """:func:`start` for the length of a ``with`` block."""
    runtime = start(cfg)
    try:
        yield runtime
    finally:
        runtime.close()
