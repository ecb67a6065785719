"""Loading FER2013 in the Kaggle format: round trips, cache, dataset helpers, and strict errors."""

from __future__ import annotations

import gzip
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import HEADER, build_dataset, pixel_text, valid_row
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_utils.data.fer2013 import (
    KNOWN_USAGES,
    PIXELS_PER_IMAGE,
    FER2013FormatError,
    FERDataset,
    load_fer2013,
    parse_fer2013_bytes,
    write_fer2013_csv,
)
from fer_utils.data.labels import FER2013_CLASSES, MERGED_CLASSES


def assert_same_data(loaded: FERDataset, expected: FERDataset) -> None:
    assert loaded.images.dtype == np.uint8
    assert loaded.images.shape == expected.images.shape
    np.testing.assert_array_equal(loaded.images, expected.images)
    np.testing.assert_array_equal(loaded.labels, expected.labels)
    np.testing.assert_array_equal(loaded.usage, expected.usage)
    np.testing.assert_array_equal(loaded.row_index, np.arange(1, len(expected) + 1))


def assert_format_error(error: pytest.ExceptionInfo, path: Path, row: int | None, *words: str) -> None:
    """The error names the file, the row (attribute and text) and the problem."""
    message = str(error.value)
    assert error.value.row == row
    assert path.name in message
    if row is not None:
        assert f"data row {row} " in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


MIXED_USAGE = ["Training"] * 5 + ["PublicTest"] * 3 + ["PrivateTest"] * 2


@pytest.mark.parametrize("name", ["fer.csv", "fer.csv.gz"])
def test_round_trip_preserves_everything(make_rows, write_csv, name):
    original = make_rows(10, usage=MIXED_USAGE, labels=[0, 1, 2, 3, 4, 5, 6, 6, 3, 0])
    path = write_csv(original, name)
    loaded = load_fer2013(path, cache=False)
    assert_same_data(loaded, original)
    assert loaded.source == path
    assert loaded.class_names == FER2013_CLASSES
    assert loaded.is_sample is False


def test_gz_file_is_really_compressed(make_rows, write_csv):
    path = write_csv(make_rows(3), "fer.csv.gz")
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(path.read_bytes()).startswith(HEADER.encode())


def test_source_sha256_is_the_file_hash(make_rows, write_csv):
    import hashlib

    path = write_csv(make_rows(3), "fer.csv.gz")
    assert load_fer2013(path, cache=False).source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "header, row_format",
    [
        ("emotion, Usage, pixels", "{label}, {usage}, {pixels}"),
        ("pixels,Usage,emotion", "{pixels},{usage},{label}"),
        ('"emotion","pixels","Usage"', '"{label}","{pixels}","{usage}"'),
        ("Usage,emotion,pixels,extra", "{usage},{label},{pixels},ignored"),
    ],
)
def test_column_order_spaces_and_quotes_in_header(make_rows, write_lines, header, row_format):
    original = make_rows(4, usage=["Training", "PublicTest", "Training", "PrivateTest"])
    lines = [header] + [
        row_format.format(label=label, usage=usage, pixels=pixel_text(image))
        for image, label, usage in zip(original.images, original.labels, original.usage)
    ]
    loaded = load_fer2013(write_lines(lines, "reordered.csv"), cache=False)
    assert_same_data(loaded, original)


def test_windows_line_endings_and_trailing_blank_lines(make_rows, tmp_path):
    original = make_rows(3)
    text = "\r\n".join(
        [HEADER]
        + [
            f"{label},{pixel_text(i)},{u}"
            for i, label, u in zip(original.images, original.labels, original.usage)
        ]
    )
    path = tmp_path / "crlf.csv"
    path.write_bytes((text + "\r\n\r\n\n").encode())
    assert_same_data(load_fer2013(path, cache=False), original)


