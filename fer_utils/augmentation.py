"""Training-time augmentation with Keras preprocessing layers, run inside the tf.data pipeline.

The settings follow the report and Arriaga et al.: rotations of about 10 degrees, shifts and zoom
of about 10 percent, horizontal flips. Running the layers on whole batches in ``Dataset.map`` keeps
the cost to a few affine warps per batch, which matters on two CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras


@dataclass(frozen=True)
class AugmentationConfig:
    rotation_degrees: float = 10.0
    shift_fraction: float = 0.1
    zoom_fraction: float = 0.1
    horizontal_flip: bool = True
    fill_mode: str = "nearest"


def build_augmenter(config: AugmentationConfig = AugmentationConfig(), seed: int = 0) -> keras.Sequential:
    """A ``keras.Sequential`` of random flip, rotation, translation and zoom (active in training)."""
    augmentation_layers: list[keras.layers.Layer] = []
    if config.horizontal_flip:
        augmentation_layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.rotation_degrees:
        augmentation_layers.append(
            keras.layers.RandomRotation(config.rotation_degrees / 360.0, fill_mode=config.fill_mode, seed=seed + 1)
        )
    if config.shift_fraction:
        augmentation_layers.append(
            keras.layers.RandomTranslation(
                config.shift_fraction, config.shift_fraction, fill_mode=config.fill_mode, seed=seed + 2
            )
        )
    if config.zoom_fraction:
        augmentation_layers.append(
            keras.layers.RandomZoom(config.zoom_fraction, fill_mode=config.fill_mode, seed=seed + 3)
        )
    return keras.Sequential(augmentation_layers, name="augmentation")
