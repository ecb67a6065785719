"""How much arithmetic a model costs: multiply-accumulates (MACs) per face, counted layer by layer.

Parameter counts say how big a file is; MACs say how long training and inference take on a CPU,
which is what decides what can be trained on two cores. Counted analytically from each layer's
output shape (convolutions, depthwise and separable convolutions, dense layers); batch norm,
activations and pooling are left out, as is usual, because they cost a few percent at most.
"""

from __future__ import annotations

import math

import keras


def layer_macs(layer: keras.layers.Layer) -> int:
    """Multiply-accumulates of one forward pass of ``layer`` for a single face."""
    if isinstance(layer, keras.layers.SeparableConv2D):
        out_h, out_w, out_c = layer.output.shape[1:]
        in_c = layer.input.shape[-1]
        kernel = math.prod(layer.kernel_size)
        multiplier = layer.depth_multiplier
        return out_h * out_w * (kernel * in_c * multiplier + in_c * multiplier * out_c)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        out_h, out_w, out_c = layer.output.shape[1:]
        return out_h * out_w * math.prod(layer.kernel_size) * out_c
    if isinstance(layer, keras.layers.Conv2D):
        out_h, out_w, out_c = layer.output.shape[1:]
        in_c = layer.input.shape[-1]
        return out_h * out_w * math.prod(layer.kernel_size) * in_c * out_c // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return int(layer.input.shape[-1]) * layer.units
    return 0


def model_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass per face, summed over ``model``'s layers.

    Nested models (an ensemble's members, a test-time-augmentation wrapper's inner model) are
    counted once per call site, so an ensemble of two costs twice one member.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += model_macs(layer) * max(1, len(layer._inbound_nodes))
        else:
            total += layer_macs(layer)
    return total