def test_many_rows_across_parse_chunks_none_dropped(big_file_lines, write_lines):
    """More rows than one parse chunk (2,048): every row comes back, in order."""
    path = write_lines(big_file_lines, "big.csv")
    loaded = load_fer2013(path, cache=False)
    assert len(loaded) == len(big_file_lines) - 1
    np.testing.assert_array_equal(loaded.row_index, np.arange(1, len(big_file_lines)))
    np.testing.assert_array_equal(loaded.labels, np.arange(len(loaded)) % 7)
    # Every row's pixel value was set from its position, so a shifted or lost row would show.
    np.testing.assert_array_equal(loaded.images[:, 0, 0], np.arange(len(loaded)) % 251)


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def test_cache_file_created_and_second_load_equal(make_rows, write_csv, tmp_path):
    original = make_rows(6, usage=["Training"] * 4 + ["PublicTest"] * 2)
    path = write_csv(original, "fer.csv.gz")
    cache_dir = tmp_path / "cache"
    first = load_fer2013(path, cache_dir=cache_dir)
    cache_files = list(cache_dir.glob("*.npz"))
    assert len(cache_files) == 1
    assert cache_files[0].name.startswith("fer-")

    second = load_fer2013(path, cache_dir=cache_dir)
    assert_same_data(second, original)
    assert second.labels.dtype == first.labels.dtype == np.int64
    assert second.source == path
    assert second.source_sha256 == first.source_sha256
    assert list(cache_dir.glob("*.npz")) == cache_files  # nothing new written


def test_cache_is_really_used(make_rows, write_csv, tmp_path, monkeypatch):
    path = write_csv(make_rows(3), "fer.csv")
    load_fer2013(path, cache_dir=tmp_path)

    import fer_utils.data.fer2013 as fer2013

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again although a cache exists")

    monkeypatch.setattr(fer2013, "parse_fer2013_bytes", no_parsing)
    assert len(load_fer2013(path, cache_dir=tmp_path)) == 3


