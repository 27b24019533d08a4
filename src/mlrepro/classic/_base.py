"""What the classic estimators share: scikit-learn's parameter protocol and input checks."""

from __future__ import annotations

import contextlib
import inspect

import numpy as np
import torch

from mlrepro.errors import InputError, MlreproError


class NotFittedError(MlreproError, ValueError, AttributeError):
    """An estimator was asked to predict before `fit` (a ValueError and AttributeError, as in
    sklearn)."""


class ConvergenceWarning(UserWarning):
    """An iterative fit stopped at `max_iter` before meeting its tolerance."""


class BaseEstimator:
    """`get_params` / `set_params` / `repr` from the `__init__` signature, as scikit-learn does."""

    @classmethod
    def _param_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.name != "self"]

    def get_params(self, deep: bool = True) -> dict:
        """The hyperparameters exactly as given to `__init__`."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> BaseEstimator:
        """Set hyperparameters by name; unknown names are an error."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise InputError(
                    f"{type(self).__name__} has no parameter {name!r}; valid: {', '.join(valid)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        shown = []
        for name, value in self.get_params().items():
            default = defaults[name].default
            same = value is default or (
                not isinstance(value, (np.ndarray, torch.Tensor)) and value == default
            )
            if not same:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X) before using it"
            )


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with torch's intra-op thread count set to `n` (process-wide), then restore."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


def resolve_device(device) -> torch.device:
    """None -> CPU; anything else goes through `torch.device`."""
    if device is None:
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"device={device!r} is not a torch device ({err})") from None


def check_array(
    X,
    name: str = "X",
    *,
    ndim: int = 2,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    chunk_rows: int = 1 << 16,
) -> torch.Tensor:
    """Return `X` as a contiguous floating tensor after checking shape and finiteness.

    float32 and float64 are kept (no copy for a contiguous CPU numpy array); other numeric types
    become float64 unless `dtype` is given. The finiteness check streams over row chunks, so it
    allocates no temporary the size of `X`.
    """
    if isinstance(X, torch.Tensor):
        t = X.detach()
    else:
        try:
            arr = np.asarray(X)
        except (ValueError, TypeError) as err:
            raise InputError(
                f"{name} must be a numeric array; could not convert it ({err})"
            ) from None
        if arr.dtype.kind not in "biuf":
            raise InputError(f"{name} must be a numeric array; got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.ndim != ndim:
        hint = " (use X.reshape(-1, 1) for a single feature)" if t.ndim == 1 and ndim == 2 else ""
        raise InputError(
            f"{name} must be a {ndim}-D array; got {t.ndim}-D with shape {tuple(t.shape)}{hint}"
        )
    if t.is_complex():
        raise InputError(f"{name} must be real-valued; got dtype {t.dtype}")
    if dtype is None:
        dtype = t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float64
    t = t.to(device=device or t.device, dtype=dtype).contiguous()
    if t.shape[0] == 0 or (t.ndim == 2 and t.shape[1] == 0):
        raise InputError(
            f"{name} is empty: shape {tuple(t.shape)}, expected at least one row and column"
        )
    _check_finite(t, name, chunk_rows)
    return t


def _check_finite(t: torch.Tensor, name: str, chunk_rows: int) -> None:
    # A finite sum proves every entry finite (the common case, one reduction pass; summing in the
    # native dtype is ~10x faster than casting). Otherwise (bad values, or a sum that overflowed)
    # look chunk by chunk.
    if torch.isfinite(t.sum()):
        return
    for start in range(0, t.shape[0], chunk_rows):
        part = t[start : start + chunk_rows]
        if torch.isnan(part).any():
            raise InputError(f"{name} contains NaN; remove or impute missing values first")
        if torch.isinf(part).any():
            raise InputError(f"{name} contains infinity; expected finite values")


def check_n_features(X: torch.Tensor, n_features: int, name: str = "X") -> None:
    if X.shape[1] != n_features:
        raise InputError(
            f"{name} has {X.shape[1]} features, but the estimator was fitted with {n_features}"
        )
