"""Every committed model still loads and predicts what it predicted when it was recorded.

The stored predictions (``tests/data/committed_model_predictions.npz``) were written by
``tests/helpers/store_model_predictions.py`` before the package moved into subpackages; a model
whose custom layers no longer resolve, or resolve to different code, fails here.
"""

import numpy as np
import pytest
from helpers.store_model_predictions import OUTPUT, fixed_faces

from fer_utils import config
from fer_utils.models.saving import load_model_with_metadata

with np.load(OUTPUT) as _stored:
    STORED = {name: _stored[name] for name in _stored.files}


def test_every_committed_model_has_stored_predictions() -> None:
    committed = {path.stem for path in config.MODELS_DIR.glob("*.keras")}
    missing = committed - set(STORED)
    assert not missing, f"run tests/helpers/store_model_predictions.py for {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(STORED))
def test_committed_model_predicts_as_recorded(name: str) -> None:
    path = config.MODELS_DIR / f"{name}.keras"
    if not path.exists():
        pytest.skip(f"{path.name} is no longer committed")
    model, metadata = load_model_with_metadata(path, compile=False)
    predictions = model.predict(fixed_faces(), verbose=0)
    assert len(metadata["class_names"]) == predictions.shape[1]
    np.testing.assert_allclose(predictions, STORED[name], atol=1e-5)
