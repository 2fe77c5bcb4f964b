"""The model file: a fitted model as its steps (scalers, then the net), written and read.

A step is JSON text (its class, the parameters that differ from the defaults, the fitted
attributes prediction needs; for the net its threat model, history and the names of its
weights) and tensors (arrays and weights); the file is one ``torch.save`` of them,
marked with :data:`FORMAT` and a version.
"""

import json
import warnings

import torch
from sklearn import preprocessing
from sklearn.pipeline import Pipeline
from skorch.history import History

from .. import estimators
from ..threat import ThreatModel
from ..utils import forked_rng
from ._codec import Encoder, ModelFileError, decode, decode_each

#: The marker of the format, stored in every file.
FORMAT = "sklearn-robust-model"
_VERSION = 1
_SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler")
# Parameters that are code run during training: not saved, their defaults on load.
_TRAINING_ONLY = ("callbacks", "train_split")
# Fitted attributes of a classifier that prediction and evaluation need.
_NET_ATTRIBUTES = ("classes_inferred_", "n_features_in_", "feature_names_in_",
                   "sample_shape_", "input_shape_", "input_range_")


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
        ending in one; its network is ``module=None``, ``MLP``, ``SmallCNN``,
        ``PreActResNet18``, ``WideResNet`` or one of their names.
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
    encode = Encoder()
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
    params = decode_each(step["params"], tensors)
    if step["kind"] == "scaler":
        if step["class"] not in _SCALERS:
            raise ModelFileError(f"unknown scaler {step['class']!r} in the model file.")
        obj = getattr(preprocessing, step["class"])(**params)
        vars(obj).update(decode_each(step["attributes"], tensors))
        return obj
    cls = getattr(estimators, step["class"], None)
    if (step["class"] not in estimators.__all__ or not isinstance(cls, type)
            or not issubclass(cls, estimators.RobustNetClassifier)):
        raise ModelFileError(f"unknown classifier {step['class']!r} in the model file.")
    net = cls(**params)
    vars(net).update(decode_each(step["attributes"], tensors))
    with forked_rng():  # building the network draws weights: leave the caller's RNG alone
        net.initialize()
    threat = step["threat"]
    net.threat_model_ = None if threat is None else ThreatModel(
        eps=threat["eps"], norm=threat["norm"], bounds=decode(threat["bounds"], tensors))
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
    >>> try:
    ...     load_model(path)
    ... except ModelFileError as error:
    ...     print(f"{type(error).__name__}: {error}")
    ModelFileError: /.../model.pkl is not a sklearn-robust model file (...).
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
