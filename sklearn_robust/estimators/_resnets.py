"""The papers' image networks: PreAct ResNet-18 and WideResNet, normalising inside.

Both are pre-activation residual networks (He et al. 2016): a 3x3 stem convolution,
stages of basic blocks (``BN, ReLU, conv3x3`` twice, plus a shortcut), a final
``BN, ReLU``, global average pooling and a linear layer. The per-channel input
normalisation is the network's first operation, with its mean and std as buffers, so
attacks, ``eps`` and ``bounds=(0, 1)`` stay in pixel space.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils import Substitution, check_int
from ._networks import materialised


def channel_values(value, name, in_channels, default):
    """``value`` (None, a number, or one number per channel) as ``in_channels`` floats.

    Examples
    --------
    >>> channel_values(0.5, "mean", 3, default=0.0)
    (0.5, 0.5, 0.5)
    >>> channel_values(None, "std", 1, default=1.0)
    (1.0,)
    """
    if value is None:
        return (default,) * in_channels
    items = [value] * in_channels if np.ndim(value) == 0 else value
    if np.ndim(items) != 1 or any(isinstance(v, (bool, np.bool_)) for v in items):
        raise ValueError(f"{name} must be a number or a sequence of numbers (one per "
                         f"channel), got {value!r}.")
    try:
        values = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or a sequence of numbers (one per "
                         f"channel), got {value!r}.") from None
    if len(values) != in_channels:
        raise ValueError(f"{name} has {len(values)} values, but the network takes "
                         f"in_channels={in_channels} channels: give one per channel.")
    if not all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if name == "std" and min(values) <= 0:
        raise ValueError(f"std must be > 0 for every channel, got {value!r}.")
    return values


# The input parameters both networks document, written once.
_input_docs = Substitution(input_params="""\
in_channels : int, default=3
    Channels of the input images.
mean : float, sequence of float or None, default=None
    Per-channel mean subtracted from the input, as the network's first operation (a
    buffer, not a parameter), so attacks and bounds stay in pixel space; one number
    for every channel, or one per channel. ``None`` subtracts nothing.
