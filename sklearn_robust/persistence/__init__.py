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
is one of the library's (``module=None``, ``MLP``, ``SmallCNN``, ``PreActResNet18``,
``WideResNet``, or their names). Callbacks and the validation
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

from ._codec import ModelFileError
from ._model_file import FORMAT, load_model, save_model

__all__ = ["FORMAT", "ModelFileError", "load_model", "save_model"]
