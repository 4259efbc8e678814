"""A batched optimisation loop (Adam or L-BFGS) with progress reporting and cancellation between iterations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

LossFn = Callable[[], tuple[Tensor, dict[str, float]]]


@dataclass
class OptimTrace:
    """Total loss per iteration and the named terms of the last evaluation."""

    losses: list[float] = field(default_factory=list)
    terms: dict[str, float] = field(default_factory=dict)


def optimise(
    params: Sequence[Tensor],
    loss_fn: LossFn,
    iterations: int,
    *,
    lr: float = 0.02,
    method: str = "adam",
    final_lr_fraction: float = 0.1,
    lr_scales: Sequence[float] | None = None,
    progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> OptimTrace:
    """Minimise loss_fn over `params` (leaf tensors, given gradients while this runs) for `iterations` steps.

    loss_fn returns (total loss, named term values). `method` is "adam" or "lbfgs" (strong-Wolfe line search,
    one outer step per iteration). Adam's rate decays linearly to `final_lr_fraction` of `lr`, so the last steps
    settle instead of dithering; `lr_scales` multiplies Adam's rate per tensor (e.g. faster for a few global
    parameters). progress(i, n) and check_cancelled() run before every iteration.
    """
    params = list(params)
    trace = OptimTrace()
    if iterations <= 0 or not params:
        return trace
    for p in params:
        p.requires_grad_(True)  # only the tensors being optimised carry gradients, so others cost no backward work
    scales = [1.0] * len(params) if lr_scales is None else [float(x) for x in lr_scales]
    if len(scales) != len(params):
        raise ValueError(f"lr_scales has {len(scales)} entries for {len(params)} tensors")
    if method == "adam":
        rates: dict[float, list[Tensor]] = {}  # tensors sharing a rate share a group: a step pays per group
        for p, k in zip(params, scales, strict=True):
            rates.setdefault(k, []).append(p)
        opt: torch.optim.Optimizer = torch.optim.Adam(  # fused: one kernel a group, a third of the loop's cost
            [{"params": ps, "lr": lr * k, "base_lr": lr * k} for k, ps in rates.items()],
            fused=params[0].device.type in ("cpu", "cuda"))
    elif method == "lbfgs":
        opt = torch.optim.LBFGS(params, lr=lr, max_iter=5, history_size=10, line_search_fn="strong_wolfe")
    else:
        raise ValueError(f"unknown optimiser {method!r}; use 'adam' or 'lbfgs'")

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        loss, terms = loss_fn()
        loss.backward()
        trace.terms = terms
        return loss

    for i in range(iterations):
        if check_cancelled is not None:
            check_cancelled()
        if progress is not None:
            progress(i, iterations)
        if method == "adam":
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * (1.0 - (1.0 - final_lr_fraction) * i / max(iterations - 1, 1))
        loss = opt.step(closure)
        trace.losses.append(float(loss.detach()))
    if progress is not None:
        progress(iterations, iterations)
    for p in params:
        p.requires_grad_(False)
    return trace
