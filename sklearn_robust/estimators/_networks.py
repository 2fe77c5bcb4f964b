"""Default networks built from the data seen in ``fit`` (``module=None``)."""

import math

import torch
from torch import nn

from ..utils import active_generator


def materialised(module, conv_init="torch"):
    """``module``, built on the meta device, given torch's default initial weights.

    The library's networks build their layers on the meta device (no memory, no random
    draw) and are then materialised here: every ``Linear`` and ``Conv`` layer, in the
    order they were built, gets the weights torch's own constructors give (Kaiming
    uniform with ``a = sqrt(5)``, bias uniform in ``+-1 / sqrt(fan_in)``), drawn from the
    active fit's stream (:func:`~sklearn_robust.utils.active_generator`; torch's global
    stream outside a fit): the same numbers as a network built by torch from that stream,
    without touching the global stream that other threads share. Other layers
    (BatchNorm, the networks' input normalisation) are reset as they reset themselves.
    ``conv_init='he-fan-out'`` draws convolution weights from ``N(0, 2 / fan_out)``
    instead (He et al. 2015, fan-out mode: the WideResNet reference code's choice).

    A network built inside the caller's own ``with torch.device("meta")`` block stays on
    the meta device, as torch's layers do there: its shapes without memory (to count
    parameters, say).

    Examples
    --------
    >>> import torch
    >>> with torch.device("meta"):
    ...     layer = torch.nn.Linear(3, 2)
    >>> _ = torch.manual_seed(0)
    >>> built = materialised(layer)
    >>> _ = torch.manual_seed(0)
    >>> bool(torch.equal(built.weight, torch.nn.Linear(3, 2).weight))
    True
    """
    if conv_init not in ("torch", "he-fan-out"):
        raise ValueError(f"conv_init must be 'torch' or 'he-fan-out', got {conv_init!r}.")
    if torch.get_default_device().type == "meta":
        return module
    module.to_empty(device="cpu")
    generator = active_generator("cpu")
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Linear, nn.modules.conv._ConvNd)):
                # drawn in a contiguous tensor: the values of torch's init in any layout
                weight = torch.empty(layer.weight.shape)
                if conv_init == "he-fan-out" and not isinstance(layer, nn.Linear):
                    fan_out = weight[0, 0].numel() * weight.shape[0]  # k * k * out
                    weight.normal_(0.0, math.sqrt(2.0 / fan_out), generator=generator)
                else:
                    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
                layer.weight.copy_(weight)
                if layer.bias is not None:
                    fan_in = weight[0].numel()
                    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                    bias = torch.empty(layer.bias.shape).uniform_(-bound, bound,
                                                                  generator=generator)
                    layer.bias.copy_(bias)
            elif hasattr(layer, "reset_parameters") and not list(layer.children()):
                layer.reset_parameters()
    return module


class StreamDropout(nn.Dropout):
    """``nn.Dropout`` whose masks come from the active fit's stream.

    torch's dropout draws from the global stream, which fits running side by side in
    threads share; the library's networks draw from the fit's own generator instead
    (:func:`~sklearn_robust.utils.active_generator`), the same numbers in the same order,
    so a seeded fit is reproducible whatever runs beside it. Outside a fit it is
    ``nn.Dropout``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.utils import FitStreams, drawing_from
    >>> layer = StreamDropout(0.5).train()
    >>> def masks():
    ...     with drawing_from(FitStreams(0)):
    ...         return layer(torch.ones(2, 8))
    >>> bool(torch.equal(masks(), masks()))
    True
    """

    def forward(self, x):
        generator = active_generator(x.device)
        if generator is None or not self.training or self.p == 0 or self.p == 1:
            return super().forward(x)
        keep = 1.0 - self.p
        mask = torch.empty_like(x).bernoulli_(keep, generator=generator)
        return x * mask * (1.0 / keep)  # torch's own arithmetic, bit for bit


