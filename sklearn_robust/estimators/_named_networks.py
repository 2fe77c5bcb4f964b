"""The networks a classifier builds from its data: ``module=None``'s default, or a name."""

from torch import nn

from ._networks import Reshape, check_input_shape, default_network, image_shape_of
from ._resnets import PreActResNet18, WideResNet

#: The networks ``module`` may name; each takes ``n_classes`` and ``in_channels``.
NAMED_NETWORKS = {"preactresnet18": PreActResNet18, "wideresnet": WideResNet}


def network_from_data(module, sample_shape, classes, input_shape=None, **kwargs):
    """The network that ``module`` (``None`` or a name) builds for the data.

    ``None`` builds :func:`default_network`. A name of :data:`NAMED_NETWORKS` builds
    that network with one logit per class and the data's channels: images ``(C, H, W)``
    or ``(H, W)``, or flat rows reshaped by ``input_shape``. Without data
    (``sample_shape=None``, the restore idiom) a name needs the ``classes``, and the
    channels come from ``input_shape``, else ``module__in_channels`` (default 3).

    Parameters
    ----------
    module : None or str
        The ``module`` parameter.
    sample_shape : tuple of int or None
        Shape of one training sample; ``None`` when no data was seen.
    classes : array-like or None
        The labels; ``None`` when unknown.
    input_shape : tuple of int or None, default=None
        The reshape of flat rows into images.
    **kwargs
        The ``module__*`` parameters.

    Examples
    --------
    >>> net = network_from_data("wideresnet", (64,), [0, 1, 2], input_shape=(1, 8, 8),
    ...                         depth=10, widen_factor=1)
    >>> [type(m).__name__ for m in net], net[1].linear.out_features
    (['Reshape', 'WideResNet'], 3)
    >>> network_from_data("resnet50", (3, 32, 32), [0, 1])
    Traceback (most recent call last):
    ...
    ValueError: unknown network module='resnet50'; the names are 'preactresnet18', ...
    """
    if module is not None and module not in NAMED_NETWORKS:
        names = ", ".join(repr(name) for name in NAMED_NETWORKS)
        raise ValueError(f"unknown network module={module!r}; the names are {names} (or "
                         "give a torch.nn.Module class or instance).")
    if sample_shape is None and (module is None or classes is None):
        raise ValueError(
            f"module={module!r} builds its network from the training data: call fit first, "
            "or name the network to initialise without data: module=SmallCNN, "
            "module__image_shape=(1, 8, 8), module__n_classes=10 (images), "
            "module=MLP, module__n_features=30, module__n_classes=2 (tabular), or "
            "module='wideresnet' or 'preactresnet18' (images of module__in_channels, "
            "default 3), with classes=[...] for the labels."
        )
    if module is None:
        return default_network(sample_shape, len(classes), input_shape, **kwargs)
    input_shape = check_input_shape(input_shape, sample_shape)
    image_shape = _image_shape(module, sample_shape, input_shape)
    for name, from_data in (("n_classes", len(classes)),
                            ("in_channels", image_shape and image_shape[0])):
        if from_data is not None and kwargs.setdefault(name, from_data) != from_data:
            raise ValueError(
                f"module__{name}={kwargs[name]!r} disagrees with the data's {from_data}: "
                f"module={module!r} takes {name} from the data; leave it out.")
    network = NAMED_NETWORKS[module](**kwargs)
    return network if input_shape is None else nn.Sequential(Reshape(input_shape), network)


def _image_shape(module, sample_shape, input_shape):
    """``(C, H, W)`` of one image the named network reads, ``None`` if no data was seen."""
    if input_shape is not None:
        return image_shape_of(input_shape)
    if sample_shape is None:
        return None
    if len(sample_shape) in (2, 3):
        return image_shape_of(sample_shape)
    if len(sample_shape) == 1:
        raise ValueError(
            f"module={module!r} is a network for images, but the samples are flat rows of "
            f"{sample_shape[0]} features: give input_shape=(C, H, W) to reshape them "
            f"(digits' 64 columns: input_shape=(1, 8, 8)).")
    raise ValueError(f"module={module!r} takes images (N, C, H, W) or (N, H, W), got "
                     f"samples of shape {tuple(sample_shape)}.")
