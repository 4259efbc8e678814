"""Blender (bpy) side of the ground-truth generator: render one posed-mesh job to PNG frames.

Runs inside the bpy environment only (`<bpy python> -m benchmarks.groundtruth.render JOB.npz OUTDIR`,
or as a script path); imports nothing but bpy, numpy and the standard library. The numpy side
(`benchmarks.groundtruth.scene`) writes the job: per-frame mesh vertices in the Y-up world, faces,
a clothing region per face, OpenCV cameras, image size and render settings. This script builds a
textured room, a clothed-looking body, a camera per frame, and writes `OUTDIR/frame_%05d.png`,
`OUTDIR/mask_%05d.png` for the requested mask frames (person alpha), and `OUTDIR/visibility.npz`
(per frame, per hand, per joint: the ray from the camera reaches that hand's own skin first).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

# Blender is Z up: a Y-up world point (x, y, z) is (x, -z, y) in Blender.
Y_UP_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

REGION_COLOURS = {  # linear RGB base colours per clothing region (index = region id)
    0: (0.62, 0.38, 0.27),  # skin
    1: (0.05, 0.16, 0.45),  # shirt
    2: (0.12, 0.10, 0.08),  # trousers
    3: (0.02, 0.02, 0.02),  # shoes
    4: (0.06, 0.035, 0.02),  # hair
}
REGION_ROUGHNESS = {0: 0.5, 1: 0.8, 2: 0.85, 3: 0.4, 4: 0.7}


def _reset_scene() -> bpy.types.Scene:
    """An empty scene."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def _principled(name: str, colour: tuple[float, float, float], roughness: float) -> bpy.types.Material:
    """A plain principled material."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    return mat


def _textured(name: str, kind: str, c1: tuple[float, float, float], c2: tuple[float, float, float],
              scale: float) -> bpy.types.Material:
    """A material whose colour is a procedural checker or noise texture, so trackers find features."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 0.8
    coord = nodes.new("ShaderNodeTexCoord")
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = scale * 3.0
    noise.inputs["Detail"].default_value = 6.0
    links.new(coord.outputs["Object"], noise.inputs["Vector"])
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (*c1, 1.0)
    ramp.color_ramp.elements[1].color = (*c2, 1.0)
    if kind == "checker":
        checker = nodes.new("ShaderNodeTexChecker")
        checker.inputs["Scale"].default_value = scale
        checker.inputs["Color1"].default_value = (*c1, 1.0)
        checker.inputs["Color2"].default_value = (*c2, 1.0)
        links.new(coord.outputs["Object"], checker.inputs["Vector"])
        mix = nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        mix.inputs["Factor"].default_value = 0.35
        links.new(checker.outputs["Color"], mix.inputs[6])
        links.new(noise.outputs["Color"], mix.inputs[7])
        links.new(mix.outputs[2], bsdf.inputs["Base Color"])
    else:
        links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
        links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _plane(name: str, size: tuple[float, float], location: tuple[float, float, float],
           rotation: tuple[float, float, float], material: bpy.types.Material) -> bpy.types.Object:
    """A rectangle of `size` metres placed in the Blender world."""
    bpy.ops.mesh.primitive_plane_add(size=1.0, location=location, rotation=rotation)
    obj = bpy.context.active_object
    obj.name = name
    obj.scale = (size[0], size[1], 1.0)
    bpy.ops.object.transform_apply(location=False, rotation=False, scale=True)  # texture space in metres
    obj.data.materials.append(material)
    return obj