std : float, sequence of float or None, default=None
    Per-channel standard deviation the centred input is divided by (each ``> 0``);
    ``None`` divides by nothing.""")


class ChannelNormalisation(nn.Module):
    """``(x - mean) / std`` per channel of ``(N, C, H, W)`` images, without parameters.

    ``mean`` and ``std`` are buffers: saved with the weights and moved with the network,
    never trained. ``reset_parameters`` writes the constructor's values into them again
    (what :func:`materialised` calls after a meta-device build).
    """

    mode_independent_forward = True

    def __init__(self, mean, std, in_channels):
        super().__init__()
        self.mean_values = channel_values(mean, "mean", in_channels, default=0.0)
        self.std_values = channel_values(std, "std", in_channels, default=1.0)
        self.register_buffer("mean", torch.empty(1, in_channels, 1, 1))
        self.register_buffer("std", torch.empty(1, in_channels, 1, 1))
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            self.mean.copy_(torch.tensor(self.mean_values).reshape(self.mean.shape))
            self.std.copy_(torch.tensor(self.std_values).reshape(self.std.shape))

    def forward(self, x):
        return (x - self.mean) / self.std

    def extra_repr(self):
        return f"mean={self.mean_values}, std={self.std_values}"


class PreActBlock(nn.Module):
    """The pre-activation basic block: ``BN, ReLU, conv3x3`` twice, plus a shortcut.

    The shortcut is the identity, or, where the block changes the width or the
    resolution, a 1x1 convolution of the activated input (as in both reference codes).
    """

    mode_independent_forward = True

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        reshapes = stride != 1 or in_channels != out_channels
        self.shortcut = (nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
                         if reshapes else None)

    def forward(self, x):
        activated = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(activated)
        return self.conv2(F.relu(self.bn2(self.conv1(activated)))) + shortcut


class _PreActResNet(nn.Module):
    """Normalisation, stem, stages of :class:`PreActBlock`, ``BN, ReLU``, pooling, linear.

    Images come as ``(N, C, H, W)`` or ``(N, H, W)`` (one channel), of any size: the
    global average pooling is adaptive (on 32x32 CIFAR-10 images it is the references'
    fixed 4x4 or 8x8 pooling).
    """

    mode_independent_forward = True

    def _build(self, *, in_channels, stem_width, stages, n_classes, mean, std, conv_init):
        """``stages``: ``(width, blocks, stride)`` of each stage, in order."""
        caller = type(self).__name__
        n_classes = check_int(n_classes, "n_classes", caller)
        in_channels = check_int(in_channels, "in_channels", caller)
        with torch.device("meta"):  # weights drawn by materialised, from the fit's stream
            # first, so that a bad mean or std fails before any layer is built
            self.normalise = (None if mean is None and std is None
                              else ChannelNormalisation(mean, std, in_channels))
            self.stem = nn.Conv2d(in_channels, stem_width, 3, padding=1, bias=False)
            blocks, width = [], stem_width
            for out_width, n_blocks, stride in stages:
                for i in range(n_blocks):
                    blocks.append(PreActBlock(width, out_width, stride if i == 0 else 1))
                    width = out_width
            self.stages = nn.Sequential(*blocks)
            self.bn = nn.BatchNorm2d(width)
            self.linear = nn.Linear(width, n_classes)
        materialised(self, conv_init=conv_init)

    def forward(self, x):
        if x.dim() == 3:  # (N, H, W): one channel
            x = x.unsqueeze(1)
        if self.normalise is not None:
            x = self.normalise(x)
        out = F.relu(self.bn(self.stages(self.stem(x))))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))

    def sequential_layers(self):
        """Refused with a ``TypeError``: the forward is no chain of layers.

        The verifiers (``sklearn_robust.verify.network_layers``, the certified metrics
        and ``IBPClassifier``'s bounds) read a network through this method; each block
        adds a shortcut to its output, which they cannot bound, so they stop here, before
        any work, with this reason rather than a request to write the method.
        """
        raise TypeError(
            f"{type(self).__name__} cannot be verified: it is a residual network (each "
            f"block of its stages adds a shortcut to its output), and the verifiers bound "
            f"chains of layers only (Linear, Conv, BatchNorm, ReLU, pooling: MLP, "
            f"SmallCNN). Attacks (robust_accuracy_score) evaluate it.")


@_input_docs
class PreActResNet18(_PreActResNet):
    """PreAct ResNet-18 (He et al. 2016), the network of Rice et al. 2020.

    A 3x3 stem convolution of 64 channels, four stages of two pre-activation basic
    blocks (64, 128, 256, 512 channels; strides 1, 2, 2, 2), a final BatchNorm and ReLU,
    global average pooling and a linear layer: 11,172,170 trainable parameters for 10
    classes. Convolutions have no bias (BatchNorm's shift follows each); weights are
    torch's defaults, as in the reference code, drawn from the fit's stream. Estimators
    build it with ``module='preactresnet18'``, the class count and channels taken from
    the data.

    Parameters
    ----------
    n_classes : int, default=10
        Number of logits.
    %(input_params)s

    See Also
    --------
    WideResNet : the wide network of TRADES and SCORE.

    References
    ----------
    K. He, X. Zhang, S. Ren, J. Sun. "Identity Mappings in Deep Residual Networks",
    ECCV 2016.
    L. Rice, E. Wong, J. Z. Kolter. "Overfitting in adversarially robust deep learning",
    ICML 2020.

    Examples
    --------
    >>> import torch
    >>> net = PreActResNet18(n_classes=10, mean=(0.4914, 0.4822, 0.4465),
    ...                      std=(0.2471, 0.2435, 0.2616))
    >>> net(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    >>> with torch.device("meta"):  # the shapes alone, no memory
    ...     sum(p.numel() for p in PreActResNet18(n_classes=10).parameters())
    11172170
    """

    def __init__(self, n_classes=10, *, in_channels=3, mean=None, std=None):
        super().__init__()
        self._build(in_channels=in_channels, stem_width=64,
                    stages=[(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)],
                    n_classes=n_classes, mean=mean, std=std, conv_init="torch")


@_input_docs
class WideResNet(_PreActResNet):
    """WideResNet-depth-k (Zagoruyko & Komodakis 2016), as in TRADES and SCORE.

    A 3x3 stem convolution of 16 channels, three groups of ``(depth - 4) / 6``
    pre-activation basic blocks (``16 k``, ``32 k``, ``64 k`` channels, ``k`` the
    ``widen_factor``; strides 1, 2, 2), a final BatchNorm and ReLU, global average
    pooling and a linear layer. Trainable parameters for 10 classes: WRN-34-10
    46,160,474 (the TRADES code registers one more block that its forward never runs;
    it is left out), WRN-28-10 36,479,194, WRN-16-4 2,748,890. Initialised as the
    reference code: convolutions from ``N(0, 2 / fan_out)`` (He et al. 2015), the
    linear layer's bias at 0, drawn from the fit's stream. Estimators build it with
    ``module='wideresnet'`` (and ``module__depth``, ``module__widen_factor``), the class
    count and channels taken from the data.

    Parameters
    ----------
    depth : int, default=34
        Convolution and linear layers along the main path: ``6 n + 4`` with ``n >= 1``
        blocks per group (10, 16, 22, 28, 34, ...); any other value is a ``ValueError``.
    widen_factor : int, default=10
        The width multiplier ``k`` (``>= 1``).
    n_classes : int, default=10
        Number of logits.
    %(input_params)s

    See Also
    --------
    PreActResNet18 : the smaller network of Rice et al. 2020.

    References
    ----------
    S. Zagoruyko, N. Komodakis. "Wide Residual Networks", BMVC 2016.
    H. Zhang et al. "Theoretically Principled Trade-off between Robustness and
    Accuracy", ICML 2019 (TRADES).

    Examples
    --------
    >>> import torch
    >>> with torch.device("meta"):  # WRN-34-10's shapes alone, no memory
    ...     sum(p.numel() for p in WideResNet(depth=34, widen_factor=10).parameters())
    46160474
    >>> tiny = WideResNet(depth=10, widen_factor=1, in_channels=1, mean=0.5, std=0.25)
    >>> tiny(torch.rand(4, 1, 8, 8)).shape
    torch.Size([4, 10])

    In an estimator, by name (the class count and the channels come from the data):

    >>> from sklearn.datasets import load_digits
    >>> from sklearn_robust import TRADESClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32").reshape(-1, 1, 8, 8)
    >>> clf = TRADESClassifier(module="wideresnet", module__depth=10,
    ...                        module__widen_factor=1, eps=0.1, bounds=(0, 1),
    ...                        max_epochs=1, attack_steps=1, random_state=0)
    >>> type(clf.fit(X[:300], y[:300]).module_).__name__
    'WideResNet'
    """

    def __init__(self, depth=34, widen_factor=10, n_classes=10, *, in_channels=3,
                 mean=None, std=None):
        super().__init__()
        depth = check_int(depth, "depth", "WideResNet")
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"depth must be 6 n + 4 with n >= 1 blocks per group (10, 16, "
                             f"22, 28, 34, ...), got depth={depth}.")
        k = check_int(widen_factor, "widen_factor", "WideResNet")
        n = (depth - 4) // 6
        self.depth, self.widen_factor = depth, k
        self._build(in_channels=in_channels, stem_width=16,
                    stages=[(16 * k, n, 1), (32 * k, n, 2), (64 * k, n, 2)],
                    n_classes=n_classes, mean=mean, std=std, conv_init="he-fan-out")
        with torch.no_grad():
            self.linear.bias.zero_()  # the reference's choice (its weight keeps torch's)
