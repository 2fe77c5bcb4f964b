"""Model files that load without executing code: parameters as data, weights as tensors.

A pickle (``joblib.dump``) runs whatever code its author put in it when it is loaded.
:func:`save_model` writes a file that :func:`load_model` reads with
``torch.load(weights_only=True)``, which accepts only tensors and plain containers: the
estimators' parameters, fitted attributes and history are JSON text, arrays and weights
are tensors, and classes are named and looked up in a fixed list (our classifiers and
networks, torch's losses and optimizers, scikit-learn's scalers), never imported by name.

skops (``skops.io``) does this for scikit-learn objects, but not for skorch nets: skorch
stores the network, optimizer and criterion as a ``pickle`` blob inside its state, which
skops would keep and skorch would unpickle on load. Hence this format.

What is saved: one of this library's classifiers, or a ``Pipeline`` of ``StandardScaler``,
``MinMaxScaler``, ``MaxAbsScaler`` or ``RobustScaler`` steps ending in one, whose network
is a default one (``module=None``, ``MLP`` or ``SmallCNN``). Callbacks and the validation
split are code, not data: they are not saved (the loaded model predicts, scores and is
evaluated as the saved one; training it further starts with skorch's default callbacks).

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> import numpy as np
>>> from sklearn.datasets import load_breast_cancer
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from sklearn_robust import NaturalClassifier
>>> from sklearn_robust.persistence import load_model, save_model
>>> X, y = load_breast_cancer(return_X_y=True)
>>> pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0))
>>> path = Path(tempfile.mkdtemp()) / "model.srm"
>>> save_model(pipe.fit(X, y), path)
>>> loaded = load_model(path)
>>> bool(np.array_equal(loaded.predict_proba(X), pipe.predict_proba(X)))
True
"""

import json
import warnings

import numpy as np
import torch
from sklearn import preprocessing
from sklearn.pipeline import Pipeline
from skorch.history import History

from . import estimators
from .threat import ThreatModel
from .utils import forked_rng

__all__ = ["FORMAT", "ModelFileError", "load_model", "save_model"]

#: The marker of the format, stored in every file.
FORMAT = "sklearn-robust-model"
_VERSION = 1
_SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler")
_NETWORKS = ("MLP", "SmallCNN")
# Parameters that are code run during training: not saved, their defaults on load.
_TRAINING_ONLY = ("callbacks", "train_split")
# Fitted attributes of a classifier that prediction and evaluation need.
_NET_ATTRIBUTES = ("classes_inferred_", "n_features_in_", "feature_names_in_",
                   "sample_shape_", "input_shape_", "input_range_")


class ModelFileError(ValueError):
    """The file is not a model file of this format (or not one this version reads).

    A ``ValueError``, so the command line reports it as bad input in one line.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_robust.persistence import ModelFileError, load_model
    >>> path = os.path.join(tempfile.mkdtemp(), "not_a_model.pt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("hello")
    >>> try:
    ...     load_model(path)
    ... except ModelFileError as error:
    ...     print(type(error).__name__)
    ModelFileError
    """


class _Encoder:
    """Values to JSON, with arrays set aside as tensors and classes by public name."""

    def __init__(self):
        self.tensors = {}

    def __call__(self, value, where):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, (list, tuple)):
            items = [self(v, where) for v in value]
            return items if isinstance(value, list) else {"tuple": items}
        if isinstance(value, dict):
            return {"dict": {str(k): self(v, where) for k, v in value.items()}}
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biuf":
                key = f"a{len(self.tensors)}"
                self.tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
                return {"array": key}
            if all(isinstance(v, str) for v in value.ravel()):
                return {"strings": value.tolist(), "dtype": value.dtype.str}
        if isinstance(value, type) and _class_name(value) is not None:
            return {"class": _class_name(value)}
        raise ValueError(
            f"{where} = {value!r} cannot be saved as data; save_model takes numbers, "
            "strings, arrays and the networks MLP and SmallCNN (use joblib for others)."
        )


