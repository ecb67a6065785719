"""The networks of the three phases, built by functions so classes and regularisation are arguments.

Every model starts with :func:`fer_utils.data.preprocessing.preprocessing_layer`, so it takes raw 0-255
grayscale faces shaped ``(48, 48, 1)`` and ends in a softmax over the classes.
"""

from __future__ import annotations

import keras
from keras import layers, regularizers

from fer_utils.data.preprocessing import preprocessing_layer

INPUT_SHAPE = (48, 48, 1)


def _input_and_preprocessing(name: str = "pixels") -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input(shape=INPUT_SHAPE, name=name)
    return inputs, preprocessing_layer()(inputs)


def _conv_block(x, filters: int, name: str, l2: float, batch_norm: bool):
    """3x3 'same' convolution, optional batch norm, ReLU."""
    x = layers.Conv2D(filters, 3, padding="same", kernel_regularizer=_l2(l2), name=f"{name}_conv")(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _l2(strength: float):
    return regularizers.L2(strength) if strength > 0 else None


def build_phase_cnn(
    num_classes: int = 7, dropout_rate: float = 0.25, dense_dropout_rate: float = 0.5, l2: float = 0.0
) -> keras.Model:
    """The report's phase-1/2 network: convolution blocks of 32, 64 and 128 filters.

    [conv32-BN-ReLU] x2, pool, dropout; [conv64-BN-ReLU] x2, pool, dropout; conv128-ReLU, pool,
    dropout; flatten; dense 128 (no bias, BN, ReLU, dropout); softmax. With 7 classes it has the
    report's 730,855 parameters; batch norm on the dense layer is why that layer has no bias.
    """
    inputs, x = _input_and_preprocessing()
    for block, (filters, convs, batch_norm) in enumerate(
        ((32, 2, True), (64, 2, True), (128, 1, False)), start=1
    ):
        for index in range(1, convs + 1):
            x = _conv_block(x, filters, name=f"block{block}_{index}", l2=l2, batch_norm=batch_norm)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
        x = layers.Dropout(dropout_rate, name=f"block{block}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, use_bias=False, kernel_regularizer=_l2(l2), name="dense")(x)
    x = layers.BatchNormalization(name="dense_bn")(x)
    x = layers.Activation("relu", name="dense_relu")(x)
    x = layers.Dropout(dense_dropout_rate, name="dense_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"phase_cnn_{num_classes}")


def build_mini_xception(num_classes: int = 7, l2: float = 0.01, upscale_to: int | None = None) -> keras.Model:
    """mini-Xception of Arriaga, Ploeger and Valdenegro (2017, arXiv:1710.07557).

    Two 3x3 stem convolutions (8 filters), four residual modules of separable convolutions (16-128
    filters, strided 1x1 shortcuts), a 3x3 convolution to one map per class, global average pooling
    and softmax; 58,423 parameters for 7 classes. ``l2`` applies to the stem only, as in the authors'
    model (Keras 2's ``SeparableConv2D`` ignored ``kernel_regularizer``). ``upscale_to`` resizes the
    faces inside the model (the authors used 64x64); the saved model still takes raw 48x48 pixels.
    """
    inputs, x = _input_and_preprocessing()
    if upscale_to is not None:
        x = layers.Resizing(
            upscale_to, upscale_to, interpolation="bilinear", name=f"upscale_to_{upscale_to}"
        )(x)
    for index in (1, 2):
        x = layers.Conv2D(8, 3, use_bias=False, kernel_regularizer=_l2(l2), name=f"stem{index}_conv")(x)
        x = layers.BatchNormalization(name=f"stem{index}_bn")(x)
        x = layers.Activation("relu", name=f"stem{index}_relu")(x)
    for module, filters in enumerate((16, 32, 64, 128), start=1):
        x = _xception_module(x, filters, name=f"module{module}")
    x = layers.Conv2D(num_classes, 3, padding="same", name="class_maps")(x)
    x = layers.GlobalAveragePooling2D(name="global_average")(x)
    outputs = layers.Activation("softmax", name="predictions")(x)
    suffix = f"_{upscale_to}px" if upscale_to is not None else ""
    return keras.Model(inputs, outputs, name=f"mini_xception_{num_classes}{suffix}")


def _xception_module(x, filters: int, name: str):
    residual = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False, name=f"{name}_shortcut")(
        x
    )
    residual = layers.BatchNormalization(name=f"{name}_shortcut_bn")(residual)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv1")(x)
    x = layers.BatchNormalization(name=f"{name}_sepconv1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_sepconv1_relu")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv2")(x)
    x = layers.BatchNormalization(name=f"{name}_sepconv2_bn")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Add(name=f"{name}_add")([x, residual])


def build_fer_net(
    num_classes: int = 7,
    widths: tuple[int, ...] = (32, 64, 128, 256),
    convs_per_stage: int = 2,
    residual: bool = True,
    dropout_rate: float = 0.1,
    head_dropout_rate: float = 0.4,
    separable: bool = False,
) -> keras.Model:
    """This project's own network: a VGG-style stack of 3x3 convolutions sized for 48x48 faces.

    One stage per width of ``convs_per_stage`` conv-BN-ReLU layers, stages separated by 2x2 max
    pooling and dropout; with ``residual`` each stage adds its input back (1x1 projection where the
    width changes); global average pooling and a softmax layer close it. Plain 3x3 convolutions,
    because on CPUs they run far more efficiently than depthwise ones (``reports/benchmarks.md``).
    ``separable`` swaps every convolution after the first for a depthwise-separable one. Weight decay
    comes from the optimiser, not kernel regularisers.
    """
    inputs, x = _input_and_preprocessing()
    for stage, filters in enumerate(widths, start=1):
        shortcut = x
        for index in range(1, convs_per_stage + 1):
            name = f"stage{stage}_{index}"
            convolution = layers.SeparableConv2D if separable and (stage, index) != (1, 1) else layers.Conv2D
            x = convolution(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
            x = layers.BatchNormalization(name=f"{name}_bn")(x)
            if not (residual and index == convs_per_stage):
                x = layers.Activation("relu", name=f"{name}_relu")(x)
        if residual:
            if shortcut.shape[-1] != filters:
                shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"stage{stage}_projection")(
                    shortcut
                )
                shortcut = layers.BatchNormalization(name=f"stage{stage}_projection_bn")(shortcut)
            x = layers.Add(name=f"stage{stage}_add")([x, shortcut])
            x = layers.Activation("relu", name=f"stage{stage}_relu")(x)
        if stage < len(widths):
            x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
            if dropout_rate > 0:
                x = layers.Dropout(dropout_rate, name=f"stage{stage}_dropout")(x)
    x = layers.GlobalAveragePooling2D(name="global_average")(x)
    if head_dropout_rate > 0:
        x = layers.Dropout(head_dropout_rate, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"fer_net_{num_classes}")


MODEL_BUILDERS = {
    "phase_cnn": build_phase_cnn,
    "mini_xception": build_mini_xception,
    "fer_net": build_fer_net,
}


def build_model(architecture: str, num_classes: int, **options) -> keras.Model:
    """Build a registered architecture by name (see :data:`MODEL_BUILDERS`)."""
    try:
        builder = MODEL_BUILDERS[architecture]
    except KeyError:
        raise ValueError(f"Unknown architecture {architecture!r}; known: {sorted(MODEL_BUILDERS)}") from None
    return builder(num_classes=num_classes, **options)


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts, as ``model.summary()`` prints them."""
    trainable = int(sum(keras.ops.size(w) for w in model.trainable_weights))
    non_trainable = int(sum(keras.ops.size(w) for w in model.non_trainable_weights))
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}
