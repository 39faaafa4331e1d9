"""``python -m avsr_lightning fit|validate|test|predict --config ...`` and ``transcribe VIDEO ...``."""
from avsr_lightning.cli import main

if __name__ == "__main__":
    main()
