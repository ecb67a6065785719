"""A deliberately tiny network for tests about the training loop, not about the model."""

import keras


def tiny_cnn(num_classes: int = 7) -> keras.Model:
    """Raw 0-255 faces (48, 48, 1) in, class probabilities out; trains in milliseconds per step."""
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=4, activation="relu")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(keras.layers.Dropout(0.1)(x))
    return keras.Model(inputs, outputs)
