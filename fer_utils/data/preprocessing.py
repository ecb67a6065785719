"""Pixel normalisation of mini-Xception (Arriaga et al. 2017): grey levels 0-255 to [-1, 1].

The same transform exists twice on purpose: as a NumPy function for analysis code, and as a Keras
layer placed first in every model this project saves, so a saved model takes raw 0-255 pixels and
nobody deploying it has to remember how it was trained.
"""

from __future__ import annotations

import numpy as np

PIXEL_SCALE = 1.0 / 127.5
PIXEL_OFFSET = -1.0
PREPROCESSING_LAYER_NAME = "preprocess_input"


def preprocess_input(images: np.ndarray) -> np.ndarray:
    """Map uint8 (or float 0-255) pixels to float32 in [-1, 1]: ``x / 127.5 - 1``."""
    return np.asarray(images, dtype=np.float32) * np.float32(PIXEL_SCALE) + np.float32(PIXEL_OFFSET)


def preprocessing_layer():
    """A ``keras.layers.Rescaling`` doing :func:`preprocess_input` inside a model."""
    import keras

    return keras.layers.Rescaling(scale=PIXEL_SCALE, offset=PIXEL_OFFSET, name=PREPROCESSING_LAYER_NAME)


def as_model_input(images: np.ndarray) -> np.ndarray:
    """Shape raw faces for a saved model: ``(N, 48, 48)`` or ``(48, 48)`` to ``(N, 48, 48, 1)``.

    The values stay 0-255 (the model carries its own :func:`preprocessing_layer`).
    """
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[np.newaxis]
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[1:] != (48, 48, 1):
        raise ValueError(f"Expected faces shaped (N, 48, 48[, 1]), got {images.shape}")
    return images.astype(np.float32, copy=False)
