"""From a fitted estimator (or a pipeline ending in one) to a torch function ``raw X -> scores``.

Attacks and the Lipschitz estimate work on torch modules; users hold scikit-learn objects.
The bridge turns one into the other so that the adversary acts on the data exactly as the
user gives it to ``predict``: the scalers in front of a network become differentiable torch
affine maps, so ``eps`` is measured in raw input units. Anything else can only be queried,
not differentiated, which is enough for black-box attacks such as Square.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted
from torch import nn

from .._threat import check_bounds, check_bounds_contain

_SCALERS = (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler)
# Probabilities are floored at this value before the log of the black-box scores.
_PROBA_FLOOR = 1e-12


# ---------------------------------------------------------------------------- pieces
def _work_dtype(device):
    # The scalers run in float64 like scikit-learn's, except where float64 does not exist.
    return torch.float32 if device.type == "mps" else torch.float64


class _Affine(nn.Module):
    """``x * mult + add`` per feature (float64), then an optional clip: a fitted scaler."""

    def __init__(self, name, mult, add, clip=None, device=None):
        super().__init__()
        self.name = name
        device = torch.device("cpu" if device is None else device)
        for key, value in (("mult", mult), ("add", add)):
            tensor = torch.tensor(np.array(value), dtype=_work_dtype(device), device=device)
            self.register_buffer(key, tensor, persistent=False)
        self.clip = clip

    def forward(self, x):
        x = x * self.mult + self.add
        if self.clip is not None:
            x = x.clamp(self.clip[0], self.clip[1])
        return x

    def inverse(self, z):
        """The raw values mapped to ``z`` (numpy, ignoring the clip): ``(z - add) / mult``."""
        return (z - self.add.cpu().numpy()) / self.mult.cpu().numpy()

    def extra_repr(self):
        return f"{self.name}, clip={self.clip}"


def _scaler_to_affine(name, scaler, n_features, device):
    """The torch affine map equal to ``scaler.transform`` (a fitted sklearn scaler)."""
    check_is_fitted(scaler)
    ones, zeros = np.ones(n_features), np.zeros(n_features)
    mult, add, clip = ones, zeros, None
    if isinstance(scaler, StandardScaler):
        scale = scaler.scale_ if scaler.with_std else ones
        mean = scaler.mean_ if scaler.with_mean else zeros
        mult, add = 1.0 / scale, -mean / scale
    elif isinstance(scaler, RobustScaler):
        scale = scaler.scale_ if scaler.with_scaling else ones
        center = scaler.center_ if scaler.with_centering else zeros
        mult, add = 1.0 / scale, -center / scale
    elif isinstance(scaler, MinMaxScaler):
        mult, add = scaler.scale_, scaler.min_
        if scaler.clip:
            clip = (float(scaler.feature_range[0]), float(scaler.feature_range[1]))
    elif isinstance(scaler, MaxAbsScaler):
        mult = 1.0 / scaler.scale_
        if getattr(scaler, "clip", False):
            clip = (-1.0, 1.0)
    mult = np.broadcast_to(np.asarray(mult, dtype=np.float64), (n_features,))
    add = np.broadcast_to(np.asarray(add, dtype=np.float64), (n_features,))
    return _Affine(f"{name}: {type(scaler).__name__}", mult, add, clip, device)


def _flatten_steps(pipeline, prefix=""):
    """``(name, step)`` pairs of a pipeline, nested pipelines expanded, passthroughs dropped."""
    out = []
    for name, step in pipeline.steps:
        full = f"{prefix}{name}"
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        if isinstance(step, Pipeline):
            out.extend(_flatten_steps(step, prefix=f"{full}__"))
        else:
            out.append((full, step))
    return out


def _is_torch_classifier(estimator):
    # Duck typing on the two methods RobustNetClassifier provides for the scorers.
    return hasattr(estimator, "logits_module") and hasattr(estimator, "to_input_tensor")


def _network_device(network):
    for tensor in network.parameters():
        return tensor.device
    for tensor in network.buffers():
        return tensor.device
    return torch.device("cpu")


def _final_bounds(estimator):
    """The training bounds of one of our estimators, in its own input space, or None."""
    threat = getattr(estimator, "threat_model_", None)
    if threat is None:
        return None
    return check_bounds(getattr(threat, "bounds", None))


def _with_feature_names(estimator, array):
    """``array`` as a DataFrame when ``estimator`` was fitted on one (no name warnings)."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None or array.ndim != 2 or array.shape[1] != len(names):
        return array
    import pandas as pd

    return pd.DataFrame(array, columns=names)


