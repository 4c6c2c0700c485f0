"""Tests for trilevel.core.data on tiny data built in tmp_path (never /work/shared: users lack it)."""

import gzip
import pickle
import struct
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from trilevel.core.data import (ArrayDataset, DatasetFormat, DatasetInfo, build_datasets, dataset_info, list_datasets,
                                 register_dataset)
from trilevel.core.errors import UserError

# --- builders ----------------------------------------------------------------------------------


def _png(path, value, mode="RGB", size=12):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode).save(path)


def _folder_tree(root, splits=("train", "val"), classes=("ant", "bee", "cat"), per_class=(4, 2)):
    """classes x PNGs per split, one grayscale PNG, one corrupt PNG in train/ant (the 5th file)."""
    for split, n in zip(splits, per_class):
        for label, c in enumerate(classes):
            for i in range(n):
                _png(root / split / c / f"{i}.png", 40 * label + i)
    _png(root / splits[0] / classes[1] / "gray.png", 128, mode="L")
    (root / splits[0] / classes[0] / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / splits[0] / classes[0] / "notes.txt").write_text("not an image, not counted")
    return root


def _cifar(folder, name="cifar10", n=4):
    """CIFAR python-format pickles whose every image is pure red, labels 0..n-1."""
    folder.mkdir(parents=True)
    rows = np.zeros((n, 3072), dtype=np.uint8)
    rows[:, :1024] = 255  # channel-major rows: the first 1024 bytes are the red plane
    if name == "cifar10":
        files, key = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels"
    else:
        files, key = ["train", "test"], b"fine_labels"
    for f in files:
        with open(folder / f, "wb") as fh:
            pickle.dump({b"data": rows, key: list(range(n))}, fh)
    return folder


def _idx(path, array, gz=False):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (gzip.open(path.with_name(path.name + ".gz"), "wb") if gz else open(path, "wb")) as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def _mnist(folder, n_train=20, n_test=10, gz=False):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz)
        _idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz)
    return folder


def _check_items(ds, n_items, chans, size, num_classes):
    assert len(ds) == n_items
    for i in (0, len(ds) - 1):
        x, y = ds[i]
        assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
        assert x.shape == (chans, size, size)
        assert type(y) is int and 0 <= y < num_classes


# --- digits ------------------------------------------------------------------------------------


def test_digits_shapes_and_info():
    train, val, info = build_datasets("digits", img_size=16)
    assert isinstance(info, DatasetInfo)
    assert (info.num_classes, info.in_chans, info.native_size, info.default_img_size) == (10, 1, 8, 16)
    assert info.num_train + info.num_val == 1797 and info.num_val == 180
    _check_items(train, info.num_train, 1, 16, 10)
    _check_items(val, info.num_val, 1, 16, 10)
    assert set(np.unique(val.targets)) == set(range(10))  # stratified: every class in val


def test_digits_split_depends_on_seed_only():
    a, a_val, _ = build_datasets("digits", img_size=8, seed=0)
    b, _, _ = build_datasets("digits", img_size=8, seed=0)
    c, _, _ = build_datasets("digits", img_size=8, seed=1)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.targets, b.targets)
    assert not np.array_equal(a.images, c.images)
    train_rows = {img.tobytes() for img in a.images}
    assert not any(img.tobytes() in train_rows for img in a_val.images)  # disjoint (digits has no duplicates)


def test_digits_subsets_are_stratified_and_seeded():
    train, val, info = build_datasets("digits", img_size=8, train_subset=100, val_subset=50, seed=3)
    assert (len(train), len(val), info.num_train, info.num_val) == (100, 50, 100, 50)
    assert np.bincount(train.targets, minlength=10).tolist() == [10] * 10
    again, _, _ = build_datasets("digits", img_size=8, train_subset=100, val_subset=50, seed=3)
    assert np.array_equal(train.images, again.images)


