"""Initialisation from config: full checkpoints, LRW frontends, config errors that fail before training."""
from __future__ import annotations

import pytest
import torch

from avsr_lightning.initialization import CheckpointError, initialize_model
from avsr_lightning.models import AudioFrontend, Conformer, VideoFrontend


def _tiny(cls, seed, **kw):
    torch.manual_seed(seed)
    return cls(d_model=32, heads=2, encoder_layers=1, ffn_dim=64, decoder_layers=1, decoder_ffn_dim=64,
               conv_kernel=3, frontend_widths=(8, 8, 16, 16), **kw)


def test_init_from_reference_style_checkpoint_loads_every_tensor(tmp_path):
    source, target = _tiny(Conformer, 0), _tiny(Conformer, 1)
    path = tmp_path / "ref.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    report = initialize_model(target, init_from=str(path))
    assert "loaded all" in report[0]
    for k, v in source.state_dict().items():
        assert torch.equal(v, target.state_dict()[k]), k


def test_vocabulary_mismatch_names_the_fix(tmp_path):
    path = tmp_path / "ref.pth"
    torch.save({"state_dict": _tiny(Conformer, 0, vocab_size=50).state_dict()}, path)
    with pytest.raises(CheckpointError, match="vocabulary of 50 symbols.*vocab_size=41"):
        initialize_model(_tiny(Conformer, 1), init_from=str(path))


def test_lrw_frontends_reach_the_conformer_baseline(tmp_path):
    """The reference loaded nothing into its Conformer baseline (spec §8.1); here both frontends are set."""
    donor = _tiny(Conformer, 0)
    video = {k: v for k, v in donor.encoder_vid.frontend.state_dict().items()}
    audio = {k: v for k, v in donor.encoder_aud.frontend.state_dict().items()}
    video["tcn.network.0.weight"] = torch.zeros(3)  # LRW back-end keys are dropped
    torch.save({"model_state_dict": video}, tmp_path / "v.pth")
    torch.save({"model_state_dict": audio}, tmp_path / "a.pth")
    model = _tiny(Conformer, 1)
    report = initialize_model(model, video_frontend_ckpt=str(tmp_path / "v.pth"),
                              audio_frontend_ckpt=str(tmp_path / "a.pth"))
    assert len(report) == 2
    for name, module in model.named_modules():
        if isinstance(module, (VideoFrontend, AudioFrontend)):
            src = donor.get_submodule(name).state_dict()
            assert all(torch.equal(v, src[k]) for k, v in module.state_dict().items())


def test_missing_frontend_file_fails_before_training(tmp_path, tr):
    module = tr.tiny_module("Video", video_frontend_ckpt=str(tmp_path / "nope.pth"))
    trainer = tr.tiny_trainer(tmp_path, max_steps=1)
    with pytest.raises(FileNotFoundError, match="model.video_frontend_ckpt.*set model.video_frontend_ckpt: null"):
        trainer.fit(module, datamodule=tr.tiny_data())
    assert trainer.global_step == 0


def test_unknown_architecture_is_a_config_error(tmp_path, tr, capsys):
    with pytest.raises(SystemExit):
        tr.run_cli(["fit", *tr.tiny_args(tmp_path, "video"), "--model.model", "avsr_lightning.models.NoSuchModel"])
    assert "NoSuchModel" in capsys.readouterr().err


def test_freeze_frontends_for_the_first_updates(tmp_path, tr):
    module = tr.tiny_module("Video", freeze_frontends_steps=2)
    before = {k: v.clone() for k, v in module.model.named_parameters()}
    tr.tiny_trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(module, datamodule=tr.tiny_data())
    after = dict(module.model.named_parameters())
    frontend = [k for k in before if "frontend" in k]
    others = [k for k in before if "frontend" not in k and after[k].requires_grad]
    assert frontend and all(torch.equal(before[k], after[k]) for k in frontend)
    assert any(not torch.equal(before[k], after[k]) for k in others)
