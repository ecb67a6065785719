"""The phase models have the report's exact parameter counts and carry their own preprocessing."""

import numpy as np
import pytest

from fer_utils.data.preprocessing import PREPROCESSING_LAYER_NAME
from fer_utils.models.architectures import build_model, parameter_counts


@pytest.mark.parametrize(
    ("architecture", "classes", "total", "non_trainable"),
    [
        ("phase_cnn", 7, 730_855, 640),
        ("mini_xception", 6, 57_270, 1_472),
        ("mini_xception", 7, 58_423, 1_472),
    ],
)
def test_parameter_counts_match_the_report_and_the_paper(architecture, classes, total, non_trainable):
    counts = parameter_counts(build_model(architecture, classes))
    assert counts["total"] == total
    assert counts["non_trainable"] == non_trainable


@pytest.mark.parametrize("architecture", ["phase_cnn", "mini_xception", "fer_net"])
def test_models_take_raw_pixels_and_output_a_distribution(architecture):
    model = build_model(architecture, 7)
    assert model.layers[1].name == PREPROCESSING_LAYER_NAME
    assert model.input_shape == (None, 48, 48, 1)
    probabilities = model.predict(np.full((2, 48, 48, 1), 255, dtype=np.float32), verbose=0)
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_mini_xception_has_no_dense_layer():
    model = build_model("mini_xception", 6)
    assert not [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]


def test_mini_xception_penalises_only_the_stem_as_the_published_keras_2_code_did():
    model = build_model("mini_xception", 7)
    penalised = [layer.name for layer in model.layers if layer.losses]
    assert penalised == ["stem1_conv", "stem2_conv"]


def test_upscaled_mini_xception_keeps_its_parameters_and_raw_48_pixel_input():
    from fer_utils.models.cost import model_macs
    from fer_utils.training.experiments import get_experiment

    experiment = get_experiment("phase3_mini_xception_7_64px")
    upscaled = build_model(experiment.architecture, experiment.num_classes, **experiment.model_options)
    plain = build_model("mini_xception", 7)
    assert upscaled.input_shape == (None, 48, 48, 1)
    assert upscaled.get_layer("upscale_to_64").output.shape == (None, 64, 64, 1)
    assert parameter_counts(upscaled) == parameter_counts(plain)
    # the stem's unpadded convolutions work on 62x62 and 60x60 maps instead of 46x46 and 44x44
    assert 1.7 < model_macs(upscaled) / model_macs(plain) < 1.9
    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(upscaled.predict(faces, verbose=0).sum(axis=1), 1.0, rtol=1e-5)


def test_unknown_architecture_is_named_in_the_error():
    with pytest.raises(ValueError, match="resnet"):
        build_model("resnet", 7)


def test_random_affine_with_no_change_is_the_identity_and_flips_mirror():
    from fer_utils.training.augmentation import RandomAffine

    faces = np.random.default_rng(0).integers(0, 256, (6, 48, 48, 1)).astype("float32")
    identity = np.asarray(RandomAffine(0, 0, 0, horizontal_flip=False)(faces, training=True))
    np.testing.assert_allclose(identity, faces, atol=1e-4)
    flipped = np.asarray(RandomAffine(0, 0, 0, horizontal_flip=True, seed=3)(faces, training=True))
    for original, result in zip(faces, flipped):
        assert np.allclose(result, original, atol=1e-4) or np.allclose(result, original[:, ::-1], atol=1e-4)
    assert np.asarray(RandomAffine(seed=1)(faces, training=False)) is not None


def test_augmentation_changes_faces_but_keeps_shape_and_range():
    from fer_utils.training.augmentation import build_augmenter

    faces = np.random.default_rng(1).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    augmented = np.asarray(build_augmenter(seed=0)(faces, training=True))
    assert augmented.shape == faces.shape
    assert augmented.min() >= 0 and augmented.max() <= 255
    assert not np.allclose(augmented, faces)


def test_fer_net_stages_halve_the_resolution_and_residual_stages_project_only_on_width_changes():
    model = build_model("fer_net", 7, widths=(16, 32), convs_per_stage=2)
    assert model.get_layer("stage1_2_conv").output.shape[1:] == (48, 48, 16)
    assert model.get_layer("stage2_2_conv").output.shape[1:] == (24, 24, 32)
    projections = [layer.name for layer in model.layers if layer.name.endswith("_projection")]
    assert projections == ["stage1_projection", "stage2_projection"]  # 1 -> 16 and 16 -> 32 channels
    plain = build_model("fer_net", 7, widths=(16, 32), residual=False)
    assert not any("add" in layer.name for layer in plain.layers)
    assert parameter_counts(plain)["total"] < parameter_counts(model)["total"]


def test_macs_of_the_phase_cnn_match_a_count_by_hand():
    from fer_utils.models.cost import model_macs

    by_hand = (
        48 * 48 * 9 * (1 * 32 + 32 * 32)  # block 1 at 48x48
        + 24 * 24 * 9 * (32 * 64 + 64 * 64)  # block 2 at 24x24
        + 12 * 12 * 9 * 64 * 128  # block 3 at 12x12
        + 6 * 6 * 128 * 128
        + 128 * 7
    )  # dense layers
    assert model_macs(build_model("phase_cnn", 7)) == by_hand == 64_955_264


def test_macs_of_separable_convolutions_count_depthwise_and_pointwise_parts():
    import keras

    from fer_utils.models.cost import model_macs

    inputs = keras.Input((10, 10, 4))
    outputs = keras.layers.SeparableConv2D(8, 3, padding="same")(inputs)
    assert model_macs(keras.Model(inputs, outputs)) == 10 * 10 * (9 * 4 + 4 * 8)
    ensemble_input = keras.Input((10, 10, 4))
    member = keras.Model(inputs, outputs)
    doubled = keras.Model(
        ensemble_input, keras.layers.Average()([member(ensemble_input), member(ensemble_input)])
    )
    assert model_macs(doubled) == 2 * model_macs(member)
