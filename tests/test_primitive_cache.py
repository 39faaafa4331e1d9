"""``enlarge_primitive_cache``: oneDNN keeps the kernels of every shape a run meets instead of rebuilding them.

The behaviour is read from oneDNN itself (``ONEDNN_VERBOSE=2`` prints ``create:cache_hit`` or
``create:cache_miss`` for every primitive it is asked for), in a fresh process, because oneDNN reads the
capacity once, at its first primitive.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from avsr_lightning.primitive_cache import CAPACITY, ENV, LEGACY_ENV, enlarge_primitive_cache

#: more distinct convolution shapes than the default cache (1024 entries) can hold with their reorders
SHAPES = 700

_SCRIPT = textwrap.dedent(f"""
    import sys
    import torch
    if sys.argv[1] == "enlarged":
        from avsr_lightning.primitive_cache import enlarge_primitive_cache
        enlarge_primitive_cache()
    torch.set_num_threads(1)
    conv = torch.nn.Conv1d(4, 4, 3)
    with torch.no_grad():
        for _ in range(2):  # the same shapes twice: the second pass finds them cached, or not
            for n in range(8, 8 + {SHAPES}):
                conv(torch.ones(2, 4, n))
            print("PASS-END", flush=True)
""")


def _second_pass_convolutions(mode: str) -> tuple[int, int]:
    """(cache hits, cache misses) of the convolution primitives created in the second pass."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV, LEGACY_ENV)}
    env["ONEDNN_VERBOSE"] = "2"
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    second = out.split("PASS-END")[1]
    lines = [line for line in second.splitlines() if ",convolution," in line and ",create:" in line]
    if not lines:
        pytest.skip("this torch build's convolutions do not go through oneDNN (no primitive creations reported)")
    return sum(",create:cache_hit," in line for line in lines), sum(",create:cache_miss," in line for line in lines)


def test_enlarged_cache_keeps_every_shape_the_default_evicts():
    hits, misses = _second_pass_convolutions("enlarged")
    assert (hits, misses) == (SHAPES, 0)
    # the control: with oneDNN's default capacity the same cycle of shapes is evicted before it comes round
    default_hits, default_misses = _second_pass_convolutions("default")
    assert default_misses > SHAPES // 2, (default_hits, default_misses)


def test_a_capacity_set_by_the_user_is_kept(monkeypatch):
    monkeypatch.setenv(ENV, "123")
    assert enlarge_primitive_cache() == 123
    assert os.environ[ENV] == "123"
    monkeypatch.delenv(ENV)
    monkeypatch.setenv(LEGACY_ENV, "77")
    assert enlarge_primitive_cache() == 77
    assert ENV not in os.environ


def test_sets_the_capacity_when_none_is_set(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv(LEGACY_ENV, raising=False)
    assert enlarge_primitive_cache() == CAPACITY
    assert os.environ[ENV] == str(CAPACITY)
    with pytest.raises(ValueError, match="negative"):
        enlarge_primitive_cache(-1)


def test_the_cli_enlarges_the_cache_before_anything_runs():
    """``python -m avsr_lightning ...`` sets the capacity at start-up, before a model or a batch exists."""
    script = textwrap.dedent(f"""
        import os
        from avsr_lightning.cli import main
        try:
            main(["fit", "--help"])
        except SystemExit:
            pass
        print("CAPACITY=" + os.environ.get("{ENV}", "unset"))
    """)
    env = {k: v for k, v in os.environ.items() if k not in (ENV, LEGACY_ENV)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == f"CAPACITY={CAPACITY}"