def _class_name(cls):
    """The public name of an allowed class, or None."""
    for prefix, space, base in _spaces():
        if space is estimators and cls.__name__ not in _NETWORKS:
            continue
        if getattr(space, cls.__name__, None) is cls and issubclass(cls, base):
            return f"{prefix}.{cls.__name__}"
    return None


def _spaces():
    return (("torch.nn", torch.nn, torch.nn.Module),
            ("torch.optim", torch.optim, torch.optim.Optimizer),
            ("sklearn_robust.estimators", estimators, object))


def _resolve_class(name):
    prefix, _, short = name.rpartition(".")
    for space_name, space, base in _spaces():
        if prefix == space_name:
            allowed = _NETWORKS if space is estimators else dir(space)
            cls = getattr(space, short, None) if short in allowed else None
            if isinstance(cls, type) and issubclass(cls, base):
                return cls
    raise ModelFileError(f"the model file names a class that is not allowed: {name!r}.")


def _decode(value, tensors):
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "tuple" in value:
        return tuple(_decode(v, tensors) for v in value["tuple"])
    if "dict" in value:
        return {k: _decode(v, tensors) for k, v in value["dict"].items()}
    if "array" in value:
        return tensors[value["array"]].numpy().copy()
    if "strings" in value:
        return np.asarray(value["strings"], dtype=value["dtype"])
    return _resolve_class(value["class"])


def _decode_each(mapping, tensors):
    return {key: _decode(value, tensors) for key, value in mapping.items()}


def _changed_params(estimator, encode, name):
    """The parameters that differ from the class defaults, encoded (training code left out)."""
    defaults = type(estimator)().get_params(deep=False)
    params = {}
    for key, value in estimator.get_params(deep=False).items():
        if key in _TRAINING_ONLY or (key in defaults and _same(value, defaults[key])):
            continue
        params[key] = encode(value, f"{name}.{key}")
    return params


def _same(a, b):
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):  # arrays compare element-wise
        return False


def _fitted(obj, names, encode, where):
    return {k: encode(vars(obj)[k], f"{where}.{k}") for k in names if k in vars(obj)}


def _net_step(net, name, encode):
    if not isinstance(net, estimators.RobustNetClassifier):
        raise ValueError(f"save_model saves this library's classifiers, not {type(net).__name__}.")
    if not net.initialized_:
        raise ValueError(f"{type(net).__name__} is not fitted: fit it before saving.")
    threat = net.threat_model_
    history = net.history.to_list() if net.history is not None else []
    return {
        "kind": "net", "name": name, "class": type(net).__name__,
        "params": _changed_params(net, encode, name),
        "attributes": _fitted(net, _NET_ATTRIBUTES, encode, name),
        "threat": None if threat is None else {
            "eps": threat.eps, "norm": threat.norm, "bounds": encode(threat.bounds, name)},
        "history": json.loads(json.dumps(history, default=float)),
        "state": {key: f"{name}.{key}" for key in net.module_.state_dict()},
    }


def _scaler_step(scaler, name, encode):
    if type(scaler).__name__ not in _SCALERS or not isinstance(scaler, getattr(
            preprocessing, type(scaler).__name__)):
        raise ValueError(
            f"the pipeline step {name!r} ({type(scaler).__name__}) cannot be saved as data; "
            f"save_model takes the scalers {', '.join(_SCALERS)} before the classifier."
        )
    fitted = [k for k in vars(scaler) if k.endswith("_") and not k.startswith("_")]
    return {"kind": "scaler", "name": name, "class": type(scaler).__name__,
            "params": _changed_params(scaler, encode, name),
            "attributes": _fitted(scaler, fitted, encode, name)}