def test_augment_false_is_deterministic_and_digits_never_flip():
    train, _, _ = build_datasets("digits", img_size=16, augment=False)
    assert torch.equal(train[0][0], train[0][0])
    augmented, _, _ = build_datasets("digits", img_size=16)
    assert "HorizontalFlip" not in repr(augmented.transform)
    assert "RandomResizedCrop" in repr(augmented.transform)


# --- synthetic ---------------------------------------------------------------------------------


def test_synthetic_sizes_and_determinism():
    train, val, info = build_datasets("synthetic", img_size=16, seed=5)
    assert (len(train), len(val)) == (2048, 256)
    assert (info.num_classes, info.in_chans, info.native_size) == (10, 3, 16)
    _check_items(train, 2048, 3, 16, 10)
    assert torch.equal(train[7][0], build_datasets("synthetic", img_size=16, seed=5)[0][7][0])
    assert not torch.equal(train[7][0], build_datasets("synthetic", img_size=16, seed=6)[0][7][0])
    small, small_val, info = build_datasets("synthetic", img_size=8, train_subset=10, val_subset=4)
    assert (len(small), len(small_val), info.num_train, info.num_val) == (10, 4, 10, 4)
    with pytest.raises(IndexError):
        small[10]


def test_synthetic_and_digits_ignore_data(tmp_path):
    assert dataset_info("digits", str(tmp_path / "nowhere")).num_classes == 10
    assert len(build_datasets("synthetic", str(tmp_path / "nowhere"), img_size=8, train_subset=2)[0]) == 2


# --- folder ------------------------------------------------------------------------------------


