"""Parameter documentation of the classifiers, each block written once.

The classifiers' docstrings name these blocks as ``%(name)s`` and
:class:`~sklearn_robust.utils.Substitution` fills them in, so a parameter shared by
several classifiers reads the same in each and is edited in one place.
"""

from ..utils import Substitution

_NETWORK = """\
module : torch.nn.Module class or instance, str or None, default=None
    The network, returning logits. ``None`` builds :class:`MLP` for 2-D input and
    :class:`SmallCNN` for images ``(N, C, H, W)`` or ``(N, H, W)`` (or flat rows
    reshaped by ``input_shape``); ``module__*`` parameters reach its constructor. A
    name builds one of the papers' image networks, its class count and input channels
    taken from the data: ``'preactresnet18'`` (:class:`PreActResNet18`, Rice et al.
    2020) or ``'wideresnet'`` (:class:`WideResNet`, TRADES and SCORE;
    ``module__depth``, default 34, ``module__widen_factor``, default 10).
    ``module__mean`` and ``module__std`` (per channel) normalise the input inside the
    network, so ``eps`` and ``bounds`` stay in pixel units.
input_shape : tuple of int or None, default=None
    Reshape flat rows to ``(C, H, W)`` or ``(H, W)`` before the network, so image data
    can flow through a scikit-learn ``Pipeline`` as 2-D arrays.
random_state : int, RandomState instance or None, default=None
    Seeds weight initialisation, shuffling, dropout and attack starts during ``fit``
    (inside a forked RNG: the global torch RNG is left as it was).
"""

# The training options: augmentation, precision, memory format, schedule, skorch's own.
_TRAINING = """\
max_shift : int, default=0
    Data augmentation for image input, the papers' random crop with zero padding: each
    training image is padded with ``max_shift`` zeros on every side and a window of its
    own size is cut out at row and column offsets drawn uniformly in ``[0, 2 *
    max_shift]`` (a translation by up to ``max_shift`` pixels per axis, zero fill),
    freshly for every image in every epoch; ``max_shift=4`` on 32x32 images is CIFAR-10's
    ``RandomCrop(32, padding=4)``. ``0`` (the default) trains on the data as given;
    tabular input needs ``0``. Prediction and scoring never shift.
flip : bool, default=False
    Data augmentation for image input: each training image is mirrored left to right
    (its last axis) with probability 1/2, independently and freshly in every epoch,
    after the crop (CIFAR-10's ``RandomHorizontalFlip``), drawn from the fit's own
    stream so that ``random_state`` reproduces it. Flat rows with ``input_shape`` are
    flipped as images; other tabular rows are refused. Prediction, scoring and the
    evaluation attacks never flip.
noise_std : float, default=0.0
    Gaussian data augmentation: each training batch gets fresh noise ``N(0,
    noise_std**2)`` on every input coordinate (after the crop and flip, before the
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
channels_last : bool, default=False
    Train in torch's ``channels_last`` memory format (faster convolutions on recent GPUs,
    above all with ``precision='bf16'`` or ``'fp16'``): the network's 4-D weights are
    converted when a fit starts and each 4-D training batch after augmentation. Results
    match the default format up to floating-point rounding. Images only: tabular rows are
    refused. Prediction and the evaluation attacks take their input as given, in float32.
lr_schedule : {None, 'piecewise', 'cosine'}, default=None
    Learning-rate schedule over the ``max_epochs`` epochs of each call of ``fit`` or
    ``partial_fit``: torch's ``MultiStepLR`` or ``CosineAnnealingLR`` in skorch's
    ``LRScheduler``, stepped after each epoch. Epoch ``e`` (counted from 0) trains at,
    for ``'piecewise'`` (TRADES' schedule), ``lr`` while ``e < 0.75 * max_epochs``, then
    ``0.1 * lr`` while ``e < 0.9 * max_epochs``, then ``0.01 * lr`` (``max_epochs=100``:
    epochs 0-74, 75-89, 90-99); for ``'cosine'``, ``lr * (1 + cos(pi * e /
    max_epochs)) / 2``, from ``lr`` down to about 0 without warm-up. Each epoch's rate
    is recorded in ``history`` as ``'event_lr'``. Every call (``partial_fit``, a
    ``warm_start`` fit) runs the whole schedule again from ``lr`` and leaves the
    optimizer at ``lr``; for one schedule across calls pass skorch's ``LRScheduler`` in
    ``callbacks`` instead. ``None`` (the default) keeps ``lr`` unless a callback changes
    it; an ``LRScheduler`` callback beside ``lr_schedule`` is an error.
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
fill_doc = Substitution(network=_NETWORK + _TRAINING, threat=_THREAT, schedule=_SCHEDULE,
                        awp=_AWP, ls=_LS, attributes=_ATTRIBUTES, digits=_DIGITS)
