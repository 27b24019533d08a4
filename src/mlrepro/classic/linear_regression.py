"""Linear regression by batch gradient descent, after the blog's house-price example.

Blog: "An Introduction to Machine Learning" (2016-11-10). Hypothesis h(x) = theta_0 + theta . x,
cost J = 1/(2N) sum_n (h(x_n) - y_n)^2, and the simultaneous update
theta_j := theta_j - lr * dJ/dtheta_j with dJ/dtheta_j = 1/N sum_n (h(x_n) - y_n) x_nj,
repeated until the cost stops changing. Here one iteration is two matrix products over the whole
batch instead of three Python loops over the points.

Bugs in the blog's code, fixed here:

(a) Inverted convergence test. ``if abs(new_cost - old_cost) > EPSILON: break`` leaves the loop
    after the first step whenever that step still changes the cost (it always does), and otherwise
    keeps looping forever. The loop has to stop when the change is <= the tolerance.
(b) ``xy = zip(X, Y)`` is a one-shot iterator in Python 3: the list comprehension for the theta_0
    partial consumes it, so the theta_1 partial sums over nothing and theta_1 never moves.
(c) ``r_squared`` builds ``[hypothesis(t0, t1, x) for y in Y]`` with ``x`` undefined and divides by
    ``len(Y_true)``, a name that does not exist; `score` below is the usual R^2.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch

from mlrepro.classic._base import (
    BaseEstimator,
    ConvergenceWarning,
    check_array,
    check_n_features,
    resolve_device,
    torch_threads,
)
from mlrepro.errors import InputError

_SOLVERS = ("gd", "closed_form")
_HUGE = float(np.finfo(np.float64).max)
_SMALL_PASS = 1 << 20  # values in X and y; smaller fits run single-threaded


def _n_values(a) -> int:
    shape = getattr(a, "shape", None)
    return int(np.prod(shape)) if shape is not None else int(np.asarray(a).size)


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """R^2 = 1 - SS_res / SS_tot, averaged over targets (scikit-learn's r2_score, uniform average).

    A constant target scores 1.0 when predicted exactly and 0.0 otherwise, as in scikit-learn.
    """
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    ss_res = ((y_true - y_pred) ** 2).sum(0)
    ss_tot = ((y_true - y_true.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
    return float(r2.mean())


class LinearRegressionGD(BaseEstimator):
    """Least-squares linear regression by batch gradient descent (or a closed-form solve).

    Args:
        lr: learning rate (the blog's alpha). With standardize=True, features have unit variance
            and 0 < lr < 2 / (largest eigenvalue of the feature correlation matrix, >= 1) converges;
            0.1 is safe. With raw features lr must be tiny (the blog used 3e-4 on its data).
        max_iter: gradient steps at most; a ConvergenceWarning says when they ran out.
        tol: stop when |J(theta_t) - J(theta_t-1)| <= tol * J_ref, where J_ref = var(y) / 2 (summed
            over targets) is the cost of predicting the mean; scaling by J_ref makes tol unit-free.
            The change in cost shrinks like the square of the error in theta, so tol = 1e-9 gives
            coefficients to about 1e-5 relative; use ~1e-15 in float64 for ~1e-7.
        standardize: run gradient descent on (x - mean) / std and map the coefficients back to the
            original units; this is what makes one learning rate work for any feature scale.
        solver: "gd" (the blog's algorithm) or "closed_form" (least squares on [1, X] with
            torch.linalg.lstsq, for reference).
        device: torch device (default CPU).
        dtype: torch.float64 (default) or torch.float32.

    Attributes after fit: ``coef_`` of shape (n_features,), or (n_targets, n_features) for 2-D y;
    ``intercept_`` (float or (n_targets,)); ``cost_history_``, J at theta_0 ... theta_n_iter_;
    ``n_iter_`` gradient steps taken (0 for closed_form); ``converged_``.

    >>> import numpy as np
    >>> X = np.array([[1.0], [2.0], [3.0], [4.0]])
    >>> model = LinearRegressionGD(tol=1e-15).fit(X, 3.0 + 2.0 * X[:, 0])
    >>> np.round(model.coef_, 6).tolist(), round(model.intercept_, 6), model.converged_
    ([2.0], 3.0, True)
    >>> model.predict([[10.0]]).round(6).tolist()
    [23.0]
    """

    def __init__(
        self,
        lr=0.1,
        *,
        max_iter=10_000,
        tol=1e-9,
        standardize=True,
        solver="gd",
        device=None,
        dtype=torch.float64,
    ):
        self.lr = lr
        self.max_iter = max_iter
        self.tol = tol
        self.standardize = standardize
        self.solver = solver
        self.device = device
        self.dtype = dtype

    def _check_params(self):
        if not isinstance(self.lr, numbers.Real) or isinstance(self.lr, bool) or not self.lr > 0:
            raise InputError(f"lr must be a number > 0; got {self.lr!r}")
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise InputError(f"max_iter must be a positive int; got {self.max_iter!r}")
        if not isinstance(self.tol, numbers.Real) or not self.tol >= 0:
            raise InputError(f"tol must be a number >= 0; got {self.tol!r}")
        if self.solver not in _SOLVERS:
            raise InputError(f"solver must be one of {', '.join(_SOLVERS)}; got {self.solver!r}")
        if self.dtype not in (torch.float32, torch.float64):
            raise InputError(f"dtype must be torch.float32 or torch.float64; got {self.dtype!r}")

    def fit(self, X, y) -> LinearRegressionGD:
        """Fit on X of shape (n_samples, n_features) and y of shape (n_samples,) or
        (n_samples, n_targets)."""
        self._check_params()
        device = resolve_device(self.device)
        # Every op here streams over at most a few columns of N values. Below ~1M values per op,
        # OpenMP fork/join costs more than it saves (milliseconds per op on a busy machine), so
        # small fits run on the calling thread.
        small = device.type == "cpu" and _n_values(X) + _n_values(y) <= _SMALL_PASS
        with torch_threads(1 if small else torch.get_num_threads()):
            return self._fit(X, y, device)

    def _fit(self, X, y, device) -> LinearRegressionGD:
        X = check_array(X, "X", device=device, dtype=self.dtype)
        y_arr = y if isinstance(y, torch.Tensor) else np.asarray(y)
        if y_arr.ndim not in (1, 2):
            raise InputError(
                f"y must be 1-D or 2-D; got {y_arr.ndim}-D with shape {tuple(y_arr.shape)}"
            )
        Y = check_array(y_arr, "y", ndim=y_arr.ndim, device=device, dtype=self.dtype)
        one_target = Y.ndim == 1
        Y = Y.reshape(len(Y), -1)  # (N, t)
        n, p = X.shape
        if Y.shape[0] != n:
            raise InputError(f"X and y have different numbers of rows: {n} and {Y.shape[0]}")

        if self.standardize:
            mean = X.mean(0)
            std = X.std(0, correction=0)
            std = torch.where(std > 0, std, torch.ones_like(std))  # constant column: leave as is
        else:
            mean = torch.zeros(p, dtype=X.dtype, device=device)
            std = torch.ones(p, dtype=X.dtype, device=device)
        Z = (X - mean) / std  # (N, p)

        if self.solver == "closed_form":
            A = torch.cat([torch.ones(n, 1, dtype=X.dtype, device=device), Z], 1)  # (N, 1+p)
            theta = torch.linalg.lstsq(
                A, Y, driver="gelsd" if device.type == "cpu" else None
            ).solution
            resid = A @ theta - Y
            history = [float((resid * resid).sum()) / (2 * n)]
            n_iter, converged = 0, True
        else:
            theta, history, n_iter, converged = self._gradient_descent(Z, Y)

        # back to original units: h = t0 + sum_j t_j (x_j - m_j) / s_j
        w = theta[1:] / std[:, None]  # (p, t)
        b = theta[0] - (mean[:, None] * w).sum(0)  # (t,)
        coef = w.T.cpu().numpy().astype(np.float64)  # (t, p)
        intercept = b.cpu().numpy().astype(np.float64)
        self.coef_ = coef[0] if one_target else coef
        self.intercept_ = float(intercept[0]) if one_target else intercept
        self.cost_history_ = np.asarray(history)
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.n_features_in_ = p
        self._one_target = one_target
        return self

    def _gradient_descent(self, Z: torch.Tensor, Y: torch.Tensor):
        """Batch gradient descent from theta = 0 (the blog's start); returns
        (theta (1+p, t), cost history, steps taken, converged)."""
        n, p = Z.shape
        t = Y.shape[1]
        opts = {"dtype": Z.dtype, "device": Z.device}
        # One buffer holds [1; Z^T; R^T] (rows) so that a single product At @ R gives both the
        # gradient A^T R (first 1+p rows) and R^T R (last t rows), whose trace is 2N * J.
        At = torch.empty(1 + p + t, n, **opts)
        At[0] = 1.0
        At[1 : 1 + p] = Z.T
        A_T, R_T = At[: 1 + p], At[1 + p :]  # (1+p, N), (t, N)
        neg_Y_T = -Y.T.contiguous()  # (t, N)
        theta_T = torch.zeros(t, 1 + p, **opts)  # (t, 1+p); theta transposed
        G = torch.empty(1 + p + t, t, **opts)
        step = self.lr / n
        j_ref = 0.5 * float(Y.var(0, correction=0).sum()) or 1.0
        threshold = self.tol * j_ref

        # fixed views into the buffers, so the loop is four torch calls
        grad_T = G[: 1 + p].T  # (t, 1+p): A^T R, transposed like theta_T
        sq_resid = G[1 + p :].diagonal() if t > 1 else G[-1, 0]  # sum of r^2 per target

        history: list[float] = []
        converged = False
        steps = 0
        while True:
            torch.addmm(neg_Y_T, theta_T, A_T, out=R_T)  # residuals h - y, (t, N)
            torch.mm(At, R_T.T, out=G)  # (1+p+t, t)
            cost = (float(sq_resid.sum()) if t > 1 else sq_resid.item()) / (2 * n)
            if not cost < _HUGE:  # inf or nan
                raise InputError(
                    f"lr={self.lr} is too large: gradient descent diverged (cost became {cost} "
                    f"at step {steps}); use a smaller lr"
                    + ("" if self.standardize else " or standardize=True")
                )
            history.append(cost)
            # Blog bug (a), fixed: stop when the change in cost is SMALL (the blog breaks when it
            # is large, i.e. after the first step).
            if steps > 0 and abs(history[-2] - cost) <= threshold:
                converged = True
                break
            if steps == self.max_iter:
                break
            # simultaneous update of every theta_j: theta -= lr/N * A^T (A theta - y)
            theta_T.sub_(grad_T, alpha=step)
            steps += 1
        if not converged:
            warnings.warn(
                f"gradient descent did not converge in max_iter={self.max_iter} steps "
                f"(last change in cost {abs(history[-2] - history[-1]):.3g} > tol * J_ref = "
                f"{threshold:.3g}); raise max_iter or lr",
                ConvergenceWarning,
                stacklevel=4,  # the caller of fit
            )
        return theta_T.T, history, steps, converged

    def predict(self, X) -> np.ndarray:
        """Predictions of shape (n_samples,) or (n_samples, n_targets)."""
        self._check_fitted("coef_")
        Xt = check_array(X, "X", dtype=torch.float64)
        check_n_features(Xt, self.n_features_in_)
        coef = np.atleast_2d(self.coef_)  # (t, p)
        pred = Xt.cpu().numpy() @ coef.T + np.atleast_1d(self.intercept_)
        return pred[:, 0] if self._one_target else pred

    def score(self, X, y) -> float:
        """R^2 of the predictions on (X, y), averaged over targets as scikit-learn does."""
        return r2_score(np.asarray(y), self.predict(X))
