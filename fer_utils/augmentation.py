"""Training-time augmentation, run on whole batches inside the tf.data pipeline.

The settings follow the report and Arriaga et al.: rotations of about 10 degrees, shifts and zoom
of about 10 percent, horizontal flips. Keras has a layer for each (``RandomRotation``,
``RandomTranslation``, ``RandomZoom``, ``RandomFlip``), but chaining them warps every image three
times. :class:`RandomAffine` draws the same four random changes and applies them as a single affine
warp with ``keras.ops.image.affine_transform``: one interpolation instead of three (so the faces
are also less blurred), and a third of the cost, which matters on two CPU cores
(``benchmarks/bench_training.py`` measures both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
from keras import ops


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


@keras.saving.register_keras_serializable(package="fer_utils")
class RandomAffine(keras.layers.Layer):
    """Random flip, rotation, zoom and shift of a batch of images as one affine warp per image."""

    def __init__(self, rotation_degrees=10.0, shift_fraction=0.1, zoom_fraction=0.1,
                 horizontal_flip=True, fill_mode="nearest", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation_degrees = rotation_degrees
        self.shift_fraction = shift_fraction
        self.zoom_fraction = zoom_fraction
        self.horizontal_flip = horizontal_flip
        self.fill_mode = fill_mode
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, batch, limit):
        return keras.random.uniform((batch,), -limit, limit, seed=self.seed_generator)

    def call(self, images, training=True):
        if not training:
            return images
        batch = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        angle = self._uniform(batch, math.radians(self.rotation_degrees))
        zoom = 1.0 + self._uniform(batch, self.zoom_fraction)
        shift_x = self._uniform(batch, self.shift_fraction) * width
        shift_y = self._uniform(batch, self.shift_fraction) * height
        flip = ops.ones((batch,))
        if self.horizontal_flip:
            flip = ops.where(keras.random.uniform((batch,), seed=self.seed_generator) < 0.5, -1.0, 1.0)
        # Output pixel p maps to input pixel F R(-angle) (p - centre - shift) / zoom + centre.
        cos, sin = ops.cos(angle) / zoom, ops.sin(angle) / zoom
        a0, a1, b0, b1 = flip * cos, flip * sin, -sin, cos
        centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
        from_x, from_y = centre_x + shift_x, centre_y + shift_y
        a2 = centre_x - (a0 * from_x + a1 * from_y)
        b2 = centre_y - (b0 * from_x + b1 * from_y)
        zeros = ops.zeros_like(a0)
        transform = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        return ops.image.affine_transform(
            images, transform, interpolation="bilinear", fill_mode=self.fill_mode, data_format="channels_last"
        )

    def get_config(self):
        return {**super().get_config(), "rotation_degrees": self.rotation_degrees,
                "shift_fraction": self.shift_fraction, "zoom_fraction": self.zoom_fraction,
                "horizontal_flip": self.horizontal_flip, "fill_mode": self.fill_mode, "seed": self.seed}


def build_augmenter(config: AugmentationConfig = AugmentationConfig(), seed: int = 0) -> keras.Sequential:
    """The training augmentation as a ``keras.Sequential``: one :class:`RandomAffine`, then
    Keras's ``RandomErasing`` when ``config.erasing_probability`` is set."""
    steps = [RandomAffine(config.rotation_degrees, config.shift_fraction, config.zoom_fraction,
                          config.horizontal_flip, config.fill_mode, seed=seed)]
    if config.erasing_probability > 0:
        # A single float would make Keras draw each face's chance from [0, p]; (p, p) means p.
        chance = (config.erasing_probability, config.erasing_probability)
        steps.append(keras.layers.RandomErasing(factor=chance, value_range=(0, 255), seed=seed))
    return keras.Sequential(steps, name="augmentation")


def build_layerwise_augmenter(config: AugmentationConfig = AugmentationConfig(), seed: int = 0) -> keras.Sequential:
    """The same augmentation from Keras's four stock layers (three warps); kept for the benchmark."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(config.rotation_degrees / 360.0, fill_mode=config.fill_mode, seed=seed + 1),
        keras.layers.RandomTranslation(config.shift_fraction, config.shift_fraction, fill_mode=config.fill_mode, seed=seed + 2),
        keras.layers.RandomZoom(config.zoom_fraction, fill_mode=config.fill_mode, seed=seed + 3),
    ], name="layerwise_augmentation")