def build_room(centre_xz: np.ndarray, half: float, height: float) -> list[bpy.types.Object]:
    """Textured floor (checker + noise) and four walls (noise, two tones) around `centre_xz` (Y-up x, z)."""
    cx, cy = float(centre_xz[0]), float(-centre_xz[1])  # Blender x, y
    floor = _textured("floor", "checker", (0.40, 0.37, 0.33), (0.10, 0.09, 0.08), 2.0)
    wall_a = _textured("wall_a", "noise", (0.70, 0.62, 0.48), (0.12, 0.16, 0.20), 1.5)
    wall_b = _textured("wall_b", "checker", (0.55, 0.50, 0.42), (0.22, 0.26, 0.30), 1.5)
    objs = [_plane("floor", (2 * half, 2 * half), (cx, cy, 0.0), (0.0, 0.0, 0.0), floor)]
    h2 = height / 2
    for k, (dx, dy, rz) in enumerate(((0, half, 0.0), (0, -half, np.pi), (half, 0, np.pi / 2),
                                      (-half, 0, -np.pi / 2))):
        objs.append(_plane(f"wall{k}", (2 * half, height), (cx + dx, cy + dy, h2), (np.pi / 2, 0.0, rz),
                           wall_a if k % 2 == 0 else wall_b))
    return objs


