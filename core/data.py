"""Datasets by name, read from disk only (nothing is downloaded), with timm transforms.

Every dataset yields `(float tensor [C, img_size, img_size] normalized, int label)` and is indexable
by integer with a fixed length, because the trainer picks indices itself. Bad names, paths and files
raise `UserError` with one line that says what is wrong, so the CLIs never show a traceback.

In-memory datasets (digits, cifar, mnist) keep uint8 numpy arrays and make a PIL image per item:
timm's transforms work on PIL images, and at 8-32 px the conversion costs next to nothing.

Every name is a `DatasetFormat` in a small registry (`register_dataset`, as timm registers models),
so a user's own format plugs into the CLIs and the search. Which reader each built-in uses, and why:

* folder: torchvision's own `make_dataset` and `IMG_EXTENSIONS` list the files, so a tree is read
  exactly as `ImageFolder` reads it. Classes are found here rather than by `find_classes`, which would
  make a hidden folder (`.ipynb_checkpoints`) a class; hidden files are skipped for the same reason.
* cifar10/cifar100: read here (CIFAR's documented python pickles, ~20 lines). torchvision's `CIFAR10`
  verifies each file's md5 and accepts only `root/cifar-10-batches-py/`, so any re-packed or partial
  copy (and every test fixture) is refused as "not found or corrupted" without saying which file.
* mnist/fashion-mnist: read here (the idx format, ~30 lines). torchvision's `MNIST` accepts only
  uncompressed files under `root/MNIST/raw/`, and its idx reader validates with `assert` (a bare
  AssertionError on a corrupt file, no check at all under `python -O`); these files are often kept
  as the distributed `.gz`.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .errors import UserError, suggest

# Flipping a digit left-right changes what it is; the brief keeps fashion-mnist with them.
_NO_HFLIP = {"digits", "mnist", "fashion-mnist"}

_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# Published per-channel statistics of the training sets; digits' computed once from all 1797
# images scaled to 0..255 (too small a set for the train/val choice to move them).
_STATS = {
    "digits": ((0.3053,), (0.3759,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "synthetic": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # already standard normal, no transform
    "folder": _IMAGENET,
}

_CIFAR_FILES = {
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10),
    "cifar100": (["train"], ["test"], b"fine_labels", 100),
}
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# torchvision's download layout, so a root it filled can be passed as it is.
_TORCHVISION_DIR = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}

_SYNTHETIC_SIZES = (2048, 256)


@dataclass
class DatasetInfo:
    """What a model and a report need to know about a dataset before (and after) loading it."""

    name: str
    num_classes: int
    in_chans: int
    native_size: int
    default_img_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_train: int = 0
    num_val: int = 0
    skipped: int = 0


class ArrayDataset(Dataset):
    """uint8 images [N, H, W] or [N, H, W, 3] with int labels; a PIL image per item for timm."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, transform):
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.targets[i])


