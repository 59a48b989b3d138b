"""Network building blocks and the per-batch optimiser step of the torch-only estimators.

Nothing here knows about scikit-learn (CONTRIBUTING.md, convention 6): the estimators
build modules in ``fit`` from their parameters with :func:`mlp`, train them with
:func:`train_epoch`, and keep their state as NumPy arrays between sessions with
:func:`to_numpy_tree` / :func:`load_module_state` and :func:`load_optimizer_state`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from skebm._backends.torch.core import torch_dtype

#: activation name -> module class (names of MLPClassifier plus the EBM-friendly ones)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
}


def mlp(n_in: int, hidden: Iterable[int], n_out: int, activation: str) -> nn.Sequential:
    """Linear -> activation -> ... -> Linear; ``hidden=()`` gives one linear map."""
    sizes = [n_in, *hidden, n_out]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


@contextlib.contextmanager
def seeded(seed: int, device: str = "cpu"):
    """Run a block with torch's global generators seeded, then restore them.

    Module constructors (ours and user factories) draw their initial weights from the
    global generator; forking it keeps the caller's random state untouched (rule 8).
    """
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def build(factory: Callable[[], nn.Module], seed: int, device: str, dtype) -> nn.Module:
    """Call ``factory()`` under a seeded generator; move the module to device / dtype.

    Outside any ``torch.inference_mode()`` of the caller: parameters made there
    would be inference tensors, which no later gradient (SGLD, training) accepts.
    """
    with torch.inference_mode(False), seeded(seed, device):
        module = factory()
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"The module factory returned {type(module).__name__}, not a "
                "torch.nn.Module."
            )
        return module.to(device=device, dtype=torch_dtype(dtype))


def adam(module: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(module.parameters(), lr=lr)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def l2_penalty(module: nn.Module) -> torch.Tensor:
    """0.5 * sum of squared weights (matrices only, as MLPClassifier: no biases)."""
    return 0.5 * sum((p**2).sum() for p in module.parameters() if p.ndim > 1)


@torch.enable_grad()  # whatever the caller's mode (a fit inside torch.no_grad())
def train_epoch(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple],
    loss_fn: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    alpha: float = 0.0,
) -> float:
    """One pass over ``batches``: loss, backward, optimiser step per batch.

    ``loss_fn(*batch)`` returns ``(loss, monitor)``: the scalar to minimise and a
    detached scalar to report (e.g. the cross-entropy or the negative ELBO).
    ``alpha`` adds ``alpha * l2_penalty / batch_size`` as MLPClassifier does.
    Returns the sample-weighted mean of ``monitor`` (NaN if any batch went
    non-finite, or if there was no batch); the mean is read once per epoch so
    the loop never waits on the device.
    """
    module.train()
    total = None
    n_seen = 0
    for batch in batches:
        n = batch[0].shape[0]
        loss, monitor = loss_fn(*batch)
        if alpha:
            loss = loss + alpha * l2_penalty(module) / n
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        term = monitor.detach() * n
        total = term if total is None else total + term
        n_seen += n
    module.eval()
    if total is None:
        return float("nan")
    return float(total) / n_seen


def batches(
    tensors: tuple[torch.Tensor | None, ...], batch_size: int, order: np.ndarray | None
):
    """Minibatches of rows of each tensor (``None`` entries stay ``None``)."""
    n = tensors[0].shape[0]
    if order is not None:
        idx = torch.as_tensor(order, device=tensors[0].device)
        tensors = tuple(None if t is None else t[idx] for t in tensors)
    for start in range(0, n, batch_size):
        yield tuple(
            None if t is None else t[start : start + batch_size] for t in tensors
        )


def widest_layer(module: nn.Module) -> int:
    """The largest dimension of any parameter (a bound on a layer's width)."""
    return max((max(p.shape, default=1) for p in module.parameters()), default=1)


def params_finite(module: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


# -- state as NumPy (pickles and skops files hold no torch objects) -------------------


def _map_tree(obj, fn, leaf=torch.Tensor):
    """``obj`` (nested dicts, lists and tuples) with ``fn`` applied to every ``leaf``."""
    if isinstance(obj, leaf):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map_tree(v, fn, leaf) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_map_tree(v, fn, leaf) for v in obj)
    return obj


def to_numpy_tree(tree):
    """A state tree (a ``state_dict``) with every tensor as a NumPy copy on the CPU."""
    return _map_tree(tree, lambda t: t.detach().cpu().numpy().copy())


def load_module_state(module: nn.Module, state: dict[str, np.ndarray]) -> nn.Module:
    ref = module.state_dict()
    module.load_state_dict(
        {
            k: torch.as_tensor(np.array(v), dtype=ref[k].dtype, device=ref[k].device)
            for k, v in state.items()
        }
    )
    return module


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict, device: str):
    tree = _map_tree(
        state, lambda a: torch.as_tensor(np.array(a), device=device), np.ndarray
    )
    # Adam keeps its step counter on the CPU unless it is capturable
    for s in tree.get("state", {}).values():
        if "step" in s and isinstance(s["step"], torch.Tensor):
            s["step"] = s["step"].cpu()
    optimizer.load_state_dict(tree)
    return optimizer


def snapshot(module: nn.Module, optimizer: torch.optim.Optimizer) -> tuple:
    """In-memory copies of module and optimiser state (for rollback)."""
    return clone_tree(module.state_dict()), clone_tree(optimizer.state_dict())


def copy_tree_(dst, src) -> None:
    """Copy the tensors of ``src`` into those of ``dst`` in place (same structure;
    entries that are not tensors or dicts are left alone)."""
    for key, value in src.items():
        if isinstance(value, torch.Tensor):
            dst[key].copy_(value)
        elif isinstance(value, dict):
            copy_tree_(dst[key], value)


def clone_tree(obj):
    """Copy of a state tree with every tensor cloned (deepcopy is 3x slower)."""
    return _map_tree(obj, lambda t: t.detach().clone())


def restore(module: nn.Module, optimizer: torch.optim.Optimizer, snap: tuple) -> None:
    module.load_state_dict(snap[0])
    optimizer.load_state_dict(snap[1])


def inference(module: nn.Module) -> torch.no_grad:
    """Put ``module`` in evaluation mode; a context that builds no graph."""
    module.eval()
    return torch.no_grad()
