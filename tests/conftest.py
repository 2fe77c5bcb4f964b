"""Shared fixtures: sklearn's bundled data sets, scaled as the library's users would, and
one fitted image classifier."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_robust import NaturalClassifier


@pytest.fixture(scope="session")
def digits_images():
    """Digits as (N, 1, 8, 8) float32 images in [0, 1], 25% stratified hold-out."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="session")
def digits_flat():
    """Digits as (N, 64) float32 rows in [0, 1], 25% stratified hold-out."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="session")
def cancer_scaled():
    """breast_cancer standardised on the training split, 25% stratified hold-out."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


@pytest.fixture(scope="session")
def cancer_raw():
    """breast_cancer in raw units, shuffled: ``(X_train, y_train, X_test, y_test)``, 400
    training points."""
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))
    return X[order[:400]], y[order[:400]], X[order[400:]], y[order[400:]]


@pytest.fixture(scope="session")
def natural_digits_cnn(digits_images):
    """The default CNN trained naturally on 800 digits, and 200 test points."""
    X_train, X_test, y_train, y_test = digits_images
    clf = NaturalClassifier(max_epochs=2, random_state=0).fit(X_train[:800], y_train[:800])
    return clf, X_test[:200], y_test[:200]
