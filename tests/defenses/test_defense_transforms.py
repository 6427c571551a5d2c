from __future__ import annotations

import pytest
import torch

from facerobust.defenses import (
    JPEG,
    TVM,
    BitDepth,
    Compose,
    GaussianBlur,
    Identity,
    Median,
    ResizePad,
    parse_defense,
)

ALL = ["none", "jpeg:q=75", "bitdepth:bits=3", "median:k=3", "gaussian:sigma=1",
       "tvm:steps=5", "rp:scale=0.2", "jpeg:q=60+median:k=3", "bitdepth:bits=5+rp"]


@pytest.mark.parametrize("spec", ALL)
def test_transform_keeps_shape_dtype_and_range(spec: str) -> None:
    x = torch.rand((3, 3, 40, 36), generator=torch.Generator().manual_seed(0))
    y = parse_defense(spec)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("spec", ALL[1:])
def test_transform_changes_a_noisy_image(spec: str) -> None:
    x = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(1))
    assert (parse_defense(spec)(x) - x).abs().mean() > 1e-3


@pytest.mark.parametrize("spec", ALL)
def test_bpda_value_equals_forward_and_gradient_is_nonzero(spec: str) -> None:
    d = parse_defense(spec)
    x = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(2))
    gen = torch.Generator()
    xx = x.clone().requires_grad_(True)
    y = d.set_generator(gen.manual_seed(5)).bpda(xx)
    assert torch.allclose(y, d.set_generator(gen.manual_seed(5))(x), atol=1e-6)
    (y * torch.linspace(0, 1, y.numel()).view_as(y)).sum().backward()
    assert xx.grad is not None and float(xx.grad.abs().sum()) > 0


@pytest.mark.parametrize("defense", [JPEG(q=50), BitDepth(bits=3), TVM(steps=3)])
def test_non_differentiable_transforms_give_zero_autograd_gradient(defense) -> None:
    x = torch.rand((2, 3, 16, 16), requires_grad=True)
    defense(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) == 0.0


def test_bitdepth_levels_and_median_removes_salt() -> None:
    x = torch.rand((1, 3, 16, 16))
    assert torch.unique(BitDepth(bits=2)(x)).numel() <= 4
    img = torch.full((1, 3, 9, 9), 0.5)
    img[0, :, 4, 4] = 1.0
    assert torch.allclose(Median(k=3)(img), torch.full_like(img, 0.5))


def test_gaussian_preserves_constant_and_jpeg_is_near_identity_at_high_quality() -> None:
    flat = torch.full((1, 3, 20, 20), 0.3)
    assert torch.allclose(GaussianBlur(sigma=1.5)(flat), flat, atol=1e-5)
    smooth = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32).contiguous()
    assert (JPEG(q=100)(smooth) - smooth).abs().mean() < 0.01


def test_randomised_defenses_are_random_and_seedable() -> None:
    x = torch.rand((2, 3, 32, 32))
    for d in (ResizePad(scale=0.3), TVM(steps=2)):
        assert d.randomized
        assert not torch.equal(d(x), d(x))
        g = torch.Generator()
        a = d.set_generator(g.manual_seed(3))(x)
        b = d.set_generator(g.manual_seed(3))(x)
        assert torch.equal(a, b)


def test_compose_flags_and_spec() -> None:
    c = Compose([JPEG(q=70), ResizePad(scale=0.1)])
    assert c.randomized and not c.differentiable
    assert c.spec == "jpeg:q=70+rp:scale=0.1"
    assert parse_defense(c.spec).spec == c.spec
    assert Identity().spec == "none"


def test_defense_input_validation() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        JPEG()(torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="float"):
        Median()(torch.zeros((1, 3, 8, 8), dtype=torch.uint8))
