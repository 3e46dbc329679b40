"""Data parallelism over processes or GPUs with ``accelerate``.

Launch any ``daedal eval`` command under ``accelerate launch`` (``--cpu`` works for
testing): each process loads the model on its own device, takes the problems
``rank, rank + world_size, ...``, appends them to its own ``samples.rank<r>.jsonl``, and
after a barrier rank 0 merges the shards into ``samples.jsonl``::

    accelerate launch --num_processes 8 -m daedal.eval run --suite gsm8k --model ... --output runs/x

On a machine without GPUs, ``accelerate launch --multi_gpu --num_processes 2 ...`` (the
torchrun-based launcher) starts CPU processes joined by a gloo group; ``--cpu`` with
several processes needs MPI. ``torchrun --nproc_per_node 2 -m daedal.eval ...`` works too.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import attrs

from daedal.core.errors import ConfigError

__all__ = ["Shard", "current_shard"]


def _no_barrier() -> None:
    return None


@attrs.frozen
class Shard:
    """This process's place in a data-parallel run.

    Attributes:
        rank: Index of this process.
        world_size: Number of processes.
        local_rank: Index on this machine (picks the GPU).
        device: Device accelerate assigned (``"cuda:1"``, ``"cpu"``), None outside a launch.
        barrier: Waits for every process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str | None = None
    barrier: Callable[[], None] = _no_barrier

    @property
    def is_main(self) -> bool:
        return self.rank == 0


#: Environment variables holding the world size: torchrun / accelerate's launchers, then MPI's.
_WORLD_VARS = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")


def _world_size() -> int:
    for name in _WORLD_VARS:
        value = os.environ.get(name)
        if value:
            try:
                return int(value)
            except ValueError:
                raise ConfigError(f"environment variable {name}={value!r} is not an integer world size") from None
    return 1


def _check_single_process_launch() -> None:
    """Refuse ``accelerate launch --num_processes N`` (N > 1) that started one process.

    accelerate's simple launcher (``--cpu`` without MPI) sets ``MASTER_ADDR`` whenever more
    than one process was asked for, yet starts a single process: every problem would
    silently run in it.
    """
    launched = any(k.startswith("ACCELERATE_") for k in os.environ)
    if launched and os.environ.get("MASTER_ADDR"):
        raise ConfigError(
            "`accelerate launch` was asked for several processes (--num_processes > 1) but started one (WORLD_SIZE unset): "
            "accelerate's --cpu launcher needs MPI for that. On CPUs use `accelerate launch --multi_gpu --num_processes N` "
            "(gloo) or `torchrun --nproc_per_node N -m daedal.eval ...`; or launch with --num_processes 1"
        )


def current_shard() -> Shard:
    """The shard of this process: one shard unless started by ``accelerate launch`` (or torchrun, MPI).

    Raises:
        ConfigError: Launched with several processes but ``accelerate`` is missing, or an
            ``accelerate launch`` asked for several processes but started only this one.
    """
    world = _world_size()
    if world <= 1:
        _check_single_process_launch()
        return Shard()
    try:
        from accelerate import PartialState
    except ImportError as err:
        raise ConfigError(
            f"WORLD_SIZE={world} but accelerate is not installed: pip install 'daedal-eval[accelerate]'"
        ) from err
    import torch

    # Without CUDA, accelerate only sets up a gloo group when asked for the CPU explicitly.
    state = PartialState() if torch.cuda.is_available() else PartialState(cpu=True)
    return Shard(
        rank=int(state.process_index),
        world_size=int(state.num_processes),
        local_rank=int(state.local_process_index),
        device=str(state.device),
        barrier=state.wait_for_everyone,
    )
