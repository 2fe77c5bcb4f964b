"""The one base class: a skorch ``NeuralNetClassifier`` whose training step is an objective.

Everything skorch does (history, callbacks, devices, persistence) is kept. The base
declares the parameters (``_parameter_constraints``) and builds the objective; the other
jobs are small mixins: checking the parameters in ``fit`` (:mod:`._params`), the
training step and the fit's randomness (:mod:`._training`), data validation and label
encoding (:mod:`._data`, datasets in :mod:`._dataset_input`), devices (:mod:`._device`),
mixed precision (:mod:`._precision`), learning-rate schedules (:mod:`._schedules`), the
criterion (:mod:`._criterion`) and, composed by the user, Accelerate (:mod:`._accelerate`).
"""

from __future__ import annotations

import math
from numbers import Integral
from types import MappingProxyType

import torch
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetClassifier

from ..objectives import Natural
from ..utils import (
    POSITIVE,
    POSITIVE_INT,
    Options,
    active_streams,
    building_from,
    module_device,
)
from ._criterion import CriterionMixin
from ._data import DataMixin
from ._dataset_input import is_encoded, training_extremes
from ._device import DeviceMixin
from ._docs import fill_doc
from ._named_networks import network_from_data
from ._networks import Reshape, check_input_shape
from ._params import TRAINING_CONSTRAINTS, ParamsMixin
from ._precision import PrecisionMixin
from ._schedules import ScheduleMixin
from ._training import TrainingStepMixin


