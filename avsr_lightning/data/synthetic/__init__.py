"""Synthetic audio-visual corpus: eSpeak NG speech, viseme-driven rendered lips, babble and noise.

Written in the processed-LRS layout (docs/internals.md), so every data module reads it like LRS2/LRS3.
Entry point: :func:`generate_corpus`.
"""
from avsr_lightning.data.synthetic.corpus import VERSION, corpus_metadata, generate_corpus, plan_corpus
from avsr_lightning.data.synthetic.speech import INSTALL_HINT, SpeechSynthesisUnavailable

__all__ = ["VERSION", "generate_corpus", "plan_corpus", "corpus_metadata", "SpeechSynthesisUnavailable",
           "INSTALL_HINT"]
