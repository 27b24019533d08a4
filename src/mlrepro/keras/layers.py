"""Keras layers as small specs that build a torch module once their input shape is known.

Shapes are written the Keras way, channels last and without the batch axis: an MNIST image is
(28, 28, 1), a feature vector (784,). The torch modules run channels-first: the model's first
module turns (N, H, W, C) into (N, C, H, W) with a permute, a free view whose memory is exactly
torch's channels_last format, so convolutions get the layout oneDNN is fastest with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Shape = tuple[int, ...]

ACTIVATIONS = {
    "linear": None,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1),
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
}


def activation_module(name: str | None) -> nn.Module | None:
    """The torch module for a Keras activation name (None and 'linear' mean no module)."""
    if name is None:
        return None
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation: {name!r}. Valid: {', '.join(map(repr, ACTIVATIONS))}"
        )
    factory = ACTIVATIONS[name]
    return factory() if factory else None


def _pair(value: int | Sequence[int], what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError(f"{what} must be an int or a tuple of 2 ints, got {value!r}")
    return value  # type: ignore[return-value]


def _check_padding(padding: str) -> str:
    padding = padding.lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding


def _fmt(shape: Shape) -> str:
    return str((None, *shape))


class Layer:
    """A layer of a Sequential model. Subclasses implement
    `_build(shape) -> (modules, out_shape)`."""

    base_name = "layer"

    def __init__(self, *, input_shape: Sequence[int] | None = None, name: str | None = None):
        self.input_shape: Shape | None = tuple(input_shape) if input_shape is not None else None
        self.name = name
        self.modules: list[nn.Module] = []  # empty until built
        self.output_shape: Shape | None = None
        self.built_for: Shape | None = None

    def build(self, input_shape: Shape, previous: Layer | None = None) -> Shape:
        """Make the torch modules for inputs of `input_shape`; returns the output shape."""
        if self.built_for != input_shape:
            try:
                self.modules, self.output_shape = self._build(tuple(input_shape))
            except _ShapeError as e:
                source = (
                    f"layer '{previous.name}' ({type(previous).__name__}), which outputs"
                    if previous is not None
                    else "the model input of shape"
                )
                raise ValueError(
                    f"Layer '{self.name}' ({type(self).__name__}) {e}, but it follows "
                    f"{source} {_fmt(input_shape)}.{e.hint}"
                ) from None
            self.built_for = tuple(input_shape)
        return self.output_shape  # type: ignore[return-value]

    def _build(self, shape: Shape) -> tuple[list[nn.Module], Shape]:
        raise NotImplementedError

    def count_params(self) -> int:
        """Number of weights in this layer."""
        return sum(p.numel() for m in self.modules for p in m.parameters())

    def named_torch_modules(self) -> list[tuple[str, nn.Module]]:
        """(key, module) pairs for the model's nn.Sequential: the module with weights is keyed by
        the layer's name (so state_dict keys read `dense_1.weight`), helpers by
        `name_helperclass`."""
        main = next(
            (m for m in self.modules if any(True for _ in m.parameters())),
            self.modules[0] if self.modules else None,
        )
        return [
            (self.name if m is main else f"{self.name}_{type(m).__name__.strip('_').lower()}", m)
            for m in self.modules
        ]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class _ShapeError(Exception):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = f" {hint}" if hint else ""


def _expect_image(shape: Shape) -> None:
    if len(shape) != 3:
        raise _ShapeError(
            "expects images (None, height, width, channels)",
            "Add a Reshape layer or give input_shape=(height, width, channels)."
            if len(shape) < 3
            else "",
        )


class InputLayer(Layer):
    """What `Input(shape=...)` adds: no computation, only the input shape."""

    base_name = "input_layer"

    def __init__(self, shape: Sequence[int], name: str | None = None):
        super().__init__(input_shape=shape, name=name)

    def _build(self, shape):
        return [], shape


def Input(shape: Sequence[int], name: str | None = None) -> InputLayer:
    """The model's input, without the batch axis: `Input((28, 28, 1))`."""
    return InputLayer(shape, name)


class Dense(Layer):
    """Fully connected: `activation(x @ W + b)`, Glorot-uniform W and zero b (Keras's defaults)."""

    base_name = "dense"

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True, **kw):
        super().__init__(**kw)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        activation_module(activation)  # fail now on a bad name, not at build time
        self.units, self.activation, self.use_bias = units, activation, use_bias

    def _build(self, shape):
        if len(shape) != 1:
            raise _ShapeError(
                "expects flat inputs (None, features)", "Add a Flatten() layer before it."
            )
        linear = nn.Linear(shape[0], self.units, bias=self.use_bias)
        nn.init.xavier_uniform_(linear.weight)
        if self.use_bias:
            nn.init.zeros_(linear.bias)
        act = activation_module(self.activation)
        return [linear] + ([act] if act else []), (self.units,)


class _SamePad(nn.Module):
    """TensorFlow's 'same' padding for a stride > 1: the extra row/column goes at the
    bottom/right."""

    def __init__(self, pads: tuple[int, int, int, int], value: float = 0.0):
        super().__init__()
        self.pads, self.value = pads, value

    def forward(self, x):
        return F.pad(x, self.pads, value=self.value)


def _same_pads(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int]):
    """(left, right, top, bottom) so that out = ceil(size / stride), as TF computes it."""
    pads = []
    for n, k, s in zip(size, kernel, stride):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return left, right, top, bottom


def _out_size(n: int, k: int, s: int, padding: str) -> int:
    return math.ceil(n / s) if padding == "same" else (n - k) // s + 1