# ---------------------------------------------------------------------------- the bridge
class TorchClassifier(nn.Module):
    """A fitted classifier seen as a torch module ``raw X -> scores``.

    Built by :func:`as_torch_classifier`; not meant to be constructed directly. Calling it on
    a float32 batch in the user's input space (the space ``predict`` takes) returns one row of
    scores per sample, columns ordered as :attr:`classes_`.

    Attributes
    ----------
    estimator : estimator
        The wrapped estimator (not copied: the bridge calls its network).
    classes_ : ndarray
        The labels, in the order of the score columns.
    device : torch.device
        Where inputs must be (the network's device; CPU for the black-box wrapper).
    differentiable : bool
        Whether scores can be differentiated with respect to the input.
    output : {'logits', 'log_proba'}
        What the scores are: the network's logits, or the logarithm of ``predict_proba``
        (floored at ``1e-12``) for the black-box wrapper. For a softmax model the two differ
        by a per-sample constant, so the margin ``s_y - max_{i != y} s_i`` is the same.
    bounds : None or (ndarray, ndarray)
        The estimator's training input bounds translated to the raw input space, or None.
    steps : list of str
        The pipeline steps turned into torch operations (names and classes).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust import NaturalClassifier
    >>> from sklearn_robust.metrics import as_torch_classifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0))
    >>> model = as_torch_classifier(pipe.fit(X, y))
    >>> type(model).__name__, model.output
    ('TorchClassifier', 'logits')
    >>> scores = model(model.to_tensor(X[:5])).detach().numpy()
    >>> bool(np.all(scores.argmax(1) == pipe.predict(X[:5])))
    True
    """

    def __init__(self, estimator, network, preprocess, *, classes, device, differentiable,
                 output, bounds, n_features, sample_shape):
        super().__init__()
        self.estimator = estimator
        self.network = network
        self.preprocess = nn.ModuleList(preprocess)
        self.classes_ = np.asarray(classes)
        self.device = torch.device(device)
        self.differentiable = differentiable
        self.output = output
        self.bounds = bounds
        self._n_features = n_features
        self._sample_shape = sample_shape

    @property
    def steps(self):
        """Names of the pipeline steps run as torch operations."""
        return [step.name for step in self.preprocess]

    def forward(self, x):
        """Scores of a batch ``x`` given in the raw input space."""
        if len(self.preprocess):
            z = x.to(_work_dtype(x.device))
            for step in self.preprocess:
                z = step(z)
            x = z.to(torch.float32)
        return self.network(x)

    def to_tensor(self, X):
        """Validate ``X`` as ``predict`` would and return it as float32 on :attr:`device`.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Inputs as the user gives them to ``predict`` (a DataFrame is fine).

        Returns
        -------
        torch.Tensor
        """
        if not self.preprocess and _is_torch_classifier(self.estimator):
            return self.estimator.to_input_tensor(X)
        X = check_array(X, dtype=np.float32, allow_nd=True, ensure_min_features=1)
        if X.ndim < 2:
            raise ValueError(f"X must have at least 2 dimensions, got shape {X.shape}.")
        expected = self._sample_shape
        if expected is None and self._n_features is not None:
            expected = (self._n_features,)
        if expected is not None and tuple(X.shape[1:]) != tuple(expected):
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but "
                f"{type(self.estimator).__name__} expects samples of shape {tuple(expected)}."
            )
        return torch.as_tensor(X, device=self.device)


class _ProbaFunction(nn.Module):
    """Black box: ``log(max(predict_proba(x), 1e-12))`` under ``no_grad``, on CPU tensors."""

    def __init__(self, estimator):
        super().__init__()
        self.estimator = estimator

    def forward(self, x):
        array = x.detach().cpu().numpy()
        with torch.no_grad():
            proba = np.asarray(self.estimator.predict_proba(_with_feature_names(
                self.estimator, array)), dtype=np.float64)
        scores = np.log(np.maximum(proba, _PROBA_FLOOR)).astype(np.float32)
        return torch.as_tensor(scores, device=x.device)


