"""Text: tokenizers that map transcripts to token ids and back."""
from avsr_lightning.text.tokenizer import CharTokenizer, Tokenizer, normalize_transcript

__all__ = ["CharTokenizer", "Tokenizer", "normalize_transcript", "SentencePieceTokenizer"]


def __getattr__(name: str):
    if name == "SentencePieceTokenizer":  # imported lazily: sentencepiece is only needed when used
        from avsr_lightning.text.sentencepiece import SentencePieceTokenizer

        return SentencePieceTokenizer
    raise AttributeError(name)
