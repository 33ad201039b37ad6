"""VisualEncoder and cloud_to_sparse: shapes, gradients, determinism, config, batching."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import trimesh

from pcsep_cli.nets.visual import VisualConfig, VisualEncoder, cloud_to_sparse

SMALL = VisualConfig(
    voxel_size=0.05, stem_channels=8, widths=(16, 32, 32), blocks=(1, 0, 1), embed_dim=24
)


def _person(seed: int, n: int = 3000, offset: tuple[float, float, float] = (0, 0, 0)):
    """Points on a capsule torso + sphere head, ~1.7 m tall, randomly sized."""
    rng = np.random.default_rng(seed)
    body = trimesh.creation.capsule(height=1.1, radius=0.18 + 0.05 * rng.random())
    body.apply_translation([0, 0, 0.75])
    head = trimesh.creation.icosphere(subdivisions=2, radius=0.11).apply_translation([0, 0, 1.6])
    mesh = trimesh.util.concatenate([body, head])
    pts, _ = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return np.asarray(pts, dtype=np.float64) + np.asarray(offset)


def test_shapes_and_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = VisualEncoder(SMALL, engine="torch")
    x = cloud_to_sparse([_person(i) for i in range(3)], SMALL.voxel_size)
    emb, logits = net(x)
    assert emb.shape == (3, 24) and logits.shape == (3, 11)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert float(p.grad.abs().sum()) > 0, name


def test_deterministic_in_eval_and_across_same_seed_builds() -> None:
    clouds = [_person(i) for i in range(2)]
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        net = VisualEncoder(SMALL).eval()
        with torch.no_grad():
            outs.append(net(cloud_to_sparse(clouds, SMALL.voxel_size)))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    # and the batch is not mixed: one cloud alone gives its own row of the pair
    with torch.no_grad():
        alone = net(cloud_to_sparse(clouds[1:], SMALL.voxel_size))[0]
    assert torch.allclose(alone[0], outs[1][0][1], atol=1e-5)


def test_georeferenced_clouds_are_centred_before_float32() -> None:
    near = _person(5)
    far = near + np.array([5_000_000.0, 4_000_000.0, 250.0])
    a = cloud_to_sparse([near], 0.02)
    b = cloud_to_sparse([far], 0.02)
    assert torch.equal(a.coords, b.coords)
    assert torch.allclose(a.feats, b.feats, atol=1e-5)
    assert a.feats.dtype == torch.float32
    assert abs(float(a.feats.mean(0).abs().max())) < 0.05  # centred on the mean point


def test_batching_with_an_empty_cloud_and_custom_features() -> None:
    clouds = [_person(1, 500), np.zeros((0, 3)), _person(2, 400)]
    rgb = [np.ones((500, 3)), np.ones((0, 3)), np.zeros((400, 3))]
    x = cloud_to_sparse(clouds, 0.05, rgb)
    assert x.batch_size == 3 and set(x.coords[:, 0].tolist()) == {0, 2}
    first = x.feats[x.coords[:, 0] == 0]
    assert torch.equal(first, torch.ones_like(first))
    assert float(x.feats[x.coords[:, 0] == 2].abs().sum()) == 0
    net = VisualEncoder(SMALL).eval()
    with torch.no_grad():
        emb, _ = net(cloud_to_sparse(clouds, SMALL.voxel_size))
    assert emb.shape == (3, 24) and bool(torch.isfinite(emb).all())


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([np.zeros((4, 2))], 0.1), r"cloud 0 must be \[N, 3\], got \(4, 2\)"),
        (([], 0.1), "at least one cloud"),
        (([np.zeros((4, 3))], 0.1, [np.zeros((3, 1))]), r"features 0 must be \[4, C\]"),
        (([np.zeros((4, 3))], 0.1, []), "0 feature arrays for 1 clouds"),
    ],
)
def test_cloud_to_sparse_rejects_bad_shapes(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cloud_to_sparse(*args)


def test_encoder_rejects_wrong_input() -> None:
    net = VisualEncoder(SMALL)
    x = cloud_to_sparse([_person(0, 200)], 0.05, [np.zeros((200, 5))])
    with pytest.raises(ValueError, match=r"feats \[N, 3\] at stride 1, got \(\d+, 5\)"):
        net(x)
    with pytest.raises(ValueError, match="expects a SparseTensor"):
        net(torch.zeros(3, 3))


def test_config_is_json_primitives_and_validated() -> None:
    loaded = json.loads(json.dumps(SMALL.to_dict()))
    again = VisualConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in loaded.items()})
    assert again == SMALL
    for field in dataclasses.fields(VisualConfig):
        assert field.type in ("float", "int", "tuple[int, ...]"), field
    with pytest.raises(ValueError, match="blocks must hold one count"):
        VisualConfig(widths=(8, 16), blocks=(1,))
    with pytest.raises(ValueError, match="voxel_size"):
        VisualConfig(voxel_size=0)
