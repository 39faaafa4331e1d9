"""Build AVSE scene lists (``scenes.<dataset>.json``) from the challenge metadata, like the challenge builder.

Same seed and metadata give the same scenes as the challenge's ``build_scenes.py`` (spec §2): one generator
seeded once, train then dev, existing scene files kept (use ``--overwrite`` to rebuild).

    python data_prep/avse_build_scenes.py --metadata_dir /data/avse1/metadata
    python data_prep/avse_build_scenes.py --metadata_dir meta --output_dir out --train_scenes 1000 --dev_scenes 100 \\
        --interferer_counts '[1,2,3]' --interferer_types '[speech,noise,music]'
"""
from __future__ import annotations

from avsr_lightning.data.avse.builder import DatasetSpec, SceneBuilderConfig, build_challenge_scene_lists


def build(metadata_dir: str, output_dir: str | None = None, seed: int = 0, train_scenes: int = 34525,
          dev_scenes: int = 3365, train_start: int = 1, dev_start: int | None = None,
          datasets: list[str] = ["train", "dev"], interferer_counts: list[int] = [1],
          interferer_types: list[str] = ["speech", "noise"], speech_snr: tuple[float, float] = (-15.0, 5.0),
          noise_snr: tuple[float, float] = (-10.0, 10.0), music_snr: tuple[float, float] = (-10.0, 10.0),
          multi_snr: tuple[float, float] = (-10.0, 10.0), target_mode: str = "sequential",
          overwrite: bool = False) -> dict[str, str]:
    """Write the scene lists and print where they are.

    Args:
        metadata_dir: folder with target_speech_list.json, masker_speech_list.json, masker_noise_list.json
            (and masker_music_list.json when music interferers are enabled).
        output_dir: where to write scenes.<dataset>.json (default: metadata_dir).
        seed: the challenge uses 0.
        train_scenes: number of train scenes (challenge: 34525, ids S00001...).
        dev_scenes: number of dev scenes (challenge: 3365, ids continue after train).
        dev_start: first dev scene number (default: train_start + train_scenes).
        datasets: which lists to build, in this order (the generator is shared, as in the challenge).
        interferer_counts: the interferer count is drawn from these (challenge: [1]).
        interferer_types: interferer types, in draw order (challenge: [speech, noise]).
        speech_snr: SNR range (dB) for a single speech interferer.
        noise_snr: SNR range (dB) for a single noise interferer.
        music_snr: SNR range (dB) for a single music interferer.
        multi_snr: SNR range (dB) for scenes with several interferers.
        target_mode: sequential (each target once before any repeats) or random.
        overwrite: rebuild lists that already exist.
    """
    dev_start = train_start + train_scenes if dev_start is None else dev_start
    sizes = {"train": (train_scenes, train_start), "dev": (dev_scenes, dev_start)}
    unknown = [d for d in datasets if d not in sizes]
    if unknown:
        raise SystemExit(f"--datasets may contain train and dev, got {unknown}")
    config = SceneBuilderConfig(
        snr_ranges={"speech": tuple(speech_snr), "noise": tuple(noise_snr), "music": tuple(music_snr)},
        multi_snr_range=tuple(multi_snr), interferer_counts=tuple(interferer_counts),
        interferer_types=tuple(interferer_types), target_mode=target_mode)
    specs = [DatasetSpec(d, *sizes[d]) for d in datasets]
    paths = build_challenge_scene_lists(metadata_dir, specs, seed=seed, config=config, overwrite=overwrite,
                                        output_dir=output_dir)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return {k: str(v) for k, v in paths.items()}


def main(argv: list[str] | None = None) -> None:
    from jsonargparse import CLI

    CLI(build, args=argv, as_positional=False)


if __name__ == "__main__":
    main()
