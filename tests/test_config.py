"""Where the data files are found, and the committed sample that stands in for them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from fer_utils import config
from fer_utils.config import SampleDataWarning, find_fer2013_csv, find_ferplus_csv
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.data.ferplus import load_ferplus
from fer_utils.data.labels import FER2013_CLASSES

# (finder, environment variable, name of the conventional-paths attribute, sample path)
FINDERS = [
    pytest.param(
        find_fer2013_csv, "FER2013_CSV", "CONVENTIONAL_FER2013_PATHS", config.SAMPLE_FER2013_CSV, id="fer2013"
    ),
    pytest.param(
        find_ferplus_csv, "FERPLUS_CSV", "CONVENTIONAL_FERPLUS_PATHS", config.SAMPLE_FERPLUS_CSV, id="ferplus"
    ),
]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Distinct existing files for each lookup level."""
    paths = {name: tmp_path / name / "data.csv" for name in ("argument", "environment", "conventional")}
    for path in paths.values():
        path.parent.mkdir()
        path.write_text("x\n")
    return paths


@pytest.mark.parametrize("finder, env_var, conventional_attr, sample", FINDERS)
class TestPrecedence:
    def test_argument_beats_everything(self, monkeypatch, files, finder, env_var, conventional_attr, sample):
        monkeypatch.setenv(env_var, str(files["environment"]))
        monkeypatch.setattr(config, conventional_attr, (files["conventional"],))
        with warnings.catch_warnings():
            warnings.simplefilter("error", SampleDataWarning)
            found = finder(files["argument"])
        assert found == config.DataSource(files["argument"], is_sample=False, found_by="argument")

    def test_argument_as_string_and_missing_file_still_returned(
        self, tmp_path, finder, env_var, conventional_attr, sample
    ):
        missing = tmp_path / "not-there.csv"
        found = finder(str(missing))
        assert found.path == missing and found.found_by == "argument" and not found.is_sample

    def test_environment_beats_conventional_path(
        self, monkeypatch, files, finder, env_var, conventional_attr, sample
    ):
        monkeypatch.setenv(env_var, f"  {files['environment']}  ")  # surrounding spaces are ignored
        monkeypatch.setattr(config, conventional_attr, (files["conventional"],))
        found = finder()
        assert found == config.DataSource(files["environment"], is_sample=False, found_by="environment")

    def test_empty_argument_and_blank_env_are_ignored(
        self, monkeypatch, files, finder, env_var, conventional_attr, sample
    ):
        monkeypatch.setenv(env_var, "   ")
        monkeypatch.setattr(config, conventional_attr, (files["conventional"],))
        assert finder("").found_by == "conventional path"

    def test_missing_env_file_is_still_returned(
        self, monkeypatch, tmp_path, files, finder, env_var, conventional_attr, sample
    ):
        """A wrong variable must not silently fall through to another file."""
        monkeypatch.setenv(env_var, str(tmp_path / "typo.csv"))
        monkeypatch.setattr(config, conventional_attr, (files["conventional"],))
        found = finder()
        assert found.path == tmp_path / "typo.csv" and found.found_by == "environment"

    def test_conventional_path_beats_sample(
        self, monkeypatch, tmp_path, files, finder, env_var, conventional_attr, sample
    ):
        monkeypatch.setattr(config, conventional_attr, (tmp_path / "absent.csv", files["conventional"]))
        with warnings.catch_warnings():
            warnings.simplefilter("error", SampleDataWarning)
            found = finder()
        assert found == config.DataSource(
            files["conventional"], is_sample=False, found_by="conventional path"
        )

    def test_sample_is_last_and_warns(self, no_conventional_data, finder, env_var, conventional_attr, sample):
        with pytest.warns(SampleDataWarning, match=env_var) as record:
            found = finder()
        assert found == config.DataSource(sample, is_sample=True, found_by="sample")
        assert "NOT" in str(record[0].message) and "comparable" in str(record[0].message)
        assert issubclass(SampleDataWarning, UserWarning)

    def test_sample_warning_can_be_turned_off(
        self, no_conventional_data, finder, env_var, conventional_attr, sample
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error", SampleDataWarning)
            found = finder(warn_on_sample=False)
        assert found.is_sample and found.path == sample


def test_sample_files_are_committed():
    assert config.SAMPLE_FER2013_CSV.is_file()
    assert config.SAMPLE_FERPLUS_CSV.is_file()
    assert config.SAMPLE_FER2013_CSV.parent == config.SAMPLE_DATA_DIR


def test_default_load_falls_back_to_sample(no_conventional_data):
    with pytest.warns(SampleDataWarning):
        dataset = load_fer2013(cache=False)
    assert dataset.is_sample
    assert dataset.source == config.SAMPLE_FER2013_CSV


@pytest.fixture(scope="module")
def sample():
    return load_fer2013(config.SAMPLE_FER2013_CSV, cache=False)


def test_sample_loads_with_all_classes_in_training_and_publictest(sample):
    assert sample.images.shape[1:] == (48, 48)
    assert sample.images.dtype == np.uint8
    counts = sample.class_counts()
    for split in ("Training", "PublicTest"):
        assert set(counts[split]) == set(FER2013_CLASSES)
        assert all(n > 0 for n in counts[split].values()), (split, counts[split])
    assert sample.is_sample  # flagged however it is reached, explicit path included


def test_sample_ferplus_aligns_with_sample(sample):
    votes = load_ferplus(config.SAMPLE_FERPLUS_CSV)
    assert len(votes) == len(sample)
    aligned = votes.aligned_with(sample)
    np.testing.assert_array_equal(aligned.usage, sample.usage)
    np.testing.assert_array_equal(aligned.row_index, sample.row_index)
    assert (aligned.votes.sum(axis=1) > 0).all()


def test_sample_ferplus_found_by_default(no_conventional_data):
    with pytest.warns(SampleDataWarning, match="FERPLUS_CSV"):
        votes = load_ferplus()
    assert votes.source == config.SAMPLE_FERPLUS_CSV


def test_other_faces_folder_comes_from_the_argument_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(config.OTHER_FACES_ENV_VAR, raising=False)
    assert config.find_other_faces_dir() is None
    monkeypatch.setenv(config.OTHER_FACES_ENV_VAR, str(tmp_path))
    assert config.find_other_faces_dir() == tmp_path
    given = tmp_path / "given"
    given.mkdir()
    assert config.find_other_faces_dir(given) == given
    with pytest.raises(FileNotFoundError, match="missing.*given"):
        config.find_other_faces_dir(tmp_path / "missing")
    monkeypatch.setenv(config.OTHER_FACES_ENV_VAR, str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match=f"gone.*\\${config.OTHER_FACES_ENV_VAR}"):
        config.find_other_faces_dir()
