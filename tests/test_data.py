"""Tests of ganmm.data: built-ins, scaling, every file format, every bad input."""

from __future__ import annotations

import gzip
import io
import pickle
import random
import struct
import zipfile

import numpy as np
import pytest

from ganmm.data import (
    BUILTINS, DEFAULT_LIMITS, Dataset, Limits, csv_column_kinds, csv_columns, csv_head_info, encode_labels,
    from_arrays,
    list_builtins, load, load_builtin, load_bytes, validate,
)
from ganmm.errors import DataError
from ganmm.loaders import csv_head_info as head_info_of, label_guess

TWO_D = ["blobs", "moons", "circles", "aniso", "varied", "spirals"]


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #

def idx_bytes(arr: np.ndarray, code: int = 0x08, dims: tuple[int, ...] | None = None) -> bytes:
    """Write an IDX file by hand: magic, big-endian dims, big-endian data."""
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    dims = arr.shape if dims is None else dims
    header = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return header + arr.astype(dtypes[code]).tobytes()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def write(tmp_path, name: str, content: bytes | str):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def images(n: int = 12, h: int = 4, w: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w), dtype=np.uint8)


def raises(match: str):
    return pytest.raises(DataError, match=match)


# --------------------------------------------------------------------------- #
# built-ins
# --------------------------------------------------------------------------- #

def test_list_builtins_names_and_descriptions():
    names = [name for name, _ in list_builtins()]
    assert names == list(BUILTINS)
    assert {"mnist5k", "digits", *TWO_D} <= set(names)
    for name, description in list_builtins():
        assert "k = " in description, name  # the natural number of clusters


def test_mnist5k_is_real_mnist_scaled_to_unit_interval():
    ds = load_builtin("mnist5k")
    assert ds.X.shape == (5000, 784) and ds.X.dtype == np.float32
    assert ds.kind == "image" and ds.image_shape == (28, 28)
    assert ds.n_classes == 10 and ds.label_names == tuple(str(i) for i in range(10))
    assert np.bincount(ds.y).tolist() == [500] * 10
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    original = ds.inverse(ds.X)
    assert np.allclose(original, np.round(original), atol=1e-3)
    assert original.min() == 0 and round(float(original.max())) == 255
    assert ds.fingerprint() == load_builtin("mnist5k").fingerprint()


def test_digits_divided_by_16():
    ds = load_builtin("digits")
    assert ds.X.shape == (1797, 64) and ds.image_shape == (8, 8) and ds.kind == "image"
    assert ds.n_classes == 10 and ds.y.dtype == np.int64
    assert ds.X.max() == 1.0 and np.all(ds.scale == 16) and np.all(ds.offset == 0)
    assert np.allclose(ds.inverse(ds.X).max(), 16)


@pytest.mark.parametrize("name, k", [("blobs", 3), ("moons", 2), ("circles", 2), ("aniso", 3), ("varied", 3), ("spirals", 2)])
def test_two_d_sets_standardised_and_seeded(name, k):
    ds = load_builtin(name, seed=3)
    assert ds.kind == "2d" and ds.n_features == 2 and 1000 <= ds.n_samples <= 1500
    assert ds.n_classes == k and set(np.unique(ds.y)) == set(range(k))
    assert np.allclose(ds.X.mean(axis=0), 0, atol=1e-5) and np.allclose(ds.X.std(axis=0), 1, atol=1e-4)
    again, other = load_builtin(name, seed=3), load_builtin(name, seed=4)
    assert np.array_equal(ds.X, again.X) and np.array_equal(ds.y, again.y)
    assert ds.fingerprint() == again.fingerprint() != other.fingerprint()


def test_spirals_defeat_a_gaussian_mixture():
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import GaussianMixture

    ds = load_builtin("spirals")
    pred = GaussianMixture(2, random_state=0).fit(ds.X).predict(ds.X)
    assert adjusted_rand_score(ds.y, pred) < 0.3


def test_unknown_builtin_lists_valid_names():
    with raises("choose one of: mnist5k, digits"):
        load_builtin("mnist6k")


def test_load_accepts_builtin_names_and_reports_missing_path(tmp_path):
    assert load("Moons", seed=1).name == "moons"
    with raises(r"no such file or built-in dataset: .*nothing\.csv; built-ins are: mnist5k"):
        load(str(tmp_path / "nothing.csv"))


# --------------------------------------------------------------------------- #
# scaling and the record
# --------------------------------------------------------------------------- #

