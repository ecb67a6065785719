"""Store every committed model's predictions on a fixed batch of sample faces.

Run before a change that could alter how saved models load (moving the modules that define
their custom layers, a Keras upgrade); ``tests/test_committed_models.py`` then checks that each
model still predicts the same. Usage: ``python tests/helpers/store_model_predictions.py``.
"""

from pathlib import Path

import numpy as np

from fer_utils import config
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.models.saving import load_model_with_metadata

FACES = 32
OUTPUT = Path(__file__).resolve().parent.parent / "data" / "committed_model_predictions.npz"


def fixed_faces() -> np.ndarray:
    return load_fer2013(config.SAMPLE_FER2013_CSV, cache=False).images[:FACES]


def main() -> None:
    faces = fixed_faces()
    predictions = {}
    for path in sorted(config.MODELS_DIR.glob("*.keras")):
        model, _ = load_model_with_metadata(path, compile=False)
        predictions[path.stem] = model.predict(faces, verbose=0).astype(np.float32)
        print(path.name, predictions[path.stem].shape, flush=True)
    np.savez_compressed(OUTPUT, **predictions)


if __name__ == "__main__":
    main()