def test_folder_with_val_skips_corrupt_file_with_one_warning(tmp_path):
    root = _folder_tree(tmp_path / "imgs")
    info = dataset_info("folder", str(root))
    assert (info.num_classes, info.in_chans, info.native_size, info.default_img_size) == (3, 3, 12, 16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train, val, info = build_datasets("folder", str(root), img_size=20)
    assert len(caught) == 1 and "skipped 1 unreadable" in str(caught[0].message)
    assert (info.skipped, info.num_train, info.num_val) == (1, 13, 6)
    assert info.mean == (0.485, 0.456, 0.406)
    _check_items(train, 13, 3, 20, 3)
    _check_items(val, 6, 3, 20, 3)
    assert sorted(np.bincount(train.targets).tolist()) == [4, 4, 5]
    assert "HorizontalFlip" in repr(train.transform)
    gray = train.paths.index(str(root / "train" / "bee" / "gray.png"))
    assert train[gray][0].shape == (3, 20, 20)  # grayscale file converted to RGB


def test_folder_uses_test_when_no_val(tmp_path):
    root = _folder_tree(tmp_path / "imgs", splits=("train", "test"))
    with pytest.warns(UserWarning, match="skipped 1"):
        _, val, info = build_datasets("folder", str(root), img_size=12)
    assert info.num_val == 6 and all("/test/" in p for p in val.paths)


def test_folder_split_by_seed_without_val(tmp_path):
    root = _folder_tree(tmp_path / "imgs", splits=("train",), per_class=(10,))
    (root / "train" / "ant" / "zz_corrupt.png").unlink()
    a, a_val, info = build_datasets("folder", str(root), img_size=12, val_fraction=0.2, seed=0)
    b, b_val, _ = build_datasets("folder", str(root), img_size=12, val_fraction=0.2, seed=0)
    c, c_val, _ = build_datasets("folder", str(root), img_size=12, val_fraction=0.2, seed=1)
    assert a.paths == b.paths and a_val.paths == b_val.paths
    assert a_val.paths != c_val.paths
    assert not set(a.paths) & set(a_val.paths)
    assert info.num_val == 6 and sorted(np.bincount(a_val.targets).tolist()) == [2, 2, 2]


def test_folder_subset_verifies_only_what_is_used(tmp_path):
    root = _folder_tree(tmp_path / "imgs")
    skipped = []
    for seed in range(10):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train, val, info = build_datasets("folder", str(root), img_size=12, train_subset=3, val_subset=3, seed=seed)
        assert len(train) + info.skipped == 3 and len(val) == 3
        assert len(caught) == info.skipped  # warned only when the corrupt file was drawn
        if not info.skipped:
            assert sorted(train.targets.tolist()) == [0, 1, 2]  # one per class
        skipped.append(info.skipped)
    assert 0 in skipped


def test_folder_lists_what_imagefolder_lists_minus_hidden_entries(tmp_path):
    from torchvision.datasets import ImageFolder

    root = _folder_tree(tmp_path / "imgs", per_class=(3, 1))
    _png(root / "train" / "cat" / "deeper" / "nested.png", 9)  # ImageFolder walks subfolders too
    expected = [p for p, _ in ImageFolder(str(root / "train")).samples if "corrupt" not in p]
    _png(root / "train" / ".ipynb_checkpoints" / "x.png", 1)  # ImageFolder would make this a class
    _png(root / "train" / "ant" / ".hidden.png", 1)
    with pytest.warns(UserWarning, match="skipped 1"):
        train, _, info = build_datasets("folder", str(root), img_size=12, augment=False)
    assert info.num_classes == 3
    assert sorted(train.paths) == sorted(expected) and len(expected) == 3 * 3 + 2


# --- cifar -------------------------------------------------------------------------------------


@pytest.mark.parametrize("nested", [False, True])
def test_cifar10_from_folder_or_parent(tmp_path, nested):
    folder = _cifar(tmp_path / "cifar-10-batches-py")
    data = tmp_path if nested else folder
    info = dataset_info("cifar10", str(data))
    assert (info.num_classes, info.in_chans, info.native_size) == (10, 3, 32)
    train, val, info = build_datasets("cifar10", str(data), img_size=32, augment=False)
    assert (info.num_train, info.num_val) == (20, 4)
    _check_items(train, 20, 3, 32, 10)
    x, _ = val[0]
    red = (1.0 - info.mean[0]) / info.std[0]
    green = (0.0 - info.mean[1]) / info.std[1]
    assert torch.allclose(x[0], torch.full((32, 32), red), atol=1e-4)
    assert torch.allclose(x[1], torch.full((32, 32), green), atol=1e-4)


def test_cifar100_fine_labels(tmp_path):
    folder = _cifar(tmp_path / "cifar-100-python", name="cifar100", n=6)
    train, val, info = build_datasets("cifar100", str(folder), img_size=16, train_subset=3)
    assert info.num_classes == 100 and (info.num_train, info.num_val) == (3, 6)
    _check_items(train, 3, 3, 16, 100)
    assert sorted(val.targets.tolist()) == list(range(6))


# --- mnist -------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_plain_and_gz_in_raw(tmp_path, gz):
    _mnist(tmp_path / "raw", gz=gz)
    info = dataset_info("mnist", str(tmp_path))
    assert (info.num_classes, info.in_chans, info.native_size, info.default_img_size) == (10, 1, 28, 28)
    train, val, info = build_datasets("mnist", str(tmp_path), img_size=32)
    assert (info.num_train, info.num_val) == (20, 10)
    _check_items(train, 20, 1, 32, 10)
    assert "HorizontalFlip" not in repr(train.transform)


def test_fashion_mnist_subset(tmp_path):
    _mnist(tmp_path, n_train=40)
    train, val, info = build_datasets("fashion-mnist", str(tmp_path), img_size=28, train_subset=20, val_subset=5)
    assert info.mean == (0.2860,) and (len(train), len(val)) == (20, 5)
    assert np.bincount(train.targets).tolist() == [2] * 10


# --- errors ------------------------------------------------------------------------------------


def test_unknown_name_lists_valid_and_suggests():
    with pytest.raises(UserError, match=r"unknown dataset 'cifar-10' \(did you mean 'cifar10'\?\); valid: digits"):
        dataset_info("cifar-10")
    with pytest.raises(UserError, match="unknown dataset"):
        build_datasets("imagenet", img_size=32)
    assert list_datasets()[0] == "digits"


@pytest.mark.parametrize("name", ["cifar10", "folder", "mnist"])
def test_data_required(name):
    with pytest.raises(UserError, match=f"--data is required for dataset '{name}'"):
        build_datasets(name, None, img_size=32)


def test_missing_and_empty_directory(tmp_path):
    with pytest.raises(UserError, match="data directory not found"):
        dataset_info("cifar10", str(tmp_path / "nope"))
    with pytest.raises(UserError, match="data directory is empty"):
        dataset_info("folder", str(tmp_path))


def test_folder_errors(tmp_path):
    (tmp_path / "a" / "x").mkdir(parents=True)
    with pytest.raises(UserError, match="missing train/"):
        dataset_info("folder", str(tmp_path / "a"))
    for c in ("one", "two"):
        (tmp_path / "b" / "train" / c).mkdir(parents=True)
        (tmp_path / "b" / "train" / c / "readme.txt").write_text("x")
    with pytest.raises(UserError, match="no readable images"):
        dataset_info("folder", str(tmp_path / "b"))
    _png(tmp_path / "c" / "train" / "only" / "0.png", 1)
    with pytest.raises(UserError, match="only one class"):
        dataset_info("folder", str(tmp_path / "c"))
    _png(tmp_path / "d" / "train" / "a" / "0.png", 1)
    _png(tmp_path / "d" / "train" / "b" / "0.png", 2)
    _png(tmp_path / "d" / "val" / "zebra" / "0.png", 2)
    with pytest.raises(UserError, match="classes not in train/: zebra"):
        build_datasets("folder", str(tmp_path / "d"), img_size=8)


def test_cifar_missing_files_named(tmp_path):
    folder = _cifar(tmp_path / "c10")
    (folder / "data_batch_3").unlink()
    (folder / "test_batch").unlink()
    with pytest.raises(UserError, match="missing data_batch_3, test_batch in"):
        dataset_info("cifar10", str(folder))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(UserError, match="cifar100: no python-format files"):
        dataset_info("cifar100", str(tmp_path / "other"))


def test_corrupt_cifar_pickle_is_a_user_error(tmp_path):
    folder = _cifar(tmp_path / "c10")
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a CIFAR python-format batch"):
        build_datasets("cifar10", str(folder), img_size=32)


def test_mnist_missing_and_bad_files(tmp_path):
    _mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match=r"missing t10k-labels-idx1-ubyte\[.gz\] in"):
        dataset_info("mnist", str(tmp_path))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 20)
    with pytest.raises(UserError, match="not an idx ubyte file with 1 dimension"):
        build_datasets("mnist", str(tmp_path), img_size=28)


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_invalid_img_size(bad):
    with pytest.raises(UserError, match="img_size must be a positive integer"):
        build_datasets("digits", img_size=bad)