def test_tabular_standardisation_round_trip():
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[100.0, -3.0, 0.0], scale=[20.0, 0.1, 5.0], size=(200, 3))
    X[:, 2] = 7.0  # a constant column must not be divided by zero
    ds = from_arrays(X, name="t")
    assert ds.kind == "tabular"
    assert np.allclose(ds.X[:, :2].mean(axis=0), 0, atol=1e-5)
    assert np.allclose(ds.X[:, :2].std(axis=0), 1, atol=1e-4)
    assert np.all(ds.X[:, 2] == 0) and ds.scale[2] == 1 and ds.offset[2] == 7
    assert np.allclose(ds.inverse(ds.X), X, rtol=1e-5, atol=1e-4)
    assert np.allclose(ds.offset, X.mean(axis=0), rtol=1e-6)


def test_record_properties_and_validate_for():
    ds = from_arrays(np.arange(10.0).reshape(5, 2), ["b", "a", "b", "c", "a"])
    assert (ds.n_samples, ds.n_features, ds.n_classes) == (5, 2, 3)
    assert ds.label_names == ("a", "b", "c") and ds.y.tolist() == [1, 0, 1, 2, 0]
    ds.validate_for(5)
    with raises("the data has 5 rows but 10 clusters were asked for; choose at most 5 clusters or add rows"):
        ds.validate_for(10)
    with raises("at least 1 cluster"):
        ds.validate_for(0)
    with raises("do not have the dataset.s 2 features"):
        ds.inverse(np.zeros((3, 4)))


def test_fingerprint_depends_on_labels_and_values():
    X = np.random.default_rng(1).normal(size=(20, 3))
    y = np.arange(20) % 2
    base = from_arrays(X, y).fingerprint()
    assert base == from_arrays(X.copy(), y.copy()).fingerprint()
    assert base != from_arrays(X, None).fingerprint()
    assert base != from_arrays(X, 1 - y).fingerprint()
    assert len(base) == 64


def test_labels_sorted_numerically_when_numbers():
    codes, names = encode_labels(np.array(["10", "2", "1", "2"]))
    assert names == ("1", "2", "10") and codes.tolist() == [2, 1, 0, 1]
    codes, names = encode_labels(np.array([3.0, 1.0, 3.0]))
    assert names == ("1", "3") and codes.dtype == np.int64


def test_image_value_ranges():
    unit = from_arrays(np.random.default_rng(0).uniform(size=(4, 2, 2)))
    assert unit.kind == "image" and np.all(unit.scale == 1)
    signed = from_arrays(np.array([[-1.0, 0.5], [3.0, -1.0]]).reshape(2, 1, 2))
    assert signed.X.min() == 0 and signed.X.max() == 1
    assert np.allclose(signed.inverse(signed.X).reshape(2, 1, 2), [[[-1.0, 0.5]], [[3.0, -1.0]]])


# --------------------------------------------------------------------------- #
# CSV / TSV
# --------------------------------------------------------------------------- #

CSV_WITH_HEADER = "height,weight,species\n1.0,2.0,cat\n2.0,3.5,dog\n3.0,1.0,cat\n4.0,9.0,emu\n"


def test_csv_with_header_and_string_labels(tmp_path):
    ds = load(str(write(tmp_path, "pets.csv", CSV_WITH_HEADER)), label_column="species")
    assert ds.name == "pets" and ds.kind == "2d"
    assert ds.feature_names == ("height", "weight")
    assert ds.label_names == ("cat", "dog", "emu")
    assert ds.y.tolist() == [0, 1, 0, 2]
    assert np.allclose(ds.inverse(ds.X)[:, 1], [2.0, 3.5, 1.0, 9.0])


def test_csv_without_header(tmp_path):
    text = "1,2,3\n4,5,6.5\n7,8,9\n"
    ds = load(str(write(tmp_path, "plain.csv", text)))
    assert ds.feature_names == ("x0", "x1", "x2") and ds.n_samples == 3 and ds.y is None
    assert ds.kind == "tabular"
    assert np.allclose(ds.inverse(ds.X), [[1, 2, 3], [4, 5, 6.5], [7, 8, 9]], atol=1e-5)
    labelled = load(str(write(tmp_path, "plain2.csv", text)), label_column="x2")
    assert labelled.label_names == ("3", "6.5", "9") and labelled.kind == "2d"


def test_tsv_and_semicolon_and_numeric_labels(tmp_path):
    tsv = load(str(write(tmp_path, "a.tsv", "a\tb\tc\tlabel\n1\t2\t3\t10\n4\t5\t7\t2\n7\t8\t8\t2\n")), label_column="label")
    assert tsv.feature_names == ("a", "b", "c") and tsv.label_names == ("2", "10") and tsv.y.tolist() == [1, 0, 0]
    semi = load(str(write(tmp_path, "b.txt", "p;q\n1.5;2\n3;4\n5;7\n")))
    assert semi.feature_names == ("p", "q") and np.allclose(semi.inverse(semi.X)[:, 0], [1.5, 3, 5])