class MLP(nn.Module):
    """A ReLU multi-layer perceptron for tabular data, returning logits.

    Parameters
    ----------
    n_features : int
        Input width.
    n_classes : int
        Number of logits.
    hidden_units : tuple of int, default=(256, 256)
        Width of each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> MLP(4, 3)(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    #: The forward does not read ``self.training`` (see ``utils.mode_independent``).
    mode_independent_forward = True

    def __init__(self, n_features, n_classes, hidden_units=(256, 256), dropout=0.0):
        super().__init__()
        layers, width = [], n_features
        with torch.device("meta"):  # weights drawn by materialised, from the fit's stream
            for units in hidden_units:
                layers += [nn.Linear(width, units), nn.ReLU()]
                if dropout:
                    layers.append(StreamDropout(dropout))
                width = units
            layers.append(nn.Linear(width, n_classes))
            self.net = nn.Sequential(*layers)
        materialised(self)

    def forward(self, x):
        return self.net(x)

    def sequential_layers(self):
        """The modules whose composition is :meth:`forward`: ``net``'s children.

        Verifiers (``sklearn_robust.verify.network_layers``) read the network from it.

        Examples
        --------
        >>> MLP(4, 3, hidden_units=(8,)).sequential_layers()
        [Linear(in_features=4, out_features=8, bias=True), ReLU(), Linear(...)]
        """
        return list(self.net)


class SmallCNN(nn.Module):
    """A small convolutional network for images ``(N, C, H, W)`` or ``(N, H, W)``.

    Two blocks of two 3x3 convolutions (with 2x2 max pooling while the image is at least
    4 pixels wide), then a hidden linear layer. About 0.2 M parameters on 8x8 digits.
    A pooling block runs ``conv, ReLU, conv, max-pool, ReLU``: the textbook ``conv, ReLU,
    conv, ReLU, max-pool`` with the last two swapped, which computes the same function
    and the same gradients (the maximum commutes with the monotone ReLU) for less work.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of one sample.
    n_classes : int
        Number of logits.
    channels : tuple of int, default=(32, 64)
        Channels of the two blocks.
    hidden_units : int, default=256
        Width of the hidden linear layer.
    dropout : float, default=0.0
        Dropout probability before the last layer.
    batch_norm : bool, default=False
        Whether each convolution is followed by BatchNorm. Attacks run the network in
        eval mode, so they use (and never update) the running statistics.
    channels_last : bool, default=True
        Store the convolution weights in torch's channels-last memory format, so the
        convolutions run on (N, H, W, C) activations: about a quarter faster per attack
        step on CPU (oneDNN) for 28x28 images, the same function up to floating-point
        rounding. Inputs may come in either layout.

    Examples
    --------
    >>> import torch
    >>> SmallCNN((1, 8, 8), 10)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    >>> sum(isinstance(m, torch.nn.BatchNorm2d)
    ...     for m in SmallCNN((1, 8, 8), 10, batch_norm=True).modules())
    4
    """

    mode_independent_forward = True

    def __init__(
        self, image_shape, n_classes, channels=(32, 64), hidden_units=256, dropout=0.0,
        batch_norm=False, channels_last=True,
    ):
        super().__init__()
        with torch.device("meta"):  # weights drawn by materialised, from the fit's stream
            in_channels, height, width = image_shape
            layers = []
            for out_channels in channels:
                pool = min(height, width) >= 4
                for second, conv_in in enumerate((in_channels, out_channels)):
                    # A bias before BatchNorm is redundant: BatchNorm's shift replaces it.
                    layers.append(nn.Conv2d(conv_in, out_channels, 3, padding=1,
                                            bias=not batch_norm))
                    if batch_norm:
                        layers.append(nn.BatchNorm2d(out_channels))
                    if pool and second:
                        # Pooling before the ReLU is the same function and the same gradients
                        # (ReLU is monotone, so it commutes with max), with a ReLU on a
                        # quarter of the values: 13% off an attack step at 28x28.
                        layers.append(nn.MaxPool2d(2))
                        height, width = height // 2, width // 2
                    layers.append(nn.ReLU())
                in_channels = out_channels
            self.features = nn.Sequential(*layers)
            head = [nn.Flatten(), nn.Linear(in_channels * height * width, hidden_units),
                    nn.ReLU()]
            if dropout:
                head.append(StreamDropout(dropout))
            head.append(nn.Linear(hidden_units, n_classes))
            self.head = nn.Sequential(*head)
            if channels_last:  # a convolution with channels-last weights keeps that layout
                self.features.to(memory_format=torch.channels_last)
        materialised(self)

    def forward(self, x):
        if x.dim() == 3:  # (N, H, W): one channel
            x = x.unsqueeze(1)
        return self.head(self.features(x))

    def sequential_layers(self):
        """The modules whose composition is :meth:`forward` on ``(N, C, H, W)`` batches.

        ``features``' children, then ``head``'s. The forward also accepts ``(N, H, W)``
        (it adds the channel axis); the list is for the 4-d batches, so a verifier is
        given the per-sample shape ``(C, H, W)``.

        Examples
        --------
        >>> [type(m).__name__ for m in SmallCNN((1, 2, 2), 3, channels=(4,),
        ...                                       hidden_units=5).sequential_layers()]
        ['Conv2d', 'ReLU', 'Conv2d', 'ReLU', 'Flatten', 'Linear', 'ReLU', 'Linear']
        """
        return [*self.features, *self.head]


class Reshape(nn.Module):
    """Reshape flat rows ``(N, d)`` to ``(N, *shape)``, e.g. digits' 64 columns to 1x8x8."""

    mode_independent_forward = True

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)

    def sequential_layers(self):
        """``[nn.Unflatten(1, shape)]``: the same reshape of flat rows, as a torch layer.

        Examples
        --------
        >>> Reshape((1, 8, 8)).sequential_layers()
        [Unflatten(dim=1, unflattened_size=(1, 8, 8))]
        """
        return [nn.Unflatten(1, self.shape)]

    def extra_repr(self):
        return f"shape={self.shape}"


