from __future__ import annotations

import pytest
import torch
from torch import nn

from facerobust.core.embedding import embed
from facerobust.core.precision import PRECISIONS, check_precision, crafting

CPU = torch.device("cpu")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4)).eval()


def test_bad_precision_names_where() -> None:
    with pytest.raises(ValueError, match=r"run\.precision: precision must be one of fp32, bf16"):
        check_precision("fp16", "run.precision")
    assert [check_precision(p, "x") for p in PRECISIONS] == ["fp32", "bf16"]


def test_bf16_crafting_runs_the_passes_in_bfloat16_and_fp32_does_not() -> None:
    net, x = _net(), torch.rand(2, 3, 8, 8)
    net(x)
    with crafting("bf16", CPU):
        assert net(x).dtype == torch.bfloat16
    with crafting("fp32", CPU):
        assert net(x).dtype == torch.float32


def test_bf16_gradient_is_close_to_fp32_but_not_equal() -> None:
    net, x = _net(), torch.rand(4, 3, 8, 8)
    net(x)

    def grad(precision: str) -> torch.Tensor:
        xr = x.clone().requires_grad_(True)
        with crafting(precision, CPU):
            (g,) = torch.autograd.grad(net(xr).float().pow(2).sum(), xr)
        return g

    g32, g16 = grad("fp32"), grad("bf16")
    assert g16.dtype == torch.float32  # the input's gradient keeps the input's dtype
    assert not torch.equal(g32, g16)
    assert (g32.sign() == g16.sign()).float().mean() > 0.8


def test_embed_judges_in_float32_inside_a_bf16_attack() -> None:
    net, x = _net(), torch.rand(5, 3, 8, 8)
    net(x)
    plain = embed(net, x, batch_size=2)
    with crafting("bf16", CPU):
        inside = embed(net, x, batch_size=2)
    assert inside.dtype == torch.float32
    assert torch.equal(plain, inside)
