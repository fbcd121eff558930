"""The few Caffe-SSD protobuf messages the data stage writes, declared here at runtime.

Declaring them with ``descriptor_pb2`` (instead of shipping a ``caffe_pb2`` built by protoc)
means no Caffe install and no protoc build step.  Field names and numbers are the ones of
weiliu89's SSD ``caffe.proto`` (checked against brocolli-caffe 9.0.2's copy), so records
written with these classes are byte-compatible with what ``convert_annoset`` writes and what
the ``AnnotatedData`` layer reads.  A private descriptor pool keeps these definitions from
clashing with pycaffe's own ``caffe_pb2`` when both are imported in one process.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

# message -> [(field name, number, type, label, message/enum type name or None, default)]
_MESSAGES: dict[str, list[tuple]] = {
    "Datum": [
        ("channels", 1, _F.TYPE_INT32, _OPTIONAL, None, None),
        ("height", 2, _F.TYPE_INT32, _OPTIONAL, None, None),
        ("width", 3, _F.TYPE_INT32, _OPTIONAL, None, None),
        ("data", 4, _F.TYPE_BYTES, _OPTIONAL, None, None),
        ("label", 5, _F.TYPE_INT32, _OPTIONAL, None, None),
        ("float_data", 6, _F.TYPE_FLOAT, _REPEATED, None, None),
        ("encoded", 7, _F.TYPE_BOOL, _OPTIONAL, None, "false"),
    ],
    "LabelMapItem": [
        ("name", 1, _F.TYPE_STRING, _OPTIONAL, None, None),
        ("label", 2, _F.TYPE_INT32, _OPTIONAL, None, None),
        ("display_name", 3, _F.TYPE_STRING, _OPTIONAL, None, None),
    ],
    "LabelMap": [
        ("item", 1, _F.TYPE_MESSAGE, _REPEATED, ".caffe.LabelMapItem", None),
    ],
    "NormalizedBBox": [
        ("xmin", 1, _F.TYPE_FLOAT, _OPTIONAL, None, None),
        ("ymin", 2, _F.TYPE_FLOAT, _OPTIONAL, None, None),
        ("xmax", 3, _F.TYPE_FLOAT, _OPTIONAL, None, None),
        ("ymax", 4, _F.TYPE_FLOAT, _OPTIONAL, None, None),
        ("label", 5, _F.TYPE_INT32, _OPTIONAL, None, None),
        ("difficult", 6, _F.TYPE_BOOL, _OPTIONAL, None, None),
        ("score", 7, _F.TYPE_FLOAT, _OPTIONAL, None, None),
        ("size", 8, _F.TYPE_FLOAT, _OPTIONAL, None, None),
    ],
    "Annotation": [
        ("instance_id", 1, _F.TYPE_INT32, _OPTIONAL, None, "0"),
        ("bbox", 2, _F.TYPE_MESSAGE, _OPTIONAL, ".caffe.NormalizedBBox", None),
    ],
    "AnnotationGroup": [
        ("group_label", 1, _F.TYPE_INT32, _OPTIONAL, None, None),
        ("annotation", 2, _F.TYPE_MESSAGE, _REPEATED, ".caffe.Annotation", None),
    ],
    "AnnotatedDatum": [
        ("datum", 1, _F.TYPE_MESSAGE, _OPTIONAL, ".caffe.Datum", None),
        ("type", 2, _F.TYPE_ENUM, _OPTIONAL, ".caffe.AnnotatedDatum.AnnotationType", None),
        ("annotation_group", 3, _F.TYPE_MESSAGE, _REPEATED, ".caffe.AnnotationGroup", None),
    ],
}

#: ``AnnotatedDatum.AnnotationType.BBOX`` — the only annotation type SSD defines.
BBOX = 0


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name="harness_caffe_ssd.proto", package="caffe", syntax="proto2")
    for msg_name, fields in _MESSAGES.items():
        msg = fdp.message_type.add(name=msg_name)
        for name, number, ftype, label, type_name, default in fields:
            field = msg.field.add(name=name, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name
            if default is not None:
                field.default_value = default
        if msg_name == "AnnotatedDatum":
            enum = msg.enum_type.add(name="AnnotationType")
            enum.value.add(name="BBOX", number=BBOX)
    return fdp


def _build_classes() -> dict[str, type]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}")) for name in _MESSAGES}


_CLASSES = _build_classes()
Datum = _CLASSES["Datum"]
LabelMapItem = _CLASSES["LabelMapItem"]
LabelMap = _CLASSES["LabelMap"]
NormalizedBBox = _CLASSES["NormalizedBBox"]
Annotation = _CLASSES["Annotation"]
AnnotationGroup = _CLASSES["AnnotationGroup"]
AnnotatedDatum = _CLASSES["AnnotatedDatum"]

__all__ = [
    "BBOX",
    "AnnotatedDatum",
    "Annotation",
    "AnnotationGroup",
    "Datum",
    "LabelMap",
    "LabelMapItem",
    "NormalizedBBox",
]
