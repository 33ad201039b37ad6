"""Sparse layers: Conv3d parameters and engine, BatchNorm, ReLU, global pooling."""

from __future__ import annotations

import logging

import pytest
import torch
from sparse_reference import random_voxels

from pcsep_cli.errors import ModelError
from pcsep_cli.sparse import (
    BatchNorm,
    Conv3d,
    ReLU,
    SparseTensor,
    conv3d,
    global_avg_pool,
    global_max_pool,
    resolve_engine,
)
from pcsep_cli.sparse import engine as engine_mod
from pcsep_cli.sparse.engine import torchsparse_module


def _tensor(batch: int = 3, channels: int = 4, empty: tuple[int, ...] = ()) -> SparseTensor:
    coords = random_voxels(50, batch, -4, 4, seed=1, empty_items=empty)
    feats = torch.randn(coords.shape[0], channels, requires_grad=True)
    return SparseTensor(coords, feats, batch_size=batch)


@pytest.mark.parametrize(
    ("kwargs", "shape"),
    [
        ({"kernel_size": 3}, (27, 4, 6)),
        ({"kernel_size": 1}, (4, 6)),
        ({"kernel_size": 1, "stride": 2}, (1, 4, 6)),
        ({"kernel_size": (2, 3, 1), "stride": 2}, (6, 4, 6)),
    ],
)
def test_conv_parameters_use_torchsparse_shapes(kwargs: dict, shape: tuple) -> None:
    conv = Conv3d(4, 6, bias=True, **kwargs)
    assert tuple(conv.kernel.shape) == shape
    assert set(conv.state_dict()) == {"kernel", "bias"}
    bound = 1 / (4 * conv.kernel_volume) ** 0.5
    assert float(conv.kernel.detach().abs().max()) <= bound


def test_conv_module_runs_the_functional_conv() -> None:
    x = _tensor()
    conv = Conv3d(4, 5, kernel_size=3, stride=2, bias=True, engine="torch")
    y = conv(x)
    ref = conv3d(x, conv.kernel, 3, 2, 1, conv.bias)
    assert torch.equal(y.coords, ref.coords) and torch.allclose(y.feats, ref.feats)
    assert "stride=(2, 2, 2)" in repr(conv) and "engine='torch'" in repr(conv)
    with pytest.raises(ValueError, match=r"expects 5 channels, got feats \(\d+, 4\)"):
        Conv3d(5, 5)(x)
    with pytest.raises(ValueError, match=r"weight must be \[27, 4, Cout\]"):
        conv3d(x, torch.zeros(8, 4, 2), 3)


def test_engine_choice_is_explicit_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    engine_mod._announced.clear()
    x = _tensor()
    conv = Conv3d(4, 4)
    with caplog.at_level(logging.INFO, logger="pcsep_cli.sparse"):
        conv(x)
        conv(x)
        Conv3d(4, 4)(x)
    lines = [r.getMessage() for r in caplog.records if r.name == "pcsep_cli.sparse"]
    assert lines == ["sparse conv engine: torch (auto: tensor on CPU)"]
    assert resolve_engine("auto", torch.device("cpu")) == "torch"
    with pytest.raises(ValueError, match="engine must be one of"):
        Conv3d(4, 4, engine="spconv")


def test_asking_for_torchsparse_where_it_cannot_run_is_a_model_error() -> None:
    # The tensor is on the CPU, so this holds with or without torchsparse installed.
    state = "imports" if torchsparse_module() is not None else "missing"
    with pytest.raises(ModelError, match=f"needs torchsparse 2.1 and a CUDA tensor.*{state}"):
        Conv3d(4, 4, engine="torchsparse")(_tensor())


def test_batchnorm_and_relu_act_on_feats() -> None:
    x = _tensor()
    bn = BatchNorm(4)
    y = bn(x)
    ref = torch.nn.functional.batch_norm(x.feats, None, None, bn.weight, bn.bias, training=True)
    assert y.coords is x.coords and torch.allclose(y.feats, ref, atol=1e-5)
    assert set(bn.state_dict()) == {
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    }
    r = ReLU()(x)
    assert torch.equal(r.feats, x.feats.clamp(min=0)) and r.cache is x.cache


def test_global_pools_per_item_with_empty_items() -> None:
    x = _tensor(batch=4, empty=(1, 3))  # item 3 is empty and last: batch_size keeps its row
    mx, avg = global_max_pool(x), global_avg_pool(x)
    assert mx.shape == avg.shape == (4, 4)
    for b in range(4):
        rows = x.feats[x.coords[:, 0] == b]
        if rows.shape[0] == 0:
            assert mx[b].abs().sum() == 0 and avg[b].abs().sum() == 0
        else:
            assert torch.allclose(mx[b], rows.max(0).values)
            assert torch.allclose(avg[b], rows.mean(0), atol=1e-6)
    (mx.sum() + avg.sum()).backward()
    grad = x.feats.grad
    for b in (0, 2):
        rows = x.coords[:, 0] == b
        n = int(rows.sum())
        # max: one 1 per channel; mean: 1/n everywhere
        assert torch.allclose(grad[rows].sum(0), torch.full((4,), 2.0), atol=1e-5)
        assert torch.allclose(grad[rows].min(0).values, torch.full((4,), 1 / n), atol=1e-6)


def test_inference_mode_call_does_not_break_later_training() -> None:
    # Scratch buffers made under inference_mode must stay usable with autograd on.
    conv = Conv3d(4, 4, engine="torch")
    with torch.inference_mode():
        conv(_tensor())
    x = _tensor()
    conv(x).feats.sum().backward()
    assert x.feats.grad is not None and conv.kernel.grad is not None
