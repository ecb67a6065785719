"""Grad-CAM: finds the right layer, localises evidence on a hand-built model, works on both architectures."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fer_utils.analysis.saliency import grad_cam, last_conv_layer_name
from fer_utils.models.architectures import build_model


def bright_square_model() -> keras.Model:
    """Class 0's evidence is bright pixels (a ReLU'd 1x1 convolution), class 1's is their absence."""
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 127.5, -1)(inputs)
    maps = keras.layers.Conv2D(1, 1, activation="relu", kernel_initializer="ones", name="evidence")(x)
    pooled = keras.layers.GlobalAveragePooling2D()(maps)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(pooled)
    model = keras.Model(inputs, outputs)
    model.get_layer("predictions").set_weights([np.array([[4.0, -4.0]]), np.zeros(2)])
    return model


def face_with_bright_corner() -> np.ndarray:
    face = np.zeros((1, 48, 48), dtype=np.uint8)
    face[0, :16, :16] = 255
    return face


def test_grad_cam_lights_up_where_the_evidence_is():
    heatmap = grad_cam(bright_square_model(), face_with_bright_corner(), class_indices=np.array([0]))[0]
    assert heatmap.shape == (48, 48) and heatmap.max() == pytest.approx(1.0)
    assert heatmap[:12, :12].min() > 0.9
    assert heatmap[24:, 24:].max() == 0.0


def test_grad_cam_of_a_class_with_no_positive_evidence_is_zero():
    heatmap = grad_cam(bright_square_model(), face_with_bright_corner(), class_indices=np.array([1]))
    np.testing.assert_array_equal(heatmap, 0.0)


@pytest.mark.parametrize(
    "architecture, expected_layer", [("mini_xception", "class_maps"), ("phase_cnn", "block3_1_conv")]
)
def test_grad_cam_on_the_project_architectures(architecture, expected_layer):
    model = build_model(architecture, 7)
    assert last_conv_layer_name(model) == expected_layer
    faces = np.random.default_rng(0).integers(0, 256, size=(5, 48, 48), dtype=np.uint8)
    heatmaps = grad_cam(model, faces, batch_size=2)
    assert heatmaps.shape == (5, 48, 48) and heatmaps.dtype == np.float32
    assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0
    assert np.isclose(heatmaps.reshape(5, -1).max(axis=1), 1.0).any()  # some face has positive evidence


def test_bad_layer_and_class_arguments_are_named():
    model = bright_square_model()
    faces = face_with_bright_corner()
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        grad_cam(model, faces, layer_name="nope")
    with pytest.raises(ValueError, match="needs \\(N, H, W, C\\) maps"):
        grad_cam(model, faces, layer_name="predictions")
    with pytest.raises(ValueError, match="one class index per face"):
        grad_cam(model, faces, class_indices=np.array([0, 1]))
    dense_only = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no convolutional layer"):
        last_conv_layer_name(dense_only)
