"""From a fitted estimator (or a pipeline ending in one) to a torch module ``raw X -> scores``.

Attacks and the Lipschitz estimate work on torch modules; users hold scikit-learn objects.
The bridge turns one into the other so that the adversary acts on the data exactly as the
user gives it to ``predict``: the scalers in front of a network become differentiable torch
affine maps, so ``eps`` is measured in raw input units. Anything else can only be queried,
not differentiated, which is enough for black-box attacks such as Square.
"""

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_array, check_is_fitted
from torch import nn

from ..estimators import RobustNetClassifier
from ..utils import Substitution, module_device
from ._affine import SCALERS, flatten_pipeline, scaler_to_affine, work_dtype
from ._bounds import bounds_through, training_bounds
from ._frames import with_feature_names

# Probabilities are floored at this value before the log of the black-box scores.
_PROBA_FLOOR = 1e-12

# The fitted pipeline both examples start from.
_EXAMPLE = Substitution(pipeline_example="""
    >>> import numpy as np
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust import NaturalClassifier, bridge
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0))
    >>> pipe = pipe.fit(X, y)
""")


@_EXAMPLE
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
    bounds : None, (ndarray, ndarray) or UNKNOWN_BOUNDS
        The estimator's valid input range (the bounds it trained with; for an estimator
        without a ``bounds`` parameter, such as Natural, the global range of its training
        data) translated to the raw input space; None if unbounded; ``UNKNOWN_BOUNDS`` for
        a net initialised without data.
    steps : list of str
        The pipeline steps turned into torch operations (names and classes).

    Examples
    --------
    %(pipeline_example)s
    >>> model = bridge.as_torch_classifier(pipe)
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
            z = x.to(work_dtype(x.device))
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
            Sharing memory with ``X`` when that is a writeable float32 array on CPU; a
            read-only array (such as pandas' copy-on-write view of a DataFrame) is copied,
            since torch warns on non-writable buffers.
        """
        if not self.preprocess and isinstance(self.estimator, RobustNetClassifier):
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
        return torch.as_tensor(_writeable(X), device=self.device)


def _writeable(array):
    """``array`` itself if writeable, else a writeable copy: torch warns on read-only buffers.

    Pandas (copy-on-write) hands out read-only views of a DataFrame's data; only those are
    copied, so a writeable array still shares its memory with the tensor made from it.

    Examples
    --------
    >>> a = np.zeros(3, dtype=np.float32)
    >>> _writeable(a) is a
    True
    >>> a.flags.writeable = False
    >>> b = _writeable(a)
    >>> b.flags.writeable, np.shares_memory(a, b)
    (True, False)
    """
    return np.require(array, requirements="W")


class ProbaModule(nn.Module):
    """Black box: ``log(max(predict_proba(x), 1e-12))`` under ``no_grad``, on CPU tensors.

    Parameters
    ----------
    estimator : estimator
        A fitted classifier with ``predict_proba``.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    >>> module = ProbaModule(LogisticRegression().fit(X, y))
    >>> module(torch.tensor(X, dtype=torch.float32)).exp().sum(dim=1).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, estimator):
        super().__init__()
        self.estimator = estimator

    def forward(self, x):
        """Log-probabilities of ``x`` as a float32 tensor on ``x``'s device."""
        array = x.detach().cpu().numpy()
        with torch.no_grad():
            proba = np.asarray(self.estimator.predict_proba(with_feature_names(
                self.estimator, array)), dtype=np.float64)
        scores = np.log(np.maximum(proba, _PROBA_FLOOR)).astype(np.float32)
        return torch.as_tensor(scores, device=x.device)


def _pipeline_parts(pipeline):
    """``(final_name, final, preprocessing steps)`` of a differentiable pipeline, or a reason."""
    steps = flatten_pipeline(pipeline)
    if not steps:
        return None, "the pipeline has no estimator"
    final_name, final = steps[-1]
    if not isinstance(final, RobustNetClassifier):
        return None, (
            f"the pipeline's final step {final_name!r} ({type(final).__name__}) is not a torch "
            "classifier of sklearn_robust, so its input gradients are not available"
        )
    for name, step in steps[:-1]:
        if not isinstance(step, SCALERS):
            return None, (
                f"the pipeline step {name!r} ({type(step).__name__}) cannot be differentiated; "
                "only StandardScaler, MinMaxScaler, MaxAbsScaler and RobustScaler steps can "
                "precede the network for a gradient attack"
            )
    return (final_name, final, steps[:-1]), None


def _white_box(estimator):
    """The differentiable bridge, or ``(None, reason)`` naming what cannot be differentiated."""
    if isinstance(estimator, RobustNetClassifier):
        network = estimator.logits_module()
        return TorchClassifier(
            estimator, network, [], classes=estimator.classes_,
            device=module_device(network), differentiable=True, output="logits",
            bounds=training_bounds(estimator), n_features=None, sample_shape=None,
        ), None
    if not isinstance(estimator, Pipeline):
        return None, (
            f"{type(estimator).__name__} is not a torch classifier of sklearn_robust, so its "
            "input gradients are not available"
        )
    parts, reason = _pipeline_parts(estimator)
    if parts is None:
        return None, reason
    final_name, final, scalers = parts
    network = final.logits_module()
    device = module_device(network)
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        n_features = final.n_features_in_
    if tuple(getattr(final, "sample_shape_", (n_features,))) != (n_features,):
        raise ValueError(
            f"the pipeline's final step {final_name!r} was fitted on samples of shape "
            f"{tuple(final.sample_shape_)}, but the pipeline takes {n_features} features."
        )
    affines = [scaler_to_affine(name, step, n_features, device) for name, step in scalers]
    return TorchClassifier(
        estimator, network, affines, classes=final.classes_, device=device,
        differentiable=True, output="logits",
        bounds=bounds_through(training_bounds(final), affines, n_features),
        n_features=n_features, sample_shape=None,
    ), None


def _black_box(estimator):
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
        estimator, ProbaModule(estimator), [], classes=classes, device="cpu",
        differentiable=False, output="log_proba", bounds=None, n_features=n_features,
        sample_shape=sample_shape,
    )


@_EXAMPLE
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
    %(pipeline_example)s
    >>> model = bridge.as_torch_classifier(pipe)
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
    return _black_box(estimator)