def _white_box(estimator):
    """The differentiable bridge, or ``(None, reason)`` naming what cannot be differentiated."""
    if _is_torch_classifier(estimator):
        network = estimator.logits_module()
        return TorchClassifier(
            estimator, network, [], classes=estimator.classes_,
            device=_network_device(network), differentiable=True, output="logits",
            bounds=_final_bounds(estimator), n_features=None, sample_shape=None,
        ), None
    if not isinstance(estimator, Pipeline):
        return None, (
            f"{type(estimator).__name__} is not a torch classifier of sklearn_robust, so its "
            "input gradients are not available"
        )
    steps = _flatten_steps(estimator)
    if not steps:
        return None, "the pipeline has no estimator"
    final_name, final = steps[-1]
    if not _is_torch_classifier(final):
        return None, (
            f"the pipeline's final step {final_name!r} ({type(final).__name__}) is not a torch "
            "classifier of sklearn_robust, so its input gradients are not available"
        )
    for name, step in steps[:-1]:
        if not isinstance(step, _SCALERS):
            return None, (
                f"the pipeline step {name!r} ({type(step).__name__}) cannot be differentiated; "
                "only StandardScaler, MinMaxScaler, MaxAbsScaler and RobustScaler steps can "
                "precede the network for a gradient attack"
            )
    network = final.logits_module()
    device = _network_device(network)
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        n_features = final.n_features_in_
    if tuple(final.sample_shape_) != (n_features,):
        raise ValueError(
            f"the pipeline's final step {final_name!r} was fitted on samples of shape "
            f"{tuple(final.sample_shape_)}, but the pipeline takes {n_features} features."
        )
    affines = [_scaler_to_affine(name, step, n_features, device) for name, step in steps[:-1]]
    bounds = _final_bounds(final)
    if bounds is not None and affines:
        # Every scaler is increasing per feature: map the box back step by step.
        low, high = (np.broadcast_to(b.astype(np.float64), (n_features,)) for b in bounds)
        for affine in reversed(affines):
            a, b = affine.inverse(low), affine.inverse(high)
            low, high = np.minimum(a, b), np.maximum(a, b)
        bounds = (low.astype(np.float32), high.astype(np.float32))
    return TorchClassifier(
        estimator, network, affines, classes=final.classes_, device=device,
        differentiable=True, output="logits", bounds=bounds, n_features=n_features,
        sample_shape=None,
    ), None


def as_torch_classifier(estimator, *, gradients=True):
    """Turn a fitted classifier into a torch module ``raw X -> scores`` for attacks.

    With ``gradients=True`` the estimator must be a classifier of this library (a
    :class:`~sklearn_robust.RobustNetClassifier`) or a :class:`~sklearn.pipeline.Pipeline`
    whose last step is one and whose other steps are fitted ``StandardScaler``,
    ``MinMaxScaler``, ``MaxAbsScaler`` or ``RobustScaler`` (``'passthrough'`` and nested
    pipelines of these are fine). The scalers become torch affine maps computed in float64
    (``MinMaxScaler(clip=True)`` and ``MaxAbsScaler(clip=True)`` become a clamp), so the
    module takes raw inputs, returns the network's logits and is differentiable: an attack
    on it perturbs the data the user sees, and ``eps`` is in raw units.

    With ``gradients=False`` those estimators are bridged the same way, and any other fitted
    classifier with ``predict_proba`` (a scikit-learn one, a pipeline with arbitrary steps)
    is wrapped as a black box: a parameterless module that converts the batch to numpy,
    calls ``predict_proba`` and returns ``log(max(p, 1e-12))`` as a CPU float32 tensor.
    Log-probabilities differ from logits by a per-sample constant, so score-based attacks
    (Square's margin loss) behave as on logits.

    Parameters
    ----------
    estimator : estimator or Pipeline
        A fitted classifier.
    gradients : bool, default=True
        Whether the module must be differentiable with respect to its input.

    Returns
    -------
    TorchClassifier
        The module, with ``classes_``, ``device``, ``differentiable``, ``output``,
        ``bounds`` (the estimator's training bounds mapped back through the scalers to the
        raw input space, or None) and ``to_tensor(X)``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ValueError
        If ``gradients=True`` and some step cannot be differentiated (the message names
        it), or if ``gradients=False`` and the estimator has no ``predict_proba``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust import NaturalClassifier
    >>> from sklearn_robust.metrics import as_torch_classifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0))
    >>> pipe = pipe.fit(X, y)
    >>> model = as_torch_classifier(pipe)
    >>> model.steps, model.output
    (['standardscaler: StandardScaler'], 'logits')
    >>> proba = model(model.to_tensor(X[:5])).softmax(dim=1).detach().numpy()
    >>> bool(np.allclose(proba, pipe.predict_proba(X[:5]), atol=1e-5))
    True
    """
    check_is_fitted(estimator)
    bridge, reason = _white_box(estimator)
    if bridge is not None:
        return bridge
    if gradients:
        raise ValueError(
            f"Input gradients are needed (a gradient attack or the local Lipschitz estimate), "
            f"but {reason}. Use a black-box attack such as attack='square', or a Pipeline of "
            "scalers ending in an sklearn_robust classifier."
        )
    if not hasattr(estimator, "predict_proba"):
        raise ValueError(
            f"{type(estimator).__name__} has no predict_proba: the black-box bridge queries "
            "class probabilities."
        )
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise ValueError(f"{type(estimator).__name__} has no classes_: is it a classifier?")
    n_features = getattr(estimator, "n_features_in_", None)
    sample_shape = getattr(estimator, "sample_shape_", None)
    if sample_shape is not None:
        n_features = None
    return TorchClassifier(
        estimator, _ProbaFunction(estimator), [], classes=classes, device="cpu",
        differentiable=False, output="log_proba", bounds=None, n_features=n_features,
        sample_shape=sample_shape,
    )