def image_shape_of(shape):
    """``(C, H, W)`` for a sample shape ``(H, W)`` or ``(C, H, W)``."""
    return (1, *shape) if len(shape) == 2 else tuple(shape)


def default_network(sample_shape, n_classes, input_shape=None, **kwargs):
    """The network ``module=None`` builds: an MLP for flat rows, a CNN for images.

    ``input_shape`` reshapes flat rows into images first (the product must equal the
    number of features). ``kwargs`` are the ``module__*`` parameters.

    Examples
    --------
    >>> type(default_network((30,), 2)).__name__
    'MLP'
    >>> type(default_network((1, 8, 8), 10)).__name__
    'SmallCNN'
    >>> default_network((64,), 10, input_shape=(1, 8, 8))[0]
    Reshape(shape=(1, 8, 8))
    """
    if input_shape is not None:
        return nn.Sequential(
            Reshape(input_shape), SmallCNN(image_shape_of(input_shape), n_classes, **kwargs)
        )
    if len(sample_shape) == 1:
        return MLP(sample_shape[0], n_classes, **kwargs)
    return SmallCNN(image_shape_of(sample_shape), n_classes, **kwargs)


def check_input_shape(input_shape, sample_shape):
    """Validate ``input_shape`` against the data (its form alone for ``sample_shape=None``)."""
    if input_shape is None:
        return None
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a tuple of ints, got {input_shape!r}.") from None
    if len(shape) not in (2, 3) or any(s < 1 for s in shape):
        raise ValueError(
            f"input_shape must be (H, W) or (C, H, W) with positive sizes, got {input_shape!r}."
        )
    if sample_shape is not None and (len(sample_shape) != 1
                                     or math.prod(shape) != sample_shape[0]):
        raise ValueError(
            f"input_shape {shape} needs flat rows of {math.prod(shape)} features, "
            f"got samples of shape {tuple(sample_shape)}."
        )
    return shape
