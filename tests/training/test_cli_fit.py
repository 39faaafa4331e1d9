"""CLI ``fit`` for every architecture on tiny configs, and ``--print_config`` round trips."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

ARCHS = ["avrelscore", "vcafe", "conformer", "audio", "video"]


def _checkpoints(root: Path) -> list[Path]:
    return sorted(root.rglob("*.ckpt"))


@pytest.mark.parametrize("arch", ARCHS)
def test_fit_trains_validates_and_checkpoints(tmp_path, arch, tr):
    cli = tr.run_cli(["fit", *tr.tiny_args(tmp_path, arch, max_steps=2)])
    trainer = cli.trainer
    assert trainer.global_step == 2
    metrics = trainer.callback_metrics
    assert "val/wer" in metrics and "val/cer" in metrics and torch.isfinite(metrics["val/loss"])
    assert float(metrics["val/wer"]) >= 0.0
    ckpts = _checkpoints(tmp_path)
    names = {p.name for p in ckpts}
    assert "last.ckpt" in names and any(n.startswith("epoch") and "wer" in n for n in names)
    state = torch.load(ckpts[0], map_location="cpu", weights_only=True)  # our checkpoints stay tensor-only
    assert state["global_step"] == 2 and "avsr_rng_states" in state and state["optimizer_states"]
    log_dir = Path(trainer.log_dir)
    assert (log_dir / "config.yaml").is_file()
    assert list(log_dir.glob("events.out.tfevents.*")), "TensorBoard events missing"
    # the unused reference LayerNorms are frozen (DDP without find_unused_parameters)
    model = cli.model.model
    for name in model.unused_parameter_names():
        assert not model.get_parameter(name).requires_grad
    if arch == "avrelscore":
        pngs = list((log_dir / "reliability").glob("step_*.png"))
        assert pngs and pngs[0].stat().st_size > 1000 and pngs[0].read_bytes()[:4] == b"\x89PNG"


def test_fit_logs_training_metrics(tmp_path, tr):
    cli = tr.run_cli(["fit", *tr.tiny_args(tmp_path, "video", max_steps=3)])
    logged = cli.trainer.callback_metrics
    for key in ("train/loss", "train/loss_ctc", "train/loss_att", "train/acc", "lr", "train/utt_per_s",
                "train/frames_per_s"):
        assert key in logged, key
    assert float(logged["train/utt_per_s"]) > 0 and float(logged["train/frames_per_s"]) > float(logged["train/utt_per_s"])


def _print_config(args: list[str], capsys) -> str:
    from avsr_lightning.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code in (None, 0)
    return capsys.readouterr().out


RECIPES = sorted(p.name for p in CONFIGS.glob("*.yaml") if not p.name.startswith("demo"))


# one recipe per architecture (alternating datasets): each print costs seconds of jsonargparse work
@pytest.mark.parametrize("recipe", ["avrelscore_lrs3.yaml", "vcafe_lrs2.yaml", "conformer_lrs3.yaml"])
def test_print_config_round_trips(recipe, tmp_path, capsys):
    printed = _print_config(["fit", "--config", str(CONFIGS / recipe)], capsys)
    (tmp_path / "printed.yaml").write_text(printed)
    again = _print_config(["fit", "--config", str(tmp_path / "printed.yaml")], capsys)
    assert printed == again
    config = yaml.safe_load(printed)
    assert config["model"]["model"]["class_path"].startswith("avsr_lightning.models.")
    assert config["checkpoint"]["monitor"] == "val/wer" and config["checkpoint"]["mode"] == "min"


def test_recipes_reproduce_reference_settings():
    assert {f"{a}_{d}.yaml" for a in ("avrelscore", "vcafe", "conformer") for d in ("lrs2", "lrs3")} <= set(RECIPES)
    for name in ("avrelscore", "vcafe", "conformer"):
        for ds in ("lrs2", "lrs3"):
            cfg = yaml.safe_load((CONFIGS / f"{name}_{ds}.yaml").read_text())
            t, m, d = cfg["trainer"], cfg["model"], cfg["data"]["init_args"]
            assert t["devices"] * d["batch_size"] * t["accumulate_grad_batches"] == 8  # 2 GPUs x 4
            assert m["scheduler"]["init_args"] == {"d_model": 256, "warmup_steps": 25000, "factor": 1.0}
            assert m["optimizer"]["init_args"]["betas"] == [0.9, 0.98]
            assert t["max_epochs"] == 200 and t["val_check_interval"] == 5000
            steps = [s["class_path"].rsplit(".", 1)[-1] for s in d["train_transforms"]]  # spelled out (docs/data.md)
            assert steps[0] == "VisualCorruption" and "NoiseMixing" in steps
            assert cfg["data"]["class_path"] == "avsr_lightning.datamodules.LRSDataModule"


def test_presets_compose(capsys):
    printed = _print_config(["fit", "--config", str(CONFIGS / "avrelscore_lrs3.yaml"),
                             "--config", str(CONFIGS / "trainer" / "multinode.yaml"),
                             "--config", str(CONFIGS / "logger" / "wandb.yaml")], capsys)
    config = yaml.safe_load(printed)
    assert config["trainer"]["num_nodes"] == 2 and config["trainer"]["devices"] == 8
    assert config["trainer"]["logger"]["class_path"].endswith("WandbLogger")
