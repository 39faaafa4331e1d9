"""The fresh store namespace of a (re)started torchrun group (avsr_lightning/elastic_store.py).

In-process TCPStore, one thread per rank. The end-to-end guarantee (a restarted group connects) is the
elastic test of tests/training/test_torchrun.py; these check the handshake against the stale keys an earlier
start leaves in torchrun's job-long store, quickly and without torchrun.
"""
from __future__ import annotations

import threading
from datetime import timedelta

import torch.distributed as dist

from avsr_lightning.elastic_store import ROOT, ElasticStoreError, fresh_namespace, init_process_group_fresh


def _server() -> dist.TCPStore:
    return dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, timeout=timedelta(seconds=10))


def _client(server: dist.TCPStore) -> dist.TCPStore:
    return dist.TCPStore("127.0.0.1", server.port, is_master=False, timeout=timedelta(seconds=10))


def _start_group(server: dist.TCPStore, world: int, timeout: float = 10.0, ranks=None) -> dict:
    """Run fresh_namespace on ``ranks`` (default: all) in threads; returns {rank: token or exception}."""
    out: dict = {}

    def run(rank: int) -> None:
        try:
            out[rank] = fresh_namespace(_client(server), rank, world, timedelta(seconds=timeout))
        except Exception as err:  # noqa: BLE001 - reported to the test
            out[rank] = err

    threads = [threading.Thread(target=run, args=(r,)) for r in (range(world) if ranks is None else ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 10)
    return out


def test_every_start_agrees_on_a_new_token_despite_stale_keys():
    server = _server()
    first = _start_group(server, 3)
    assert len(set(first.values())) == 1 and all(isinstance(t, str) for t in first.values()), first
    # the previous start's keys are all still in the store (hello/<r> of dead ranks, their token and acks):
    # a second start must neither reuse that token nor be answered by it
    assert server.check([f"{ROOT}/hello/1", f"{ROOT}/ack/{first[0]}/1"])
    second = _start_group(server, 3)
    assert len(set(second.values())) == 1 and all(isinstance(t, str) for t in second.values()), second
    assert second[0] != first[0]


def test_a_rank_that_never_starts_is_an_error_naming_it_not_a_silent_stale_answer():
    server = _server()
    _start_group(server, 2)  # a first start: hello/1 and ack/<old>/1 are in the store
    out = _start_group(server, 2, timeout=1.0, ranks=[0])  # rank 1's new worker never comes
    assert isinstance(out[0], ElasticStoreError) and "[1]" in str(out[0]), out


def test_outside_torchrun_agent_store_nothing_is_initialised(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    assert init_process_group_fresh("gloo", 0, 2, timedelta(seconds=1)) is None
    assert not dist.is_initialized()
