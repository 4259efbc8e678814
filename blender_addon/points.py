"""The scene point cloud: a vertex-only mesh with a colour attribute, drawn as points by a geometry-nodes modifier."""

from __future__ import annotations

import bpy
import numpy as np

from .mathutil import YUP_TO_ZUP

COLOR_ATTRIBUTE = "Col"
_NODE_GROUP = "VidRig Points"


def build_point_cloud(
    name: str, points: np.ndarray, colors: np.ndarray, collection: bpy.types.Collection, radius: float = 0.01
) -> bpy.types.Object:
    """A mesh of the Y-up points (converted to Z-up) with their uint8 colours as a point colour attribute."""
    pts = (np.asarray(points, np.float64).reshape(-1, 3) @ YUP_TO_ZUP.T).astype(np.float32)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(pts))
    mesh.vertices.foreach_set("co", pts.ravel())
    rgba = np.ones((len(pts), 4), np.float32)
    rgba[:, :3] = np.asarray(colors, np.float32).reshape(-1, 3) / 255.0
    attr = mesh.color_attributes.new(COLOR_ATTRIBUTE, "BYTE_COLOR", "POINT")
    attr.data.foreach_set("color_srgb", rgba.ravel())
    mesh.color_attributes.active_color = attr
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    mod = obj.modifiers.new("Points", "NODES")
    mod.node_group = _points_node_group(radius)
    return obj


def _points_node_group(radius: float) -> bpy.types.NodeTree:
    """A geometry-nodes group turning mesh vertices into coloured points (made once per file)."""
    group = bpy.data.node_groups.get(_NODE_GROUP)
    if group is not None:
        return group
    group = bpy.data.node_groups.new(_NODE_GROUP, "GeometryNodeTree")
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    inp = nodes.new("NodeGroupInput")
    out = nodes.new("NodeGroupOutput")
    to_points = nodes.new("GeometryNodeMeshToPoints")
    to_points.inputs["Radius"].default_value = radius
    set_mat = nodes.new("GeometryNodeSetMaterial")
    set_mat.inputs["Material"].default_value = _points_material()
    links.new(inp.outputs[0], to_points.inputs["Mesh"])
    links.new(to_points.outputs["Points"], set_mat.inputs["Geometry"])
    links.new(set_mat.outputs["Geometry"], out.inputs[0])
    return group


def _points_material() -> bpy.types.Material:
    """An emissive material reading the point colour attribute."""
    mat = bpy.data.materials.get(_NODE_GROUP) or bpy.data.materials.new(_NODE_GROUP)
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True  # always on from Blender 5.0
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    attr = nodes.new("ShaderNodeAttribute")
    attr.attribute_name = COLOR_ATTRIBUTE
    emit = nodes.new("ShaderNodeEmission")
    out = nodes.new("ShaderNodeOutputMaterial")
    links.new(attr.outputs["Color"], emit.inputs["Color"])
    links.new(emit.outputs["Emission"], out.inputs["Surface"])
    return mat
