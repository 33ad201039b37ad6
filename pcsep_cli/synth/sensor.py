"""What a depth camera or LiDAR sees of a scene from one viewpoint.

Rays leave the sensor on an equal-angle grid (``SensorSpec.resolution_deg`` apart, like a
scanning LiDAR or a ToF camera's pixels) over the window that holds the scene's objects, and
are cast with Embree (``embreex``; trimesh's pure-numpy caster is the fallback, ~200× slower).
The floor and the room's walls are planes intersected analytically, so they cost nothing per
triangle and occlude what lies behind them.

Each return then goes through what real sensors do to it:

* range noise along the ray, σ(d) = σ0 + k·(d − 0.5 m)² (σ0 ≈ 1–2 mm, k ≈ 2 mm/m²: the
  quadratic law of structured-light and ToF cameras),
* grazing-angle dropout: past an incidence angle θ0 (60–75°) the chance of a return falls
  linearly to 0 at 90°,
* mixed ("flying") pixels on depth edges, as time-of-flight cameras return them,
* random dropout, and extra dropout on dark surfaces far away (they send little light back),
* colour: the surface's colour under a light at the sensor, with noise.

:func:`sample_surface` is the alternative without any of that: points spread evenly over every
surface, occluded or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcsep_cli.synth.meshes import Mesh


@dataclass(frozen=True)
class SensorSpec:
    """One sensor's characteristics.

    Attributes:
        resolution_deg: angle between neighbouring rays (0.1° ≈ 1.7 mm per metre of range,
            about a Kinect-class ToF camera: 5k–40k points on a person 2–6 m away).
        sigma0: range noise at 0.5 m (m).
        quadratic: growth of the range noise (m per m²).
        grazing_deg: incidence angle where grazing dropout starts.
        dropout: chance that any return is lost.
        dark_dropout: extra loss on a black surface at ``max_range``.
        max_range: farthest return (m).
        flying: chance that a pixel on a depth edge returns a mixed range between the two
            surfaces (time-of-flight cameras; 0 for a scanning LiDAR).
        rgb: whether colours are measured (else black).
    """

    resolution_deg: float = 0.1
    sigma0: float = 0.0015
    quadratic: float = 0.002
    grazing_deg: float = 70.0
    dropout: float = 0.02
    dark_dropout: float = 0.25
    max_range: float = 12.0
    flying: float = 0.0
    rgb: bool = True

    def __post_init__(self) -> None:
        if not 0.01 <= self.resolution_deg <= 5.0:
            raise ValueError(f"resolution_deg must be in [0.01, 5], got {self.resolution_deg}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.dark_dropout <= 1.0:
            raise ValueError("dropout and dark_dropout are probabilities below 1")

    @staticmethod
    def draw(rng: np.random.Generator, resolution_deg: float = 0.1) -> SensorSpec:
        """A sensor with noise, dropout and grazing limits drawn in their usual ranges."""
        return SensorSpec(
            resolution_deg=resolution_deg,
            sigma0=float(rng.uniform(0.001, 0.002)),
            quadratic=float(rng.uniform(0.0015, 0.0025)),
            grazing_deg=float(rng.uniform(60.0, 75.0)),
            dropout=float(rng.uniform(0.0, 0.05)),
            dark_dropout=float(rng.uniform(0.1, 0.4)),
            flying=float(rng.choice([0.0, rng.uniform(0.05, 0.3)])),
        )

    def noise_sigma(self, distance: np.ndarray) -> np.ndarray:
        """Range noise σ (m) at ``distance`` [N] (m)."""
        return self.sigma0 + self.quadratic * (np.asarray(distance) - 0.5) ** 2


@dataclass(frozen=True)
class Room:
    """The floor (z = 0) and, optionally, the walls and ceiling of a box room.

    Attributes:
        lo, hi: [3] corners of the box; ``hi[2]`` is the ceiling. None: floor only.
        floor_rgb, wall_rgb: colours.
    """

    lo: np.ndarray | None
    hi: np.ndarray | None
    floor_rgb: tuple[int, int, int] = (150, 120, 90)
    wall_rgb: tuple[int, int, int] = (200, 200, 195)


@dataclass
class Returns:
    """Points measured by a sensor.

    Attributes:
        xyz: float64 [N, 3].
        rgb: uint8 [N, 3].
        object_index: int32 [N]: index of the object hit, -1 for floor, walls, ceiling.
        distance: float64 [N]: true range before noise (m).
    """

    xyz: np.ndarray
    rgb: np.ndarray
    object_index: np.ndarray
    distance: np.ndarray


def _embree_hits(mesh: Mesh, origin: np.ndarray, dirs: np.ndarray):
    """(distance [R] (inf = miss), face [R], geometric normal [R, 3]) of the first hits."""
    n = len(dirs)
    if len(mesh.faces) == 0:
        return np.full(n, np.inf), np.full(n, -1), np.zeros((n, 3))
    try:
        from embreex import rtcore_scene
        from embreex.mesh_construction import TriangleMesh
    except ImportError:
        return _trimesh_hits(mesh, origin, dirs)
    scene = rtcore_scene.EmbreeScene()
    # Embree works in float32: centre on the sensor so that coordinates stay small.
    TriangleMesh(
        scene=scene,
        vertices=(mesh.vertices - origin).astype(np.float32),
        indices=mesh.faces.astype(np.int32),
    )
    out = scene.run(np.zeros((n, 3), np.float32), dirs.astype(np.float32), output=1)
    face = out["primID"].astype(np.int64)
    hit = face >= 0
    dist = np.where(hit, out["tfar"].astype(np.float64), np.inf)
    return dist, face, out["Ng"].astype(np.float64)


def _trimesh_hits(mesh: Mesh, origin: np.ndarray, dirs: np.ndarray):
    import trimesh

    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    caster = trimesh.ray.ray_triangle.RayMeshIntersector(tm)
    n = len(dirs)
    loc, ray, face = caster.intersects_location(np.tile(origin, (n, 1)), dirs, multiple_hits=False)
    dist, faces = np.full(n, np.inf), np.full(n, -1)
    dist[ray] = np.linalg.norm(loc - origin, axis=1)
    faces[ray] = face
    return dist, faces, tm.face_normals[np.maximum(faces, 0)]


def _room_hits(room: Room, origin: np.ndarray, dirs: np.ndarray):
    """(distance [R], plane [R]) where rays leave the room: plane 0 is the floor, 1–4 the
    walls (-x, +x, -y, +y), 5 the ceiling; rays that never do get inf."""
    n = len(dirs)
    t = np.full((n, 6), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        down = dirs[:, 2] < 0
        t[down, 0] = -origin[2] / dirs[down, 2]
        if room.lo is not None and room.hi is not None:
            for axis in range(2):
                d = dirs[:, axis]
                t[:, 1 + 2 * axis] = np.where(d < 0, (room.lo[axis] - origin[axis]) / d, np.inf)
                t[:, 2 + 2 * axis] = np.where(d > 0, (room.hi[axis] - origin[axis]) / d, np.inf)
            up = dirs[:, 2] > 0
            t[up, 5] = (room.hi[2] - origin[2]) / dirs[up, 2]
    plane = np.argmin(t, 1)
    return t[np.arange(n), plane], plane


_PLANE_NORMALS = np.array(
    [[0, 0, 1], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, -1]], np.float64
)


def _flying_pixels(
    rng: np.random.Generator, dist: np.ndarray, shape: tuple[int, int], chance: float
) -> np.ndarray:
    """Mixed pixels of time-of-flight cameras: a pixel across a depth edge averages the two
    surfaces and returns a range between them. Each ray [R] next to a jump of more than
    5 cm + 3% gets, with probability ``chance``, a range drawn between its own and its
    neighbour's (the label stays its own surface's)."""
    grid = dist.reshape(shape)
    finite = np.isfinite(grid)
    filled = np.where(finite, grid, 0.0)  # misses never mix: they send nothing back
    other = np.zeros(shape)
    jump = np.zeros(shape)
    for axis in (0, 1):
        for step in (1, -1):
            nb = np.roll(filled, step, axis)
            valid = finite & np.roll(finite, step, axis)
            edge = [slice(None)] * 2
            edge[axis] = 0 if step == 1 else -1  # np.roll wraps around: not a neighbour
            valid[tuple(edge)] = False
            size = np.where(valid, np.abs(nb - filled), 0.0)
            better = size > jump
            jump = np.where(better, size, jump)
            other = np.where(better, nb, other)
    mixed = (jump > 0.05 + 0.03 * filled) & (rng.random(shape) < chance)
    out = grid.copy()
    u = rng.random(int(mixed.sum()))
    out[mixed] = grid[mixed] + u * (other[mixed] - grid[mixed])
    return out.ravel()


def _object_rays(
    mesh: Mesh, face_object: np.ndarray, origin: np.ndarray, dirs: np.ndarray
) -> np.ndarray:
    """Indices of the rays [R, 3] that fall in the azimuth/elevation box of some object."""
    if len(mesh.faces) == 0:
        return np.zeros(0, np.int64)
    ray_az = np.arctan2(dirs[:, 1], dirs[:, 0])
    ray_el = np.arcsin(np.clip(dirs[:, 2], -1, 1))
    inside = np.zeros(len(dirs), bool)
    vertex_object = np.full(len(mesh.vertices), -1)
    vertex_object[mesh.faces.ravel()] = np.repeat(face_object, 3)
    rel = mesh.vertices - origin
    az = np.arctan2(rel[:, 1], rel[:, 0])
    el = np.arctan2(rel[:, 2], np.linalg.norm(rel[:, :2], axis=1))
    pad = np.deg2rad(1.0)
    for k in np.unique(vertex_object[vertex_object >= 0]):
        a, e = az[vertex_object == k], el[vertex_object == k]
        centre = np.angle(np.exp(1j * a).mean())
        da = (a - centre + np.pi) % (2 * np.pi) - np.pi
        ray_da = (ray_az - centre + np.pi) % (2 * np.pi) - np.pi
        inside |= (
            (ray_da >= da.min() - pad)
            & (ray_da <= da.max() + pad)
            & (ray_el >= e.min() - pad)
            & (ray_el <= e.max() + pad)
        )
    return np.flatnonzero(inside)


def ray_grid(
    origin: np.ndarray,
    target: np.ndarray,
    points: np.ndarray,
    resolution_deg: float,
    margin_deg: float = 4.0,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Unit ray directions [R, 3] on an azimuth/elevation grid covering ``points`` [P, 3] seen
    from ``origin`` [3], centred on the direction of ``target`` [3], and the grid's
    (rows, columns): ray ``i`` is pixel ``divmod(i, columns)``, rows going up."""
    rel = points - origin
    az0 = np.arctan2(*(target - origin)[[1, 0]])
    az = (np.arctan2(rel[:, 1], rel[:, 0]) - az0 + np.pi) % (2 * np.pi) - np.pi
    el = np.arctan2(rel[:, 2], np.linalg.norm(rel[:, :2], axis=1))
    step, margin = np.deg2rad(resolution_deg), np.deg2rad(margin_deg)
    az_range = np.arange(az.min() - margin, az.max() + margin, step) + az0
    el_range = np.arange(max(el.min() - margin, -1.45), min(el.max() + margin, 1.45), step)
    a, e = np.meshgrid(az_range, el_range)
    shape = a.shape
    a, e = a.ravel(), e.ravel()
    return np.column_stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)]), shape