def test_cache_false_writes_nothing(make_rows, write_csv, tmp_path):
    path = write_csv(make_rows(3), "fer.csv")
    load_fer2013(path, cache=False, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_default_cache_goes_to_processed_dir(make_rows, write_csv):
    """Without ``cache_dir`` the cache lands in config.PROCESSED_DATA_DIR (a temp dir in tests)."""
    from fer_utils import config

    path = write_csv(make_rows(3), "fer.csv")
    load_fer2013(path)
    assert len(list(Path(config.PROCESSED_DATA_DIR).glob("fer-*.npz"))) == 1


@pytest.mark.parametrize("same_size", [True, False], ids=["same-size", "different-size"])
def test_changed_file_is_not_served_from_stale_cache(make_rows, write_csv, tmp_path, same_size):
    first = make_rows(5, seed=1)
    path = write_csv(first, "fer.csv")
    load_fer2013(path, cache_dir=tmp_path / "cache")
    if same_size:  # same images, other single-digit labels: the file size does not change
        second = build_dataset(5, labels=[6, 5, 4, 3, 2], seed=1)
    else:
        second = make_rows(7, seed=2)
    before = os.stat(path)
    write_csv(second, "fer.csv")
    after = os.stat(path)
    assert (after.st_size == before.st_size) == same_size
    if after.st_mtime_ns == before.st_mtime_ns:
        # Rewritten within one tick of a coarse file-system clock; the cache key is
        # (path, size, mtime), so move the clock on as a later edit would.
        os.utime(path, ns=(after.st_atime_ns, after.st_mtime_ns + 1_000_000_000))
    reloaded = load_fer2013(path, cache_dir=tmp_path / "cache")
    assert_same_data(reloaded, second)


def test_corrupt_cache_file_is_ignored(make_rows, write_csv, tmp_path):
    original = make_rows(4)
    path = write_csv(original, "fer.csv")
    load_fer2013(path, cache_dir=tmp_path)
    (cache_file,) = tmp_path.glob("*.npz")
    cache_file.write_bytes(b"not an npz")
    assert_same_data(load_fer2013(path, cache_dir=tmp_path), original)


# --------------------------------------------------------------------------------------------
# FERDataset helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def mixed(make_rows) -> FERDataset:
    return make_rows(10, usage=MIXED_USAGE, labels=[0, 1, 2, 3, 4, 5, 6, 1, 1, 6])


def test_subset_by_mask_index_and_slice_keeps_arrays_aligned(mixed):
    by_index = mixed.subset([7, 2])
    np.testing.assert_array_equal(by_index.row_index, [8, 3])
    np.testing.assert_array_equal(by_index.labels, [1, 2])
    np.testing.assert_array_equal(by_index.usage, ["PublicTest", "Training"])
    np.testing.assert_array_equal(by_index.images, mixed.images[[7, 2]])

    by_mask = mixed.subset(mixed.labels == 1)
    np.testing.assert_array_equal(by_mask.row_index, [2, 8, 9])

    by_slice = mixed.subset(slice(8, None))
    np.testing.assert_array_equal(by_slice.row_index, [9, 10])
    assert by_slice.class_names == mixed.class_names


def test_split_and_splits_present(mixed):
    assert mixed.splits_present == ("Training", "PublicTest", "PrivateTest")
    public = mixed.split("PublicTest")
    assert len(public) == 3
    assert set(public.usage) == {"PublicTest"}
    np.testing.assert_array_equal(public.row_index, [6, 7, 8])
    assert public.splits_present == ("PublicTest",)


def test_splits_present_is_in_official_order(make_rows):
    data = make_rows(3, usage=["PrivateTest", "PublicTest", "Training"])
    assert data.splits_present == KNOWN_USAGES


def test_split_missing_raises_key_error(make_rows):
    with pytest.raises(KeyError, match="PrivateTest"):
        make_rows(3).split("PrivateTest")


def test_class_counts(mixed):
    counts = mixed.class_counts()
    assert list(counts) == ["Training", "PublicTest", "PrivateTest"]
    assert counts["Training"] == dict(zip(FER2013_CLASSES, [1, 1, 1, 1, 1, 0, 0]))
    assert counts["PublicTest"] == dict(zip(FER2013_CLASSES, [0, 1, 0, 0, 0, 1, 1]))
    assert counts["PrivateTest"] == dict(zip(FER2013_CLASSES, [0, 1, 0, 0, 0, 0, 1]))
    assert sum(sum(c.values()) for c in counts.values()) == len(mixed)


def test_with_merged_disgust(mixed):
    merged = mixed.with_merged_disgust()
    assert merged.class_names == MERGED_CLASSES
    assert merged.num_classes == 6
    np.testing.assert_array_equal(merged.labels, [0, 0, 1, 2, 3, 4, 5, 0, 0, 5])
    np.testing.assert_array_equal(mixed.labels, [0, 1, 2, 3, 4, 5, 6, 1, 1, 6])  # original untouched
    assert merged.class_counts()["Training"] == dict(zip(MERGED_CLASSES, [2, 1, 1, 1, 0, 0]))
    with pytest.raises(ValueError, match="7 FER2013 classes"):
        merged.with_merged_disgust()


# --------------------------------------------------------------------------------------------
# Bad input: every error names the file and the row
# --------------------------------------------------------------------------------------------


def three_rows() -> list[str]:
    return [HEADER, valid_row(0), valid_row(3, "PublicTest"), valid_row(6)]


def replace_pixel(line: str, position: int, token: str) -> str:
    label, pixels, usage = line.split(",")
    tokens = pixels.split(" ")
    tokens[position] = token
    return f"{label},{' '.join(tokens)},{usage}"


@pytest.mark.parametrize(
    "header, missing",
    [("emotion,pixels", "Usage"), ("emotion,Usage", "pixels"), ("label,pixels,Usage", "emotion")],
)
def test_missing_column(write_lines, header, missing):
    path = write_lines([header, "0,1 2,Training"])
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, None, "missing column", repr(missing))


@pytest.mark.parametrize("count", [2303, 2305, 1])
def test_wrong_pixel_count(write_lines, count):
    lines = three_rows()
    lines[2] = f"3,{' '.join(['9'] * count)},PublicTest"
    path = write_lines(lines)
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, 2, f"has {count} pixel values", "2304")