# ---------------------------------------------------------------------------- helpers
def _torch_modules(estimator):
    """Every torch module held by ``estimator`` (pipeline steps searched recursively)."""
    found = []
    if isinstance(estimator, Pipeline):
        for _, step in _flatten_steps(estimator):
            found.extend(_torch_modules(step))
        return found
    for value in vars(estimator).values():
        if isinstance(value, nn.Module):
            found.append(value)
    return found


@contextmanager
def preserved_state(estimator):
    """Restore the train/eval flags of ``estimator``'s torch modules and the torch RNG on exit.

    skorch's ``predict`` switches its modules to eval mode and leaves them so, and each
    DataLoader it builds draws a seed from the global torch RNG; the scorers call
    ``predict`` and must leave the model, and the random state, as they found them.
    """
    modules = _torch_modules(estimator)
    modes = [(m, m.training) for module in modules for m in module.modules()]
    cuda = sorted({
        t.device.index or 0 for module in modules
        for t in itertools.chain(module.parameters(), module.buffers())
        if t.device.type == "cuda"
    })
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        for m, mode in modes:
            m.training = mode


def predict_like(estimator, array, X):
    """``estimator.predict`` on ``array`` given in the format (DataFrame or not) of ``X``."""
    columns = getattr(X, "columns", None)
    if columns is not None and array.ndim == 2 and array.shape[1] == len(columns):
        import pandas as pd

        array = pd.DataFrame(array, columns=columns)
    return np.asarray(estimator.predict(array))


def check_bounds_arg(bounds):
    """Validate the ``bounds`` argument of the scorers: 'estimator', None or (low, high)."""
    if isinstance(bounds, str):
        if bounds != "estimator":
            raise ValueError(f"bounds must be 'estimator', None or (low, high), got {bounds!r}.")
        return bounds
    return check_bounds(bounds)


def resolve_bounds(bounds, bridge, X):
    """The attack's bounds in raw space from the ``bounds`` argument of the scorers.

    ``'estimator'``: the bridge's translated training bounds widened to contain ``X`` (a
    test point outside the training range is still a valid input), or None. ``None``: no
    bounds. A pair: validated, broadcastable to one sample, and ``X`` must lie inside.
    """
    sample_shape = tuple(X.shape[1:])
    X_np = X.detach().cpu().numpy()
    if isinstance(check_bounds_arg(bounds), str):
        checked = bridge.bounds
        if checked is None:
            return None
        low, high = checked
        if low.ndim == 0 and high.ndim == 0:
            return (np.float32(min(low, X_np.min())), np.float32(max(high, X_np.max())))
        low = np.minimum(np.broadcast_to(low, sample_shape), X_np.min(axis=0))
        high = np.maximum(np.broadcast_to(high, sample_shape), X_np.max(axis=0))
        return low.astype(np.float32), high.astype(np.float32)
    return check_bounds_contain(bounds, X_np)
