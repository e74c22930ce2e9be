"""Uploaded files are kept inside GANMM_HOME/uploads whatever their name says."""

import pytest

from ganmm import data
from ganmm.errors import DataError
from ganmm.uploads import safe_filename, save_upload, uploads_dir


@pytest.mark.parametrize("name, kept", [
    ("points.csv", "points.csv"),
    ("../../etc/passwd.csv", "passwd.csv"),
    ("..\\..\\win.ini.tsv", "win.ini.tsv"),
    ("my data (1).csv", "my_data_1_.csv"),
    (".hidden.npy", "hidden.npy"),
    ("/abs/path/train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz"),
])
def test_names_are_made_safe(name, kept):
    assert safe_filename(name) == kept


@pytest.mark.parametrize("name", ["notes.pdf", "....", "model.pkl"])
def test_unknown_or_empty_names_are_refused(name):
    with pytest.raises(DataError):
        safe_filename(name)


def test_an_upload_stays_under_the_uploads_folder_and_loads_again(ganmm_home):
    content = b"x,y,label\n" + b"".join(b"%d,%d,%s\n" % (i, i * i % 5, b"ab"[i % 2:i % 2 + 1]) for i in range(20))
    path = save_upload("../../../escape.csv", content)
    root = uploads_dir().resolve()
    assert path.resolve().is_relative_to(root) and path.name == "escape.csv"
    assert path.read_bytes() == content
    assert save_upload("escape.csv", content) == path  # same bytes, same place
    other = save_upload("escape.csv", content + b"20,0,a\n")
    assert other != path and other.parent.parent == path.parent.parent
    ds = data.load(str(path), label_column="label")
    assert ds.n_samples == 20 and ds.name == "escape"
    assert [p for p in ganmm_home.rglob("*") if p.is_file() and not p.resolve().is_relative_to(root)] == []