def test_repeated_space_in_pixels(write_lines):
    lines = three_rows()
    lines[3] = lines[3].replace("7 7", "7  7", 1)  # 2,304 values, but one double space
    path = write_lines(lines)
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, 3, "has 2305 pixel values (with repeated or stray spaces)")


def test_empty_pixel_value(write_lines):
    lines = three_rows()
    lines[3] = replace_pixel(lines[3], 10, "")  # 2,303 values and a gap: "7  7"
    path = write_lines(lines)
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, 3, "pixel 11 is ''")


@pytest.mark.parametrize(
    "token, words",
    [
        ("12a", ["'12a'", "not an integer"]),
        ("abc", ["'abc'", "not an integer"]),
        ("3.5", ["'3.5'", "not an integer"]),
        ("-1", ["'-1'", "not an integer"]),
        ("+5", ["'+5'", "not an integer"]),
        ("256", ["256", "outside the 8-bit range"]),
        ("1000", ["1000", "outside the 8-bit range"]),
        ("#", ["'#'", "not an integer"]),
    ],
)
@pytest.mark.parametrize("position", [0, 1000, PIXELS_PER_IMAGE - 1])
def test_bad_pixel_value(write_lines, token, words, position):
    lines = three_rows()
    lines[2] = replace_pixel(lines[2], position, token)
    path = write_lines(lines)
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, 2, f"pixel {position + 1} ", *words)


def test_comment_character_does_not_hide_pixels(write_lines):
    """'#' must not start a comment: here it would silently swallow two extra values."""
    lines = three_rows()
    lines[3] = f"6,{' '.join(['7'] * (PIXELS_PER_IMAGE - 1))} 5#6 7,Training"  # 2,305 values
    path = write_lines(lines)
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert error.value.row == 3


@pytest.mark.filterwarnings("ignore:loadtxt. input contained no data")
@pytest.mark.parametrize("pixels", ["", '""', " "])
@pytest.mark.parametrize("n_rows, bad_row", [(1, 1), (2, 2), (3, 2)])
def test_empty_pixels_field(write_lines, pixels, n_rows, bad_row):
    """An empty field must not vanish (loadtxt skips blank lines) nor borrow another row's pixels."""
    lines = three_rows()[: n_rows + 1]
    lines[bad_row] = f"3,{pixels},Training"
    path = write_lines(lines)
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, bad_row, "pixel values", "expected 2304")


@pytest.mark.parametrize("label", ["7", "x", "-1", "", "3.0", "10"])
def test_bad_label(write_lines, label):
    lines = three_rows()
    lines[3] = f"{label}{lines[3][1:]}"
    path = write_lines(lines)
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, 3, f"emotion {label!r}", "0-6")


@pytest.mark.parametrize("usage", ["Validation", "training", "", "Test"])
def test_unknown_usage(write_lines, usage):
    lines = three_rows()
    lines[2] = lines[2].replace(",PublicTest", f",{usage}")
    path = write_lines(lines)
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, 2, f"Usage {usage!r}", "PrivateTest")


@pytest.mark.parametrize("row", [1, 3])
def test_wrong_number_of_fields(write_lines, row):
    lines = three_rows()
    lines[row] = lines[row] + ",extra"
    path = write_lines(lines)
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, row, "4 comma-separated fields", "expected 3")


def test_blank_line_in_the_middle_is_an_error(write_lines):
    lines = three_rows()
    lines.insert(2, "")
    path = write_lines(lines)
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, 2, "1 comma-separated fields")


@pytest.mark.parametrize("content", [b"", b"\n\n", b"   \n"], ids=["0-bytes", "newlines", "spaces"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, None, "empty")


def test_empty_gzip_file(tmp_path):
    path = tmp_path / "empty.csv.gz"
    path.write_bytes(gzip.compress(b""))
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, None, "empty")


def test_header_only(write_lines):
    path = write_lines([HEADER])
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, None, "no data rows")


def test_missing_file_hints_at_env_var(tmp_path):
    path = tmp_path / "nowhere" / "fer2013.csv"
    with pytest.raises(FileNotFoundError) as error:
        load_fer2013(path, cache=False)
    message = str(error.value)
    assert str(path) in message
    assert "does not exist" in message
    assert "FER2013_CSV" in message
    assert "argument" in message


