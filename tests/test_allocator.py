"""``retain_freed_memory``: after it, re-allocating a large tensor costs no page faults (glibc only).

Each case runs in a fresh interpreter: the allocator setting is process-wide and cannot be undone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from avsr_lightning.allocator import _glibc, retain_freed_memory

pytestmark = pytest.mark.skipif(_glibc() is None, reason="glibc malloc only (Linux)")

_PROBE = r"""
import json, resource, torch
from avsr_lightning.allocator import retain_freed_memory
state = retain_freed_memory()
def cycle():  # what a training step does with a large activation: allocate, write, free
    x = torch.empty(16 * 2**20)  # 64 MB, above glibc's largest mmap threshold
    x.fill_(1.0)
    del x
for _ in range(24):  # the heap grows to its working size first (posix_memalign's padding delays reuse)
    cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    cycle()
print(json.dumps({"state": state, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _probe(setting: str | None) -> dict:
    env = dict(os.environ)
    env.pop("AVSR_LIGHTNING_MALLOC", None)
    if setting is not None:
        env["AVSR_LIGHTNING_MALLOC"] = setting
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_freed_large_blocks_are_reused_without_page_faults():
    system = _probe("system")
    retained = _probe(None)
    assert system["state"] == "system" and retained["state"] == "retain"
    pages = 5 * 64 * 2**20 // 4096  # every page of every cycle, had each block been mapped afresh
    assert system["faults"] > pages // 2, system  # the default allocator faults the block in every time
    assert retained["faults"] < pages // 50, retained  # reused heap memory: (almost) no faults


def test_an_unknown_setting_fails_naming_the_choices(monkeypatch):
    import avsr_lightning.allocator as allocator

    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setenv("AVSR_LIGHTNING_MALLOC", "jemalloc")
    with pytest.raises(ValueError, match="'retain'.*'system'"):
        retain_freed_memory()