class ImageFileDataset(Dataset):
    """Image files with int labels, decoded and converted to RGB per item."""

    def __init__(self, paths: list[str], targets: np.ndarray, transform):
        self.paths = paths
        self.targets = np.asarray(targets, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB")), int(self.targets[i])


class SyntheticDataset(Dataset):
    """Seeded random images with random labels, made per item (no memory held).

    There is nothing to learn: validation accuracy stays at chance. It serves throughput
    measurements (the cost of a step does not depend on the pixels) and is the data on which a
    search must refuse to rank anything (its dense-validity check).
    """

    def __init__(self, n: int, img_size: int, seed: int, stream: int, num_classes: int = 10):
        self.img_size = img_size
        self.seed = seed
        self.stream = stream
        self.targets = np.random.default_rng([seed, stream]).integers(num_classes, size=n)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        i = range(len(self))[i]  # IndexError past the end, negative indices like a list
        item_seed = int(np.random.SeedSequence([self.seed, self.stream, i]).generate_state(1)[0])
        noise = torch.randn(3, self.img_size, self.img_size, generator=torch.Generator().manual_seed(item_seed))
        return noise, int(self.targets[i])


@dataclass(frozen=True)
class LoadRequest:
    """What `build_datasets` asks a format's `load` for (already validated)."""

    img_size: int
    seed: int
    val_fraction: float
    train_subset: int | None
    val_subset: int | None
    train_transform: Callable  # timm's, from the dataset's statistics (formats that make tensors ignore it)
    eval_transform: Callable


@dataclass(frozen=True)
class DatasetFormat:
    """How one named dataset is found on disk and read.

    `describe(root)` is cheap (a header, one image) and raises `UserError` for a bad root, so a CLI
    can size a model and reject bad input before any real work; `load(root, info, request)` returns
    `(train, val, info)` with `num_train`/`num_val`/`skipped` filled in. `root` is None when
    `needs_data` is False (built-in data).
    """

    describe: Callable[[Path | None], DatasetInfo]
    load: Callable[[Path | None, DatasetInfo, LoadRequest], tuple[Dataset, Dataset, DatasetInfo]]
    needs_data: bool = True


_REGISTRY: dict[str, DatasetFormat] = {}


def register_dataset(name: str, fmt: DatasetFormat, *, replace: bool = False) -> None:
    """Make `name` usable as `--dataset name` (and in `RunConfig.dataset`) in this process."""
    if name in _REGISTRY and not replace:
        raise ValueError(f"dataset {name!r} is already registered (pass replace=True to override it)")
    _REGISTRY[name] = fmt


def list_datasets() -> tuple[str, ...]:
    """Registered dataset names, built-ins first (digits, the default, leads)."""
    return tuple(_REGISTRY)


def _format(name: str) -> DatasetFormat:
    if name not in _REGISTRY:
        valid = list_datasets()
        raise UserError(f"unknown dataset {name!r}{suggest(name, valid)}; valid: {', '.join(valid)}")
    return _REGISTRY[name]


def dataset_info(name: str, data: str | None = None) -> DatasetInfo:
    """Cheap look-up (no full load) of classes/channels/native size. Validates name and data dir.

    Reads at most one image (folder) or a 16-byte header (mnist), so a CLI can size a model and
    report a bad path before any real work starts.
    """
    fmt = _format(name)
    return fmt.describe(_data_dir(name, data) if fmt.needs_data else None)


def build_datasets(name: str, data: str | None = None, *, img_size: int, seed: int = 0,
                   val_fraction: float = 0.1, train_subset: int | None = None,
                   val_subset: int | None = None, augment: bool = True, scale: float = 0.35,
                   aa: str | None = None, reprob: float = 0.0) -> tuple[Dataset, Dataset, DatasetInfo]:
    """Train and validation datasets; items are (float tensor [C, img_size, img_size] normalized, int label).

    Validation is the official test split where there is one (cifar, mnist, folder val/ or test/);
    otherwise a stratified `val_fraction` of the training data chosen by `seed`. `train_subset` and
    `val_subset` then keep a seeded, class-stratified subset of that many examples (for synthetic
    they set the sizes). `augment=False` gives the eval transform to training too; with `augment`,
    `scale` (smallest crop area), `aa` (a timm auto-augment policy; None or "none" = off) and
    `reprob` (random erasing) shape timm's training transform.
    """
    _check_int("img_size", img_size, minimum=1)
    _check_int("seed", seed, minimum=0)
    for arg, value in (("train_subset", train_subset), ("val_subset", val_subset)):
        if value is not None:
            _check_int(arg, value, minimum=1)
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    fmt = _format(name)
    root = _data_dir(name, data) if fmt.needs_data else None
    info = fmt.describe(root)
    train_tf, eval_tf = _transforms(name, info, img_size, augment, scale, aa, reprob)
    request = LoadRequest(img_size, seed, val_fraction, train_subset, val_subset, train_tf, eval_tf)
    return fmt.load(root, info, request)


def _info(name, num_classes, in_chans, native_size, mean, std) -> DatasetInfo:
    return DatasetInfo(name, num_classes, in_chans, native_size, _default_size(native_size), mean, std)


SMALL_IMAGE = 64  # images up to this side are "small": trained near their own size, 4 px patches
MIN_SMALL_SIZE = 16  # at least 4 x 4 = 16 patch tokens, so token pruning has tokens to choose from


def _default_size(native_size: int) -> int:
    """Small images train at their own size rounded up to whole 4 px patches, at least 16 px (digits'
    8 px: 16 px, 16 tokens; MNIST's 28 px: 49 tokens; CIFAR's 32 px: 64 tokens). Upsampling adds no
    information, only tokens to pay for: 32 px digits cost 4x the 16 px ones and learned no better
    (BENCHMARKS.md, "The search proxy"). Photos train at the usual 224."""
    if native_size > SMALL_IMAGE:
        return 224
    return max(MIN_SMALL_SIZE, -(-native_size // 4) * 4)


def _check_int(arg: str, value, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        bound = "a positive" if minimum == 1 else "a non-negative"
        raise UserError(f"{arg} must be {bound} integer, got {value!r}")


def _data_dir(name: str, data: str | None) -> Path:
    if data is None or str(data) == "":
        raise UserError(f"--data is required for dataset {name!r}")
    root = Path(data).expanduser()
    if not root.exists():
        raise UserError(f"data directory not found: {root}")
    if not root.is_dir():
        raise UserError(f"--data must be a directory, got a file: {root}")
    if not any(root.iterdir()):
        raise UserError(f"data directory is empty: {root}")
    return root


def _transforms(name: str, info: DatasetInfo, img_size: int, augment: bool, scale: float = 0.35,
                aa: str | None = None, reprob: float = 0.0):
    """(train, eval) transforms from timm's `create_transform`.

    timm takes 1-channel mean/std and sizes as small as 8 px as they are (Normalize broadcasts over
    the channels it is given), so nothing is done by hand. Colour jitter is off (None drops the op;
    DeiT's 0.3 is unused beside RandAugment anyway). A bad `aa` policy is timm's error, one line.
    """
    from timm.data import create_transform  # timm import is slow; only pay for it when building

    common = dict(interpolation="bicubic", mean=info.mean, std=info.std)
    eval_tf = create_transform(img_size, is_training=False, crop_pct=1.0, **common)
    if not augment:
        return eval_tf, eval_tf
    policy = None if aa in (None, "", "none") else aa
    try:
        train_tf = create_transform(img_size, is_training=True, scale=(scale, 1.0),
                                    hflip=0.0 if name in _NO_HFLIP else 0.5, color_jitter=None,
                                    auto_augment=policy, re_prob=reprob, re_mode="pixel", re_count=1, **common)
    except (AssertionError, ValueError, KeyError) as exc:
        raise UserError(f"bad auto-augment policy {aa!r} (timm's, e.g. rand-m9-mstd0.5-inc1): {exc}") from None
    return train_tf, eval_tf


def _pick(labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded, class-stratified choice of `n` items (all of them for None).

    Falls back to a plain seeded choice when stratifying is impossible (a class with one member,
    or fewer picks than classes), which only happens on toy data.
    """
    from sklearn.model_selection import train_test_split

    if n is None or n >= len(labels):
        return np.arange(len(labels))
    try:
        chosen, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed)
    except ValueError:
        chosen = np.random.default_rng(seed).permutation(len(labels))[:n]
    return np.sort(chosen)


def _split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: a seeded stratified `val_fraction` for data without an official split."""
    n_val = min(max(1, round(len(labels) * val_fraction)), len(labels) - 1)
    val = _pick(labels, n_val, seed)
    return np.setdiff1d(np.arange(len(labels)), val), val


def _load_digits(seed: int, val_fraction: float):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    train, val = _split(labels, val_fraction, seed)
    return images[train], labels[train], images[val], labels[val]


# --- cifar -------------------------------------------------------------------------------------

def _cifar_dir(name: str, root: Path) -> Path:
    """The folder holding the pickles: `root` itself or one folder below (cifar-10-batches-py/)."""
    train_files, test_files, _, _ = _CIFAR_FILES[name]
    expected = train_files + test_files
    for folder in [root] + sorted(p for p in root.iterdir() if p.is_dir()):
        if any((folder / f).is_file() for f in expected):
            missing = [f for f in expected if not (folder / f).is_file()]
            if missing:
                raise UserError(f"{name}: missing {', '.join(missing)} in {folder}")
            return folder
    raise UserError(f"{name}: no python-format files in {root} or its subfolders "
                    f"(expected {', '.join(expected)})")


def _load_cifar(name: str, root: Path):
    folder = _cifar_dir(name, root)
    train_files, test_files, label_key, _ = _CIFAR_FILES[name]
    x_train, y_train = _read_cifar(folder, train_files, label_key)
    x_val, y_val = _read_cifar(folder, test_files, label_key)
    return x_train, y_train, x_val, y_val


def _read_cifar(folder: Path, files: list[str], label_key: bytes):
    """Concatenated [N, 32, 32, 3] uint8 images and labels from CIFAR's pickled batches."""
    images, labels = [], []
    for f in files:
        try:
            with open(folder / f, "rb") as fh:
                batch = pickle.load(fh, encoding="bytes")
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[label_key], dtype=np.int64))
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as e:
            raise UserError(f"{folder / f}: not a CIFAR python-format batch ({type(e).__name__}: {e})") from None
    return np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1)), np.concatenate(labels)


# --- mnist / fashion-mnist ---------------------------------------------------------------------

def _idx_files(name: str, root: Path) -> list[Path]:
    """The four idx files (uncompressed preferred over .gz) from root, root/raw or torchvision's layout."""
    candidates = [root, root / "raw", root / _TORCHVISION_DIR[name] / "raw"]
    for folder in candidates:
        found = [_idx_path(folder, f) for f in _IDX_FILES]
        if any(found):
            missing = [f"{f}[.gz]" for f, p in zip(_IDX_FILES, found) if p is None]
            if missing:
                raise UserError(f"{name}: missing {', '.join(missing)} in {folder}")
            return found
    raise UserError(f"{name}: no idx files in {root} or {root / 'raw'} (expected {', '.join(_IDX_FILES)}, or .gz)")


def _idx_path(folder: Path, base: str) -> Path | None:
    for path in (folder / base, folder / f"{base}.gz"):
        if path.is_file():
            return path
    return None


def _open_idx(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _idx_header(path: Path, ndim: int) -> tuple[int, ...]:
    """Dimensions from an idx header: 0, 0, type 0x08 (ubyte), ndim, then ndim big-endian uint32."""
    try:
        with _open_idx(path) as fh:
            head = fh.read(4 + 4 * ndim)
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: unreadable ({e})") from None
    if len(head) < 4 + 4 * ndim or head[:4] != bytes((0, 0, 0x08, ndim)):
        raise UserError(f"{path}: not an idx ubyte file with {ndim} dimension(s)")
    return struct.unpack(f">{ndim}I", head[4:])


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    dims = _idx_header(path, ndim)
    try:
        with _open_idx(path) as fh:
            raw = fh.read()
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: unreadable ({e})") from None
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{path}: header says {dims} but holds {body.size} bytes of data")
    return body.reshape(dims)


def _load_idx(name: str, root: Path):
    train_x, train_y, test_x, test_y = _idx_files(name, root)
    x_train, y_train = _read_idx(train_x, 3), _read_idx(train_y, 1).astype(np.int64)
    x_val, y_val = _read_idx(test_x, 3), _read_idx(test_y, 1).astype(np.int64)
    for x, y, what in ((x_train, y_train, "train"), (x_val, y_val, "t10k")):
        if len(x) != len(y):
            raise UserError(f"{name}: {what} has {len(x)} images but {len(y)} labels in {root}")
    return x_train, y_train, x_val, y_val


# --- folder ------------------------------------------------------------------------------------

def _folder_splits(root: Path) -> tuple[Path, Path | None]:
    """(train/, val/ or test/ or None when the validation set must be split off train/)."""
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise UserError(f"folder: missing train/ in {root} (expected train/<class>/<image> and val/ or test/)")
    for held_out in ("val", "test"):
        if (root / held_out).is_dir():
            return train_dir, root / held_out
    return train_dir, None


def _folder_classes(train_dir: Path) -> list[str]:
    """Class folders of train/, sorted as ImageFolder sorts them, hidden folders skipped (see the top)."""
    classes = sorted(e.name for e in os.scandir(train_dir) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise UserError(f"folder: no class subfolders in {train_dir} (expected train/<class>/<image>)")
    if len(classes) == 1:
        raise UserError(f"folder: only one class ({classes[0]!r}) in {train_dir}; need at least 2")
    return classes


def _is_image(path: str) -> bool:
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    return has_file_allowed_extension(path, IMG_EXTENSIONS) and not os.path.basename(path).startswith(".")


def _list_images(split_dir: Path, classes: list[str]) -> list[tuple[str, int]]:
    """(path, label) of every image under split_dir/<class>/, listed by torchvision's ImageFolder code
    (recursive, links followed, a stable order); labels index `classes`, missing classes are allowed."""
    from torchvision.datasets.folder import make_dataset

    return make_dataset(split_dir, {c: i for i, c in enumerate(classes)}, is_valid_file=_is_image, allow_empty=True)


def _first_image_side(train_dir: Path, classes: list[str]) -> int:
    """Shorter side of the first readable image: the resolution the data really has."""
    for c in classes:
        for path, _ in _list_images(train_dir, [c]):
            try:
                with Image.open(path) as img:
                    return min(img.size)
            except (OSError, ValueError):
                continue
    raise UserError(f"folder: no readable images in {train_dir} (extensions: {_extensions()})")


def _extensions() -> str:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return " ".join(IMG_EXTENSIONS)


def _scan(split_dir: Path, classes: list[str]) -> tuple[list[str], np.ndarray]:
    extra = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith(".")
                   and e.name not in classes)
    if extra:
        raise UserError(f"folder: {split_dir} has classes not in train/: {', '.join(extra)}")
    items = _list_images(split_dir, classes)
    return [p for p, _ in items], np.asarray([label for _, label in items], dtype=np.int64)


def _subset_readable(paths, labels, subset, seed, where):
    """The seeded subset of (paths, labels) minus files PIL cannot open, and the files dropped.

    Only the files kept are checked, and only with `verify()` (headers and chunk checksums, no full
    decode: ~0.1 ms per small PNG), so a 5,000-image subset of a large tree costs well under a second.
    """
    chosen = _pick(labels, subset, seed)
    good, bad = [], []
    for i in chosen:
        try:
            with Image.open(paths[i]) as img:
                img.verify()
            good.append(i)
        except Exception:  # PIL raises many types (OSError, SyntaxError, struct.error...) for bad files
            bad.append(paths[i])
    if not good:
        raise UserError(f"folder: no readable images in {where} (extensions: {_extensions()})")
    return [paths[i] for i in good], labels[good], bad


def _build_folder(root, seed, val_fraction, train_subset, val_subset, train_tf, eval_tf):
    """Train and val file datasets; unreadable files among those used are dropped with one warning."""
    train_dir, val_dir = _folder_splits(root)
    classes = _folder_classes(train_dir)
    paths, labels = _scan(train_dir, classes)
    if val_dir is None:
        if len(paths) < 2:
            raise UserError(f"folder: need at least 2 images in {train_dir} to split off a validation set")
        train_idx, val_idx = _split(labels, val_fraction, seed)
        val_paths, val_labels = [paths[i] for i in val_idx], labels[val_idx]
        paths, labels = [paths[i] for i in train_idx], labels[train_idx]
    else:
        val_paths, val_labels = _scan(val_dir, classes)

    paths, labels, bad = _subset_readable(paths, labels, train_subset, seed, train_dir)
    val_paths, val_labels, val_bad = _subset_readable(val_paths, val_labels, val_subset, seed, val_dir or train_dir)
    bad += val_bad
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image(s) under {root} (e.g. {bad[0]})", stacklevel=3)
    if len(np.unique(labels)) < 2:
        raise UserError(f"folder: only one class has readable training images in {train_dir}; need at least 2")
    return ImageFileDataset(paths, labels, train_tf), ImageFileDataset(val_paths, val_labels, eval_tf), len(bad)


# --- the registry's built-in formats -----------------------------------------------------------

def _array_format(describe: Callable[[Path | None], DatasetInfo],
                  read: Callable[[Path | None, LoadRequest], tuple], needs_data: bool = True) -> DatasetFormat:
    """A format whose `read` returns (x_train, y_train, x_val, y_val) uint8 arrays held in memory."""

    def load(root, info, req):
        x_train, y_train, x_val, y_val = read(root, req)
        keep_train, keep_val = _pick(y_train, req.train_subset, req.seed), _pick(y_val, req.val_subset, req.seed)
        train = ArrayDataset(x_train[keep_train], y_train[keep_train], req.train_transform)
        val = ArrayDataset(x_val[keep_val], y_val[keep_val], req.eval_transform)
        return train, val, dataclasses.replace(info, num_train=len(train), num_val=len(val))

    return DatasetFormat(describe, load, needs_data)


def _describe_digits(root) -> DatasetInfo:
    return _info("digits", 10, 1, 8, *_STATS["digits"])


def _describe_synthetic(root) -> DatasetInfo:
    return _info("synthetic", 10, 3, 32, *_STATS["synthetic"])


def _load_synthetic(root, info, req):
    n_train = req.train_subset or _SYNTHETIC_SIZES[0]
    n_val = req.val_subset or _SYNTHETIC_SIZES[1]
    train = SyntheticDataset(n_train, req.img_size, req.seed, stream=0)
    val = SyntheticDataset(n_val, req.img_size, req.seed, stream=1)
    info = dataclasses.replace(info, native_size=req.img_size, default_img_size=_default_size(req.img_size))
    return train, val, dataclasses.replace(info, num_train=n_train, num_val=n_val)


def _describe_folder(root) -> DatasetInfo:
    train_dir, _ = _folder_splits(root)
    classes = _folder_classes(train_dir)
    return _info("folder", len(classes), 3, _first_image_side(train_dir, classes), *_STATS["folder"])


def _load_folder(root, info, req):
    train, val, skipped = _build_folder(root, req.seed, req.val_fraction, req.train_subset, req.val_subset,
                                        req.train_transform, req.eval_transform)
    return train, val, dataclasses.replace(info, num_train=len(train), num_val=len(val), skipped=skipped)


def _describe_cifar(name: str):
    def describe(root) -> DatasetInfo:
        _cifar_dir(name, root)
        return _info(name, _CIFAR_FILES[name][3], 3, 32, *_STATS[name])

    return describe


def _describe_idx(name: str):
    def describe(root) -> DatasetInfo:
        _, rows, cols = _idx_header(_idx_files(name, root)[0], ndim=3)
        return _info(name, 10, 1, min(rows, cols), *_STATS[name])

    return describe


register_dataset("digits", _array_format(_describe_digits, lambda root, req: _load_digits(req.seed, req.val_fraction),
                                        needs_data=False))
register_dataset("folder", DatasetFormat(_describe_folder, _load_folder))
for _name in _CIFAR_FILES:
    register_dataset(_name, _array_format(_describe_cifar(_name), lambda root, req, n=_name: _load_cifar(n, root)))
for _name in _TORCHVISION_DIR:
    register_dataset(_name, _array_format(_describe_idx(_name), lambda root, req, n=_name: _load_idx(n, root)))
register_dataset("synthetic", DatasetFormat(_describe_synthetic, _load_synthetic, needs_data=False))