@fill_doc
class RobustNetClassifier(ParamsMixin, TrainingStepMixin, DataMixin, DeviceMixin,
                          PrecisionMixin, ScheduleMixin, CriterionMixin, NeuralNetClassifier):
    """Base of every classifier in this library: skorch training, one objective per method.

    A subclass sets the training method by naming ``objective_class`` and the
    ``objective_params`` it passes on (their constraints are the objective's, added to
    ``_parameter_constraints``), or by overriding :meth:`make_objective`; it overrides
    :meth:`make_threat_model` when it needs a threat. The base itself trains naturally.
    All skorch parameters (``lr``, ``max_epochs``, ``batch_size``, ``optimizer``,
    ``callbacks``, ``train_split``, ``module__*``, ``optimizer__*``...) work. Every
    parameter is checked against ``_parameter_constraints`` (scikit-learn's format) by
    ``fit``, before any work.

    Parameters
    ----------
    %(network)s

    Attributes
    ----------
    %(attributes)s

    See Also
    --------
    AdversarialNetClassifier : adds the threat-model and attack parameters.
    AccelerateMixin : trains any of these classifiers with Hugging Face Accelerate.

    Examples
    --------
    A new training method is a subclass that names its objective (and, with
    ``objective_params``, the parameters it passes on):

    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust.objectives import Natural
    >>> class MyClassifier(RobustNetClassifier):
    ...     objective_class = Natural
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), MyClassifier(max_epochs=5, random_state=0))
    >>> pipe.fit(X, y).score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = {
        "input_shape": [None, tuple, list],
        "random_state": ["random_state"],
        "lr": POSITIVE,
        "max_epochs": POSITIVE_INT,
        "batch_size": [*POSITIVE_INT, Options(Integral, {-1})],
        "device": [None, str, torch.device],
        **TRAINING_CONSTRAINTS,
    }

    # skorch sets these in __init__; scikit-learn wants no non-parameter attribute set
    # there, so they live on the class until initialisation sets them per instance.
    history_ = None
    initialized_ = False
    virtual_params_ = MappingProxyType({})

    def __init__(
        self,
        module=None,
        *,
        input_shape=None,
        random_state=None,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=30,
        batch_size=64,
        train_split=None,
        device="auto",
        verbose=0,
        max_shift=0,
        flip=False,
        noise_std=0.0,
        precision=None,
        channels_last=False,
        lr_schedule=None,
        **kwargs,
    ):
        # skorch's __setattr__ refuses a torch module instance (module=nn.Sequential(...),
        # criterion=nn.CrossEntropyLoss()) outside initialize() unless the net is being
        # constructed, which it detects by the absence of initialized_; here that is a
        # class attribute (above), so these two are stored directly.
        super().__init__(
            None,
            criterion=None,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        vars(self).update(module=module, criterion=criterion)
        self.input_shape = input_shape
        self.random_state = random_state
        self.max_shift = max_shift
        self.flip = flip
        self.noise_std = noise_std
        self.precision = precision
        self.channels_last = channels_last
        self.lr_schedule = lr_schedule
        for name in ("history_", "initialized_", "virtual_params_"):
            if name not in kwargs:
                vars(self).pop(name, None)

    # ------------------------------------------------------------------ the method
    #: The objective class; the parameters passed to it under their own names; the
    #: parameters passed under the objective's names (``{'attack_steps': 'steps'}``).
    objective_class = Natural
    objective_params = ()
    schedule_params: dict = {}

    def make_objective(self):
        """The training objective: ``objective_class`` with this classifier's parameters.

        ``objective_params`` are passed under their own names, :meth:`schedule` under the
        objective's. Override it for anything else.
        """
        params = {name: getattr(self, name) for name in self.objective_params}
        return self.objective_class(**params, **self.schedule())

    def schedule(self):
        """The parameters in ``schedule_params``, under the objective's names."""
        return {theirs: getattr(self, ours) for ours, theirs in self.schedule_params.items()}

    def make_threat_model(self, X):
        """The threat model used in training, or ``None`` for non-adversarial training."""
        return None

    def _prepare_fit(self, X, y, reset, fit_params, classes=None):
        """Validate everything, encode labels and build objective and threat model."""
        if fit_params:
            # skorch would forward these to the module, which the objectives call with the
            # input alone: refuse rather than silently ignore (sample_weight, say).
            raise TypeError(
                f"{type(self).__name__}.fit got unsupported fit parameters "
                f"{sorted(fit_params)}; sample weights and extra module inputs are not "
                "supported."
            )
        self._check_params()
        X, y_encoded = self._validate_training_data(X, y, reset, classes)
        objective = self.make_objective()
        self._check_criterion(objective)
        # A dataset's bounds='auto' and bounds check read its per-coordinate extremes.
        threat = (self.make_threat_model(training_extremes(X)) if objective.adversarial
                  else None)
        self.objective_, self.threat_model_ = objective, threat
        return X, y_encoded

    # ------------------------------------------------------------------ skorch hooks
    def initialize(self):
        """skorch's initialisation; without data (the restore idiom) also the objective.

        ``net.initialize(); net.load_params(f_params=...)`` needs a network that can be
        built without data: name it (``module=SmallCNN, module__image_shape=(1, 8, 8),
        module__n_classes=10``; see :meth:`initialize_module`) and give the labels with
        skorch's ``classes``. The objective is made from the parameters; the threat model
        and the shapes of the training data stay unknown until a fit.
        """
        super().initialize()
        if not hasattr(self, "objective_"):
            self.objective_, self.threat_model_ = self.make_objective(), None
        return self

    def initialize_module(self):
        """Build ``module_``: the given network, or for ``module=None`` the default one.

        ``module=None`` builds :func:`default_network` from the training data, so it needs
        ``fit``; a name (``'preactresnet18'``, ``'wideresnet'``) builds that network with
        the data's class count and channels (without data: ``classes`` and
        ``module__in_channels``, default 3). To rebuild the default without data (to
        restore saved parameters), name the network it builds: ``module=SmallCNN,
        module__image_shape=(C, H, W), module__n_classes=n`` for images, the same plus
        ``input_shape=(C, H, W)`` for flat rows reshaped to images, ``module=MLP,
        module__n_features=d, module__n_classes=n`` for tabular rows; other
        ``module__*`` parameters as in the fit.
        """
        if self.module is None or isinstance(self.module, str):
            self.module_ = network_from_data(
                self.module, getattr(self, "sample_shape_", None), getattr(self, "classes_", None),
                getattr(self, "input_shape_", self.input_shape), **self.get_params_for("module"))
            return self
        # A user's network draws its weights from torch's global stream: built from the
        # fit's stream under a lock (the library's networks draw from the stream itself).
        with building_from(active_streams()):
            super().initialize_module()
        if not hasattr(self, "sample_shape_") and self.input_shape is not None:
            # Initialised without data: the flat rows' reshape is the parameter itself.
            self.input_shape_ = check_input_shape(self.input_shape,
                                                  (math.prod(self.input_shape),))
        input_shape = getattr(self, "input_shape_", None)
        if input_shape is not None:
            self.module_ = torch.nn.Sequential(Reshape(input_shape), self.module_)
        return self

    # ------------------------------------------------------------------ sklearn API
    def fit(self, X, y=None, **fit_params):
        """Validate the data, then train from scratch (or continue with ``warm_start``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W), or Dataset
            Training inputs, converted to float32; or a map-style torch ``Dataset`` of
            ``(tensor, int)`` pairs, read in batches by skorch's loaders, after one pass
            that checks the items and finds the classes, shape and range.
        y : array-like of shape (n_samples,) or None, default=None
            Labels of any type (strings included); ``None`` with a dataset.
        **fit_params
            Refused (``TypeError``): the objectives call the network with the input alone.

        Returns
        -------
        self
        """
        if self.warm_start and self.initialized_:
            return self.partial_fit(X, y, **fit_params)
        X, y = self._prepare_fit(X, y, reset=True, fit_params=fit_params)
        self._train(X, y, first=True)
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train for ``max_epochs`` more epochs, initialising on the first call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W), or Dataset
            Training inputs of this call (a dataset as in :meth:`fit`).
        y : array-like of shape (n_samples,) or None, default=None
            Their labels; ``None`` with a dataset.
        classes : array-like of shape (n_classes,), default=None
            Every class of the stream, as in scikit-learn's ``partial_fit``: needed on the
            first call when its batch lacks some class (the network gets one output per
            class), optional there otherwise and on later calls, where it must equal
            ``classes_``. A later batch may then bring any of these classes; a label
            outside ``classes_`` is an error.
        **fit_params
            Refused, as in :meth:`fit`.

        Returns
        -------
        self
        """
        first = not self.initialized_
        X, y = self._prepare_fit(X, y, reset=first, fit_params=fit_params, classes=classes)
        self._train(X, y, first=first)
        return self

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits), columns ordered as ``classes_``."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return super().predict_proba(X)

    def predict(self, X):
        """The most probable label for each sample."""
        proba = self.predict_proba(X)
        if is_encoded(X):
            # skorch's scoring callbacks pass its internal dataset, whose labels are encoded.
            return proba.argmax(axis=1)
        return self.classes_[proba.argmax(axis=1)]

    def decision_function(self, X):
        """The network's logits, columns ordered as ``classes_``."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        logits = self.forward(X).numpy()
        if logits.shape[1] == 2:  # scikit-learn's binary convention: score of classes_[1]
            return logits[:, 1] - logits[:, 0]
        return logits

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.non_deterministic = self.random_state is None
        return tags

    # ------------------------------------------------------------------ for the bridge
    def logits_module(self):
        """The fitted network as a function from float32 inputs to logits.

        The bridge and the attacks call this to differentiate with respect to the input.
        """
        check_is_fitted(self)
        return self.module_

    def to_input_tensor(self, X):
        """Validate ``X`` as in ``predict`` and return it as a float32 tensor on the device."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return torch.as_tensor(X, device=module_device(self.module_))
