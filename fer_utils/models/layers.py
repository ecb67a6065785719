"""Every custom Keras layer that saved models contain, in one module.

Loading a ``.keras`` file finds these layers by their registered names (``fer_utils>FaceView`` and
the rest), so the names must never change; importing this module registers them all.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import keras
import numpy as np
from keras import ops

from fer_utils.models.architectures import INPUT_SHAPE

#: Probabilities are clipped to this floor before a logarithm.
PROBABILITY_FLOOR = 1e-7


@dataclass(frozen=True)
class View:
    """One fixed way of showing a face to the model.

    ``shift_x`` / ``shift_y`` move the face right / down by that many pixels (edges repeated),
    ``zoom`` above 1 keeps a centred ``48 / zoom`` pixel crop scaled back to 48, and ``mirror``
    flips left and right last, so a mirrored shift is the mirror image of the shifted face.
    """

    mirror: bool = False
    shift_x: float = 0.0
    shift_y: float = 0.0
    zoom: float = 1.0

    def __post_init__(self) -> None:
        if not 0.5 <= self.zoom <= 2.0:
            raise ValueError(f"A view's zoom must be between 0.5 and 2, got {self.zoom}")
        if max(abs(self.shift_x), abs(self.shift_y)) > INPUT_SHAPE[0] / 4:
            raise ValueError(f"A view's shift must be at most {INPUT_SHAPE[0] // 4} pixels, got {self}")

    @property
    def is_identity(self) -> bool:
        return self == View()

    def mirrored(self) -> View:
        return View(True, self.shift_x, self.shift_y, self.zoom)


@keras.saving.register_keras_serializable(package="fer_utils")
class RandomAffine(keras.layers.Layer):
    """Random flip, rotation, zoom and shift of a batch of images as one affine warp per image."""

    def __init__(
        self,
        rotation_degrees=10.0,
        shift_fraction=0.1,
        zoom_fraction=0.1,
        horizontal_flip=True,
        fill_mode="nearest",
        seed=None,
        **kwargs,
    ):
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
        return {
            **super().get_config(),
            "rotation_degrees": self.rotation_degrees,
            "shift_fraction": self.shift_fraction,
            "zoom_fraction": self.zoom_fraction,
            "horizontal_flip": self.horizontal_flip,
            "fill_mode": self.fill_mode,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="fer_utils")
class TemperatureScaling(keras.layers.Layer):
    """Rescales a softmax output: ``softmax(log p / T)``. Saved with the model; argmax unchanged."""

    def __init__(self, temperature: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"A temperature must be a positive number, got {temperature}")
        self.temperature = float(temperature)

    def call(self, probabilities):
        log_probabilities = keras.ops.log(keras.ops.clip(probabilities, PROBABILITY_FLOOR, 1.0))
        return keras.ops.softmax(log_probabilities / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="fer_utils")
class FaceView(keras.layers.Layer):
    """Shows a batch of faces in one fixed :class:`View`: shift and centre zoom as one warp, then mirror.

    The mirror is an exact reversal of the columns (``ops.flip``), so the mirror of a
    mirror-symmetric face is that same face, bit for bit.
    """

    def __init__(
        self,
        mirror: bool = False,
        shift_x: float = 0.0,
        shift_y: float = 0.0,
        zoom: float = 1.0,
        fill_mode: str = "nearest",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.view = View(bool(mirror), float(shift_x), float(shift_y), float(zoom))
        self.fill_mode = fill_mode

    def call(self, images):
        if self.view.shift_x or self.view.shift_y or self.view.zoom != 1.0:
            images = ops.image.affine_transform(
                images,
                self._transform(images.shape[1], images.shape[2]),
                interpolation="bilinear",
                fill_mode=self.fill_mode,
                data_format="channels_last",
            )
        if self.view.mirror:
            images = ops.flip(images, axis=2)
        return images

    def _transform(self, height: int, width: int):
        """Output pixel p reads input pixel centre + (p - centre - shift) / zoom."""
        scale = 1.0 / self.view.zoom
        centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
        offset_x = centre_x - (centre_x + self.view.shift_x) * scale
        offset_y = centre_y - (centre_y + self.view.shift_y) * scale
        return ops.convert_to_tensor([scale, 0.0, offset_x, 0.0, scale, offset_y, 0.0, 0.0], dtype="float32")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), **asdict(self.view), "fill_mode": self.fill_mode}
