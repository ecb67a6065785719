"""Training-time augmentation, run on whole batches inside the tf.data pipeline.

Rotations of about 10 degrees, shifts and zoom of about 10 %, horizontal flips (the report and
Arriaga et al.). :class:`RandomAffine` applies them as one affine warp instead of chaining Keras's
``RandomRotation``/``RandomTranslation``/``RandomZoom``: one interpolation instead of three, so
less blur and a third of the cost (``benchmarks/bench_training.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from fer_utils.models.layers import RandomAffine


@dataclass(frozen=True)
class AugmentationConfig:
    rotation_degrees: float = 10.0
    shift_fraction: float = 0.1
    zoom_fraction: float = 0.1
    horizontal_flip: bool = True
    fill_mode: str = "nearest"
    #: random erasing (Zhong et al. 2020): the chance that a face gets one rectangle (2-33 % of
    #: its area) replaced by noise, after the warp; 0 (the report's setting) turns it off
    erasing_probability: float = 0.0


def build_augmenter(config: AugmentationConfig = AugmentationConfig(), seed: int = 0) -> keras.Sequential:
    """The training augmentation as a ``keras.Sequential``: one :class:`RandomAffine`, then
    Keras's ``RandomErasing`` when ``config.erasing_probability`` is set."""
    steps = [
        RandomAffine(
            config.rotation_degrees,
            config.shift_fraction,
            config.zoom_fraction,
            config.horizontal_flip,
            config.fill_mode,
            seed=seed,
        )
    ]
    if config.erasing_probability > 0:
        # A single float would make Keras draw each face's chance from [0, p]; (p, p) means p.
        chance = (config.erasing_probability, config.erasing_probability)
        steps.append(keras.layers.RandomErasing(factor=chance, value_range=(0, 255), seed=seed))
    return keras.Sequential(steps, name="augmentation")


def build_layerwise_augmenter(
    config: AugmentationConfig = AugmentationConfig(), seed: int = 0
) -> keras.Sequential:
    """The same augmentation from Keras's four stock layers (three warps); kept for the benchmark."""
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(
                config.rotation_degrees / 360.0, fill_mode=config.fill_mode, seed=seed + 1
            ),
            keras.layers.RandomTranslation(
                config.shift_fraction, config.shift_fraction, fill_mode=config.fill_mode, seed=seed + 2
            ),
            keras.layers.RandomZoom(config.zoom_fraction, fill_mode=config.fill_mode, seed=seed + 3),
        ],
        name="layerwise_augmentation",
    )
