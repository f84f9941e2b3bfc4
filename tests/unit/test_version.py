import os

from rbdsr import version


def test_version_file_matches_scheme():
    v = version.read_version()
    assert v != "unknown"
    x, y, z = v.split(".")
    assert y in ("0", "1", "2")


def test_release_stage():
    assert version.release_stage("1.0.3") == "pre-release"
    assert version.release_stage("1.1.0") == "testing"
    assert version.release_stage("2.2.7") == "stable"
    assert version.release_stage("1.9.0") == "unknown"


def test_missing_or_malformed_file(tmp_path):
    assert version.read_version(str(tmp_path / "nope")) == "unknown"
    bad = tmp_path / "VERSION"
    bad.write_text("1.0\n")
    assert version.read_version(str(bad)) == "unknown"
    good = tmp_path / "V2"
    good.write_text("3.2.1\n")
    assert version.read_version(str(good)) == "3.2.1"


def test_version_file_location():
    assert os.path.basename(version.version_file()) == "VERSION"
    assert os.path.exists(version.version_file())
