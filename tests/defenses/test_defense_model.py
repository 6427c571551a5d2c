from __future__ import annotations

import pytest
import torch

from facerobust.defenses import DefendedModel, adaptive, parse_defense


def test_defended_model_delegates_face_model_attributes(tiny, chips) -> None:
    d = DefendedModel(tiny, parse_defense("median:k=3"))
    assert d.name == "tiny-face+median:k=3"
    assert (d.input_size, d.embedding_dim, d.metric, d.threshold) == (
        tiny.input_size, tiny.embedding_dim, tiny.metric, tiny.threshold)
    out = d(chips)
    assert out.shape == (len(chips), tiny.embedding_dim)
    assert torch.allclose(out, tiny(parse_defense("median:k=3")(chips)))
    assert torch.allclose(d.distance(out, out * 0), tiny.distance(out, out * 0))
    assert torch.allclose(d.embed(chips).norm(dim=1), torch.ones(len(chips)))


def test_identity_defense_is_transparent(tiny, chips) -> None:
    assert torch.allclose(DefendedModel(tiny, parse_defense("none"))(chips), tiny(chips))


def test_bpda_view_has_same_forward_but_nonzero_gradient(tiny, chips) -> None:
    defended = DefendedModel(tiny, parse_defense("jpeg:q=50+bitdepth:bits=4"))
    view = adaptive(defended)
    assert view.mode == "bpda" and view.eot_samples == 1
    assert torch.allclose(view(chips), defended(chips), atol=1e-6)
    grads = []
    for m in (defended, view):
        x = chips.clone().requires_grad_(True)
        m(x).pow(2).sum().backward()
        grads.append(float(x.grad.abs().sum()))
    assert grads[0] == 0.0 and grads[1] > 0.0


def test_eot_averages_random_draws(tiny, chips) -> None:
    defended = DefendedModel(tiny, parse_defense("rp:scale=0.3"))
    view = adaptive(defended)
    assert view.eot_samples == 8 and view.mode == "bpda+eot8"
    one = adaptive(defended, eot_samples=1)
    # the mean over many draws varies much less between calls than a single draw does
    single = (one(chips) - one(chips)).abs().mean()
    many = (adaptive(defended, eot_samples=32)(chips)
            - adaptive(defended, eot_samples=32)(chips)).abs().mean()
    assert many < single * 0.5


def test_defended_model_validation(tiny) -> None:
    with pytest.raises(ValueError, match="gradient must be"):
        DefendedModel(tiny, parse_defense("jpeg"), gradient="straight")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eot_samples must be an int >= 1"):
        DefendedModel(tiny, parse_defense("jpeg"), eot_samples=0)
    with pytest.raises(TypeError, match="defense must be a Defense"):
        DefendedModel(tiny, torch.nn.Identity())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a DefendedModel"):
        adaptive(tiny)  # type: ignore[arg-type]