class Conv2D(Layer):
    """2-D convolution over channels-last images; `padding='same'` keeps H×W at stride 1."""

    base_name = "conv2d"

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        activation: str | None = None,
        use_bias: bool = True,
        **kw,
    ):
        super().__init__(**kw)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(f"Conv2D: filters must be a positive int, got {filters!r}")
        activation_module(activation)
        self.filters, self.activation, self.use_bias = filters, activation, use_bias
        self.kernel_size = _pair(kernel_size, "Conv2D kernel_size")
        self.strides = _pair(strides, "Conv2D strides")
        self.padding = _check_padding(padding)

    def _build(self, shape):
        _expect_image(shape)
        h, w, c = shape
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        if self.padding == "valid" and (h < kh or w < kw):
            raise _ShapeError(
                f"with kernel {self.kernel_size} and padding 'valid' needs inputs of "
                f"at least {kh}×{kw}",
                "Use padding='same' or fewer pooling layers.",
            )
        modules: list[nn.Module] = []
        if self.padding == "same" and (sh, sw) == (1, 1) and kh % 2 and kw % 2:
            conv = nn.Conv2d(
                c, self.filters, self.kernel_size, padding=(kh // 2, kw // 2), bias=self.use_bias
            )
        else:
            if self.padding == "same":
                modules.append(_SamePad(_same_pads((h, w), self.kernel_size, self.strides)))
            conv = nn.Conv2d(c, self.filters, self.kernel_size, self.strides, bias=self.use_bias)
        nn.init.xavier_uniform_(conv.weight)  # fans are k·k·C_in and k·k·C_out, as in Keras
        if self.use_bias:
            nn.init.zeros_(conv.bias)
        modules.append(conv)
        act = activation_module(self.activation)
        if act:
            modules.append(act)
        out = (_out_size(h, kh, sh, self.padding), _out_size(w, kw, sw, self.padding), self.filters)
        return modules, out


class MaxPooling2D(Layer):
    """Max over pool_size windows; strides default to pool_size, as in Keras."""

    base_name = "max_pooling2d"

    def __init__(
        self,
        pool_size: int | Sequence[int] = (2, 2),
        strides: int | Sequence[int] | None = None,
        padding: str = "valid",
        **kw,
    ):
        super().__init__(**kw)
        self.pool_size = _pair(pool_size, "MaxPooling2D pool_size")
        self.strides = (
            _pair(strides, "MaxPooling2D strides") if strides is not None else self.pool_size
        )
        self.padding = _check_padding(padding)

    def _build(self, shape):
        _expect_image(shape)
        h, w, c = shape
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if self.padding == "valid" and (h < ph or w < pw):
            raise _ShapeError(
                f"with pool_size {self.pool_size} and padding 'valid' needs inputs of "
                f"at least {ph}×{pw}",
                "Use padding='same'.",
            )
        modules: list[nn.Module] = []
        if self.padding == "same":
            pads = _same_pads((h, w), self.pool_size, self.strides)
            if any(pads):  # 28 → 14 → 7 needs none; an odd size does
                modules.append(_SamePad(pads, value=-math.inf))
        modules.append(nn.MaxPool2d(self.pool_size, self.strides))
        out = (_out_size(h, ph, sh, self.padding), _out_size(w, pw, sw, self.padding), c)
        return modules, out


MaxPool2D = MaxPooling2D  # Keras has both names


class Dropout(Layer):
    """Zeroes a fraction `rate` of its inputs during training (scaling the rest by 1/(1-rate))."""

    base_name = "dropout"

    def __init__(self, rate: float, **kw):
        super().__init__(**kw)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate = rate

    def _build(self, shape):
        return [nn.Dropout(self.rate)], shape


class _FlattenChannelsLast(nn.Module):
    """Flatten in Keras's order (H, W, C), so Dense weights are laid out as in a Keras model.

    On a channels_last tensor the permute back to (N, H, W, C) is contiguous, so this is a view.
    """

    def forward(self, x):
        if x.ndim == 4:
            x = x.permute(0, 2, 3, 1)  # (N, C, H, W) → (N, H, W, C)
        return x.flatten(1)


class Flatten(Layer):
    """(None, H, W, C) → (None, H·W·C)."""

    base_name = "flatten"

    def _build(self, shape):
        return [_FlattenChannelsLast()], (math.prod(shape),)


class Reshape(Layer):
    """Reshape to `target_shape` (without the batch axis), e.g. Reshape((28, 28, 1))."""

    base_name = "reshape"

    def __init__(self, target_shape: Sequence[int], **kw):
        super().__init__(**kw)
        self.target_shape = tuple(target_shape)

    def _build(self, shape):
        if math.prod(shape) != math.prod(self.target_shape):
            raise _ShapeError(f"cannot reshape {math.prod(shape)} values to {self.target_shape}")
        return [_Reshape(self.target_shape)], self.target_shape


class _Reshape(nn.Module):
    def __init__(self, target: Shape):
        super().__init__()
        self.target = target

    def forward(self, x):
        if x.ndim == 4:
            x = x.permute(0, 2, 3, 1)  # reshape in Keras's (H, W, C) order
        x = x.reshape(len(x), *self.target)
        return x.permute(0, 3, 1, 2) if x.ndim == 4 else x


class Activation(Layer):
    """An activation as its own layer: Activation('relu')."""

    base_name = "activation"

    def __init__(self, activation: str, **kw):
        super().__init__(**kw)
        activation_module(activation)
        self.activation = activation

    def _build(self, shape):
        act = activation_module(self.activation)
        return ([act] if act else []), shape


class ChannelsFirst(nn.Module):
    """(N, H, W, C) → (N, C, H, W) as a view: the model's first module for image inputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


__all__ = [
    "Activation",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Input",
    "InputLayer",
    "Layer",
    "MaxPool2D",
    "MaxPooling2D",
    "Reshape",
]