def scan(
    rng: np.random.Generator,
    mesh: Mesh,
    face_object: np.ndarray,
    room: Room,
    origin: np.ndarray,
    target: np.ndarray,
    spec: SensorSpec,
    crop: tuple[np.ndarray, np.ndarray] | None = None,
) -> Returns:
    """Scan ``mesh`` and the room from ``origin`` looking at ``target``.

    Args:
        rng: draws noise and dropout.
        mesh: every object of the scene, one mesh.
        face_object: int32 [F]: object index of each face of ``mesh``.
        room: floor and walls.
        origin, target: [3] sensor position and the point it looks at.
        spec: the sensor.
        crop: (lo [3], hi [3]) box outside of which floor and wall returns are dropped
            (objects are always kept).

    Returns:
        The returns, in world coordinates.

    Raises:
        ValueError: shapes that do not match.
    """
    origin, target = np.asarray(origin, float), np.asarray(target, float)
    if origin.shape != (3,) or target.shape != (3,):
        raise ValueError(f"origin and target must be [3], got {origin.shape} and {target.shape}")
    if len(face_object) != len(mesh.faces):
        raise ValueError(f"face_object has {len(face_object)} entries for {len(mesh.faces)} faces")
    # The sensor frames the objects (a margin around them shows the floor and walls).
    extent = mesh.vertices if len(mesh.vertices) else target[None]
    dirs, shape = ray_grid(origin, target, extent, spec.resolution_deg)
    d_mesh = np.full(len(dirs), np.inf)
    face = np.full(len(dirs), -1)
    normal_mesh = np.zeros((len(dirs), 3))
    # Only rays inside an object's angular box can hit a mesh: Embree gets those alone.
    near = _object_rays(mesh, face_object, origin, dirs)
    d_mesh[near], face[near], normal_mesh[near] = _embree_hits(mesh, origin, dirs[near])
    d_room, plane = _room_hits(room, origin, dirs)
    dist = np.minimum(d_mesh, d_room)
    on_mesh_all = d_mesh <= d_room
    if spec.flying > 0:
        dist = _flying_pixels(rng, dist, shape, spec.flying)
    # Dropout first (random, then by the grazing angle), so later work is on kept rays only.
    alive = np.flatnonzero(
        np.isfinite(dist)
        & (dist <= spec.max_range)
        & (dist > 0.05)
        & (rng.random(len(dist)) >= spec.dropout)
    )
    dirs, dist = dirs[alive], dist[alive]
    on_mesh = on_mesh_all[alive]
    face, plane = face[alive], plane[alive]
    normal = np.where(on_mesh[:, None], normal_mesh[alive], _PLANE_NORMALS[plane])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    cos_inc = np.abs(np.einsum("ij,ij->i", dirs, normal))
    incidence = np.degrees(np.arccos(np.clip(cos_inc, 0.0, 1.0)))
    p_grazing = np.clip((incidence - spec.grazing_deg) / (90.0 - spec.grazing_deg), 0.0, 1.0)
    surface = np.where(plane[:, None] == 0, room.floor_rgb, room.wall_rgb).astype(np.float64)
    if len(mesh.faces):
        surface[on_mesh] = mesh.face_rgb[face[on_mesh]]
    luminance = surface @ np.array([0.299, 0.587, 0.114]) / 255.0
    p_dark = spec.dark_dropout * (1.0 - luminance) ** 4 * np.clip(dist / spec.max_range, 0, 1)
    keep = rng.random(len(dist)) >= 1.0 - (1.0 - p_grazing) * (1.0 - p_dark)
    measured = dist + rng.normal(0.0, 1.0, len(dist)) * spec.noise_sigma(dist)
    xyz = origin + dirs * measured[:, None]
    obj = np.where(on_mesh, face_object[np.maximum(face, 0)] if len(face_object) else -1, -1)
    if crop is not None:
        inside = np.all((xyz >= crop[0]) & (xyz <= crop[1]), axis=1)
        keep &= inside | on_mesh
    if spec.rgb:
        shade = 0.55 + 0.45 * cos_inc[keep]
        noise = rng.normal(0, 4.0, (int(keep.sum()), 3))
        rgb = np.clip(surface[keep] * shade[:, None] + noise, 0, 255).astype(np.uint8)
    else:
        rgb = np.zeros((int(keep.sum()), 3), np.uint8)
    return Returns(xyz[keep], rgb, obj[keep].astype(np.int32), dist[keep])


