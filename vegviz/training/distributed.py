"""Data-parallel training with PyTorch's own engine: ``torchrun`` starts the ranks, DDP syncs them.

``torchrun --nproc_per_node N -m vegviz train ...`` (or ``vegviz train --nproc N``) starts N
processes with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``
set. :func:`context` reads them and joins the process group: gloo on the CPU, NCCL on CUDA
devices, one rank per device (``cuda:LOCAL_RANK``). Without those variables it is a world of
one, and nothing changes.

How the trainer uses it (:mod:`vegviz.training.trainer`): every rank computes the same epoch
plan from ``(seed, epoch)``, takes its share of each batch (``samples[rank::world]``: no
sample on two ranks, reshuffled every epoch), scales its masked error sum by ``world / n``
with ``n`` the observed values of the *global* batch (one all-reduce), so DDP's average of
the ranks' gradients is exactly the gradient of the single-process loss; the truncated-BPTT
chunks before the last accumulate under ``no_sync``. Rank 0 validates, checkpoints, writes
history and events, and predicts; the others receive its validation result.

Multi-node: torchrun's rendezvous arguments, e.g. on each of 2 nodes with 4 GPUs::

    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
        --rdzv_id vegviz-conus -m vegviz train --domain conus --set patch=64
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch

__all__ = ["DistError", "ENV", "World", "check_world", "context", "from_env"]

#: the variables torchrun sets for every rank
ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
#: how long a rank waits for the others at a collective (rank 0 validates while the others wait)
TIMEOUT = timedelta(hours=2)


class DistError(RuntimeError):
    """The distributed environment is incomplete or inconsistent; the message names the fix."""


@dataclass(frozen=True)
class World:
    """This process's place among the ranks (``world == 1``: not distributed)."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1
    backend: str = ""

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that checkpoints, logs and predicts."""
        return self.rank == 0

    def shard(self, samples):
        """This rank's share of a batch (``samples[rank::world]``, possibly empty)."""
        return samples[self.rank::self.world]

    def sum(self, value: float, device) -> float:
        """The sum of ``value`` over the ranks (float64 on the wire: exact for counts)."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return float(t.item())

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()


def from_env(environ=None) -> World:
    """The :class:`World` the environment describes, checked (no process group is joined)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env and "RANK" not in env:
        return World()
    missing = [k for k in ENV if not env.get(k)]
    if missing:
        raise DistError(f"distributed training: {', '.join(missing)} not set (a rank needs all of {', '.join(ENV)}). "
                        "Fix: start the ranks with torchrun, e.g. `torchrun --nproc_per_node 2 -m vegviz train ...` "
                        "or `vegviz train --nproc 2`, not with python directly")
    try:
        rank, local, world = int(env["RANK"]), int(env["LOCAL_RANK"]), int(env["WORLD_SIZE"])
    except ValueError:
        raise DistError(f"distributed training: RANK={env['RANK']!r}, LOCAL_RANK={env['LOCAL_RANK']!r}, "
                        f"WORLD_SIZE={env['WORLD_SIZE']!r} must be integers. Fix: let torchrun set them") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise DistError(f"distributed training: rank {rank} of a world of {world} (local rank {local}) is impossible. "
                        "Fix: WORLD_SIZE >= 1 and 0 <= RANK < WORLD_SIZE; let torchrun set them")
    return World(rank, local, world)


def check_world(world: World, batch_size: int, device: torch.device) -> None:
    """A clear error when this world cannot train with this configuration."""
    if not world.distributed:
        return
    if batch_size < world.world:
        raise DistError(f"batch_size {batch_size} is smaller than the world size {world.world}: some ranks would "
                        f"never get a sample. Fix: batch_size >= the number of ranks (the global batch is split "
                        f"among them), e.g. --set batch_size={world.world}, or fewer ranks (--nproc)")
    if device.type == "cuda":
        n = torch.cuda.device_count()
        if world.local_rank >= n:
            raise DistError(f"local rank {world.local_rank} has no GPU: this node has {n}. Fix: --nproc_per_node "
                            f"<= {n} (one rank per GPU)")


@contextlib.contextmanager
def context(device_type: str = "cpu", environ=None):
    """Join the process group torchrun describes (if any) for the block; yield the :class:`World`."""
    world = from_env(environ)
    if not world.distributed:
        yield world
        return
    import torch.distributed as dist

    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(world.local_rank)
    joined = not dist.is_initialized()
    if joined:
        try:
            dist.init_process_group(backend, rank=world.rank, world_size=world.world, timeout=TIMEOUT)
        except (RuntimeError, ValueError) as e:
            raise DistError(f"distributed training: rank {world.rank} could not join the process group at "
                            f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} ({e}). Fix: check the "
                            "rendezvous (torchrun --rdzv_endpoint, the same on every node) and that the port is "
                            "free") from e
    yield World(world.rank, world.local_rank, world.world, backend)
    # Only after a clean finish, and all ranks together: a rank that destroys the group while
    # another is still busy (rank 0 writing its last checkpoint) can hang in the teardown, which
    # hung a CI run after training had finished. A rank that failed leaves the group alone
    # (its peers may be inside a collective); torchrun stops them.
    if joined and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
