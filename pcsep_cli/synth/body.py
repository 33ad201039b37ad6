"""Human bodies from the ``anny`` body model, seated or standing, arms posed by inverse kinematics.

anny (NAVER, Apache-2.0 code, CC0 MakeHuman assets) is used with its own MakeHuman topology
(13,718 vertices): its SMPL/SMPL-X topologies carry a non-commercial licence and are never
loaded. The first use builds anny's model data (about 80 s, ~0.8 GB) under ``ANNY_CACHE_DIR``,
which defaults here to ``~/.cache/pcsep/anny``; later processes load it in well under a second.

A body's shape is a pure function of its ``body_id``. Posing uses anny's forward kinematics in
its ``local-ref`` parameterisation, where a bone's delta is a rotation in world axes composed
with its parent's: ``G_child = G_parent · D_child``, ``G`` being the bone's rotation from anny's
reference pose. Skinning is anny's linear blend skinning, done here with a sparse matrix
(a few ms for the whole mesh).

Body frame (every function here): metres, z up, floor at z = 0, the body faces -y, its left
hand is on +x, the pelvis is above the origin.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcsep_cli.errors import DatasetError
from pcsep_cli.synth.meshes import Mesh

ANNY_CACHE_ENV = "ANNY_CACHE_DIR"
REGIONS = ("head", "hand", "top", "legs", "shoe")


def anny_cache_dir() -> Path:
    """Where anny's model data is cached: ``$ANNY_CACHE_DIR``, else ``~/.cache/pcsep/anny``."""
    value = os.environ.get(ANNY_CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "pcsep" / "anny"


def rotation(axis: str | np.ndarray, degrees: float) -> np.ndarray:
    """The 3×3 rotation of ``degrees`` about ``"x"``, ``"y"``, ``"z"`` or a vector [3]."""
    if isinstance(axis, str):
        axis = np.eye(3)["xyz".index(axis)]
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-12)


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` to unit vector ``b``."""
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.clip(a @ b, -1, 1))
    if s < 1e-9:
        return np.eye(3) if c > 0 else rotation(np.cross(a, [1.0, 0.3, 0.1]), 180.0)
    return rotation(axis, np.degrees(np.arctan2(s, c)))


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """Hold an inter-process lock while anny builds or reads its cache: anny writes its cache
    files in place, so a second worker starting during the first build (dataset jobs on a
    fresh machine) would otherwise read a half-written file."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; builds there are rare enough
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class BodyModel:
    """anny loaded once per process, with what posing needs precomputed.

    Raises:
        DatasetError: anny is not installed.
    """

    def __init__(self) -> None:
        os.environ.setdefault(ANNY_CACHE_ENV, str(anny_cache_dir()))
        try:
            import anny
            import anny.paths
            import scipy.sparse
            import torch
        except ImportError as err:
            raise DatasetError(
                f"synthetic performers need the anny body model ({err})",
                hint="pip install 'pcsep[train]'",
            ) from err
        cache = anny_cache_dir()
        anny.paths.set_anny_cache_path(cache)
        self.torch = torch
        with _exclusive(cache / ".pcsep-build.lock"):
            # "anny" topology = MakeHuman mesh (CC0); "lbs" avoids anny's optional NVIDIA Warp.
            self.model = anny.Anny(rig="anny", topology="anny", skinning_method="lbs")
        self.labels: list[str] = list(self.model.bone_labels)
        self.parents: list[int] = [int(p) for p in self.model.bone_parents]
        self.index = {name: i for i, name in enumerate(self.labels)}
        self.faces = self.model.faces.numpy().astype(np.int64)
        weights = self.model.vertex_bone_weights.numpy()
        bones = self.model.vertex_bone_indices.numpy()
        n_vertices = len(weights)
        rows = np.repeat(np.arange(n_vertices), weights.shape[1])
        self.skin_matrix = scipy.sparse.csr_matrix(
            (weights.ravel(), (rows, bones.ravel())), shape=(n_vertices, len(self.labels))
        )
        dominant = [self.labels[i] for i in bones[np.arange(n_vertices), weights.argmax(1)]]
        self.region = np.array([_region(name) for name in dominant])
        self.order = np.argsort([_depth(self.parents, i) for i in range(len(self.labels))])
        rest = self.rest(None)
        self.anchor_ids = _anchor_vertices(
            rest["reference"], rest["heads"], self.index, self.region
        )
        v, heads = rest["reference"], rest["heads"]
        eye = (heads[self.index["eye.L"]] + heads[self.index["eye.R"]]) / 2
        head = self.region == "head"
        crown = head & (
            (v[:, 2] > eye[2] + 0.035) | ((v[:, 1] > eye[1] + 0.1) & (v[:, 2] > eye[2] - 0.03))
        )
        nape = head & (v[:, 1] > eye[1] + 0.07) & (v[:, 2] > eye[2] - 0.16)
        self._hair = {False: crown, True: crown | nape}
        self.region_code = np.array([REGIONS.index(r) for r in self.region])

    def hair_mask(self, long: bool) -> np.ndarray:
        """bool [V]: vertices under short (crown) or long (down to the nape) hair."""
        return self._hair[long]

    def phenotype(self, body_id: int | None) -> dict[str, float]:
        """anny phenotype parameters of ``body_id`` (None: the average adult)."""
        if body_id is None:
            return {
                "gender": 0.5,
                "age": 0.7,
                "muscle": 0.5,
                "weight": 0.5,
                "height": 0.5,
                "proportions": 0.5,
            }
        rng = np.random.default_rng([int(body_id), 0x616E6E79])
        return {
            "gender": float(rng.beta(0.6, 0.6)),
            "age": float(rng.uniform(0.56, 0.95)),
            "muscle": float(rng.uniform(0.15, 0.85)),
            "weight": float(np.clip(rng.normal(0.45, 0.17), 0.05, 0.95)),
            "height": float(rng.uniform(0.2, 0.8)),
            "proportions": float(rng.uniform(0.2, 0.8)),
        }

    def stature(self, body_id: int | None) -> float:
        """Standing height (m) of ``body_id``: adult statistics by sex (1.52–1.97 m)."""
        if body_id is None:
            return 1.70
        rng = np.random.default_rng([int(body_id), 0x68656967])
        male = 1.0 - self.phenotype(body_id)["gender"]  # anny: gender 0 = male
        mean, sd = 1.63 + 0.13 * male, 0.067
        return float(np.clip(rng.normal(mean, sd), 1.52, 1.97))

    def rest(self, body_id: int | None) -> dict[str, np.ndarray]:
        """Rest data of one body: its vertices and bone heads in anny's reference pose."""
        return _rest(self, body_id)

    def forward(self, body_id: int | None, world_rotations: dict[str, np.ndarray]):
        """Pose a body. Returns (skinning transforms [J, 4, 4], bone poses [J, 4, 4]).

        Args:
            body_id: the body.
            world_rotations: bone name → 3×3 rotation from the reference pose in world axes;
                unnamed bones follow their parent.
        """
        torch = self.torch
        n = len(self.labels)
        g = np.tile(np.eye(3), (n, 1, 1))
        deltas = np.tile(np.eye(4), (1, n, 1, 1))
        for i in self.order:
            p = self.parents[i]
            g[i] = world_rotations.get(self.labels[i], g[p] if p >= 0 else np.eye(3))
            if p >= 0:
                deltas[0, i, :3, :3] = g[p].T @ g[i]
        rest = _rest(self, body_id)
        with torch.inference_mode():
            transforms, poses = self.model.get_bone_transforms(
                torch.from_numpy(deltas), rest["rest_bone_poses"]
            )
        return transforms[0].numpy(), poses[0].numpy()

    def skin(self, body_id: int | None, transforms: np.ndarray, ids: np.ndarray | None = None):
        """Skinned vertices [V, 3] (or [len(ids), 3]) for transforms [J, 4, 4]."""
        vertices = self.rest(body_id)["vertices"]
        matrix = self.skin_matrix
        if ids is not None:
            vertices, matrix = vertices[ids], matrix[ids]
        blended = (matrix @ transforms[:, :3, :].reshape(len(transforms), 12)).reshape(-1, 3, 4)
        return np.einsum("vij,vj->vi", blended[:, :, :3], vertices) + blended[:, :, 3]


def _region(bone: str) -> str:
    if bone.startswith(("head", "neck", "eye")):
        return "head"
    if bone.startswith(("finger", "metacarpal", "wrist")):
        return "hand"
    if bone.startswith(("foot", "toe")):
        return "shoe"
    if bone.startswith(("upperleg", "lowerleg", "pelvis", "root")):
        return "legs"
    return "top"


def _depth(parents: list[int], i: int) -> int:
    d = 0
    while parents[i] >= 0:
        i, d = parents[i], d + 1
    return d


@functools.lru_cache(maxsize=1)
def body_model() -> BodyModel:
    """The process-wide :class:`BodyModel` (anny loads once)."""
    return BodyModel()


def rest_model(anny_model, coeffs) -> dict:
    """anny's ``get_rest_model`` for its default ("cached") bone orientations, with the
    per-bone nearest rotations taken by a numpy SVD: anny's Horn/torch path costs ~0.1 s per
    body on a CPU, this ~1 ms. Other configurations go to anny itself."""
    m = anny_model
    if m.bone_orientation != "cached" or m.rest_orientation_refiner is not None:
        return m.get_rest_model(coeffs)
    torch = __import__("torch")
    rest_vertices = m.get_rest_vertices(coeffs)
    heads = m.template_bone_heads[None] + torch.einsum(
        "cpd,bc->bpd", m.bone_heads_blendshapes, coeffs
    )
    cov = m.bone_template_orientation_matrices[None] + torch.einsum(
        "ba,akij->bkij", coeffs, m.bone_orientation_blendshapes
    )
    u, _, vt = np.linalg.svd(cov.numpy())
    flip = np.ones(u.shape[:-1])
    flip[..., -1] = np.sign(np.linalg.det(u @ vt))
    poses = np.zeros(cov.shape[:-2] + (4, 4))
    poses[..., :3, :3] = (u * flip[..., None, :]) @ vt
    poses[..., :3, 3] = heads.numpy()
    poses[..., 3, 3] = 1.0
    if m.root_identity_orientation:
        poses[:, 0, :3, :3] = np.eye(3)
    return {
        "rest_vertices": rest_vertices,
        "rest_bone_heads": heads,
        "rest_bone_poses": torch.from_numpy(poses),
    }


@functools.lru_cache(maxsize=64)
def _rest(model: BodyModel, body_id: int | None) -> dict:
    torch = model.torch
    n = len(model.labels)
    with torch.inference_mode():
        inputs = model.model.get_tensor_inputs(None, model.phenotype(body_id), None, None)
        coeffs = model.model._get_phenotype_blendshape_coefficients(*inputs[1:])
        rest = rest_model(model.model, coeffs)
        transforms, poses = model.model.get_bone_transforms(
            torch.eye(4, dtype=torch.float64).expand(1, n, 4, 4), rest["rest_bone_poses"]
        )
    transforms = transforms[0].numpy()
    rest_vertices = rest["rest_vertices"][0].numpy()
    blended = (model.skin_matrix @ transforms[:, :3, :].reshape(n, 12)).reshape(-1, 3, 4)
    reference = np.einsum("vij,vj->vi", blended[:, :, :3], rest_vertices) + blended[:, :, 3]
    # anny's height parameter spans children to giants; the stature is drawn from adult
    # statistics instead and the body scaled to it, keeping the phenotype's proportions.
    scale = model.stature(body_id) / float(np.ptp(reference[:, 2]))
    rest_bone_poses = rest["rest_bone_poses"].clone()
    rest_bone_poses[..., :3, 3] *= scale
    return {
        "vertices": rest_vertices * scale,
        "reference": reference * scale,
        "heads": poses[0, :, :3, 3].numpy() * scale,
        "rest_bone_poses": rest_bone_poses,
    }


def _anchor_vertices(rest_vertices, heads, index, region) -> dict[str, np.ndarray]:
    """Vertex ids of named surface points, chosen once on the average body (the same ids then
    mark the same anatomical point on every body)."""
    v = rest_vertices
    h = {name: heads[i] for name, i in index.items()}
    eye = (h["eye.L"] + h["eye.R"]) / 2
    mid = np.abs(v[:, 0]) < 0.008

    def front(mask: np.ndarray) -> np.ndarray:
        ids = np.flatnonzero(mask)
        return ids[np.argsort(v[ids, 1])[:1]]

    def near(point: np.ndarray, k: int = 1, mask: np.ndarray | None = None) -> np.ndarray:
        d = np.linalg.norm(v - point, axis=1)
        if mask is not None:
            d[~mask] = np.inf
        return np.argsort(d)[:k]

    shoulder_z = h["upperarm01.L"][2]
    ids = {
        "mouth": front(mid & (v[:, 2] > eye[2] - 0.075) & (v[:, 2] < eye[2] - 0.055)),
        "chin": front(mid & (v[:, 2] > eye[2] - 0.125) & (v[:, 2] < eye[2] - 0.1)),
        "sternum": front(mid & (v[:, 2] > shoulder_z - 0.09) & (v[:, 2] < shoulder_z - 0.06)),
        "belly": front(mid & (v[:, 2] > h["root"][2] + 0.08) & (v[:, 2] < h["root"][2] + 0.12)),
        "head_top": np.argsort(-v[:, 2])[:1],
        "soles": np.flatnonzero(v[:, 2] < v[:, 2].min() + 0.012),
        "buttocks": np.flatnonzero(
            (region == "legs")
            & (v[:, 2] < h["root"][2] + 0.02)
            & (v[:, 2] > h["root"][2] - 0.2)
            & (v[:, 1] > h["root"][1] + 0.02)
        ),
    }
    for side, sign in (("l", 1.0), ("r", -1.0)):
        s = side.upper()
        thigh = (h[f"upperleg01.{s}"] + h[f"lowerleg01.{s}"]) / 2
        near_x = np.abs(v[:, 0] - thigh[0]) < 0.03
        ids[f"lap_{side}"] = front(near_x & (np.abs(v[:, 2] - thigh[2]) < 0.02))
        knee = h[f"lowerleg01.{s}"]
        ids[f"knee_{side}"] = front(
            (np.abs(v[:, 0] - knee[0]) < 0.03) & (np.abs(v[:, 2] - knee[2]) < 0.02)
        )
        chin = v[ids["chin"][0]]
        ids[f"jaw_{side}"] = near(np.array([sign * 0.045, chin[1] + 0.045, chin[2] - 0.01]))
        clavicle = np.array([sign * 0.09, h["neck01"][1] - 0.02, shoulder_z + 0.06])
        ids[f"clav_{side}"] = near(clavicle, mask=region != "head")
    return ids


@dataclass
class Body:
    """A posed, grounded body.

    Attributes:
        vertices: float64 [V, 3] body frame.
        faces: int64 [F, 3].
        face_rgb: uint8 [F, 3].
        anchors: named points [3] (mouth, chin, sternum, belly, lap_l, knee_r, shoulder_l ...).
        stature: standing height of this body (m).
        seated: whether the body sits.
        seat_height: top of the seat under it (m), None when standing.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_rgb: np.ndarray
    anchors: dict[str, np.ndarray]
    stature: float
    seated: bool
    seat_height: float | None = None

    @property
    def mesh(self) -> Mesh:
        """The body as a :class:`Mesh`."""
        return Mesh(self.vertices, self.faces, self.face_rgb)


def stature(body_id: int) -> float:
    """Standing height (soles to crown, m) of body ``body_id`` in anny's reference pose."""
    z = body_model().rest(body_id)["reference"][:, 2]
    return float(np.ptp(z))


# --------------------------------------------------------------------------- posture

FORWARD, LEFT, UP = np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([0, 0, 1.0])


@dataclass
class Posture:
    """World rotations of the trunk, legs and head (arms are solved later), and their draw."""

    seated: bool
    rotations: dict[str, np.ndarray]


def posture(
    rng: np.random.Generator,
    seated: bool,
    *,
    spread: float | None = None,
    lean: float | None = None,
    head: tuple[float, float, float] = (0.0, 0.0, 0.0),
    left_foot_up: float = 0.0,
    bend_right: float = 0.0,
) -> Posture:
    """Trunk, legs and head of a standing or seated body.

    Args:
        rng: draws the small variations.
        seated: thighs forward, shins down, feet flat.
        spread: outward yaw of each thigh (degrees); drawn when None.
        lean: forward lean of the trunk (degrees); drawn when None.
        head: (nod down, tilt to the left, turn to the left) in degrees, added to a small draw.
        left_foot_up: degrees the left thigh is raised (a guitarist's footstool).
        bend_right: degrees the trunk bends sideways to the right (a bassist bowing).
    """
    rot: dict[str, np.ndarray] = {}
    if lean is None:
        lean = rng.uniform(-3, 12) if seated else rng.uniform(-3, 5)
    trunk = rotation("z", rng.uniform(-8, 8)) @ rotation("y", -bend_right) @ rotation("x", lean)
    rot["spine05"] = trunk
    nod, tilt, turn = head
    rot["neck01"] = (
        trunk
        @ rotation("z", turn + rng.uniform(-8, 8))
        @ rotation("y", -tilt + rng.uniform(-4, 4))
        @ rotation("x", nod - lean * 0.7 + rng.uniform(-5, 8))
    )
    if seated:
        spread = rng.uniform(6, 22) if spread is None else spread
        for side, sign in (("L", 1.0), ("R", -1.0)):
            yaw = rotation("z", sign * (spread + rng.uniform(-4, 4)))
            raise_ = left_foot_up if side == "L" else 0.0
            rot[f"upperleg01.{side}"] = yaw @ rotation("x", -90 + rng.uniform(-4, 8) + raise_)
            shin = rotation("x", rng.uniform(-12, 18) - raise_ * 0.5)
            rot[f"lowerleg01.{side}"] = yaw @ shin
            rot[f"foot.{side}"] = rotation("z", sign * spread * 0.6)
    else:
        stance = rng.uniform(-2, 4)  # degrees of hip abduction: feet about hip width apart
        for side, sign in (("L", 1.0), ("R", -1.0)):
            rot[f"upperleg01.{side}"] = rotation("y", -sign * stance) @ rotation(
                "x", rng.uniform(-3, 3)
            )
            rot[f"foot.{side}"] = rotation("z", sign * rng.uniform(0, 15))
    return Posture(seated, rot)


def solve_arm(
    model: BodyModel,
    body_id: int | None,
    side: str,
    poses: np.ndarray,
    parent_rotation: np.ndarray,
    target: np.ndarray,
    pole: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone IK: world rotations of the upper arm and forearm putting the palm at ``target``.

    The elbow swings towards ``pole`` (a direction); the bend stays in the plane the
    reference pose bends in, so the skinned elbow folds the way a real one does.
    """
    idx = model.index
    ref = model.rest(body_id)["heads"]
    ref_v = model.rest(body_id)["reference"]
    s_i, e_i, w_i = idx[f"upperarm01.{side}"], idx[f"lowerarm01.{side}"], idx[f"wrist.{side}"]
    k_i = idx[f"finger3-1.{side}"]
    shoulder = poses[s_i, :3, 3]
    u_ref = parent_rotation @ _unit(ref[e_i] - ref[s_i])
    f_ref = parent_rotation @ _unit(ref[w_i] - ref[e_i])
    upper = np.linalg.norm(ref[e_i] - ref[s_i])
    palm_ref = parent_rotation @ ((ref[k_i] - ref[w_i]) * 0.6)
    del ref_v
    fore_rot = np.eye(3)
    for _ in range(2):
        wrist_target = target - fore_rot @ palm_ref
        fore = np.linalg.norm(ref[w_i] - ref[e_i])
        offset = wrist_target - shoulder
        dist = float(np.clip(np.linalg.norm(offset), abs(upper - fore) + 0.02, upper + fore - 1e-3))
        direction = _unit(offset)
        p = _unit(pole - (pole @ direction) * direction)
        cos_a = (upper**2 + dist**2 - fore**2) / (2 * upper * dist)
        elbow = shoulder + upper * (cos_a * direction + np.sqrt(max(0.0, 1 - cos_a**2)) * p)
        wrist = shoulder + dist * direction
        u_new, f_new = _unit(elbow - shoulder), _unit(wrist - elbow)
        b_ref = _unit(f_ref - (f_ref @ u_ref) * u_ref)
        b_new = f_new - (f_new @ u_new) * u_new
        if np.linalg.norm(b_new) < 0.05:  # nearly straight: bend away from the elbow's pole
            b_new = b_new - 0.05 * p
        b_new = _unit(b_new)
        src = np.column_stack([u_ref, b_ref, np.cross(u_ref, b_ref)])
        dst = np.column_stack([u_new, b_new, np.cross(u_new, b_new)])
        upper_rot = dst @ src.T
        fore_rot = _align(_unit(upper_rot @ f_ref), f_new) @ upper_rot
    return upper_rot @ parent_rotation, fore_rot @ parent_rotation