def build_body(vertices: np.ndarray, faces: np.ndarray, regions: np.ndarray) -> bpy.types.Object:
    """The body mesh with one material per clothing region, smooth shaded."""
    mesh = bpy.data.meshes.new("body")
    verts_b = vertices @ Y_UP_TO_BLENDER.T
    mesh.from_pydata(verts_b.tolist(), [], faces.tolist())
    for rid in sorted(REGION_COLOURS):
        mesh.materials.append(_principled(f"region{rid}", REGION_COLOURS[rid], REGION_ROUGHNESS[rid]))
    mesh.polygons.foreach_set("material_index", regions.astype(np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    mesh.update()
    obj = bpy.data.objects.new("body", mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def set_vertices(obj: bpy.types.Object, vertices: np.ndarray) -> None:
    """Move the body mesh to one frame's vertices (Y-up world)."""
    obj.data.vertices.foreach_set("co", (vertices @ Y_UP_TO_BLENDER.T).astype(np.float32).ravel())
    obj.data.update()


def build_lights(centre_xz: np.ndarray) -> None:
    """A sun, a large soft area light near the camera side and a grey world for fill."""
    scene = bpy.context.scene
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.45, 0.45, 0.5, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.6
    scene.world = world
    sun = bpy.data.lights.new("sun", "SUN")
    sun.energy = 2.5
    sun_obj = bpy.data.objects.new("sun", sun)
    sun_obj.rotation_euler = (np.radians(40), np.radians(10), np.radians(30))
    scene.collection.objects.link(sun_obj)
    area = bpy.data.lights.new("area", "AREA")
    area.energy = 250.0
    area.size = 4.0
    area_obj = bpy.data.objects.new("area", area)
    area_obj.location = (float(centre_xz[0]) + 2.0, float(-centre_xz[1]) - 2.0, 3.5)
    area_obj.rotation_euler = (np.radians(45), 0.0, np.radians(45))
    scene.collection.objects.link(area_obj)


def camera_matrix_world(r_w2c: np.ndarray, t_w2c: np.ndarray) -> np.ndarray:
    """Blender camera object matrix (4,4) for an OpenCV camera (x right, y down, z forward) in the Y-up world."""
    right, down, fwd = r_w2c[0], r_w2c[1], r_w2c[2]
    rot = Y_UP_TO_BLENDER @ np.stack([right, -down, -fwd], axis=1)
    centre = Y_UP_TO_BLENDER @ (-r_w2c.T @ t_w2c)
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = centre
    return out


def setup_render(width: int, height: int, samples: int, threads: int) -> None:
    """Cycles on the CPU at the job's size, few samples, OpenImageDenoise when built in."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = True
    scene.cycles.max_bounces = 2
    scene.cycles.diffuse_bounces = 1
    scene.cycles.glossy_bounces = 1
    scene.cycles.transmission_bounces = 0
    scene.cycles.transparent_max_bounces = 0
    scene.cycles.caustics_reflective = False
    scene.cycles.caustics_refractive = False
    scene.render.use_persistent_data = True
    scene.cycles.use_denoising = True
    try:  # the denoiser enum is filled at run time; a build without OIDN rejects the name
        scene.cycles.denoiser = "OPENIMAGEDENOISE"
        scene.cycles.denoising_prefilter = "FAST"
        scene.cycles.denoising_quality = "FAST"
    except TypeError:
        scene.cycles.use_denoising = False
    scene.render.threads_mode = "FIXED"
    scene.render.threads = threads
    scene.render.resolution_x = width
    scene.render.resolution_y = height
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.view_settings.view_transform = "Standard"


def hand_visibility(body: bpy.types.Object, cam_centre_b: np.ndarray, hand_joints: np.ndarray,
                    face_hand: np.ndarray) -> np.ndarray:
    """(2,16) bool: the first surface a ray from the camera centre towards each hand joint meets is that
    hand's own skin (face label 1 = left hand, 2 = right hand)."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    scene = bpy.context.scene
    out = np.zeros(hand_joints.shape[:2], dtype=bool)
    origin = cam_centre_b.tolist()
    for h in range(hand_joints.shape[0]):
        for k in range(hand_joints.shape[1]):
            target = Y_UP_TO_BLENDER @ hand_joints[h, k]
            direction = target - cam_centre_b
            dist = float(np.linalg.norm(direction))
            hit, _loc, _n, index, obj, _m = scene.ray_cast(depsgraph, origin, (direction / dist).tolist(),
                                                           distance=dist + 0.05)
            out[h, k] = (not hit) or (obj == body and int(face_hand[index]) == h + 1)
    return out


def render_job(job_path: Path, out_dir: Path) -> None:
    """Render every frame of a job file into `out_dir`."""
    job = np.load(job_path)
    verts = job["vertices"].astype(np.float64)
    r_w2c, t_w2c, k = job["R_w2c"], job["t_w2c"], job["K"]
    width, height = int(job["width"]), int(job["height"])
    mask_frames = set(int(f) for f in job["mask_frames"])
    out_dir.mkdir(parents=True, exist_ok=True)
    scene = _reset_scene()
    setup_render(width, height, int(job["samples"]), int(job["threads"]))
    room = build_room(job["room_centre"], float(job["room_half"]), 4.0)
    build_lights(job["room_centre"])
    body = build_body(verts[0], job["faces"], job["face_region"])
    cam_data = bpy.data.cameras.new("camera")
    cam_data.sensor_fit = "HORIZONTAL"
    cam_data.sensor_width = 36.0
    cam_data.lens = float(k[0, 0]) * 36.0 / width
    cam_data.shift_x = -(float(k[0, 2]) - width / 2) / width
    cam_data.shift_y = (float(k[1, 2]) - height / 2) / width
    cam_data.clip_start = 0.05
    cam_data.clip_end = 100.0
    cam = bpy.data.objects.new("camera", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    frames = verts.shape[0]
    vis = np.zeros((frames, 2, job["hand_joints"].shape[2]), dtype=bool)
    times = []
    for t in range(frames):
        start = time.perf_counter()
        set_vertices(body, verts[t])
        m = camera_matrix_world(r_w2c[t], t_w2c[t])
        cam.matrix_world = Matrix(m.tolist())
        bpy.context.view_layer.update()
        vis[t] = hand_visibility(body, m[:3, 3], job["hand_joints"][t], job["face_hand"])
        scene.render.filepath = str(out_dir / f"frame_{t:05d}.png")
        bpy.ops.render.render(write_still=True)
        if t in mask_frames:
            _render_mask(scene, room, out_dir / f"mask_{t:05d}.png")
        times.append(time.perf_counter() - start)
    np.savez(out_dir / "visibility.npz", hand_visible_joints=vis, seconds_per_frame=np.array(times))


def _render_mask(scene: bpy.types.Scene, room: list[bpy.types.Object], path: Path) -> None:
    """Render the person alone on a transparent film (alpha = person) at one sample, then restore."""
    samples, denoise = scene.cycles.samples, scene.cycles.use_denoising
    for obj in room:
        obj.hide_render = True
    scene.render.film_transparent = True
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    for obj in room:
        obj.hide_render = False
    scene.render.film_transparent = False
    scene.cycles.samples = samples
    scene.cycles.use_denoising = denoise


def main(argv: list[str]) -> int:
    """Command line: JOB.npz OUTDIR."""
    if len(argv) != 2:
        print("usage: <bpy python> -m benchmarks.groundtruth.render JOB.npz OUTDIR", file=sys.stderr)
        return 2
    render_job(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
