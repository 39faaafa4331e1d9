"""``python -m avsr_lightning fit`` trains a tiny AVRelScore on AVSE scenes; the AVSE configs parse."""
from __future__ import annotations

import pytest
import scipy.io
import torch
import yaml


def test_fit_on_sampled_avse_scenes(tmp_path, repo_root, avse_root, lrs_corpus, weight_filter):
    from avsr_lightning.cli import main

    mat = tmp_path / "w.mat"
    scipy.io.savemat(mat, {"filt": weight_filter[None, :]})
    cfg = repo_root / "configs"
    cli = main(["fit", "--config", str(cfg / "trainer" / "cpu_debug.yaml"), "--config", str(cfg / "model" / "tiny_avrelscore.yaml"),
                "--data", "avsr_lightning.datamodules.AVSEDataModule",
                "--data.init_args.avse_root", str(avse_root), "--data.init_args.lrs_root", str(lrs_corpus),
                "--data.init_args.speech_weight", str(mat), "--data.init_args.train_mode", "sample",
                "--data.init_args.crop_frames", "16", "--data.init_args.batch_size", "2",
                "--data.init_args.max_frames", "null", "--data.init_args.num_workers", "0",
                "--trainer.max_steps", "2", "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1",
                "--trainer.num_sanity_val_steps", "0", "--trainer.enable_progress_bar", "false",
                "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(tmp_path)])
    assert cli.trainer.global_step == 2
    assert torch.isfinite(cli.trainer.callback_metrics["val/loss"])


@pytest.mark.parametrize("configs", [["demo_avse.yaml"], ["avrelscore_lrs3.yaml", "data/avse1.yaml"]])
def test_avse_configs_parse(repo_root, configs, capsys):
    from avsr_lightning.cli import main

    args = ["fit"]
    for name in configs:
        args += ["--config", str(repo_root / "configs" / name)]
    with pytest.raises(SystemExit) as info:
        main([*args, "--print_config"])
    assert info.value.code in (None, 0)
    data = yaml.safe_load(capsys.readouterr().out)["data"]
    assert data["class_path"].endswith("AVSEDataModule")
    assert data["init_args"]["interferer_types"] == ["speech", "noise"]
