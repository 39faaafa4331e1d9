"""``python -m avsr_lightning transcribe``: your own videos to text, word times and subtitles (docs/transcribe.md)."""
from avsr_lightning.transcribe.command import Transcriber, build_parser, load_decoder, main
from avsr_lightning.transcribe.reader import InputError

__all__ = ["InputError", "Transcriber", "build_parser", "load_decoder", "main"]
