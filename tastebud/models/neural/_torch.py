"""PyTorch, imported only when a neural model trains (``import tastebud.models`` stays light).

Serving never needs it: each neural model keeps its weights as numpy arrays after ``fit``
and scores with numpy, so a server loads a neural model version without PyTorch installed.
The device is chosen here, in one place: CUDA when PyTorch sees a device, else the CPU.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from tastebud.models.base import ModelError

INSTALL = "pip install 'tastebud[neural]' torch==2.13.0  (or: make .venv/.installed)"


class TrainingDiverged(ModelError):
    """The loss became NaN or infinite: nothing was learned worth keeping."""


def require_torch() -> ModuleType:
    """The torch module, or a ModelError that names the install command."""
    try:
        import torch  # lazy: PyTorch is the optional extra tastebud[neural]
    except ImportError:
        raise ModelError(
            f"the neural models need PyTorch, which is not installed: {INSTALL}"
        ) from None
    return torch


def torch_available() -> bool:
    try:
        require_torch()
    except ModelError:
        return False
    return True


def device(preferred: str | None) -> Any:
    """``preferred`` when given ("cpu", "cuda"), else CUDA when available, else the CPU."""
    torch = require_torch()
    if preferred is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preferred.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {preferred!r} asked for, but PyTorch sees no CUDA device")
    return torch.device(preferred)


def generator(random_state: int | None, where: Any) -> Any:
    """A seeded torch generator (reproducible initialisation, dropout and sampling)."""
    torch = require_torch()
    gen = torch.Generator(device=where)
    gen.manual_seed(0 if random_state is None else int(random_state))
    return gen


def check_loss(value: float, model: str, epoch: int) -> None:
    """Stop training on a NaN/infinite loss with a message that says what to change."""
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"{model}: the training loss became {value} in epoch {epoch + 1}; lower "
            "learning_rate (or raise regularisation). Nothing was saved."
        )


def to_numpy(module: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """A module's parameters as float32 numpy arrays named ``prefix + name``."""
    return {
        prefix + name: value.detach().cpu().numpy().astype(np.float32, copy=True)
        for name, value in module.state_dict().items()
    }
