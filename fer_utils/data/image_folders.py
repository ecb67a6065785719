"""Cross-dataset faces from a folder tree ``ROOT/<emotion>/<image>`` (JAFFE, CK+, web images...).

Folder names are matched case-insensitively against common spellings of the seven FER2013
emotions; a folder that matches none is reported (``FolderDataset.unmapped``) rather than guessed.
Every image is read as grayscale and resized to 48x48 with area interpolation, so it can go
through the same models and ``evaluate`` command as FER2013.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_utils.data.fer2013 import IMAGE_SIZE, FERDataset
from fer_utils.data.labels import FER2013_CLASSES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm")

#: Folder name (lower case) -> FER2013 class index.
FOLDER_ALIASES: dict[str, int] = {
    **{name: 0 for name in ("angry", "anger", "an", "mad")},
    **{name: 1 for name in ("disgust", "disgusted", "disgusting", "di")},
    **{name: 2 for name in ("fear", "fearful", "afraid", "scared", "fe")},
    **{name: 3 for name in ("happy", "happiness", "joy", "smile", "ha")},
    **{name: 4 for name in ("sad", "sadness", "sa")},
    **{name: 5 for name in ("surprise", "surprised", "su")},
    **{name: 6 for name in ("neutral", "calm", "ne")},
}


class ImageFolderError(ValueError):
    """An image folder that cannot be read as a labelled dataset."""


@dataclass(frozen=True)
class FolderDataset:
    """A :class:`FERDataset` of the mapped folders, the files behind it, and what was left out."""

    dataset: FERDataset
    paths: tuple[Path, ...]
    unmapped: dict[str, int]  # folder name -> number of image files in it


def class_for_folder(name: str) -> int | None:
    """FER2013 class index for a folder name, or ``None`` if it is not a known emotion name."""
    return FOLDER_ALIASES.get(name.strip().lower())


def person_from_file_name(path: str | os.PathLike[str]) -> str:
    """The part of an image's file name before its first underscore: CK+ names its faces
    ``<subject>_<n>.png``, so faces of one person can be counted as one piece of evidence."""
    return Path(path).stem.split("_", 1)[0]


def load_face_image(path: Path) -> np.ndarray:
    """One image file as a 48x48 uint8 grayscale face; raises naming the file if unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        raise ImageFolderError(f"{path}: not a readable image")
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return image


def load_image_folder(root: str | os.PathLike[str], usage: str = "External") -> FolderDataset:
    """Load ``root/<emotion>/<image>`` into FER2013's classes; see the module docstring."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder {root} does not exist or is not a directory")
    images: list[np.ndarray] = []
    labels: list[int] = []
    paths: list[Path] = []
    unmapped: dict[str, int] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        label = class_for_folder(folder.name)
        if label is None:
            unmapped[folder.name] = len(files)
            continue
        for path in files:
            images.append(load_face_image(path))
            labels.append(label)
            paths.append(path)
    if not images:
        detail = f"; unmapped folders: {unmapped}" if unmapped else ""
        raise ImageFolderError(
            f"{root}: no images found in folders named after emotions "
            f"({', '.join(c.lower() for c in FER2013_CLASSES)}){detail}"
        )
    dataset = FERDataset(
        images=np.stack(images),
        labels=np.array(labels, dtype=np.int64),
        usage=np.full(len(images), usage),
        row_index=np.arange(1, len(images) + 1, dtype=np.int64),
        source=root,
    )
    return FolderDataset(dataset, tuple(paths), unmapped)
