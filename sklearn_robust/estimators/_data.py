"""Input validation and label encoding of the classifiers (scikit-learn's rules)."""

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data
from skorch.utils import is_dataset

from ._augment import check_shift_fits
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
        if is_dataset(X):  # skorch's own validation split: already checked and encoded
            return X
        X = validate_data(
            self, X, reset=reset, dtype=np.float32, allow_nd=True, ensure_min_features=1
        )
        X = np.require(X, requirements="W")  # torch warns on read-only (pandas) buffers
        if X.ndim < 2:
            raise ValueError(f"X must have at least 2 dimensions, got shape {X.shape}.")
        self._check_sample_shape(X, reset)
        return X

    def _check_sample_shape(self, X, reset):
        if not reset and not hasattr(self, "sample_shape_"):
            return  # initialised without data: nothing recorded to compare with
        if reset:
            self.sample_shape_ = tuple(X.shape[1:])
        elif tuple(X.shape[1:]) != self.sample_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but {type(self).__name__} was "
                f"fitted on samples of shape {self.sample_shape_}."
            )

    def _validate_training_data(self, X, y, reset, classes=None):
        """``X`` as float32 and ``y`` encoded as int64 indices into ``classes_``.

        ``classes`` (``partial_fit``'s) names every class of a stream: on the first call it
        sets ``classes_`` even if the batch lacks some; later it must equal ``classes_``.
        """
        # A net initialised without data records its shapes from the first data it sees.
        reset = reset or not hasattr(self, "sample_shape_")
        X, y = validate_data(
            self, X, y, reset=reset, dtype=np.float32, allow_nd=True, ensure_min_features=1
        )
        check_classification_targets(y)
        X = np.require(X, requirements="W")
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
        self.input_range_ = (float(X.min()), float(X.max()))
        check_shift_fits(self.max_shift, self._image_shape())
        unseen = ~np.isin(y, self.classes_)
        if unseen.any():
            raise ValueError(
                f"y contains labels {np.unique(y[unseen]).tolist()} outside classes_ "
                f"{self.classes_.tolist()}: name every class of the stream with "
                "partial_fit(X, y, classes=...) on the first call."
            )
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
