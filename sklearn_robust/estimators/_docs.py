"""Parameter documentation of the classifiers, each block written once.

The classifiers' docstrings name these blocks as ``%(name)s`` and
:class:`~sklearn_robust.utils.Substitution` fills them in, so a parameter shared by
several classifiers reads the same in each and is edited in one place.
"""

from ..utils import Substitution

_NETWORK = """\
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
noise_std : float, default=0.0
    Gaussian data augmentation: each training batch gets fresh noise ``N(0,
    noise_std**2)`` on every input coordinate (after the random shifts, before the
    objective, so an attack starts from the noisy batch), drawn from the fit's own
    stream. The base-classifier training of randomized smoothing (Cohen et al. 2019:
    ``noise_std`` equal to the smoothing ``sigma``); ``0.0`` (the default) adds none.
    Prediction and scoring never add noise.
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
    Any other skorch parameter."""

_THREAT = """\
eps : float, default=0.1
    Radius of the threat ball used in training (in input units, ``>= 0``).
norm : {'linf', 'l2', 'l1'}, default='linf'
    Norm of the ball (how each is searched: see :class:`~sklearn_robust.ThreatModel`).
bounds : 'auto', None, (low, high), default='auto'
    Valid input range. ``'auto'`` uses the global minimum and maximum of the training
    data (one range for all features: per-feature ranges would make constant pixels
    unattackable); ``None`` means unbounded; a pair of scalars or per-feature arrays
    is used as given. Training data outside explicit bounds is an error."""

_AWP = """\
awp_gamma : float or None, default=None
    Adversarial weight perturbation (AWP, Wu et al. 2020): each batch's loss is taken
    at weights pushed by ``awp_gamma`` times each layer's norm in its ascent direction,
    on the same adversarial points (see
    :class:`~sklearn_robust.objectives.WeightPerturbation`); one extra forward and
    backward pass per batch. ``None`` (the default) trains without it; the reference
    uses 0.005 with TRADES and 0.01 with PGD-AT."""

_SCHEDULE = """\
attack_steps : int, default=10
    Steps of the inner maximisation (``>= 0``); passed to the objective as ``steps``.
step_size : float or None, default=None
    Step of the inner maximisation; ``None`` is ``2.5 * eps / attack_steps``.
""" + _AWP

_LS = """\
ls : float, default=0.0
    Label smoothing of the training cross-entropy, in ``[0, 1)``: the target is
    ``1 - ls`` on the true class and ``ls / (C - 1)`` on each other class."""

_ATTRIBUTES = """\
classes_ : ndarray
    The labels seen in ``fit``.
n_features_in_ : int
    Number of features (``X.shape[1]``).
sample_shape_ : tuple
    Shape of one sample as seen in ``fit``.
input_range_ : (float, float)
    Global minimum and maximum of the training data: the default evaluation bounds of
    estimators without a ``bounds`` parameter.
module_ : torch.nn.Module
    The trained network.
objective_ : Objective
    The training objective of the last ``fit``, with this estimator's parameters.
threat_model_ : ThreatModel or None
    The threat model of the last ``fit`` (bounds resolved), ``None`` without one.
history_ : skorch.History
    Per-epoch records.
grad_scaler_ : torch.amp.GradScaler or None
    The loss scaler of ``precision='fp16'``; ``None`` otherwise."""

_DIGITS = """\
>>> from sklearn_robust.datasets import load_digits_images
>>> X_train, X_test, y_train, y_test = load_digits_images(flat=True)"""

#: The decorator every classifier's docstring goes through.
fill_doc = Substitution(network=_NETWORK, threat=_THREAT, schedule=_SCHEDULE, awp=_AWP,
                        ls=_LS, attributes=_ATTRIBUTES, digits=_DIGITS)
