"""Builds the small FER2013 / FER+ sample committed in ``data/sample/``.

The sample lets a fresh clone run every notebook and test without the real data. It holds real
rows of the shared file, a fixed number per class and split (so Disgust is present), in the file's
original order, with the matching FER+ rows, so the FER+ join by position works on it too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_utils import config
from fer_utils.data.fer2013 import load_fer2013, write_fer2013_csv
from fer_utils.data.ferplus import load_ferplus
from fer_utils.data.labels import FERPLUS_VOTE_COLUMNS

DEFAULT_PER_CLASS = {"Training": 60, "PublicTest": 20, "PrivateTest": 20}


def choose_sample_rows(
    labels: np.ndarray, usage: np.ndarray, per_class: dict[str, int], seed: int = 2013
) -> np.ndarray:
    """Sorted row positions: ``per_class[split]`` random rows of every class in every split."""
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    for split, count in per_class.items():
        for label in np.unique(labels):
            candidates = np.flatnonzero((usage == split) & (labels == label))
            chosen.append(rng.choice(candidates, size=min(count, candidates.size), replace=False))
    return np.sort(np.concatenate(chosen))


def make_sample(
    fer2013_csv: str | Path,
    ferplus_csv: str | Path,
    out_dir: str | Path = config.SAMPLE_DATA_DIR,
    per_class: dict[str, int] = DEFAULT_PER_CLASS,
) -> tuple[Path, Path]:
    """Write ``fer2013_sample.csv.gz`` and ``fer2013new_sample.csv`` into ``out_dir``."""
    dataset = load_fer2013(fer2013_csv)
    votes = load_ferplus(ferplus_csv).aligned_with(dataset)
    rows = choose_sample_rows(dataset.labels, dataset.usage, per_class)
    out_dir = Path(out_dir)
    fer_path = write_fer2013_csv(dataset.subset(rows), out_dir / config.SAMPLE_FER2013_CSV.name)
    table_path = out_dir / config.SAMPLE_FERPLUS_CSV.name
    header = "Usage,Image name," + ",".join(FERPLUS_VOTE_COLUMNS)
    lines = [header] + [
        f"{votes.usage[row]},{votes.image_names[row]}," + ",".join(map(str, votes.votes[row].tolist()))
        for row in rows
    ]
    table_path.write_text("\n".join(lines) + "\n")
    return fer_path, table_path


def face_photo(face: np.ndarray, face_side: int = 144, frame: tuple[int, int] = (240, 200)) -> np.ndarray:
    """A 48x48 face enlarged into a plain grey frame: a photo the face detector can find."""
    import cv2

    width, height = frame
    photo = np.full((height, width), 128, dtype=np.uint8)
    large = cv2.resize(
        np.asarray(face).reshape(48, 48), (face_side, face_side), interpolation=cv2.INTER_CUBIC
    )
    top, left = (height - face_side) // 2, (width - face_side) // 2
    photo[top : top + face_side, left : left + face_side] = large
    return photo


#: The committed sample's face used as the package's example photo: the first PublicTest face labelled Happy.
SAMPLE_FACE_ROW = "PublicTest", 3


def write_sample_face_photo(path: str | Path) -> Path:
    """Write :func:`face_photo` of a sample face as a PNG (the package's doctest photo)."""
    import cv2

    from fer_utils.files import atomic_path

    dataset = load_fer2013(config.SAMPLE_FER2013_CSV, cache=False)
    split, label = SAMPLE_FACE_ROW
    face = dataset.images[(dataset.usage == split) & (dataset.labels == label)][0]
    with atomic_path(path) as temporary:
        cv2.imwrite(str(temporary), face_photo(face))
    return Path(path)
