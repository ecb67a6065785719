"""Fast, strict loading of FER2013 in the Kaggle ``fer2013.csv`` format.

The file has one face per row: ``emotion`` (0-6), ``pixels`` (2,304 space-separated grey levels of a
48x48 image) and ``Usage`` (Training, PublicTest, PrivateTest). Parsing 75 million pixel strings is
the slow part, so the loader hands whole chunks of rows to NumPy's C parser and only falls back to a
row-by-row diagnosis when a chunk is malformed; that keeps the happy path fast and still names the
exact row and problem when something is wrong. Nothing is dropped, clipped or guessed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fer_utils import config
from fer_utils.data.labels import FER2013_CLASSES, MERGED_CLASSES, merge_disgust
from fer_utils.files import atomic_path

IMAGE_SIZE = 48
PIXELS_PER_IMAGE = IMAGE_SIZE * IMAGE_SIZE
REQUIRED_COLUMNS = ("emotion", "pixels", "Usage")
KNOWN_USAGES = ("Training", "PublicTest", "PrivateTest")
_CHUNK_ROWS = 2048
_CACHE_FORMAT_VERSION = 1

DATA_HINT = (
    "FER2013 is the Kaggle 'Challenges in Representation Learning: Facial Expression Recognition' "
    "file fer2013.csv. Download it from Kaggle, then set FER2013_CSV=/path/to/fer2013.csv or put "
    "it in data/raw/ (see data/README.md). Without it, the sample in data/sample/ is used."
)


class FER2013FormatError(ValueError):
    """A FER2013 file that does not follow the Kaggle format; the message names file and row."""

    def __init__(self, path: Path | str, message: str, row: int | None = None) -> None:
        where = f"{path}" if row is None else f"{path}, data row {row} (line {row + 1})"
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.row = row


@dataclass(frozen=True, eq=False)
class FERDataset:
    """Images, labels and split names of FER2013 (or any subset of it), kept aligned.

    ``row_index`` is each image's 1-based data row in the source file, so subsets can always be
    joined back to per-row annotations such as the FER+ votes.
    """

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64 indices into class_names
    usage: np.ndarray  # (N,) str
    row_index: np.ndarray  # (N,) int64, 1-based data row in the source file
    class_names: tuple[str, ...] = FER2013_CLASSES
    source: Path | None = None
    source_sha256: str | None = None
    is_sample: bool = False
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def splits_present(self) -> tuple[str, ...]:
        """The Usage values in this dataset, in the official order."""
        present = set(np.unique(self.usage).tolist())
        ordered = [name for name in KNOWN_USAGES if name in present]
        return tuple(ordered + sorted(present - set(KNOWN_USAGES)))

    def subset(self, selector: np.ndarray | slice | Iterable[int]) -> FERDataset:
        """Rows picked by a boolean mask, an index array or a slice, all arrays kept aligned."""
        if not isinstance(selector, slice):
            selector = np.asarray(selector)
        return replace(
            self,
            images=self.images[selector],
            labels=self.labels[selector],
            usage=self.usage[selector],
            row_index=self.row_index[selector],
        )

    def split(self, usage: str) -> FERDataset:
        """Only the rows of one Usage value (``Training``, ``PublicTest`` or ``PrivateTest``)."""
        if usage not in self.splits_present:
            raise KeyError(f"Split {usage!r} is not in {self.source}; present: {self.splits_present}")
        return self.subset(self.usage == usage)

    def with_merged_disgust(self) -> FERDataset:
        """The report's 6-class version: Disgust relabelled as Angry."""
        if self.class_names != FER2013_CLASSES:
            raise ValueError(f"merge_disgust needs the 7 FER2013 classes, have {self.class_names}")
        return replace(self, labels=merge_disgust(self.labels), class_names=MERGED_CLASSES)

    def class_counts(self) -> dict[str, dict[str, int]]:
        """``{split: {class name: count}}`` for every split present."""
        counts: dict[str, dict[str, int]] = {}
        for usage in self.splits_present:
            labels = self.labels[self.usage == usage]
            tally = np.bincount(labels, minlength=self.num_classes)
            counts[usage] = {name: int(n) for name, n in zip(self.class_names, tally)}
        return counts


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def load_fer2013(
    path: str | os.PathLike[str] | None = None,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> FERDataset:
    """Load a Kaggle-format FER2013 CSV (plain or ``.gz``) into a :class:`FERDataset`.

    ``path`` defaults to :func:`fer_utils.config.find_fer2013_csv` (argument, ``$FER2013_CSV``,
    ``data/raw/``, then the committed sample). With ``cache=True`` the parsed arrays are stored as
    an ``.npz`` in ``data/processed/`` keyed by the file's content, so a second load skips parsing.
    """
    source = config.find_fer2013_csv(path)
    csv_path = source.path
    if not csv_path.is_file():
        what = "is a directory, not a file" if csv_path.is_dir() else "does not exist"
        raise FileNotFoundError(f"FER2013 file {csv_path} (given by {source.found_by}) {what}. {DATA_HINT}")
    cache_path = _cache_path(csv_path, Path(cache_dir) if cache_dir else config.PROCESSED_DATA_DIR)
    if cache and cache_path.exists():
        cached = _read_cache(cache_path)
        if cached is not None:
            return replace(cached, source=csv_path, is_sample=_is_sample(csv_path, source.is_sample))
    raw = _read_bytes(csv_path)
    dataset = parse_fer2013_bytes(raw, csv_path)
    dataset = replace(
        dataset,
        source_sha256=hashlib.sha256(_read_file_bytes(csv_path)).hexdigest(),
        is_sample=_is_sample(csv_path, source.is_sample),
    )
    if cache:
        _write_cache(cache_path, dataset)
    return dataset


def _is_sample(csv_path: Path, found_as_sample: bool) -> bool:
    """The committed sample is flagged however it was reached (fallback or explicit path)."""
    return found_as_sample or csv_path.resolve() == config.SAMPLE_FER2013_CSV.resolve()


def parse_fer2013_bytes(raw: bytes, path: Path | str = "<bytes>") -> FERDataset:
    """Parse the decompressed bytes of a Kaggle-format file; ``path`` is only used in errors."""
    lines = raw.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].strip():
        raise FER2013FormatError(path, "the file is empty (expected a header 'emotion,pixels,Usage')")
    columns = _parse_header(lines[0], path)
    rows = lines[1:]
    if not rows:
        raise FER2013FormatError(path, "the file has a header but no data rows")
    labels, pixel_fields, usage = _split_fields(rows, columns, path)
    images = _parse_pixels(pixel_fields, path)
    return FERDataset(
        images=images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
        labels=labels,
        usage=usage,
        row_index=np.arange(1, len(rows) + 1, dtype=np.int64),
        source=Path(path),
    )


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _read_file_bytes(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _read_bytes(path: Path) -> bytes:
    """File contents, gunzipped when the file starts with the gzip magic number."""
    data = _read_file_bytes(path)
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        from isal import igzip  # about 2.5x faster than the standard library's zlib

        return igzip.decompress(data)
    except ImportError:  # pragma: no cover - isal is a declared dependency
        return gzip.decompress(data)
    except Exception as error:  # corrupt or truncated archive
        raise FER2013FormatError(path, f"could not be decompressed as gzip: {error}") from error


def _parse_header(header_line: bytes, path: Path | str) -> dict[str, int]:
    names = [name.strip().strip('"').strip() for name in _decode(header_line, path, 0).split(",")]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise FER2013FormatError(
            path,
            f"missing column(s) {missing}; the header is {names}, expected {list(REQUIRED_COLUMNS)}",
        )
    return {name: names.index(name) for name in names}


def _decode(line: bytes, path: Path | str, row: int) -> str:
    try:
        return line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as error:
        raise FER2013FormatError(path, f"is not UTF-8 text ({error})", row=row or None) from error


def _split_fields(
    rows: list[bytes], columns: dict[str, int], path: Path | str
) -> tuple[np.ndarray, list[bytes], np.ndarray]:
    n_columns = len(columns)
    emotion_at, pixels_at, usage_at = (columns[name] for name in REQUIRED_COLUMNS)
    labels = np.empty(len(rows), dtype=np.int64)
    pixel_fields: list[bytes] = []
    usage: list[str] = []
    label_map = {str(value).encode(): value for value in range(len(FER2013_CLASSES))}
    for row_number, line in enumerate(rows, start=1):
        fields = line.rstrip(b"\r").split(b",")
        if len(fields) != n_columns:
            raise FER2013FormatError(
                path, f"has {len(fields)} comma-separated fields, expected {n_columns}", row=row_number
            )
        label_text = fields[emotion_at].strip().strip(b'"')
        label = label_map.get(label_text)
        if label is None:
            raise FER2013FormatError(
                path,
                f"emotion {label_text.decode(errors='replace')!r} is not a label 0-6 "
                f"({', '.join(FER2013_CLASSES)})",
                row=row_number,
            )
        labels[row_number - 1] = label
        pixel_fields.append(fields[pixels_at].strip(b" ").strip(b'"'))  # a tab is an error, not padding
        usage.append(fields[usage_at].strip().strip(b'"').decode(errors="replace"))
    usage_array = np.array(usage)
    unknown = sorted(set(np.unique(usage_array).tolist()) - set(KNOWN_USAGES))
    if unknown:
        first_bad = int(np.flatnonzero(np.isin(usage_array, unknown))[0]) + 1
        raise FER2013FormatError(
            path, f"Usage {unknown[0]!r} is not one of {list(KNOWN_USAGES)}", row=first_bad
        )
    return labels, pixel_fields, usage_array


#: The only bytes a pixels field may hold.
_PIXEL_FIELD_BYTES = b"0123456789 "


def _parse_pixels(pixel_fields: list[bytes], path: Path | str) -> np.ndarray:
    """Parse chunks with ``np.loadtxt``'s C reader; diagnose a failing chunk row by row."""
    images = np.empty((len(pixel_fields), PIXELS_PER_IMAGE), dtype=np.uint8)
    for start in range(0, len(pixel_fields), _CHUNK_ROWS):
        chunk = pixel_fields[start : start + _CHUNK_ROWS]
        try:
            parsed = np.loadtxt(chunk, dtype=np.uint8, delimiter=" ", comments=None, ndmin=2)
        except ValueError:
            parsed = None
        # loadtxt skips blank lines, so an empty pixels field shows up as a missing row; it also
        # reads "+5" or "5\t" as 5, which the Kaggle format (digits and single spaces) does not allow
        if (
            parsed is None
            or parsed.shape != (len(chunk), PIXELS_PER_IMAGE)
            or any(field.translate(None, _PIXEL_FIELD_BYTES) for field in chunk)
        ):
            for offset, field_bytes in enumerate(chunk):
                _diagnose_pixel_field(field_bytes, path, row=start + offset + 1)
            raise FER2013FormatError(path, "pixels could not be parsed (no single row to blame)")
        images[start : start + len(chunk)] = parsed
    return images


def _diagnose_pixel_field(field_bytes: bytes, path: Path | str, row: int) -> None:
    """Raise a precise error for one malformed ``pixels`` field; return if the field is valid."""
    tokens = field_bytes.split(b" ")
    if len(tokens) != PIXELS_PER_IMAGE:
        words = len(field_bytes.split())
        extra = " (with repeated or stray spaces)" if words != len(tokens) else ""
        raise FER2013FormatError(
            path, f"has {len(tokens)} pixel values{extra}, expected {PIXELS_PER_IMAGE} (48x48)", row=row
        )
    for position, token in enumerate(tokens, start=1):
        if not token.isdigit():
            raise FER2013FormatError(
                path,
                f"pixel {position} is {token.decode(errors='replace')!r}, not an integer 0-255",
                row=row,
            )
        if int(token) > 255:
            raise FER2013FormatError(
                path, f"pixel {position} is {int(token)}, outside the 8-bit range 0-255", row=row
            )


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def _cache_path(csv_path: Path, cache_dir: Path) -> Path:
    """Keyed on the file's content (SHA-256), so any edit, whatever its size and time, misses the cache."""
    with csv_path.open("rb") as handle:
        content = hashlib.file_digest(handle, "sha256").hexdigest()
    digest = hashlib.sha1(f"{content}|v{_CACHE_FORMAT_VERSION}".encode()).hexdigest()[:16]
    stem = csv_path.name.split(".")[0]
    return cache_dir / f"{stem}-{digest}.npz"


def _write_cache(cache_path: Path, dataset: FERDataset) -> None:
    """Write atomically (temp file then rename) so a killed process never leaves half a cache."""
    try:
        with atomic_path(cache_path) as temporary:
            np.savez(
                temporary,
                images=dataset.images,
                labels=dataset.labels.astype(np.int8),
                usage=dataset.usage.astype("U16"),
                row_index=dataset.row_index,
                source_sha256=np.array(dataset.source_sha256 or ""),
            )
    except OSError:
        pass  # a read-only checkout just goes without a cache


def _read_cache(cache_path: Path) -> FERDataset | None:
    try:
        with np.load(cache_path, allow_pickle=False) as arrays:
            return FERDataset(
                images=arrays["images"],
                labels=arrays["labels"].astype(np.int64),
                usage=arrays["usage"],
                row_index=arrays["row_index"],
                source_sha256=str(arrays["source_sha256"]) or None,
            )
    except (OSError, KeyError, ValueError):
        return None  # unreadable cache: parse the CSV again


def write_fer2013_csv(dataset: FERDataset, path: str | os.PathLike[str]) -> Path:
    """Write ``dataset`` in the Kaggle format (gzip-compressed when ``path`` ends in ``.gz``)."""
    path = Path(path)
    lines = ["emotion,pixels,Usage"]
    for image, label, usage in zip(dataset.images, dataset.labels, dataset.usage):
        lines.append(f"{int(label)},{' '.join(map(str, image.reshape(-1).tolist()))},{usage}")
    payload = ("\n".join(lines) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=9, mtime=0)
    path.write_bytes(payload)
    return path
