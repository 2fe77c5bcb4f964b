"""The one base class: a skorch ``NeuralNetClassifier`` whose training step is an objective.

Everything skorch does (history, callbacks, devices, persistence) is kept; this class adds
sklearn-grade input validation, label encoding, the default networks, ``device='auto'``,
``random_state`` and the hook that lets a training objective own the loss of a batch.
"""

from __future__ import annotations

import numbers
import warnings
from contextlib import contextmanager, nullcontext
from types import MappingProxyType

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet, NeuralNetClassifier
from skorch.dataset import unpack_data
from skorch.utils import is_dataset, to_tensor

from .._threat import ThreatModel, check_bounds, check_bounds_contain, check_eps, check_norm
from ..objectives import Natural
from ._augment import check_max_shift, check_shift_fits, random_shift
from ._device import resolve_device, rng_devices
from ._networks import Reshape, check_input_shape, default_network


class RobustNetClassifier(NeuralNetClassifier):
    """Base of every classifier in this library: skorch training, one objective per method.

    Subclasses set the training method by overriding :meth:`make_objective`. The base
    itself trains naturally. All skorch parameters (``lr``, ``max_epochs``, ``batch_size``,
    ``optimizer``, ``callbacks``, ``train_split``, ``module__*``, ``optimizer__*``...) work.

    Parameters
    ----------
    module : torch.nn.Module class or instance, or None, default=None
        The network, returning logits. ``None`` builds :class:`MLP` for 2-D input and
        :class:`SmallCNN` for images ``(N, C, H, W)`` or ``(N, H, W)`` (or flat rows
        reshaped by ``input_shape``); ``module__*`` parameters reach its constructor.
    input_shape : tuple of int or None, default=None
        Reshape flat rows to ``(C, H, W)`` or ``(H, W)`` before the network, so image data
        can flow through a scikit-learn ``Pipeline`` as 2-D arrays.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout and attack starts during ``fit``
        (inside a forked RNG: the global torch RNG is left as it was).
    max_shift : int, default=0
        Data augmentation for image input: each training image is translated by its own
        random offset of up to ``max_shift`` pixels per axis (zero fill), freshly drawn in
        every epoch. ``0`` (the default) trains on the data as given; tabular input needs
        ``0``. Prediction and scoring never shift.
    precision : {None, 'fp32', 'bf16', 'fp16'}, default=None
        Mixed precision of training. ``None`` and ``'fp32'`` train in float32. ``'bf16'``
        and ``'fp16'`` run the training forward passes, the inner maximisation's included,
        under ``torch.autocast`` with bfloat16 or float16; ``'fp16'`` also scales the loss
        with ``torch.amp.GradScaler``. ``'fp16'`` is meant for CUDA: on another device it
        runs, slowly, with a warning; ``'bf16'`` works on CPU and on GPUs that support it.
        Prediction, scoring and evaluation attacks stay in float32.
    criterion, optimizer, lr, max_epochs, batch_size, train_split, device, verbose
        As in skorch, with these defaults: cross-entropy on logits, Adam, 1e-3, 30, 64, no
        internal validation split, ``'auto'`` (CUDA if available, else CPU), silent. On a
        CUDA device the data loaders pin memory (unless ``iterator_train__pin_memory`` or
        ``iterator_valid__pin_memory`` say otherwise) and batches are copied to the GPU
        with ``non_blocking=True``.
    **kwargs
        Any other skorch parameter.

    Attributes
    ----------
    classes_ : ndarray
        The labels seen in ``fit``.
    n_features_in_ : int
        Number of features (``X.shape[1]``).
    sample_shape_ : tuple
        Shape of one sample as seen in ``fit``.
    module_ : torch.nn.Module
        The trained network.
    objective_ : Objective
        The training objective used by the last ``fit``.
    history_ : skorch.History
        Per-epoch records.
    grad_scaler_ : torch.amp.GradScaler or None
        The loss scaler of ``precision='fp16'``; ``None`` otherwise.

    See Also
    --------
    AdversarialNetClassifier : adds the threat-model parameters.

    Examples
    --------
    A new training method is a subclass that returns its objective:

    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust.objectives import Natural
    >>> class MyClassifier(RobustNetClassifier):
    ...     def make_objective(self):
    ...         return Natural()
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), MyClassifier(max_epochs=5, random_state=0))
    >>> pipe.fit(X, y).score(X, y) > 0.9
    True
    """

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
        precision=None,
        **kwargs,
    ):
        # While constructing, plain attribute setting (skorch's own rule for __init__,
        # which it detects by the absence of initialized_, here a class attribute).
        self.__dict__["_constructing"] = True
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.input_shape = input_shape
        self.random_state = random_state
        self.max_shift = max_shift
        self.precision = precision
        for name in ("history_", "initialized_", "virtual_params_"):
            if name not in kwargs:
                vars(self).pop(name, None)
        del self.__dict__["_constructing"]

    def __setattr__(self, name, value):
        if self.__dict__.get("_constructing"):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # skorch.hf.AccelerateMixin, listed before this class in the bases, replaces
        # train_step_single with a plain "module(X), criterion, backward" step that would
        # skip the objective and its inner maximisation. Our step uses the accelerator's
        # autocast and backward when there is one, so put it back; all the other
        # AccelerateMixin hooks (prepare, data loaders, optimizer step, gather, unwrap) stay.
        step = cls.train_step_single
        if (getattr(step, "__module__", None) == "skorch.hf"
                and getattr(step, "__qualname__", None) == "AccelerateMixin.train_step_single"):
            owner = next(k for k in cls.__mro__ if vars(k).get("train_step_single") is step)
            cls.train_step_single = super(owner, cls).train_step_single

    # ------------------------------------------------------------------ the method
    def make_objective(self):
        """The training objective (an :class:`~sklearn_robust.objectives.Objective`)."""
        return Natural()

    def make_threat_model(self, X):
        """The threat model used in training, or ``None`` for non-adversarial training."""
        return None

    def _check_params(self):
        """Validate hyperparameters (called by ``fit`` before any work)."""
        for name in ("max_epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                if not (name == "batch_size" and value == -1):
                    raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not isinstance(self.lr, numbers.Real) or isinstance(self.lr, bool) or self.lr <= 0:
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}.")
        resolve_device(self.device)
        check_max_shift(self.max_shift)
        if not (self.precision is None
                or (isinstance(self.precision, str) and self.precision in _PRECISIONS)):
            raise ValueError(
                f"precision must be None, 'fp32', 'bf16' or 'fp16', got {self.precision!r}."
            )
        if self.precision in _AUTOCAST_DTYPES and getattr(self, "accelerator", None) is not None:
            raise ValueError(
                f"precision={self.precision!r} cannot be combined with an accelerator: leave "
                "precision=None and pass Accelerator(mixed_precision=...)."
            )

    # ------------------------------------------------------------------ data
    def _validate_X(self, X, reset):
        if is_dataset(X):  # skorch's own validation split: already checked and encoded
            return X
        X = validate_data(
            self, X, reset=reset, dtype=np.float32, allow_nd=True, ensure_min_features=1
        )
        X = np.require(X, requirements="W")  # torch warns on read-only (pandas) buffers
        if X.ndim < 2:
            raise ValueError(f"X must have at least 2 dimensions, got shape {X.shape}.")
        if reset:
            self.sample_shape_ = tuple(X.shape[1:])
        elif tuple(X.shape[1:]) != self.sample_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but {type(self).__name__} was "
                f"fitted on samples of shape {self.sample_shape_}."
            )
        return X

    def _prepare_fit(self, X, y, reset, fit_params):
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
        X, y = validate_data(
            self, X, y, reset=reset, dtype=np.float32, allow_nd=True, ensure_min_features=1
        )
        check_classification_targets(y)
        X = np.require(X, requirements="W")
        if reset:
            self.sample_shape_ = tuple(X.shape[1:])
            classes = np.unique(y)
            if classes.shape[0] < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                    f"but the data contain only one class: {classes[0]!r}."
                )
            self.classes_inferred_ = classes
            self.input_shape_ = check_input_shape(self.input_shape, self.sample_shape_)
        else:
            self._validate_X(X, reset=False)  # shape check against the first fit
        check_shift_fits(self.max_shift, self._image_shape())
        unseen = ~np.isin(y, self.classes_)
        if unseen.any():
            raise ValueError(
                f"y contains labels not seen in the first fit: {np.unique(y[unseen])}."
            )
        y_encoded = np.searchsorted(self.classes_, y).astype(np.int64)
        objective = self.make_objective()
        threat = self.make_threat_model(X) if objective.adversarial else None
        self.objective_, self.threat_model_ = objective, threat
        return X, y_encoded

    def _image_shape(self):
        """``(C, H, W)`` or ``(H, W)`` of one training image, ``None`` for tabular rows."""
        if getattr(self, "input_shape_", None) is not None:
            return self.input_shape_
        return self.sample_shape_ if len(self.sample_shape_) >= 2 else None

    def _get_param_names(self):
        # skorch lists every attribute not ending in "_"; private bookkeeping is no parameter.
        return [k for k in super()._get_param_names() if not k.startswith("_")]

    # skorch's check_data would overwrite classes_inferred_ with the encoded labels.
    def check_data(self, X, y):
        pass

    # ------------------------------------------------------------------ runtime context
    @contextmanager
    def _resolved_device(self):
        """Let skorch see a concrete device while it works, keep ``device`` as given."""
        requested = self.device
        concrete = resolve_device(requested)
        if concrete == requested:
            yield
            return
        self.device = concrete
        try:
            yield
        finally:
            self.device = requested

    def _initialize_precision(self, keep):
        """Check ``precision`` against the device in use; build the fp16 loss scaler."""
        param = next(iter(self.module_.parameters()), None)
        device_type = param.device.type if param is not None else "cpu"
        if self.precision == "fp16" and device_type != "cuda":
            warnings.warn(
                f"precision='fp16' on a {device_type!r} device: float16 autocast runs but is "
                "slow there and loss scaling is only needed on GPUs; use precision='bf16' "
                "on CPU.",
                UserWarning, stacklevel=3,
            )
        if (self.precision == "bf16" and device_type == "cuda"
                and not torch.cuda.is_bf16_supported()):
            raise ValueError(
                "precision='bf16' was requested but this GPU does not support bfloat16; "
                "use precision='fp16'."
            )
        if self.precision != "fp16":
            self.grad_scaler_ = None
        elif not (keep and getattr(self, "grad_scaler_", None) is not None):
            self.grad_scaler_ = torch.amp.GradScaler(device_type)

    def _autocast(self, device_type):
        """The ``precision`` autocast for the training forward passes on ``device_type``."""
        dtype = _AUTOCAST_DTYPES.get(self.precision)
        return nullcontext() if dtype is None else torch.autocast(device_type, dtype=dtype)

    def _on_cuda(self):
        device = resolve_device(self.device)
        return device is not None and torch.device(device).type == "cuda"

    def _to_device(self, data):
        """skorch's ``to_tensor``, with non-blocking copies of tensors to a CUDA device.

        The copy from pinned memory (see :meth:`get_params_for`) then overlaps with
        computation; later kernels on the same stream wait for it.
        """
        if self._on_cuda():
            data = to_tensor(data, device=None)
            if isinstance(data, torch.Tensor):
                return data.to(self.device, non_blocking=True)
        return to_tensor(data, device=self.device)

    def _seeded(self):
        if self.random_state is None:
            return nullcontext()
        return _seeded_rng(self.random_state, rng_devices(resolve_device(self.device)))

    # ------------------------------------------------------------------ skorch hooks
    def initialize(self):
        with self._resolved_device():
            return super().initialize()

    def initialize_module(self):
        if self.module is None:
            if not hasattr(self, "sample_shape_"):
                raise ValueError(
                    "module=None builds its network from the data: call fit first, or pass "
                    "a module."
                )
            kwargs = self.get_params_for("module")
            self.module_ = default_network(
                self.sample_shape_, len(self.classes_), getattr(self, "input_shape_", None),
                **kwargs,
            )
            return self
        super().initialize_module()
        input_shape = getattr(self, "input_shape_", None)
        if input_shape is not None:
            self.module_ = torch.nn.Sequential(Reshape(input_shape), self.module_)
        return self

    def get_params_for(self, prefix):
        """skorch's, plus ``pin_memory=True`` for the data loaders on a CUDA device."""
        params = super().get_params_for(prefix)
        if prefix in ("iterator_train", "iterator_valid") and "pin_memory" not in params:
            iterator = getattr(self, prefix)
            if (isinstance(iterator, type) and issubclass(iterator, torch.utils.data.DataLoader)
                    and self._on_cuda()):
                params["pin_memory"] = True
        return params

    def infer(self, x, **fit_params):
        return super().infer(self._to_device(x), **fit_params)

    def train_step_single(self, batch, **fit_params):
        """One batch: the objective computes the loss (inner maximisation included).

        The objective runs under the ``precision`` autocast, or under the accelerator's when
        the class is composed with skorch's ``AccelerateMixin`` (``self.accelerator``).
        """
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        Xi, yi = self._to_device(Xi), self._to_device(yi)
        if self.max_shift:
            Xi = random_shift(Xi, self.max_shift, self._image_shape())
        accelerator = getattr(self, "accelerator", None)
        if accelerator is not None:
            autocast = accelerator.autocast()
        else:
            autocast = self._autocast(Xi.device.type)
        with autocast:
            loss, logits = self.objective_(self.module_, Xi, yi, self.threat_model_)
        if not torch.isfinite(loss):
            epoch = len(self.history) if self.history is not None else 0
            raise FloatingPointError(
                f"the training loss became {loss.item()} in epoch {epoch}; lower lr or check "
                "the data and the network."
            )
        scaler = getattr(self, "grad_scaler_", None)
        if accelerator is not None:
            accelerator.backward(loss)
        elif scaler is not None:
            scaler.scale(loss).backward()
            for name in self._optimizers:  # true-scale gradients for on_grad_computed
                scaler.unscale_(getattr(self, name + "_"))
        else:
            loss.backward()
        return {"loss": loss, "y_pred": logits}

    def _step_optimizer(self, step_fn):
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is None:
            return super()._step_optimizer(step_fn)
        # GradScaler cannot step with a closure: compute the gradients, then step (it skips
        # steps whose gradients overflowed) and update the scale.
        step_fn()
        for name in self._optimizers:
            scaler.step(getattr(self, name + "_"))
        scaler.update()

    # ------------------------------------------------------------------ sklearn API
    def fit(self, X, y, **fit_params):
        """Validate the data, then train from scratch (or continue with ``warm_start``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W)
            Training inputs; converted to float32.
        y : array-like of shape (n_samples,)
            Labels of any type (strings included).
        **fit_params
            Passed to skorch.

        Returns
        -------
        self
        """
        if self.warm_start and self.initialized_:
            return self.partial_fit(X, y, **fit_params)
        X, y = self._prepare_fit(X, y, reset=True, fit_params=fit_params)
        with self._resolved_device(), self._seeded():
            self.initialize()
            self._initialize_precision(keep=False)
            NeuralNet.partial_fit(self, X, y, **fit_params)
        return self

    def partial_fit(self, X, y, classes=None, **fit_params):
        """Train for ``max_epochs`` more epochs, initialising on the first call."""
        first = not self.initialized_
        X, y = self._prepare_fit(X, y, reset=first, fit_params=fit_params)
        with self._resolved_device(), self._seeded():
            if first:
                self.initialize()
            self._initialize_precision(keep=not first)
            NeuralNet.partial_fit(self, X, y, **fit_params)
        return self

    def forward_iter(self, X, training=False, device="cpu"):
        with self._resolved_device():
            yield from super().forward_iter(X, training=training, device=device)

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits), columns ordered as ``classes_``."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return super().predict_proba(X)

    def predict(self, X):
        """The most probable label for each sample."""
        proba = self.predict_proba(X)
        if is_dataset(X):
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

    def load_params(self, *args, **kwargs):
        with self._resolved_device():
            return super().load_params(*args, **kwargs)

    def __setstate__(self, state):
        requested = state.get("device")
        if requested == "auto":
            state["device"] = resolve_device("auto")
        super().__setstate__(state)
        if requested == "auto":
            self.device = "auto"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.non_deterministic = self.random_state is None
        return tags

    # ------------------------------------------------------------------ for scorers
    def logits_module(self):
        """The fitted network as a function from float32 inputs to logits.

        The scorers and attacks call this to differentiate with respect to the input.
        """
        check_is_fitted(self)
        return self.module_

    def to_input_tensor(self, X):
        """Validate ``X`` as in ``predict`` and return it as a float32 tensor on the device."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        device = next(iter(self.module_.parameters()), torch.empty(0)).device
        return torch.as_tensor(X, device=device)


class AdversarialNetClassifier(RobustNetClassifier):
    """Base of the adversarially trained classifiers: adds the threat-model parameters.

    Parameters
    ----------
    eps : float, default=0.1
        Radius of the threat ball used in training (in input units).
    norm : {'linf', 'l2'}, default='linf'
        Norm of the ball.
    attack_steps : int, default=10
        Steps of the inner maximisation.
    step_size : float or None, default=None
        Step of the inner maximisation; ``None`` is ``2.5 * eps / attack_steps``.
    bounds : 'auto', None, (low, high), default='auto'
        Valid input range. ``'auto'`` uses the global minimum and maximum of the training
        data (one range for all features: per-feature ranges would make constant pixels
        unattackable); ``None`` means unbounded; a pair of scalars or per-feature arrays
        is used as given. Training data outside explicit bounds is an error.
    module, input_shape, random_state, max_shift, precision, **kwargs
        See :class:`RobustNetClassifier`.

    Attributes
    ----------
    threat_model_ : ThreatModel
        The threat model of the last ``fit``, with its bounds resolved.

    Examples
    --------
    >>> from sklearn_robust import TRADESClassifier
    >>> from sklearn_robust.datasets import load_digits_images
    >>> X_train, X_test, y_train, y_test = load_digits_images(flat=True)
    >>> clf = TRADESClassifier(eps=0.1, attack_steps=2, max_epochs=1, random_state=0)
    >>> clf.fit(X_train, y_train).threat_model_
    ThreatModel(eps=0.1, norm='linf', steps=2, step_size=None, bounds=(0.0, 1.0))
    """

    def __init__(
        self,
        module=None,
        *,
        eps=0.1,
        norm="linf",
        attack_steps=10,
        step_size=None,
        bounds="auto",
        **kwargs,
    ):
        super().__init__(module, **kwargs)
        self.eps = eps
        self.norm = norm
        self.attack_steps = attack_steps
        self.step_size = step_size
        self.bounds = bounds

    def _check_params(self):
        super()._check_params()
        check_eps(self.eps)
        check_norm(self.norm)
        if not isinstance(self.bounds, str) or self.bounds != "auto":
            check_bounds(self.bounds)
        ThreatModel(eps=self.eps, norm=self.norm, steps=self.attack_steps,
                    step_size=self.step_size)

    def make_threat_model(self, X):
        bounds = self.bounds
        if isinstance(bounds, str):
            bounds = (float(X.min()), float(X.max()))
        else:
            check_bounds_contain(bounds, X)
        return ThreatModel(eps=self.eps, norm=self.norm, steps=self.attack_steps,
                           step_size=self.step_size, bounds=bounds)


_PRECISIONS = (None, "fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@contextmanager
def _seeded_rng(random_state, devices):
    if isinstance(random_state, numbers.Integral):
        seed = int(random_state)
    else:
        seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