def sample_surface(
    rng: np.random.Generator,
    mesh: Mesh,
    face_object: np.ndarray,
    density: float,
    room: Room | None = None,
    crop: tuple[np.ndarray, np.ndarray] | None = None,
) -> Returns:
    """Points spread evenly over every face of ``mesh`` (and the floor inside ``crop``),
    without occlusion or sensor effects.

    Args:
        rng: seeds the sampling.
        mesh: the scene's objects.
        face_object: int32 [F] object index of each face.
        density: points per square metre.
        room: adds floor points (colour from it) when given together with ``crop``.
        crop: (lo [3], hi [3]) extent of the floor to sample.

    Returns:
        The points; ``distance`` is zero.
    """
    import trimesh

    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    count = max(1, int(round(tm.area * density)))
    xyz, face = trimesh.sample.sample_surface(tm, count, seed=int(rng.integers(2**31)))
    rgb = mesh.face_rgb[face]
    obj = face_object[face].astype(np.int32)
    if room is not None and crop is not None:
        lo, hi = crop
        n_floor = int((hi[0] - lo[0]) * (hi[1] - lo[1]) * density)
        floor = np.column_stack(
            [
                rng.uniform(lo[0], hi[0], n_floor),
                rng.uniform(lo[1], hi[1], n_floor),
                np.zeros(n_floor),
            ]
        )
        xyz = np.vstack([xyz, floor])
        rgb = np.vstack([rgb, np.tile(np.asarray(room.floor_rgb, np.uint8), (n_floor, 1))])
        obj = np.concatenate([obj, np.full(n_floor, -1, np.int32)])
    return Returns(np.asarray(xyz, np.float64), rgb.astype(np.uint8), obj, np.zeros(len(xyz)))
