"""Input validation and label encoding of the classifiers (scikit-learn's rules).

Arrays are validated as scikit-learn does; a torch ``Dataset`` of ``(input, label)``
pairs (skorch's convention) is read through :mod:`._dataset_input`.
"""

import numpy as np
import torch
from sklearn.metrics import accuracy_score
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.dataset import unpack_data
from skorch.utils import is_dataset

from ._augment import check_images, check_shift_fits
from ._dataset_input import (
    InputDataset,
    LabelledDataset,
    first_sample_shape,
    is_encoded,
    mark_encoded,
    scan_dataset,
)
from ._networks import check_input_shape


class DataMixin:
    """Validate ``X`` and ``y`` as scikit-learn does and encode labels as ``0..C-1``.

    Sets ``n_features_in_`` (and ``feature_names_in_``), ``sample_shape_``,
    ``classes_inferred_`` (skorch's ``classes_``), ``input_shape_`` and ``input_range_``
    in ``fit``; later calls check the data against them. A net initialised without data
    (skorch's ``initialize()`` then ``load_params``) has no recorded shape: its first
    ``fit`` or ``partial_fit`` records one, and until then the network checks its input.
    """

    def _validate_X(self, X, reset):
        if is_dataset(X):
            if is_encoded(X):  # skorch's own validation split: already checked and encoded
                return X
            return self._validate_dataset_X(X)
        X = validate_data(
            self, X, reset=reset, dtype=np.float32, allow_nd=True, ensure_min_features=1
        )
        X = np.require(X, requirements="W")  # torch warns on read-only (pandas) buffers
        if X.ndim < 2:
            raise ValueError(f"X must have at least 2 dimensions, got shape {X.shape}.")
        self._check_sample_shape(X, reset)
        return X

    def _validate_dataset_X(self, dataset):
        """A user's dataset for prediction: its first item checked, every item as read."""
        self._check_sample_shape(first_sample_shape(dataset), reset=False)
        return InputDataset(dataset, getattr(self, "sample_shape_", None))

    def _check_sample_shape(self, X, reset):
        """Record (``reset``) or check the shape of one sample of ``X`` (or that shape)."""
        shape = X if isinstance(X, tuple) else tuple(X.shape[1:])
        if not reset and not hasattr(self, "sample_shape_"):
            return  # initialised without data: nothing recorded to compare with
        if reset:
            self.sample_shape_ = shape
        elif shape != self.sample_shape_:
            raise ValueError(
                f"X has samples of shape {shape}, but {type(self).__name__} was "
                f"fitted on samples of shape {self.sample_shape_}."
            )

    def _scan_training_dataset(self, dataset, y, reset):
        """The first pass over a training dataset (its shape recorded or checked)."""
        if y is not None:
            raise ValueError(
                f"{type(self).__name__} reads the labels of a dataset from its (input, "
                "label) pairs: pass y=None with a dataset."
            )
        workers = self.get_params_for("iterator_train").get("num_workers", 0)
        summary = scan_dataset(dataset, num_workers=workers)
        self._check_sample_shape(summary.sample_shape, reset)
        if reset:  # scikit-learn's count: the second axis of the data (channels of images)
            self.n_features_in_ = summary.sample_shape[0]
            vars(self).pop("feature_names_in_", None)
        return summary

    def _validate_training_data(self, X, y, reset, classes=None):
        """``X`` as float32 and ``y`` encoded as int64 indices into ``classes_``.

        ``classes`` (``partial_fit``'s) names every class of a stream: on the first call it
        sets ``classes_`` even if the batch lacks some; later it must equal ``classes_``.
        A dataset (``y=None``) becomes a :class:`LabelledDataset
        <sklearn_robust.estimators._dataset_input.LabelledDataset>` and ``y`` ``None``.
        """
        # A net initialised without data records its shapes from the first data it sees.
        reset = reset or not hasattr(self, "sample_shape_")
        if is_dataset(X):
            summary = self._scan_training_dataset(X, y, reset)
            y, extremes = summary.labels, summary.extremes
        else:
            X, y = validate_data(
                self, X, y, reset=reset, dtype=np.float32, allow_nd=True, ensure_min_features=1
            )
            check_classification_targets(y)
            X = extremes = np.require(X, requirements="W")
            self._check_sample_shape(X, reset)
        if classes is not None:
            classes = self._check_stream_classes(classes, first=reset)
        if reset:
            if classes is None:
                classes = np.unique(y)
            if classes.shape[0] < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                    f"but the data contain only one class: {classes[0]!r}."
                )
            self.classes_inferred_ = classes
            self.input_shape_ = check_input_shape(self.input_shape, self.sample_shape_)
        # The global range of the training data: what bounds='auto' resolves to, recorded
        # by every classifier so that the metrics attack all of them in the same box.
        self.input_range_ = (float(extremes.min()), float(extremes.max()))
        check_shift_fits(self.max_shift, self._image_shape())
        if self.flip:
            check_images("flip=True", self._image_shape())
        if self.channels_last:
            check_images("channels_last=True", self._image_shape())
        unseen = ~np.isin(y, self.classes_)
        if unseen.any():
            raise ValueError(
                f"y contains labels {np.unique(y[unseen]).tolist()} outside classes_ "
                f"{self.classes_.tolist()}: name every class of the stream with "
                "partial_fit(X, y, classes=...) on the first call."
            )
        if is_dataset(X):
            return LabelledDataset(X, self.classes_, self.sample_shape_, extremes), None
        return X, np.searchsorted(self.classes_, y).astype(np.int64)

    def _check_stream_classes(self, classes, first):
        """``partial_fit``'s ``classes`` as a sorted array, checked against ``classes_``."""
        given = np.asarray(classes)
        if given.ndim != 1 or given.shape[0] == 0:
            raise ValueError(f"classes must be a 1-d array of labels, got {classes!r}.")
        unique = np.unique(given)
        if unique.shape[0] != given.shape[0]:
            raise ValueError(f"classes must not repeat a label, got {given.tolist()}.")
        fixed = None if first else self.classes_
        if first and getattr(self, "classes", None) is not None:
            fixed = np.unique(np.asarray(self.classes))  # skorch's own parameter
        if fixed is not None and not np.array_equal(unique, np.sort(fixed)):
            raise ValueError(
                f"classes={unique.tolist()} is not the same as classes_ "
                f"{np.asarray(fixed).tolist()} of the previous call (or of the classes "
                "parameter); the classes of a stream are named once."
            )
        return unique

    def _image_shape(self):
        """``(C, H, W)`` or ``(H, W)`` of one training image, ``None`` for tabular rows."""
        if getattr(self, "input_shape_", None) is not None:
            return self.input_shape_
        return self.sample_shape_ if len(self.sample_shape_) >= 2 else None

    # skorch's check_data would overwrite classes_inferred_ with the encoded labels.
    def check_data(self, X, y):
        pass

    def get_dataset(self, dataset, y=None):
        """skorch's dataset, marked when built here from arrays (labels encoded)."""
        built = super().get_dataset(dataset, y)
        return built if built is dataset else mark_encoded(built)

    def score(self, X, y=None, sample_weight=None):
        """Accuracy of :meth:`predict` on ``X`` against ``y``, or a dataset's own labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or torch Dataset
            Test inputs, or a map-style dataset of ``(input, label)`` pairs.
        y : array-like of shape (n_samples,) or None, default=None
            True labels; ``None`` with a dataset (its labels are used, read in the same
            pass as its inputs), required with arrays.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Sample weights, as in :func:`sklearn.metrics.accuracy_score`.

        Returns
        -------
        float
        """
        if not is_dataset(X) or is_encoded(X):
            return super().score(X, y, sample_weight=sample_weight)
        if y is not None:
            raise ValueError(f"{type(self).__name__}.score reads a dataset's labels from its "
                             "(input, label) pairs: pass y=None with a dataset.")
        check_is_fitted(self)
        predicted, labels = [], []
        for batch in self.get_iterator(self._validate_X(X, reset=False), training=False):
            logits = self.evaluation_step(batch, training=False)
            logits = logits[0] if isinstance(logits, tuple) else logits
            predicted.append(logits.argmax(dim=1).cpu())
            labels.append(torch.as_tensor(unpack_data(batch)[1]))
        y_pred = self.classes_[torch.cat(predicted).numpy()]
        return accuracy_score(torch.cat(labels).numpy(), y_pred, sample_weight=sample_weight)
