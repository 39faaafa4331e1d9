"""Loading models and checkpoints: safe reading, strict reporting loads, ``load_model``.

Every file is read with ``torch.load(..., weights_only=True)``: a downloaded checkpoint can never run
code. Checkpoint kinds understood by :func:`load_model`:

- reference checkpoints ``{'state_dict': {...}}`` (what the reference ``train.py`` writes);
- a bare reference state dict (tensor values, reference key names);
- Lightning checkpoints written by our ``AVSRModule``: ``state_dict`` keys prefixed ``model.`` and
  ``hyper_parameters`` holding the model's constructor arguments.
"""
from __future__ import annotations

import os
import pickle
import pickletools
import warnings
import zipfile
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..models import ARCHITECTURES, Recognizer

LIGHTNING_PREFIX = "model."


class CheckpointError(RuntimeError):
    """A checkpoint could not be read or does not fit the model; the message says what to change."""


_CODE_OPS = frozenset({"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"})


def _pickle_needs_code(path: str) -> bool:
    """Whether the (rejected) pickle in ``path`` is well-formed and imports/calls objects.

    Decided by reading the opcodes (``pickletools.genops``; nothing is executed): a valid pickle that
    references globals is a code payload; anything else (garbage, a cut-off file) is "not a checkpoint".
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                if name is None:
                    return False
                data = z.read(name)
        else:
            with open(path, "rb") as f:
                data = f.read()
        return any(op.name in _CODE_OPS for op, _, _ in pickletools.genops(data))
    except Exception:  # noqa: BLE001 - any parse failure means "not a well-formed pickle"
        return False


def read_checkpoint(path: str | os.PathLike) -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with one-line errors naming the file.

    The one checkpoint reader of the project (load_model, ``--ckpt_path``, average_checkpoints, load_lm):
    a file whose unpickling would need code is refused (:class:`CheckpointError`, "needs code to load");
    an empty, truncated or non-torch file raises :class:`CheckpointError` saying so (a missing one
    ``FileNotFoundError``).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path} is an empty (0-byte) file, not a checkpoint; it was probably cut off "
                              "while being written - use an earlier checkpoint")
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol notice adds nothing to our one-line error
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if _pickle_needs_code(path):
            raise CheckpointError(
                f"refused to load {path}: it needs code to load (it holds pickled objects beyond "
                "tensors/dicts/lists/numbers, which weights_only=True rejects); only weights are accepted - "
                "re-save the state dict with torch.save(model.state_dict(), path) in a trusted environment"
            ) from None
        raise CheckpointError(f"{path} is not a torch checkpoint (not a readable pickle); use a file "
                              "written by torch.save") from None
    except Exception as err:  # noqa: BLE001 - whatever a corrupt file makes torch.load raise is a data problem
        reason = ((str(err).splitlines() or [""])[0].split(". ")[0]) or type(err).__name__
        raise CheckpointError(f"{path} is truncated or not a torch checkpoint ({type(err).__name__}: {reason}); "
                              "use an earlier or a complete checkpoint") from None


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())


def split_checkpoint(obj: Any, source: str = "checkpoint") -> tuple[dict[str, Tensor], dict[str, Any] | None, str]:
    """-> (state dict with model keys, hyper-parameters or None, kind in {"lightning", "reference", "bare"})."""
    if isinstance(obj, Mapping) and "model_state_dict" in obj and "state_dict" not in obj:
        raise CheckpointError(f"{source} is an LRW frontend checkpoint ('model_state_dict'); load it with "
                              "avsr_lightning.weights.lrw.load_lrw_frontends(model, video_path, audio_path)")
    if isinstance(obj, Mapping) and "state_dict" in obj:
        state = obj["state_dict"]
        if not _is_state_dict(state):
            raise CheckpointError(f"{source}: 'state_dict' is not a mapping of names to tensors")
        if any(k.startswith(LIGHTNING_PREFIX) for k in state):
            model_state = {k[len(LIGHTNING_PREFIX):]: v for k, v in state.items() if k.startswith(LIGHTNING_PREFIX)}
            others = sorted(k for k in state if not k.startswith(LIGHTNING_PREFIX))
            if others:
                raise CheckpointError(f"{source}: Lightning state_dict has keys outside 'model.': {others[:10]}")
            return model_state, dict(obj.get("hyper_parameters") or {}), "lightning"
        return dict(state), None, "reference"
    if _is_state_dict(obj):
        return dict(obj), None, "bare"
    keys = sorted(obj)[:10] if isinstance(obj, Mapping) else type(obj).__name__
    raise CheckpointError(f"{source}: not a model checkpoint (expected 'state_dict' or a bare state dict); got {keys}")


def load_strict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str = "state dict") -> None:
    """Load every tensor, or raise naming each missing, unexpected and wrongly shaped key."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        lines = [f"{source} does not fit {type(model).__name__}:"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                shown = ", ".join(items[:20]) + (f", ... ({len(items) - 20} more)" if len(items) > 20 else "")
                lines.append(f"  {len(items)} {title}: {shown}")
        lines.append("  (a different architecture or sizes? pass arch=... and size overrides to load_model)")
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state_dict, strict=True)