def test_missing_file_from_env_var_names_the_variable_source(tmp_path, monkeypatch):
    path = tmp_path / "gone.csv"
    monkeypatch.setenv("FER2013_CSV", str(path))
    with pytest.raises(FileNotFoundError, match="given by environment") as error:
        load_fer2013(cache=False)
    assert str(path) in str(error.value)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_fer2013(tmp_path, cache=False)
    assert "is a directory" in str(error.value)
    assert str(tmp_path) in str(error.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bad-crc"])
def test_corrupt_gzip(make_rows, write_csv, damage):
    path = write_csv(make_rows(5), "fer.csv.gz")
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data = b"\x1f\x8b" + b"this is not deflate data" * 10
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[-6] ^= 0xFF  # flip bits in the stored CRC-32
    path.write_bytes(bytes(data))
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, None, "gzip")


def test_not_utf8_header(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("émotion,pixels,Usage\n".encode("latin-1") + valid_row().encode() + b"\n")
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert path.name in str(error.value)


# Bad rows past the first parse chunk: the reported row must be the real one.

BIG_ROWS = 3100


@pytest.fixture(scope="module")
def big_file_lines() -> list[str]:
    """A valid file of 3,100 rows (more than one 2,048-row parse chunk); row k's pixels are k % 251."""
    rest = " 0" * (PIXELS_PER_IMAGE - 1)
    return [HEADER] + [f"{k % 7},{k % 251}{rest},Training" for k in range(BIG_ROWS)]


@pytest.mark.parametrize(
    "problem, row",
    [
        ("pixel", 1),
        ("pixel", 2048),
        ("pixel", 2049),
        ("pixel", 3000),
        ("pixel", BIG_ROWS),
        ("count", 3000),
        ("label", 3000),
        ("usage", 3000),
    ],
)
def test_bad_row_deep_in_a_big_file(big_file_lines, write_lines, row, problem):
    lines = list(big_file_lines)
    if problem == "pixel":
        lines[row] = replace_pixel(lines[row], 100, "x1")
    elif problem == "count":
        lines[row] = lines[row].replace(" 0,", ",", 1)
    elif problem == "label":
        lines[row] = "9" + lines[row][1:]
    else:
        lines[row] = lines[row].replace(",Training", ",Validation")
    path = write_lines(lines, "big.csv")
    with pytest.raises(FER2013FormatError) as error:
        load_fer2013(path, cache=False)
    assert_format_error(error, path, row)
    assert f"(line {row + 1})" in str(error.value)


# --------------------------------------------------------------------------------------------
# Property-based tests
# --------------------------------------------------------------------------------------------

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def datasets(draw) -> FERDataset:
    n = draw(st.integers(1, 20))
    labels = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    usage = draw(st.lists(st.sampled_from(KNOWN_USAGES), min_size=n, max_size=n))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # Mix uniform noise with extreme values so 0 and 255 turn up often.
    images = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    images[rng.random(images.shape) < 0.1] = 0
    images[rng.random(images.shape) < 0.1] = 255
    return FERDataset(
        images=images,
        labels=np.array(labels, dtype=np.int64),
        usage=np.array(usage),
        row_index=np.arange(1, n + 1, dtype=np.int64),
    )


@FUZZ
@given(dataset=datasets(), compressed=st.booleans())
def test_fuzz_round_trip(dataset, compressed):
    with tempfile.TemporaryDirectory() as folder:
        path = write_fer2013_csv(dataset, Path(folder) / ("fuzz.csv.gz" if compressed else "fuzz.csv"))
        loaded = load_fer2013(path, cache=False)
    assert_same_data(loaded, dataset)
    assert loaded.class_counts() == {
        usage: {
            name: int(np.sum((dataset.usage == usage) & (dataset.labels == k)))
            for k, name in enumerate(FER2013_CLASSES)
        }
        for usage in loaded.splits_present
    }


def _is_valid_pixel(token: str) -> bool:
    return re.fullmatch(r"[0-9]+", token) is not None and int(token) <= 255


# "+5" included: NumPy's fast reader would accept it, but the Kaggle format is plain digits.
bad_pixel_tokens = st.one_of(
    st.text(alphabet="0123456789-.#eEx+", min_size=0, max_size=5),
    st.integers(256, 10**6).map(str),
    st.integers(-255, -1).map(str),
).filter(lambda token: not _is_valid_pixel(token))
bad_labels = st.text(alphabet="0123456789-.x ", max_size=3).filter(
    lambda t: t.strip() not in {str(k) for k in range(7)}
)
bad_usages = st.text(alphabet="abcdefghijklmnopqrstuvwxyzPT", max_size=12).filter(
    lambda t: t not in KNOWN_USAGES
)


@st.composite
def corrupted_files(draw) -> tuple[bytes, int]:
    """A valid file with one row broken in one random way; returns (bytes, broken data row)."""
    dataset = draw(datasets())
    rows = [
        [str(int(label)), pixel_text(image).split(" "), str(usage)]
        for image, label, usage in zip(dataset.images, dataset.labels, dataset.usage)
    ]
    row = draw(st.integers(1, len(rows)))
    target = rows[row - 1]
    kind = draw(st.sampled_from(["pixel", "drop", "add", "empty", "label", "usage", "comma"]))
    position = draw(st.integers(0, PIXELS_PER_IMAGE - 1))
    if kind == "pixel":
        target[1][position] = draw(bad_pixel_tokens)
    elif kind == "drop":
        del target[1][position]
    elif kind == "add":
        target[1].insert(position, str(draw(st.integers(0, 255))))
    elif kind == "empty":
        target[1] = []
    elif kind == "label":
        target[0] = draw(bad_labels)
    elif kind == "usage":
        target[2] = draw(bad_usages)
    else:
        target[2] = target[2] + "," + draw(st.sampled_from(["", "x", "0"]))
    text = "\n".join([HEADER] + [f"{label},{' '.join(pixels)},{usage}" for label, pixels, usage in rows])
    return (text + "\n").encode(), row


@pytest.mark.filterwarnings("ignore:loadtxt. input contained no data")
@FUZZ
@given(case=corrupted_files())
def test_fuzz_single_corruption_is_reported_at_its_row(case):
    raw, row = case
    with pytest.raises(FER2013FormatError) as error:
        parse_fer2013_bytes(raw, "fuzzed.csv")
    assert error.value.row == row
    assert str(error.value).startswith(f"fuzzed.csv, data row {row} (line {row + 1}): ")


# --------------------------------------------------------------------------------------------
# The real file
# --------------------------------------------------------------------------------------------

EXPECTED_COUNTS = {
    "Training": dict(zip(FER2013_CLASSES, [3995, 436, 4097, 7215, 4831, 3171, 4964])),
    "PublicTest": dict(zip(FER2013_CLASSES, [467, 56, 496, 895, 653, 415, 607])),
}


@pytest.mark.full_data
def test_full_file_loads_with_published_counts(full_dataset):
    data = full_dataset
    assert data.images.dtype == np.uint8
    assert data.images.shape[1:] == (48, 48)
    assert data.images.shape[0] == len(data.labels) == len(data.usage) == len(data.row_index)
    np.testing.assert_array_equal(data.row_index, np.arange(1, len(data) + 1))
    counts = data.class_counts()
    for split, expected in EXPECTED_COUNTS.items():
        assert counts[split] == expected, split
    # Every row is accounted for by the listed splits (PrivateTest only in the full Kaggle file).
    assert set(data.splits_present) <= set(KNOWN_USAGES)
    if "PrivateTest" not in data.splits_present:
        assert len(data) == sum(sum(c.values()) for c in EXPECTED_COUNTS.values())


@pytest.mark.full_data
def test_full_file_parse_matches_cached_load(full_data_csv, full_dataset):
    """Parse the real file afresh (no cache): same arrays as the session's (possibly cached) load."""
    parsed = load_fer2013(full_data_csv, cache=False)
    assert_same_data(parsed, full_dataset)
    assert parsed.source_sha256 == full_dataset.source_sha256