def test_invalid_subset_and_fraction():
    with pytest.raises(UserError, match="train_subset must be a positive integer"):
        build_datasets("digits", img_size=8, train_subset=0)
    with pytest.raises(UserError, match="val_fraction must be between 0 and 1"):
        build_datasets("digits", img_size=8, val_fraction=1.0)


# --- registry ----------------------------------------------------------------------------------


def test_a_registered_format_is_a_dataset_name(tmp_path):
    def describe(root):
        return DatasetInfo("stripes", 2, 1, 8, 16, (0.5,), (0.5,))

    def load(root, info, req):
        images = np.zeros((6, 8, 8), dtype=np.uint8)
        images[::2, :, ::2] = 255
        labels = np.arange(6) % 2
        return (ArrayDataset(images, labels, req.train_transform), ArrayDataset(images, labels, req.eval_transform),
                info)

    register_dataset("stripes", DatasetFormat(describe, load, needs_data=False))
    try:
        assert "stripes" in list_datasets()
        train, val, info = build_datasets("stripes", img_size=16, augment=False)
        assert train[0][0].shape == (1, 16, 16) and info.num_classes == 2
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("stripes", DatasetFormat(describe, load))
    finally:
        from trilevel.core import data

        data._REGISTRY.pop("stripes", None)  # leave the registry as other tests expect it