def detect_architecture(state_dict: Mapping[str, Tensor]) -> str:
    """Architecture name from the reference key layout."""
    if "encoders.fusion.score_vid.score.0.weight" in state_dict:
        return "AVRelScore"
    if "encoders.fusion.q.weight" in state_dict:
        return "VCAFE"
    if "fusion_module.Linear1.weight" in state_dict:
        return "Conformer"
    has_v = any(k.startswith("encoder_vid.") for k in state_dict)
    has_a = any(k.startswith("encoder_aud.") for k in state_dict)
    if has_a and not has_v:
        return "Audio"
    if has_v and not has_a:
        return "Video"
    raise CheckpointError("cannot tell the architecture from the state-dict keys")


def infer_sizes(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    """Constructor sizes read off the tensor shapes, so non-default checkpoints load without guessing."""
    sd = state_dict
    sizes: dict[str, Any] = {}
    if "ctc.ctc_lo.weight" in sd:
        sizes["vocab_size"], sizes["d_model"] = (int(s) for s in sd["ctc.ctc_lo.weight"].shape)
    enc_prefix = next((p for p in ("encoders.", "encoder_vid.", "encoder_aud.") if f"{p}encoders.0.feed_forward.w_1.weight" in sd), None)
    if enc_prefix is not None:
        sizes["encoder_layers"] = len({k.split(".")[2] for k in sd if k.startswith(enc_prefix + "encoders.")})
        sizes["ffn_dim"] = int(sd[f"{enc_prefix}encoders.0.feed_forward.w_1.weight"].shape[0])
        sizes["heads"] = int(sd[f"{enc_prefix}encoders.0.self_attn.pos_bias_u"].shape[0])
        sizes["conv_kernel"] = int(sd[f"{enc_prefix}encoders.0.conv_module.depthwise_conv.weight"].shape[-1])
    if "decoder.decoders.0.feed_forward.w_1.weight" in sd:
        sizes["decoder_layers"] = len({k.split(".")[2] for k in sd if k.startswith("decoder.decoders.")})
        sizes["decoder_ffn_dim"] = int(sd["decoder.decoders.0.feed_forward.w_1.weight"].shape[0])
    trunk = next((p for p in ("encoders.frontend_aud.trunk.", "encoder_aud.frontend.trunk.",
                              "encoders.frontend_vid.trunk.", "encoder_vid.frontend.trunk.")
                  if f"{p}layer1.0.conv1.weight" in sd), None)
    if trunk is not None:
        sizes["frontend_widths"] = tuple(int(sd[f"{trunk}layer{i}.0.conv1.weight"].shape[0]) for i in range(1, 5))
    if "encoders.fusion.score_vid.score.0.weight" in sd:
        hidden, _, kernel = sd["encoders.fusion.score_vid.score.0.weight"].shape
        sizes["scorer_hidden"], sizes["scorer_kernel"] = int(hidden), int(kernel)
    if "fusion_module.Linear1.weight" in sd:
        sizes["fusion_hidden"] = int(sd["fusion_module.Linear1.weight"].shape[0])
    return sizes


def resolve_architecture(arch: str | type[Recognizer]) -> type[Recognizer]:
    """A name in ``ARCHITECTURES``, a class path ``avsr_lightning.models.X`` or a class."""
    if isinstance(arch, type):
        return arch
    name = arch.rsplit(".", 1)[-1]
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def _model_config_from_hparams(hparams: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(architecture, init args) from Lightning ``hyper_parameters`` (jsonargparse ``class_path`` form)."""
    spec = hparams.get("model")
    if isinstance(spec, Mapping) and "class_path" in spec:
        return str(spec["class_path"]), dict(spec.get("init_args") or {})
    if isinstance(spec, Mapping):
        return hparams.get("arch"), dict(spec)
    return hparams.get("arch"), {}


def build_model(arch: str | type[Recognizer] = "AVRelScore", **kwargs: Any) -> Recognizer:
    cls = resolve_architecture(arch)
    if "frontend_widths" in kwargs and kwargs["frontend_widths"] is not None:
        kwargs["frontend_widths"] = tuple(kwargs["frontend_widths"])
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for {cls.__name__}: {err}") from err


def load_model(path: str | os.PathLike | None = None, arch: str | None = "AVRelScore", **overrides: Any) -> Recognizer:
    """A model in eval mode: random init (``path=None``) or loaded strictly from a checkpoint.

    ``arch`` names the architecture (``AVRelScore``, ``VCAFE``, ``Conformer``, ``Audio``, ``Video``);
    for a Lightning checkpoint the saved class wins; ``None`` takes the one the tensors show (a random
    init with ``path=None`` then builds ``AVRelScore``). Sizes are read from the checkpoint (hyper-parameters,
    else tensor shapes); ``overrides`` replace any constructor argument (e.g. ``mask_padding=True``).
    """
    if path is None:
        return build_model(arch or "AVRelScore", **overrides).eval()
    obj = read_checkpoint(path)
    state, hparams, kind = split_checkpoint(obj, source=os.fspath(path))
    kwargs: dict[str, Any] = {}
    saved_arch = None
    if kind == "lightning" and hparams:
        saved_arch, kwargs = _model_config_from_hparams(hparams)
    if saved_arch is not None:
        arch = saved_arch
    else:
        detected = detect_architecture(state)
        if arch is None:  # "whatever the tensors say"
            arch = detected
        if resolve_architecture(arch).__name__ != detected:
            raise CheckpointError(f"{os.fspath(path)} holds a {detected} model but arch={arch!r}; "
                                  f"pass arch={detected!r}")
        kwargs = {**infer_sizes(state), **kwargs}
    kwargs.update(overrides)
    model = build_model(arch, **kwargs)
    load_strict(model, state, source=os.fspath(path))
    return model.eval()
