"""Test-time augmentation and ensembles inside one saved model.

A reported accuracy must come out of the model file alone, or ``evaluate``, the video pipeline and
the exports would measure something else. So both are plain Keras functional models:
:class:`FaceView` layers (fixed mirror, shift or zoom) in front of the model, Keras's ``Average``
over members. The result is one ``.keras`` file taking raw 0-255 faces, loaded with
:func:`fer_utils.models.saving.load_model_with_metadata` (or ``keras.models.load_model`` once this
module is imported, which registers the layer).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict

import keras

from fer_utils.models.architectures import INPUT_SHAPE
from fer_utils.models.layers import FaceView, View

#: The face as given and its mirror image: the cheapest test-time augmentation, doubling the cost.
MIRROR_VIEWS: tuple[View, ...] = (View(), View(mirror=True))


#: A 44-pixel centre crop scaled back to 48 pixels, the crop size of the usual 10-crop FER testing.
CROP_44_ZOOM = 48 / 44


def tta_views(
    shifts: Sequence[float] = (), zooms: Sequence[float] = (), mirror: bool = True
) -> tuple[View, ...]:
    """The face, each shift in the four directions, each centre zoom, and (``mirror``) all of their mirrors.

    ``tta_views()`` is :data:`MIRROR_VIEWS`; ``tta_views(shifts=[2], zooms=[CROP_44_ZOOM])`` gives
    12 views: 6 (original, 4 shifts of 2 pixels, the 44-pixel centre crop) and their mirrors.
    """
    plain = [View()]
    for shift in shifts:
        if shift <= 0:
            raise ValueError(
                f"Shifts are given as positive pixel counts (all four directions are used), got {shift}"
            )
        plain += [View(shift_x=shift), View(shift_x=-shift), View(shift_y=shift), View(shift_y=-shift)]
    plain += [View(zoom=zoom) for zoom in zooms if zoom != 1.0]
    return tuple(plain + [view.mirrored() for view in plain]) if mirror else tuple(plain)


#: The test-time augmentations compared before one is built into a saved model (notebooks 05 and
#: 08), cheapest first; ``None`` is the model alone. Each costs its number of views in forward passes.
TTA_CANDIDATES: dict[str, tuple[View, ...] | None] = {
    "no test-time augmentation": None,
    "mirror (2 views)": MIRROR_VIEWS,
    "mirror and 44-px centre crop (4 views)": tta_views(zooms=(CROP_44_ZOOM,)),
    "mirror, crop and 2-px shifts (12 views)": tta_views(shifts=(2,), zooms=(CROP_44_ZOOM,)),
}


def _check_contract(model: keras.Model, what: str) -> None:
    if tuple(model.input_shape[1:]) != INPUT_SHAPE:
        raise ValueError(
            f"{what} takes input {model.input_shape[1:]}, expected raw faces shaped {INPUT_SHAPE}"
        )
    if len(model.outputs) != 1 or len(model.output_shape) != 2:
        raise ValueError(f"{what} must have one output of class probabilities, has {model.output_shape}")


def with_tta(model: keras.Model, views: Sequence[View]) -> keras.Model:
    """``model`` averaged over ``views`` of every face: one saved model, same input and classes.

    The wrapped model's layers and weights are shared, not copied; the cost grows with the number
    of views (each is one forward pass).
    """
    _check_contract(model, f"Model {model.name!r}")
    views = tuple(views)
    if not views:
        raise ValueError("Test-time augmentation needs at least one view")
    if len(set(views)) != len(views):
        raise ValueError(f"The views repeat: {views}")
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    per_view = [
        model(FaceView(**asdict(view), name=f"view_{index}")(inputs)) for index, view in enumerate(views)
    ]
    outputs = per_view[0] if len(per_view) == 1 else keras.layers.Average(name="tta_average")(per_view)
    return keras.Model(inputs, outputs, name=f"{model.name}_tta{len(views)}")


def with_flip_tta(
    model: keras.Model, shifts: Sequence[float] = (), zooms: Sequence[float] = ()
) -> keras.Model:
    """``model`` averaged over each face and its mirror (and optional shifts and zooms, see :func:`tta_views`)."""
    return with_tta(model, tta_views(shifts, zooms, mirror=True))


def ensemble(models: Sequence[keras.Model], name: str = "ensemble") -> keras.Model:
    """The average of the members' probabilities, as one model taking the usual raw faces.

    Members must take raw faces shaped ``(48, 48, 1)`` and give the same number of classes; that
    the classes are the *same* classes in the same order is the sidecar's business (see
    :func:`ensemble_from_files`, which checks it). Each member keeps its own weights inside the
    ensemble, under a unique name.
    """
    models = list(models)
    if len(models) < 2:
        raise ValueError(f"An ensemble needs at least two models, got {len(models)}")
    for index, model in enumerate(models):
        _check_contract(model, f"Ensemble member {index} ({model.name!r})")
    widths = sorted({int(model.output_shape[-1]) for model in models})
    if len(widths) > 1:
        raise ValueError(
            f"Ensemble members give different numbers of classes: {[m.output_shape[-1] for m in models]}"
        )
    _check_no_shared_weights(models)
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    outputs = keras.layers.Average(name="ensemble_average")(
        [_as_member(model, index)(inputs) for index, model in enumerate(models)]
    )
    return keras.Model(inputs, outputs, name=name)


def _as_member(model: keras.Model, index: int) -> keras.Model:
    """``model`` inside a one-layer wrapper named ``member<index>``: members of one architecture
    carry the same name, and a functional model needs its layers' names to be unique."""
    inputs = keras.Input(shape=INPUT_SHAPE, name=f"member{index}_pixels")
    return keras.Model(inputs, model(inputs), name=f"member{index}")


