"""Every model committed before the package moved into subpackages still predicts as it did.

The stored predictions (``tests/data/committed_model_predictions.npz``) were written by
``tests/helpers/store_model_predictions.py`` with the old layout; a model whose custom layers no
longer resolve, or resolve to different code, fails here. Run the helper again before the next
change of that kind, to cover the models recorded since.
"""

import numpy as np
import pytest
from helpers.store_model_predictions import OUTPUT, fixed_faces

from fer_utils import config
from fer_utils.models.saving import load_model_with_metadata

with np.load(OUTPUT) as _stored:
    STORED = {name: _stored[name] for name in _stored.files}


@pytest.mark.parametrize("name", sorted(STORED))
def test_committed_model_predicts_as_recorded(name: str) -> None:
    path = config.MODELS_DIR / f"{name}.keras"
    if not path.exists():
        pytest.skip(f"{path.name} is no longer committed")
    model, metadata = load_model_with_metadata(path, compile=False)
    predictions = model.predict(fixed_faces(), verbose=0)
    assert len(metadata["class_names"]) == predictions.shape[1]
    np.testing.assert_allclose(predictions, STORED[name], atol=1e-5)
