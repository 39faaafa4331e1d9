"""LM training through the CLI: it exports an ESPnet-format LM whose held-out perplexity beats unigram."""
from __future__ import annotations

import math
import random
from collections import Counter

import torch

from avsr_lightning.lm.__main__ import main
from avsr_lightning.lm.data import collate_sentences
from avsr_lightning.text import CharTokenizer
from avsr_lightning.weights.espnet_lm import load_lm

WORDS = ["THE", "CAT", "SAT", "ON", "A", "MAT", "DOG", "RAN", "TO", "HOUSE", "WE", "SAID", "YES"]


def sentences(n: int, seed: int) -> list[str]:
    """A tiny grammar: word spellings and word order are learnable, character frequencies are not enough."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        subj = rng.choice(["THE CAT", "THE DOG", "WE", "A DOG"])
        verb = rng.choice(["SAT ON", "RAN TO", "SAID YES TO"])
        obj = rng.choice(["A MAT", "THE HOUSE", "THE MAT"])
        out.append(f"{subj} {verb} {obj}")
    return out


def test_fit_exports_lm_that_beats_unigram(tmp_path):
    train, held = sentences(300, 0), sentences(60, 1)
    (tmp_path / "train.txt").write_text("\n".join(train) + "\n\n")  # a blank line is skipped
    (tmp_path / "val.txt").write_text("\n".join(held) + "\n")
    export = tmp_path / "export"
    main(args=["fit", "--seed_everything", "0", "--model.layers", "1", "--model.units", "48", "--model.export_dir", str(export),
               "--data.train_files", f"[{tmp_path / 'train.txt'}]", "--data.val_files", f"[{tmp_path / 'val.txt'}]",
               "--data.batch_size", "32", "--trainer.max_steps", "120", "--trainer.accelerator", "cpu",
               "--trainer.logger", "false", "--trainer.enable_checkpointing", "false",
               "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
               "--trainer.default_root_dir", str(tmp_path), "--trainer.val_check_interval", "60",
               "--trainer.check_val_every_n_epoch", "null",
               "--model.optimizer", "torch.optim.Adam", "--model.optimizer.lr", "0.01"])
    lm = load_lm(export / "model.pth", export / "model.json")
    tok = CharTokenizer()
    inputs, targets = collate_sentences([tok.encode(s) for s in held], tok.sos, tok.eos)
    with torch.no_grad():
        logits, _ = lm(inputs)
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, 41), targets.reshape(-1), ignore_index=-1)
    lm_ppl = math.exp(float(nll))
    counts = Counter(t for s in train for t in tok.encode(s) + [tok.eos])
    total = sum(counts.values())
    held_tokens = [t for s in held for t in tok.encode(s) + [tok.eos]]
    unigram_ppl = math.exp(-sum(math.log(counts[t] / total) for t in held_tokens) / len(held_tokens))
    assert lm_ppl < 0.6 * unigram_ppl, (lm_ppl, unigram_ppl)
