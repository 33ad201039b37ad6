"""Synthetic training data: 3D scenes of musicians (geometry) and their recordings (audio).

Submodules are imported on demand: the geometry half needs ``trimesh``, ``embreex`` and
``anny`` (the ``train`` extra), which ``import pcsep_cli.synth`` must not pull in.
"""

from __future__ import annotations