def test_csv_blank_lines_bom_and_quotes(tmp_path):
    text = '\ufeff"a","b"\n\n1,2\n3,4\n\n5,"6"\n'
    ds = load(str(write(tmp_path, "q.csv", text)))
    assert ds.feature_names == ("a", "b") and ds.n_samples == 3


def test_csv_gz_and_load_bytes(tmp_path):
    packed = gzip.compress(CSV_WITH_HEADER.encode())
    from_path = load(str(write(tmp_path, "pets.csv.gz", packed)), label_column="species")
    from_bytes = load_bytes(packed, "pets.csv.gz", label_column="species")
    assert from_path.name == from_bytes.name == "pets"
    assert from_path.fingerprint() == from_bytes.fingerprint()


def test_csv_non_numeric_columns_are_named(tmp_path):
    text = "name,x,city,label\nann,1,paris,a\nbob,2,rome,b\ncy,3,oslo,a\n"
    with raises(r"2 columns that are not numbers \(name, city\); choose one as the label column or remove them"):
        load(str(write(tmp_path, "people.csv", text)), label_column="label")


def test_csv_missing_label_column_lists_columns(tmp_path):
    with raises(r"no column named 'kind'; the columns are: height, weight, species"):
        load(str(write(tmp_path, "pets.csv", CSV_WITH_HEADER)), label_column="kind")


def test_csv_nan_count_and_first_row(tmp_path):
    text = "a,b\n1,2\n3,4\n5,\n7,inf\n9,NaN\n"
    with raises(r"3 missing or infinite values .* first in row 3 \(column b\)"):
        load(str(write(tmp_path, "holes.csv", text)))


def test_csv_ragged_row_names_line(tmp_path):
    text = "a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n"
    with raises("line 4 has 2 fields but the first line has 3"):
        load(str(write(tmp_path, "ragged.csv", text)))
    with raises("line 3 has 4 fields but the first line has 3"):
        load_bytes(b"1,2,3\n4,5,6\n7,8,9,10\n", "long.csv")


def test_csv_empty_and_header_only(tmp_path):
    with raises("the file is empty"):
        load(str(write(tmp_path, "empty.csv", b"")))
    with raises("the file is empty"):
        load(str(write(tmp_path, "blank.csv", "\n  \n")))
    with raises("header but no data rows"):
        load(str(write(tmp_path, "header.csv", "a,b,c\n")))


def test_single_row_refused(tmp_path):
    with raises("needs at least 2 rows"):
        load(str(write(tmp_path, "one.csv", "a,b\n1,2\n")))


def test_all_constant_refused(tmp_path):
    with raises("every feature is constant"):
        load(str(write(tmp_path, "flat.csv", "1,2\n1,2\n1,2\n")))


def test_binary_named_csv_refused():
    with raises("binary"):
        load_bytes(b"\x00\x01\x02garbage", "x.csv")


def test_csv_row_and_feature_limits():
    text = "\n".join(f"{i},{i * 2}" for i in range(11)).encode()
    with raises(r"11 rows but at most 10 .*max_rows"):
        load_bytes(text, "many.csv", limits=Limits(max_rows=10))
    with raises(r"2 features but at most 1 .*max_features"):
        load_bytes(text, "wide.csv", limits=Limits(max_features=1))


# --------------------------------------------------------------------------- #
# NPY / NPZ
# --------------------------------------------------------------------------- #

def test_npy_table_and_images(tmp_path):
    X = np.random.default_rng(0).normal(size=(30, 5))
    ds = load(str(write(tmp_path, "feats.npy", npy_bytes(X))))
    assert ds.kind == "tabular" and ds.n_features == 5 and ds.name == "feats"
    assert np.allclose(ds.inverse(ds.X), X, atol=1e-5)
    img = load_bytes(npy_bytes(images()), "imgs.npy")
    assert img.kind == "image" and img.image_shape == (4, 3) and img.n_features == 12
    assert np.all(img.scale == 255)
    fortran = np.asfortranarray(X)
    assert np.allclose(load_bytes(npy_bytes(fortran), "f.npy").inverse(ds.X), X, atol=1e-5)


