"""Beam-search decoding speed (JSON): ours vs ESPnet's own ``BatchBeamSearch`` on the same weights.

Setting (issue 6): 3-s utterances (75 encoder frames), default model sizes (decoder 6 x 256, FFN 2048,
41 characters), beam 40, CTC 0.1, RNN LM 0.5 (2 x 650 LSTM, the ESPnet default LM), length bonus 0.5,
CPU. The encoder is not timed: every implementation gets the same encoder outputs.

Columns:
- ``espnet``: ESPnet's ``BatchBeamSearch`` + ``CTCPrefixScorer`` + ``LengthBonus``, with thin
  ``BatchScorerInterface`` adaptors around *our* decoder (``decoder.step``, i.e. ESPnet's
  ``forward_one_step``) and LM, stacking per-hypothesis states exactly like ESPnet's own Decoder and
  DefaultRNNLM. ESPnet is a benchmark-only dependency, never installed into the venv:
  ``pip install --no-deps --target /work/espnet_pkgs espnet`` (pure Python; its beam search needs
  nothing else). Without it the column is skipped with a message.
- ``ours_generic``: our search, one utterance at a time, scoring with ``decoder.step`` (the contract).
- ``ours_single``: our search, one utterance at a time (cached attention scorer, the default).
- ``ours_batch``: our search, ``batch`` utterances in one call.

    python benchmarks/decode.py [--utterances 16] [--espnet_utterances 3] [--threads 1] [--espnet_path DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsr_lightning.decoding.api import beam_search_from_features  # noqa: E402
from avsr_lightning.models.ctc import CTCHead  # noqa: E402
from avsr_lightning.models.decoder import TransformerDecoder  # noqa: E402
from avsr_lightning.models.rnnlm import RNNLM  # noqa: E402

VOCAB, SOS, EOS, BLANK = 41, 40, 40, 0


class TinyRecognizer(torch.nn.Module):
    """Decoder + CTC head at the default sizes (what ``beam_search_from_features`` needs)."""

    vocab_size, sos, eos, blank = VOCAB, SOS, EOS, BLANK

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.decoder = TransformerDecoder(VOCAB, 256, 4, 6, 2048)
        self.ctc = CTCHead(VOCAB, 256)
        with torch.no_grad():  # peaked posteriors like a trained model's (random init is nearly uniform)
            self.decoder.output_layer.weight.mul_(8.0)
            self.ctc.ctc_lo.weight.mul_(8.0)
        self.eval()


def make_inputs(n: int, frames: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, frames, 256, generator=gen)


# ------------------------------------------------------------------------------------ ESPnet side
def espnet_search(model: TinyRecognizer, lm: RNNLM, beam: int, ctc_weight: float, lm_weight: float,
                  penalty: float):
    from espnet.nets.batch_beam_search import BatchBeamSearch
    from espnet.nets.scorer_interface import BatchScorerInterface
    from espnet.nets.scorers.ctc import CTCPrefixScorer
    from espnet.nets.scorers.length_bonus import LengthBonus

    class DecoderAdaptor(BatchScorerInterface, torch.nn.Module):
        """ESPnet ``Decoder.batch_score`` semantics around our ``decoder.step`` (memory mask None)."""

        def __init__(self, decoder):
            super().__init__()
            self.dec = decoder

        def score(self, ys, state, x):
            logp, states = self.batch_score(ys.unsqueeze(0), [state], x.unsqueeze(0))
            return logp.squeeze(0), states[0]

        def batch_score(self, ys, states, xs):
            n_batch, n_layers = len(ys), len(self.dec.decoders)
            batch_state = None if states[0] is None else [
                torch.stack([states[b][i] for b in range(n_batch)]) for i in range(n_layers)]
            logp, cache = self.dec.step(ys, xs, None, batch_state)
            return logp, [[cache[i][b] for i in range(n_layers)] for b in range(n_batch)]

    class LMAdaptor(BatchScorerInterface, torch.nn.Module):
        """ESPnet ``DefaultRNNLM.batch_score`` semantics around our RNNLM (per-hypothesis state dicts)."""

        def __init__(self, rnnlm):
            super().__init__()
            self.lm = rnnlm

        def score(self, ys, state, x):
            logp, states = self.batch_score(ys.unsqueeze(0), [state], x.unsqueeze(0))
            return logp.squeeze(0), states[0]

        def batch_score(self, ys, states, xs):
            n_batch = len(ys)
            if states[0] is None:
                batch = None
            else:
                h = torch.stack([torch.stack(states[b]["h"]) for b in range(n_batch)], 1)
                c = torch.stack([torch.stack(states[b]["c"]) for b in range(n_batch)], 1)
                batch = (h, c)
            logp, (h, c) = self.lm.step(ys[:, -1], batch)
            layers = h.size(0)
            return logp, [{"h": [h[k, b] for k in range(layers)], "c": [c[k, b] for k in range(layers)]}
                          for b in range(n_batch)]

    class CTCAdaptor(torch.nn.Module):
        def __init__(self, ctc):
            super().__init__()
            self.ctc = ctc

        def log_softmax(self, x):
            return self.ctc.log_probs(x)

    scorers = {"decoder": DecoderAdaptor(model.decoder), "ctc": CTCPrefixScorer(CTCAdaptor(model.ctc), EOS),
               "length_bonus": LengthBonus(VOCAB), "lm": LMAdaptor(lm)}
    weights = {"decoder": 1.0 - ctc_weight, "ctc": ctc_weight, "lm": lm_weight, "length_bonus": penalty}
    search = BatchBeamSearch(scorers=scorers, weights=weights, beam_size=beam, vocab_size=VOCAB, sos=SOS, eos=EOS,
                             token_list=None, pre_beam_score_key="decoder")
    search.eval()
    return search


def import_espnet(path: str) -> str | None:
    """Put the benchmark-only ESPnet package on sys.path; returns an error message or None."""
    if path and os.path.isdir(path) and path not in sys.path:
        sys.path.append(path)
    try:
        import espnet.nets.batch_beam_search  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import problem only disables the column
        return (f"ESPnet not importable ({type(err).__name__}: {err}); install it outside the venv with "
                f"`pip install --no-deps --target {path or '/work/espnet_pkgs'} espnet`")
    return None


# ------------------------------------------------------------------------------------ timing
def timed(fn):
    """(result, wall seconds, CPU seconds of this process). The CPU time is what the ratios use: on a shared
    machine the wall time mostly measures the other tenants; with one intra-op thread CPU time = work done."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def _mean(xs):
    return sum(xs) / len(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--utterances", type=int, default=16, help="batch size of the batched run")
    ap.add_argument("--single_utterances", type=int, default=3, help="utterances timed one at a time (ours)")
    ap.add_argument("--espnet_utterances", type=int, default=2, help="utterances timed with ESPnet (interleaved)")
    ap.add_argument("--frames", type=int, default=75, help="encoder frames per utterance (3 s at 25 fps)")
    ap.add_argument("--beam", type=int, default=40)
    ap.add_argument("--lm_layers", type=int, default=2)
    ap.add_argument("--lm_units", type=int, default=650)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--espnet_path", default=os.environ.get("ESPNET_PATH", "/work/espnet_pkgs"))
    ap.add_argument("--skip_generic", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ctc_w, lm_w, bonus = 0.1, 0.5, 0.5
    model = TinyRecognizer(args.seed)
    torch.manual_seed(args.seed + 1)
    lm = RNNLM(VOCAB, layers=args.lm_layers, units=args.lm_units).eval()
    feats = make_inputs(args.utterances, args.frames, args.seed)
    lengths = torch.full((args.utterances,), args.frames, dtype=torch.long)
    kw = dict(beam_size=args.beam, ctc_weight=ctc_w, lm=lm, lm_weight=lm_w, length_bonus=bonus)
    report: dict = {"setting": {"frames": args.frames, "beam": args.beam, "ctc_weight": ctc_w, "lm_weight": lm_w,
                                "length_bonus": bonus, "decoder": "6x256, ffn 2048", "lm": f"{args.lm_layers}x"
                                f"{args.lm_units} lstm", "vocab": VOCAB, "threads": args.threads,
                                "device": "cpu", "torch": torch.__version__,
                                "timing": "wall and process CPU seconds; ratios use CPU seconds"}}
    problem = import_espnet(args.espnet_path)
    search = espnet_search(model, lm, args.beam, ctc_w, lm_w, bonus) if problem is None else None

    def ours(u, cached=True):
        return beam_search_from_features(model, feats[u:u + 1], lengths[u:u + 1], cached_decoder=cached, **kw)

    with torch.no_grad():
        beam_search_from_features(model, feats[:1, :10], lengths[:1].clamp(max=10), **kw)  # warm-up
        rows: dict[str, list] = {"single": [], "generic": [], "espnet": []}
        best_single, same_espnet, scores = [], [], []
        for u in range(max(args.single_utterances, args.espnet_utterances)):
            # interleaved, so slow phases of a shared machine hit every implementation alike
            res, wall, cpu = timed(lambda: ours(u))
            rows["single"].append((wall, cpu))
            best_single.append(res[0][0].yseq)
            if u < args.espnet_utterances and not args.skip_generic:
                res_g, wall, cpu = timed(lambda: ours(u, cached=False))
                rows["generic"].append((wall, cpu, res_g[0][0].yseq == res[0][0].yseq))
            if u < args.espnet_utterances and search is not None:
                nbest, wall, cpu = timed(lambda: search(feats[u], maxlenratio=0.0, minlenratio=0.0))
                rows["espnet"].append((wall, cpu))
                ref = [int(t) for t in nbest[0].yseq.tolist()] if nbest else []
                same_espnet.append(ref == res[0][0].yseq)
                scores.append([float(nbest[0].score) if nbest else None, float(res[0][0].score)])
        batch_res, t_wall, t_cpu = timed(lambda: beam_search_from_features(model, feats, lengths, **kw))
    best_batch = [r[0].yseq for r in batch_res]
    single_cpu = _mean([c for _, c in rows["single"]])
    report["ours_single"] = {"wall_s_per_utt": _mean([w for w, _ in rows["single"]]), "cpu_s_per_utt": single_cpu,
                             "utterances": len(rows["single"])}
    report["ours_batch"] = {"utterances": args.utterances, "wall_s_total": t_wall, "cpu_s_total": t_cpu,
                            "cpu_s_per_utt": t_cpu / args.utterances,
                            "utterances_per_cpu_s": args.utterances / t_cpu}
    report["ours_batch_same_best_as_single"] = best_batch[:len(best_single)] == best_single
    report["batch_throughput_vs_ours_single"] = single_cpu / (t_cpu / args.utterances)
    if rows["generic"]:
        report["ours_generic_decoder_step"] = {"wall_s_per_utt": _mean([r[0] for r in rows["generic"]]),
                                               "cpu_s_per_utt": _mean([r[1] for r in rows["generic"]]),
                                               "same_best": all(r[2] for r in rows["generic"])}
    if search is not None:
        n = len(rows["espnet"])
        esp_cpu = _mean([c for _, c in rows["espnet"]])
        ours_cpu_same_utts = _mean([c for _, c in rows["single"][:n]])
        report["espnet"] = {"wall_s_per_utt": _mean([w for w, _ in rows["espnet"]]), "cpu_s_per_utt": esp_cpu,
                            "utterances": n, "same_best_hypotheses": all(same_espnet),
                            "best_scores_espnet_vs_ours": scores}
        report["speedup_single_vs_espnet"] = esp_cpu / ours_cpu_same_utts
        report["throughput_batch_vs_espnet"] = (args.utterances / t_cpu) / (1.0 / esp_cpu)
        report["targets"] = {"single >= 5x": report["speedup_single_vs_espnet"] >= 5,
                             f"batch{args.utterances} throughput >= 20x": report["throughput_batch_vs_espnet"] >= 20,
                             "same best hypotheses": all(same_espnet)}
    else:
        report["espnet"] = {"skipped": problem}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
