"""Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391): which part of the face drove a prediction.

The last convolution's feature maps, weighted by the space-averaged gradient of the class score,
summed, rectified and upsampled, give the heatmap. The saved models expose no logits, so the
score is the log-probability: for one image that only rescales the gradients (undone by the
[0, 1] normalisation) and avoids a saturated softmax's vanishing gradients. mini-Xception's last
convolution sits on a 3x3 grid, so its heatmaps are coarse; the phase CNN's is 12x12.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from fer_utils.data.preprocessing import as_model_input

FACE_SIZE = 48
_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)


def last_conv_layer_name(model: keras.Model) -> str:
    """The name of the last convolution in ``model``'s layer order (the Grad-CAM default)."""
    for layer in reversed(model.layers):
        if isinstance(layer, _CONVOLUTIONS):
            return layer.name
    raise ValueError(f"Model {model.name!r} has no convolutional layer for Grad-CAM")


def _feature_and_output_model(model: keras.Model, layer_name: str) -> keras.Model:
    try:
        features = model.get_layer(layer_name).output
    except ValueError:
        raise ValueError(f"Model {model.name!r} has no layer named {layer_name!r}") from None
    if len(features.shape) != 4:
        raise ValueError(
            f"Layer {layer_name!r} outputs shape {features.shape}; Grad-CAM needs (N, H, W, C) maps"
        )
    return keras.Model(model.inputs, [features, model.outputs[0]])


def grad_cam(
    model: keras.Model,
    faces: np.ndarray,
    class_indices: np.ndarray | None = None,
    layer_name: str | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Grad-CAM heatmaps ``(N, 48, 48)`` in [0, 1] for raw 0-255 faces ``(N, 48, 48[, 1])``.

    ``class_indices`` picks the class to explain per face (default: the model's prediction);
    ``layer_name`` the feature maps (default: :func:`last_conv_layer_name`). A face whose class
    score has no positive evidence in those maps gets an all-zero heatmap.
    """
    inputs = as_model_input(faces)
    sub_model = _feature_and_output_model(model, layer_name or last_conv_layer_name(model))
    if class_indices is not None:
        class_indices = np.asarray(class_indices, dtype=np.int64)
        if class_indices.shape != (len(inputs),):
            raise ValueError(
                f"Expected one class index per face ({len(inputs)}), got shape {class_indices.shape}"
            )
    heatmaps = [
        _grad_cam_batch(
            sub_model,
            inputs[start : start + batch_size],
            None if class_indices is None else class_indices[start : start + batch_size],
        )
        for start in range(0, len(inputs), batch_size)
    ]
    return np.concatenate(heatmaps) if heatmaps else np.zeros((0, FACE_SIZE, FACE_SIZE), np.float32)


def _grad_cam_batch(
    sub_model: keras.Model, inputs: np.ndarray, class_indices: np.ndarray | None
) -> np.ndarray:
    images = tf.convert_to_tensor(inputs)
    with tf.GradientTape() as tape:
        feature_maps, probabilities = sub_model(images, training=False)
        if class_indices is None:
            class_indices = tf.argmax(probabilities, axis=1)
        chosen = tf.gather(probabilities, class_indices, axis=1, batch_dims=1)
        score = tf.math.log(tf.maximum(chosen, 1e-12))
    gradients = tape.gradient(score, feature_maps)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * feature_maps, axis=-1))
    upsampled = tf.image.resize(cam[..., tf.newaxis], (FACE_SIZE, FACE_SIZE), method="bilinear")[..., 0]
    # normalised after upsampling, so every heatmap with evidence peaks at exactly 1
    peak = tf.reduce_max(upsampled, axis=(1, 2), keepdims=True)
    return np.clip(tf.math.divide_no_nan(upsampled, peak).numpy(), 0.0, 1.0).astype(np.float32)