def test_npz_with_and_without_y(tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = np.array(["b", "a"] * 10)
    ds = load(str(write(tmp_path, "set.npz", npz_bytes(X=X, y=y))))
    assert ds.kind == "2d" and ds.label_names == ("a", "b") and ds.y[:2].tolist() == [1, 0]
    plain = load_bytes(npz_bytes(X=X), "plain.npz")
    assert plain.y is None and plain.label_names is None
    imgs = load_bytes(npz_bytes(X=images(), y=np.arange(12) % 3), "imgs.npz")
    assert imgs.kind == "image" and imgs.n_classes == 3


def test_npz_without_X_lists_keys():
    with raises(r"no array named 'X' \(found: data, target\)"):
        load_bytes(npz_bytes(data=np.zeros((3, 2)), target=np.zeros(3)), "bad.npz")


def test_npz_y_length_mismatch():
    with raises("there are 5 labels for 20 rows"):
        load_bytes(npz_bytes(X=np.random.default_rng(0).normal(size=(20, 2)), y=np.arange(5)), "m.npz")


def test_pickle_named_npy_refused(tmp_path):
    path = write(tmp_path, "evil.npy", pickle.dumps({"X": [[1, 2], [3, 4]]}))
    with raises("pickle"):
        load(str(path))


def test_object_array_refused():
    buf = io.BytesIO()
    np.save(buf, np.array([[1, "a"], [2, "b"]], dtype=object), allow_pickle=True)
    with raises("pickled/object arrays are not accepted"):
        load_bytes(buf.getvalue(), "obj.npy")
    with raises("pickled/object arrays are not accepted"):
        load_bytes(_npz_with_member("X.npy", buf.getvalue()), "obj.npz")


def _npz_with_member(name: str, content: bytes, declared: int | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    raw = buf.getvalue()
    if declared is not None:  # rewrite the declared uncompressed size in the central directory
        pos = raw.rfind(b"PK\x01\x02")
        raw = raw[: pos + 24] + struct.pack("<I", declared) + raw[pos + 28 :]
    return raw


def test_npz_member_declared_too_big_refused_before_reading():
    member = npy_bytes(np.zeros((100, 100)))
    with raises("declare 80,128 bytes once decompressed, more than the limit of 1,000"):
        load_bytes(_npz_with_member("X.npy", member), "big.npz", limits=Limits(max_bytes=1000))
    with raises("more than the limit"):
        load_bytes(_npz_with_member("X.npy", b"\x00" * 10, declared=2**31), "lie.npz")


def test_npy_truncated_and_oversized_header():
    X = npy_bytes(np.random.default_rng(0).normal(size=(50, 4)))
    with raises("the file is truncated"):
        load_bytes(X[:-8], "cut.npy")
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 784), }"
    header += b" " * (63 - len(header) % 64) + b"\n"
    bogus = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 64
    with raises("the file holds 64 bytes"):
        load_bytes(bogus, "huge.npy")


# --------------------------------------------------------------------------- #
# IDX
# --------------------------------------------------------------------------- #

def test_idx_images_with_labels(tmp_path):
    imgs, labels = images(n=12), np.arange(12) % 4
    x_path = write(tmp_path, "train-images-idx3-ubyte", idx_bytes(imgs))
    y_path = write(tmp_path, "train-labels-idx1-ubyte", idx_bytes(labels))
    ds = load(str(x_path), labels_path=str(y_path))
    assert ds.name == "train-images-idx3-ubyte"
    assert ds.kind == "image" and ds.image_shape == (4, 3) and ds.n_samples == 12
    assert ds.label_names == ("0", "1", "2", "3") and ds.y.tolist() == labels.tolist()
    assert np.allclose(ds.inverse(ds.X), imgs.reshape(12, -1), atol=1e-3)


def test_idx_gz_and_other_dtypes(tmp_path):
    imgs = images(n=10)
    gz_x = gzip.compress(idx_bytes(imgs))
    gz_y = gzip.compress(idx_bytes(np.arange(10) % 2))
    ds = load(str(write(tmp_path, "t10k-images-idx3-ubyte.gz", gz_x)),
              labels_path=str(write(tmp_path, "t10k-labels-idx1-ubyte.gz", gz_y)))
    assert ds.n_samples == 10 and ds.n_classes == 2
    table = np.random.default_rng(0).normal(size=(6, 3))
    for code in (0x0D, 0x0E):
        tab = load_bytes(idx_bytes(table, code), "table.idx")
        assert tab.kind == "tabular" and np.allclose(tab.inverse(tab.X), table, atol=1e-5)
    shorts = load_bytes(idx_bytes(np.array([[1, -2], [300, 4], [5, 6]]), 0x0B), "s.idx")
    assert shorts.kind == "2d"


