"""The default process group under torchrun, on a store namespace that is new at every (re)start of the group.

Why (docs/training.md, "Distributed training", elastic restarts): with the c10d rendezvous, torchrun's agent
on the first node hosts one TCPStore for the whole job (``TORCHELASTIC_USE_AGENT_STORE=True``, the store at
``MASTER_ADDR:MASTER_PORT``) and hands the *same* store to the workers of every rendezvous round. Torch's
``env://`` rendezvous uses it without any per-round key prefix, so when torchrun restarts the group the new
workers find the previous workers' keys still there - among them each rank's gloo (or NCCL) listening
address. A rank that reaches ``connectFullMesh`` before its peer has overwritten its old address connects to
the dead process's port: ``Connection refused`` until the process-group timeout. (Torch used to scope the
store by ``TORCHELASTIC_RESTART_COUNT``, which differs between nodes - only the failed node's agent counts
the restart - so even that prefix would not be agreed on.)

:func:`init_process_group_fresh` initialises the default process group itself, before Lightning would, on a
:class:`~torch.distributed.PrefixStore` whose prefix is a token drawn by rank 0 for this start of the group and
handed to the other ranks through keys only this start can know (:func:`fresh_namespace`). Lightning's
``_init_dist_connection`` then finds the group initialised and keeps it.
"""
from __future__ import annotations

import atexit
import os
import time
import uuid
from datetime import timedelta
from typing import Any, Optional

import torch.distributed as dist

__all__ = ["ElasticStoreError", "uses_agent_store", "fresh_namespace", "init_process_group_fresh",
           "init_process_group_for_trainer"]

#: keys of the handshake, under this prefix of the agent's store
ROOT = "avsr_lightning/group_start"
#: how often rank 0 looks for new ranks and their acknowledgements
POLL_S = 0.02


class ElasticStoreError(RuntimeError):
    """The ranks of a restarted torchrun group could not agree on a fresh store namespace in time."""


def uses_agent_store() -> bool:
    """True in a torchrun worker whose ``MASTER_ADDR:MASTER_PORT`` is the agent's job-long shared store."""
    return (os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and bool(os.environ.get("MASTER_ADDR"))
            and bool(os.environ.get("MASTER_PORT")))


def fresh_namespace(store: Any, rank: int, world_size: int, timeout: timedelta) -> str:
    """A token that is new for this start of the group and the same on every rank.

    Keys left by earlier starts cannot be mistaken for this start's: each rank ``r > 0`` draws a random nonce,
    publishes it as ``hello/r`` and waits for ``token/<nonce>`` (a key nobody but the current rank 0 can have
    written, since only it has read the nonce); it then writes ``ack/<token>/r``. Rank 0 draws the token,
    answers whatever nonce is in ``hello/r`` (a stale one is answered too - harmlessly, nobody waits for it)
    until every rank has acknowledged *this* token. Raises :class:`ElasticStoreError` after ``timeout``.
    """
    deadline = time.monotonic() + timeout.total_seconds()
    if rank != 0:
        nonce = uuid.uuid4().hex
        store.set(f"{ROOT}/hello/{rank}", nonce)
        key = f"{ROOT}/token/{nonce}"
        try:
            store.wait([key], timeout)
        except RuntimeError as err:  # torch raises DistStoreError (a RuntimeError) on timeout
            raise ElasticStoreError(
                f"rank {rank}: rank 0 of the restarted torchrun group did not answer within {timeout} "
                f"(is every node's agent in the same rendezvous?): {err}") from None
        token = store.get(key).decode()
        store.set(f"{ROOT}/ack/{token}/{rank}", "1")
        return token
    token = uuid.uuid4().hex
    pending = set(range(1, world_size))
    answered: dict[int, str] = {}
    while pending:
        for r in sorted(pending):
            if store.check([f"{ROOT}/ack/{token}/{r}"]):
                pending.discard(r)
                continue
            if store.check([f"{ROOT}/hello/{r}"]):
                nonce = store.get(f"{ROOT}/hello/{r}").decode()
                if answered.get(r) != nonce:
                    store.set(f"{ROOT}/token/{nonce}", token)
                    answered[r] = nonce
        if not pending:
            break
        if time.monotonic() > deadline:
            raise ElasticStoreError(
                f"rank 0: ranks {sorted(pending)} of the restarted torchrun group did not join within {timeout} "
                "(a worker that died while starting? see its node's log)")
        time.sleep(POLL_S)
    return token


def destroy_default_group() -> None:
    """Destroy the default process group if one exists (registered with ``atexit`` by the CLI and by
    :func:`init_process_group_fresh`). Left to the interpreter's teardown, a gloo group's C++ threads were
    sometimes destroyed while still joinable: "terminate called without an active exception" and SIGABRT
    after a finished ``fit`` (seen once in CI); for NCCL torch also warns about an undestroyed group."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def init_process_group_fresh(backend: str, rank: int, world_size: int, timeout: timedelta,
                             device_id: Optional[Any] = None) -> Optional[str]:
    """Initialise the default process group on a fresh namespace of torchrun's agent store; returns the token.

    Does nothing (returns None) outside a torchrun worker using the agent's store, for a single process, or
    when a default group exists already - then Lightning (or the user) initialises it as usual.
    """
    if not uses_agent_store() or world_size <= 1 or not dist.is_available() or dist.is_initialized():
        return None
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size, is_master=False,
                          timeout=timeout)
    token = fresh_namespace(store, rank, world_size, timeout)
    kwargs = {"device_id": device_id} if device_id is not None else {}
    dist.init_process_group(backend, store=dist.PrefixStore(f"avsr_lightning/{token}/", store), rank=rank,
                            world_size=world_size, timeout=timeout, **kwargs)
    atexit.register(destroy_default_group)  # every backend, not only NCCL as Lightning does
    # Lightning's own "Initializing distributed" line is skipped when the group exists: say it here, per rank
    print(f"Initializing distributed: GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/{world_size} ({backend}, torchrun "
          f"store namespace {token[:8]}, node restart count {os.environ.get('TORCHELASTIC_RESTART_COUNT', '?')})",
          flush=True)
    return token


def init_process_group_for_trainer(trainer: Any) -> Optional[str]:
    """:func:`init_process_group_fresh` with the backend, timeout and device the trainer's strategy would use.

    Called by the CLI right after it builds the trainer (``AVSRCLI.instantiate_trainer``); users of a plain
    ``Trainer`` under torchrun call it before ``trainer.fit``. Only DDP-family strategies (those that start a
    process group themselves) are concerned; for any other strategy it does nothing.
    """
    strategy = trainer.strategy
    backend_of = getattr(strategy, "_get_process_group_backend", None)
    if backend_of is None or not uses_agent_store():
        return None
    device = strategy.root_device
    return init_process_group_fresh(backend_of(), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                                    getattr(strategy, "_timeout", None) or timedelta(minutes=30),
                                    device_id=device if device.type != "cpu" else None)