def save_model(model, path):
    """Write a fitted classifier (or scaler pipeline ending in one) as a code-free file.

    Parameters
    ----------
    model : RobustNetClassifier or Pipeline
        A fitted classifier of this library, or a ``Pipeline`` of scikit-learn scalers
        ending in one; its network is ``module=None``, ``MLP`` or ``SmallCNN``.
    path : str or path-like
        The file to write (any suffix; the CLI's examples use ``.srm``).

    Raises
    ------
    ValueError
        If a step, a parameter or the network cannot be saved as data (the message names
        it); such models can still be saved with ``joblib.dump``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn.datasets import load_iris
    >>> from sklearn_robust import TRADESClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = TRADESClassifier(max_epochs=1, attack_steps=1, random_state=0).fit(X, y)
    >>> path = Path(tempfile.mkdtemp()) / "iris.srm"
    >>> save_model(clf, path)
    >>> load_model(path).threat_model_ == clf.threat_model_
    True
    """
    encode = _Encoder()
    if isinstance(model, Pipeline):
        *front, (last_name, last) = model.steps
        steps = [_scaler_step(step, name, encode) for name, step in front]
        steps.append(_net_step(last, last_name, encode))
        net = last
    else:
        steps, net = [_net_step(model, "model", encode)], model
    tensors = dict(encode.tensors)
    for key, tensor in net.module_.state_dict().items():
        tensors[steps[-1]["state"][key]] = tensor.detach().cpu()
    meta = {"pipeline": isinstance(model, Pipeline), "steps": steps}
    torch.save({"format": FORMAT, "version": _VERSION, "meta": json.dumps(meta),
                "tensors": tensors}, path)


def _read(path):
    try:
        with warnings.catch_warnings():  # torch warns about a pickle's protocol, then refuses it
            warnings.simplefilter("ignore", UserWarning)
            content = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # a pickle, a corrupt archive, anything else: not ours
        raise ModelFileError(
            f"{path} is not a sklearn-robust model file ({type(error).__name__})."
        ) from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a sklearn-robust model file.")
    if content.get("version") != _VERSION:
        raise ModelFileError(
            f"{path} has format version {content.get('version')!r}; this version of "
            f"sklearn-robust reads version {_VERSION}."
        )
    return json.loads(content["meta"]), content["tensors"]


def _build(step, tensors):
    params = _decode_each(step["params"], tensors)
    if step["kind"] == "scaler":
        if step["class"] not in _SCALERS:
            raise ModelFileError(f"unknown scaler {step['class']!r} in the model file.")
        obj = getattr(preprocessing, step["class"])(**params)
        vars(obj).update(_decode_each(step["attributes"], tensors))
        return obj
    cls = getattr(estimators, step["class"], None)
    if (step["class"] not in estimators.__all__ or not isinstance(cls, type)
            or not issubclass(cls, estimators.RobustNetClassifier)):
        raise ModelFileError(f"unknown classifier {step['class']!r} in the model file.")
    net = cls(**params)
    vars(net).update(_decode_each(step["attributes"], tensors))
    with forked_rng():  # building the network draws weights: leave the caller's RNG alone
        net.initialize()
    threat = step["threat"]
    net.threat_model_ = None if threat is None else ThreatModel(
        eps=threat["eps"], norm=threat["norm"], bounds=_decode(threat["bounds"], tensors))
    net.history_ = History(step["history"])
    state = {key: tensors[ref] for key, ref in step["state"].items()}
    net.module_.load_state_dict(state)
    return net


def load_model(path):
    """Read a file written by :func:`save_model`, without executing code from it.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    RobustNetClassifier or Pipeline
        The fitted model, predicting as the saved one did.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ModelFileError
        If the file is not a model file of this format (a pickle, say, or a corrupt one).

    Examples
    --------
    >>> import pickle
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "model.pkl"
    >>> _ = path.write_bytes(pickle.dumps({"not": "a model"}))
    >>> load_model(path)
    Traceback (most recent call last):
    ...
    sklearn_robust.persistence.ModelFileError: ... is not a sklearn-robust model file ...
    """
    meta, tensors = _read(path)
    try:
        steps = [_build(step, tensors) for step in meta["steps"]]
    except ModelFileError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelFileError(f"{path} is a damaged sklearn-robust model file: {error}") from None
    if not meta["pipeline"]:
        return steps[0]
    return Pipeline([(step["name"], obj) for step, obj in zip(meta["steps"], steps, strict=True)])