def test_idx_header_lying_about_size():
    data = idx_bytes(images(n=2, h=28, w=28), dims=(60000, 28, 28))
    with raises(r"the IDX header says 60000x28x28 \(47,040,000 bytes\) but the file holds 1,568 bytes"):
        load_bytes(data, "train-images-idx3-ubyte")


def test_idx_huge_header_refused_before_allocation():
    data = idx_bytes(np.zeros(100, dtype=np.uint8), dims=(10**9, 28, 28))
    with raises("header says 1000000000x28x28"):
        load_bytes(data, "huge-idx3-ubyte")


def test_idx_over_limits_refused():
    with raises(r"12 rows but at most 5"):
        load_bytes(idx_bytes(images(n=12)), "x.idx", limits=Limits(max_rows=5))
    with raises(r"12 features but at most 10"):
        load_bytes(idx_bytes(images(n=12)), "x.idx", limits=Limits(max_features=10))


def test_idx_labels_length_and_shape_checked():
    x = idx_bytes(images(n=12))
    with raises("there are 7 labels for 12 rows"):
        load_bytes(x, "x-ubyte", labels_bytes=idx_bytes(np.arange(7)))
    with raises("should be 1-D"):
        load_bytes(x, "x-ubyte", labels_bytes=x)


def test_idx_bad_magic():
    with raises("not an IDX file"):
        load_bytes(b"\x01\x02\x03\x04\x05", "x.idx")


# --------------------------------------------------------------------------- #
# limits, gzip bombs, types
# --------------------------------------------------------------------------- #

def test_gzip_bomb_refused():
    bomb = gzip.compress(b"\x00" * 10_000)
    with raises("decompressed size exceeds the limit of 1,000 bytes"):
        load_bytes(bomb, "bomb-idx3-ubyte.gz", limits=Limits(max_bytes=1000))