def _check_no_shared_weights(models: Sequence[keras.Model]) -> None:
    """Refuse members that share weights (the same model twice, or a model and its TTA wrapper):
    a saved file stores each weight once, so such an ensemble would not load back."""
    owner: dict[int, int] = {}
    for index, model in enumerate(models):
        for weight in model.weights:
            first = owner.setdefault(id(weight), index)
            if first != index:
                raise ValueError(
                    f"Ensemble members {first} and {index} share the weight {weight.path!r}; "
                    "pass distinct models (load a file twice for two copies)"
                )


def ensemble_from_files(
    paths: Sequence[str | os.PathLike[str]], name: str = "ensemble"
) -> tuple[keras.Model, dict]:
    """Load saved models, check that their sidecars agree on classes and input, and average them.

    Returns the ensemble and the sidecar entries to save it with (``class_names`` and the
    ``members``: file, experiment and recorded PublicTest accuracy of each).
    """
    from fer_utils.models.saving import load_model_with_metadata

    loaded = [(os.fspath(path), *load_model_with_metadata(path, compile=False)) for path in paths]
    first_path, _, first_meta = loaded[0]
    for path, _, metadata in loaded[1:]:
        for key in ("class_names", "input"):
            if metadata.get(key) != first_meta.get(key):
                raise ValueError(
                    f"{path}: its {key} {metadata.get(key)} differ from {first_path}'s {first_meta.get(key)}; "
                    "ensemble members must agree"
                )
    members = [
        {
            "file": os.path.basename(path),
            "experiment": metadata.get("experiment"),
            "PublicTest_accuracy": metadata.get("metrics", {}).get("PublicTest", {}).get("accuracy"),
        }
        for path, _, metadata in loaded
    ]
    model = ensemble([model for _, model, _ in loaded], name=name)
    return model, {"class_names": list(first_meta["class_names"]), "members": members}


def tta_metadata(views: Sequence[View]) -> dict:
    """Sidecar entry describing a model's built-in test-time augmentation."""
    return {
        "test_time_augmentation": {
            "views": [asdict(view) for view in views],
            "combination": "mean of the softmax probabilities",
        }
    }