def test_truncated_gzip_refused():
    packed = gzip.compress(CSV_WITH_HEADER.encode() * 50)
    with raises("could not be decompressed"):
        load_bytes(packed[: len(packed) // 2], "cut.csv.gz")


def test_unknown_suffix_lists_accepted_types(tmp_path):
    with raises(r"accepted types: \.csv, \.tsv, \.txt .*\.npy, \.npz .*ubyte"):
        load(str(write(tmp_path, "data.xlsx", b"whatever")))


def test_file_over_byte_limit(tmp_path):
    path = write(tmp_path, "big.csv", "1,2\n" * 1000)
    with raises("larger than the limit of 100 bytes"):
        load(str(path), limits=Limits(max_bytes=100))


def test_label_column_only_for_csv():
    with raises("CSV/TSV files only"):
        load_bytes(npy_bytes(np.zeros((3, 2))), "a.npy", label_column="y")


def test_defaults():
    assert DEFAULT_LIMITS == Limits() and DEFAULT_LIMITS.max_rows == 200_000
    assert DEFAULT_LIMITS.max_features == 10_000 and DEFAULT_LIMITS.max_bytes == 512 * 2**20


def test_validate_direct():
    with raises("needs at least 2 rows"):
        validate(np.zeros((1, 3)))
    with raises("the file is empty"):
        validate(np.zeros((0, 3)))
    with raises("there are 3 labels for 2 rows"):
        validate(np.array([[0.0, 1.0], [1.0, 0.0]]), np.arange(3))
    with pytest.raises(DataError):
        Dataset(name="x", X=np.zeros((3, 2), np.float32), y=None, label_names=None, kind="2d",
                image_shape=None, feature_names=("a",), offset=np.zeros(2, np.float32),
                scale=np.ones(2, np.float32))


# --------------------------------------------------------------------------- #
# robustness: random and mutated bytes give a Dataset or a DataError, nothing else
# --------------------------------------------------------------------------- #

def _seeds() -> dict[str, bytes]:
    X = np.random.default_rng(0).normal(size=(8, 3))
    return {
        "a.csv": CSV_WITH_HEADER.encode(),
        "a.npy": npy_bytes(X),
        "a.npz": npz_bytes(X=X, y=np.arange(8) % 2),
        "a-idx3-ubyte": idx_bytes(images(n=6)),
        "a.csv.gz": gzip.compress(b"1,2\n3,4\n5,7\n"),
    }


def test_random_and_mutated_bytes_only_raise_data_error():
    rng = random.Random(1234)
    cases: list[tuple[str, bytes]] = []
    for name, good in _seeds().items():
        for _ in range(60):
            blob = bytearray(good)
            for _ in range(rng.randint(1, 6)):
                blob[rng.randrange(len(blob))] = rng.randrange(256)
            if rng.random() < 0.3:
                blob = blob[: rng.randrange(len(blob) + 1)]
            cases.append((name, bytes(blob)))
        for _ in range(20):
            cases.append((name, bytes(rng.randrange(256) for _ in range(rng.randrange(64)))))
    for name, blob in cases:
        try:
            result = load_bytes(blob, name, labels_bytes=None, limits=Limits(max_bytes=1 << 20))
        except DataError:
            continue
        assert isinstance(result, Dataset)


def test_csv_columns_are_offered_before_the_file_loads(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("width,height,species\n1,2,a\n3,4,b\n")
    with pytest.raises(DataError, match="species"):  # not loadable without a label column
        load(str(path))
    assert csv_columns(str(path)) == ["width", "height", "species"]
    assert csv_column_kinds(str(path)) == (["width", "height", "species"], ["species"])  # a page preselects it
    headless = tmp_path / "g.tsv"
    headless.write_text("1\t2\t3\n4\t5\t6\n")
    assert csv_columns(str(headless)) == ["x0", "x1", "x2"]
    assert csv_column_kinds(str(headless))[1] == []
    mixed = tmp_path / "h.csv"  # quoted numbers, blanks, nan, inf and NA are numbers; a header is not data
    mixed.write_text('name,x,y\n"a",1.5,\nb,"2",nan\nc,-inf,3e-2\nd,NA,1\n')
    assert csv_column_kinds(str(mixed))[1] == ["name"]


@pytest.mark.parametrize("cell, is_text", [
    ("1_000", True), ("\u0663", True), ("Nan", True), ("none", True), ("NA ", True), ("0x10", True),
    ("1 ", False), ("\t2", False), ("INF", False), ("-Infinity", False), ("NaN", False), ("?", False), (".5e-3", False),
])
def test_the_label_guess_agrees_with_the_loader(tmp_path, cell, is_text):
    # the page preselects a text column as the label: it must be one the loader
    # refuses as a feature, and a column it leaves alone must load
    path = tmp_path / "f.csv"
    path.write_text(f"a,v\n1,{cell}\n2,3\n")
    assert csv_column_kinds(str(path))[1] == (["v"] if is_text else [])
    if is_text:
        with pytest.raises(DataError, match="not numbers"):
            load(str(path))
        assert load(str(path), label_column="v").X.shape == (2, 1)
    else:  # loads, or is refused for its missing or infinite value, not as text
        try:
            assert load(str(path)).X.shape == (2, 2)
        except DataError as exc:
            assert "missing or infinite" in str(exc) and cell.strip().lower() in ("inf", "-infinity", "nan", "?")


def test_csv_columns_of_a_wide_file_whose_first_lines_pass_64_kb(tmp_path):
    names = [f"p{j}" for j in range(784)] + ["digit"]
    row = ",".join(["254.999"] * 784 + ["7"])  # ~6 KB a line: 20 lines pass 64 KB
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + "\n".join([row] * 40) + "\n")
    assert csv_columns(str(path)) == names


@pytest.mark.parametrize("text, names, rows, labels", [
    # numbers as column names over rows that do not count up: a header
    ("country,1990,2000,2010\nFrance,1.1,1.5,2.0\nChad,0.1,0.2,0.3\nPeru,0.4,0.6,0.9\n",
     ["country", "1990", "2000", "2010"], 3, ("Chad", "France", "Peru")),
    ("400,410,420,class\n1.5,2.5,3.5,a\n0.5,1.5,2.5,b\n0.1,0.2,0.9,a\n", ["400", "410", "420", "class"], 3, ("a", "b")),
    # rows that all count up are data, the first one too; so is a row of two numbers
    ("cat,1,2,3\ndog,2,3,4\ncat,3,4,5\n", ["x0", "x1", "x2", "x3"], 3, ("cat", "dog")),
    ("a,1,5\nb,3,2\nc,7,1\nd,9,4\n", ["x0", "x1", "x2"], 4, ("a", "b", "c", "d")),
])
def test_numbers_as_column_names_are_a_header(tmp_path, text, names, rows, labels):
    path = write(tmp_path, "t.csv", text)
    columns, text_columns = csv_column_kinds(str(path))
    assert columns == names and len(text_columns) == 1  # the page offers the real label column's name
    ds = load(str(path), label_column=text_columns[0])
    assert ds.n_samples == rows and ds.label_names == labels


def _csv(header, rows):
    return ((header + "\n") if header else "") + "\n".join(",".join(map(str, r)) for r in rows) + "\n"


def test_flattened_images_in_a_table_are_read_as_images():
    digits = load_builtin("digits")
    pixels, names = np.rint(digits.X * 16).astype(int), np.array(digits.label_names)[digits.y]
    header = "label," + ",".join(f"pixel{j}" for j in range(64))
    ds = load_bytes(_csv(header, [[n, *p] for n, p in zip(names, pixels)]).encode(), "digits.csv",
                    label_column="label")
    assert ds.kind == "image" and ds.image_shape == (8, 8)
    np.testing.assert_array_equal(ds.X, digits.X)  # 17 grey levels: divided by 16, as the built-in set
    # the MNIST CSVs: no header, the label first, 784 whole numbers 0..255
    mnist = np.random.default_rng(0).integers(0, 256, (12, 784))
    ds = load_bytes(_csv(None, [[i % 3, *p] for i, p in enumerate(mnist)]).encode(), "mnist.csv", label_column="x0")
    assert ds.kind == "image" and ds.image_shape == (28, 28)
    np.testing.assert_allclose(ds.X, mnist / 255, atol=1e-7)
    img = load_bytes(npy_bytes(mnist.astype(np.uint8)), "flat.npy")  # a 2-D array of such rows
    assert img.kind == "image" and img.image_shape == (28, 28)
    # unnamed square tables of small whole numbers are not images: bits, word counts
    rng = np.random.default_rng(2)
    assert load_bytes(npy_bytes(rng.integers(0, 2, (30, 1024))), "bits.npy").kind == "tabular"
    assert load_bytes(npy_bytes(rng.integers(0, 12, (30, 400))), "words.npy").kind == "tabular"
    levels = rng.integers(0, 17, (5, 8, 8))  # 3-D: images; 17 grey levels, as the digits: divided by 16
    dark = load_bytes(npy_bytes(levels), "dark.npy")
    assert dark.kind == "image" and np.all(dark.scale == 16) and dark.X.max() == levels.max() / 16
    # 64 unnamed columns of counts stay a table; so do named columns that are not pixels
    counts = np.random.default_rng(1).integers(1, 6, (20, 64))
    assert load_bytes(_csv(None, counts).encode(), "survey.csv").kind == "tabular"
    named = _csv(",".join(f"q{j}" for j in range(64)), counts)
    assert load_bytes(named.encode(), "survey.csv").kind == "tabular"
    assert load_bytes(_csv(None, mnist - 1).encode(), "signed.csv").kind == "tabular"  # a -1: not pixels


def test_what_spreadsheets_and_pandas_write_loads_as_meant():
    # pandas' to_csv writes its index as an unnamed first column: not a feature
    text = _csv(",a,b", [[i, 0.5 * i, (-1) ** i] for i in range(10)])
    assert load_bytes(text.encode(), "frame.csv").feature_names == ("a", "b")
    # a frame made from an array: its column numbers as the header, with or without its index
    iris = load_builtin("varied").X[:12]
    for text in (_csv(",0,1", [[i, *r] for i, r in enumerate(iris)]), _csv("0,1,2", [[*r, 1.5] for r in iris])):
        ds = load_bytes(text.encode(), "frame.csv")
        assert ds.n_samples == 12 and ds.feature_names[:2] == ("0", "1")
    shuffled = _csv(",a,b", [[i, 0.5 * i, (-1) ** i] for i in np.random.default_rng(0).permutation(10)])
    assert load_bytes(shuffled.encode(), "frame.csv").feature_names == ("a", "b")  # a shuffled index too
    assert load_bytes(b"0,1\n1,0\n0,0\n1,1\n", "bits.csv").n_samples == 4  # two bits: data, not a header
    named_zero = _csv("id,a,b", [[i, 0.5 * i, (-1) ** i] for i in range(10)])  # a named column is kept
    assert load_bytes(named_zero.encode(), "frame.csv").feature_names == ("id", "a", "b")
    # class names that read as missing elsewhere are names in the label column; an empty one is missing
    ds = load_bytes(b"x,y,c\n1,2,NA\n3,4,None\n5,6,?\n7,8,NA\n", "t.csv", label_column="c")
    assert ds.label_names == ("?", "NA", "None") and ds.y.tolist() == [1, 2, 0, 1]
    with pytest.raises(DataError, match="the label column 'c' has 1 empty cell, the first in data row 2"):
        load_bytes(b"x,y,c\n1,2,a\n3,4,\n5,6,b\n", "t.csv", label_column="c")
    # 1 and 1.0 are one class, as in a numeric array
    ds = load_bytes(b"x,y,c\n1,2,1\n3,4,1.0\n5,6,2.0\n", "t.csv", label_column="c")
    assert ds.label_names == ("1", "2.0") and ds.y.tolist() == [0, 0, 1]
    ids = b"x,y,c\n1,2,12345678901234567890\n3,4,12345678901234567891\n5,6,12345678901234567892\n"
    assert load_bytes(ids, "t.csv", label_column="c").n_classes == 3  # beyond float64: still apart
    # decimal commas, as a spreadsheet in many languages writes them: said, not "choose a label"
    with pytest.raises(DataError, match=r"decimal commas \(1,5 in column 'a'\)"):
        load_bytes(b"a;b\n1,5;2,5\n3,5;4,5\n", "eu.csv")
    with pytest.raises(DataError, match=r"decimal commas \(5,1 in column 'sepal'\)"):  # beside a text label
        load_bytes(b"sepal;petal;species\n5,1;1,4;setosa\n4,9;1,4;virginica\n", "eu.csv")


def test_the_page_guesses_the_label_column_by_text_or_by_name():
    assert label_guess(["a", "b", "species"], ["species"]) == "species"
    assert label_guess(["a", "name", "species"], ["name", "species"]) is None  # two: the user picks
    # numeric labels: a column named like labels (the digits and MNIST CSVs' "label")
    assert label_guess(["label", "pixel0", "pixel1"], []) == "label"
    assert label_guess(["x", " Class ", "z"], []) == " Class "
    assert label_guess(["x0", "x1"], []) is None and label_guess(["class", "target"], []) is None
    assert label_guess(["x", "y"], []) is None  # the second coordinate, not labels


def test_excels_separator_line_names_the_separator():
    with pytest.raises(DataError, match="line 4 has 3 fields but the first line has 2"):  # the file's own line
        load_bytes(b"sep=;\na;b\n1;2\n3;4;5\n", "excel.csv")
    text = b"sep=;\r\nwidth;height;kind\r\n1.5;2;a\r\n3;4.5;b\r\n"
    assert head_info_of(text)[:2] == (["width", "height", "kind"], ["kind"])
    ds = load_bytes(text, "excel.csv", label_column="kind")
    assert ds.feature_names == ("width", "height") and ds.n_samples == 2
    np.testing.assert_allclose(ds.inverse(ds.X), [[1.5, 2], [3, 4.5]])


def test_a_headerless_mnist_csv_gets_its_first_column_as_the_labels(tmp_path):
    rng = np.random.default_rng(3)
    rows = [[int(d), *rng.integers(0, 256, 784)] for d in rng.integers(0, 10, 25)]
    path = write(tmp_path, "mnist_train.csv", _csv(None, rows))
    columns, text, guess = csv_head_info(str(path))
    assert text == [] and guess == "x0"  # the page preselects it: then the rows load as 28x28 images
    ds = load(str(path), label_column=guess)
    assert ds.kind == "image" and ds.image_shape == (28, 28) and ds.n_classes == len({r[0] for r in rows})
    # 785 unnamed columns that are not pixels after the first: no guess
    other = write(tmp_path, "wide.csv", _csv(None, [[1, *rng.normal(size=784).round(3)] for _ in range(5)]))
    assert csv_head_info(str(other))[2] is None


def test_a_file_named_like_a_built_in_set_keeps_its_suffix():
    text = _csv("a,b", [[1, 2], [3, 5], [4, 1]]).encode()
    assert load_bytes(text, "digits.csv").name == "digits.csv"  # not the built-in "digits"
    assert load_bytes(text, "my_digits.csv").name == "my_digits"


def test_values_are_shown_to_six_digits_of_each_features_spread():
    """The Data page and the export round each feature to 6 significant digits of
    its spread: float32's noise goes (0 is 0, not -0.000000006), time stamps keep
    their seconds, and a feature of spread 1e-12 keeps its digits (15 decimals
    at most wrote 3.0123456e-12 as 3.012e-12)."""
    from ganmm.data import round_to_spread

    values = np.array([[3.0123456789e-12, 1.6e9 + 12.3456789, -6e-9],
                       [1.5e-12, 1.6e9 + 40.0, 2.5]])
    shown = round_to_spread(values, np.array([1e-12, 20.0, 1.0]))
    np.testing.assert_array_equal(shown[:, 0], [3.012346e-12, 1.5e-12])
    np.testing.assert_array_equal(shown[:, 1], [1.6e9 + 12.34568, 1.6e9 + 40.0])
    assert shown[0, 2] == 0.0 and not np.signbit(shown[0, 2]) and shown[1, 2] == 2.5
