"""weiliu89's SSD ``caffe.proto`` (``ssd`` branch), as far as the rendered files use it, built at runtime.

The paper's Caffe is not buildable on these machines (no GitHub), yet the files the GPU image feeds
it must parse there. So the messages the SSD templates write are declared here with weiliu89's field
names and numbers (like ``harness.data.caffe_proto`` does for ``AnnotatedDatum``), and
:func:`parse_with_weiliu89_schema` parses rendered files strictly: an unknown field, a wrong type or
an unknown enum value fails, as it would in Caffe's own ``ReadProtoFromTextFile``.

Where the numbers come from: the standard Caffe messages and the SSD messages both forks share have
the numbers of brocolli-caffe 9.0.2's copy (tests/test_render_weiliu89.py checks this table against
that file when the CPU build is there); the fields only weiliu89 has (``WEILIU89_ONLY``) were read
from weiliu89/caffe ``ssd``-branch sources and their published derivatives (docs/caffe.md), except
``show_per_class_result``'s number (44), which could not be re-read here. Text-format parsing, the
use made of this schema, depends on names, types and enum values only, not on field numbers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Union

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

PACKAGE = "weiliu89"
PathLike = Union[str, Path]

# message -> fields, each "[repeated] TYPE NAME NUMBER"; TYPE is a scalar, a message or an enum here.
MESSAGES: dict[str, list[str]] = {
    "BlobShape": ["repeated int64 dim 1"],
    "NetStateRule": ["Phase phase 1", "int32 min_level 2", "int32 max_level 3",
                     "repeated string stage 4", "repeated string not_stage 5"],
    "ParamSpec": ["string name 1", "float lr_mult 3", "float decay_mult 4"],
    "FillerParameter": ["string type 1", "float value 2", "float min 3", "float max 4", "float mean 5",
                        "float std 6", "int32 sparse 7"],
    "ConvolutionParameter": ["uint32 num_output 1", "bool bias_term 2", "repeated uint32 pad 3",
                             "repeated uint32 kernel_size 4", "uint32 group 5", "repeated uint32 stride 6",
                             "FillerParameter weight_filler 7", "FillerParameter bias_filler 8",
                             "repeated uint32 dilation 18"],
    "PoolingParameter": ["PoolMethod pool 1", "uint32 kernel_size 2", "uint32 stride 3", "uint32 pad 4",
                         "bool global_pooling 12"],
    "DataParameter": ["string source 1", "uint32 batch_size 4", "DB backend 8"],
    "ConcatParameter": ["uint32 concat_dim 1", "int32 axis 2"],
    "FlattenParameter": ["int32 axis 1", "int32 end_axis 2"],
    "InputParameter": ["repeated BlobShape shape 1"],
    "ReshapeParameter": ["BlobShape shape 1", "int32 axis 2", "int32 num_axes 3"],
    "SoftmaxParameter": ["int32 axis 2"],
    "LossParameter": ["int32 ignore_label 1", "bool normalize 2", "NormalizationMode normalization 3"],
    "TransformationParameter": ["float scale 1", "bool mirror 2", "uint32 crop_size 3", "string mean_file 4",
                                "repeated float mean_value 5", "bool force_color 6", "bool force_gray 7",
                                "ResizeParameter resize_param 8", "EmitConstraint emit_constraint 10",
                                "uint32 crop_h 11", "uint32 crop_w 12",
                                "DistortionParameter distort_param 13", "ExpansionParameter expand_param 14"],
    "ResizeParameter": ["float prob 1", "Resize_mode resize_mode 2", "uint32 height 3", "uint32 width 4",
                        "Pad_mode pad_mode 5", "repeated float pad_value 6",
                        "repeated Interp_mode interp_mode 7", "uint32 height_scale 8", "uint32 width_scale 9"],
    "DistortionParameter": ["float brightness_prob 1", "float brightness_delta 2", "float contrast_prob 3",
                            "float contrast_lower 4", "float contrast_upper 5", "float hue_prob 6",
                            "float hue_delta 7", "float saturation_prob 8", "float saturation_lower 9",
                            "float saturation_upper 10", "float random_order_prob 11"],
    "ExpansionParameter": ["float prob 1", "float max_expand_ratio 2"],
    "EmitConstraint": ["EmitType emit_type 1", "float emit_overlap 2"],
    "Sampler": ["float min_scale 1", "float max_scale 2", "float min_aspect_ratio 3", "float max_aspect_ratio 4"],
    "SampleConstraint": ["float min_jaccard_overlap 1", "float max_jaccard_overlap 2",
                         "float min_sample_coverage 3", "float max_sample_coverage 4",
                         "float min_object_coverage 5", "float max_object_coverage 6"],
    "BatchSampler": ["bool use_original_image 1", "Sampler sampler 2", "SampleConstraint sample_constraint 3",
                     "uint32 max_sample 4", "uint32 max_trials 5"],
    "AnnotatedDataParameter": ["repeated BatchSampler batch_sampler 1", "string label_map_file 2",
                               "AnnotationType anno_type 3"],
    "MultiBoxLossParameter": ["LocLossType loc_loss_type 1", "ConfLossType conf_loss_type 2",
                              "float loc_weight 3", "uint32 num_classes 4", "bool share_location 5",
                              "MatchType match_type 6", "float overlap_threshold 7",
                              "bool use_prior_for_matching 8", "uint32 background_label_id 9",
                              "bool use_difficult_gt 10", "bool do_neg_mining 11", "float neg_pos_ratio 12",
                              "float neg_overlap 13", "CodeType code_type 14",
                              "bool encode_variance_in_target 16", "bool map_object_to_agnostic 17",
                              "bool ignore_cross_boundary_bbox 18", "bool bp_inside 19",
                              "MiningType mining_type 20"],
    "PermuteParameter": ["repeated uint32 order 1"],
    "PriorBoxParameter": ["repeated float min_size 1", "repeated float max_size 2",
                          "repeated float aspect_ratio 3", "bool flip 4", "bool clip 5",
                          "repeated float variance 6", "uint32 img_size 7", "uint32 img_h 8", "uint32 img_w 9",
                          "float step 10", "float step_h 11", "float step_w 12", "float offset 13"],
    "NonMaximumSuppressionParameter": ["float nms_threshold 1", "int32 top_k 2", "float eta 3"],
    "SaveOutputParameter": ["string output_directory 1", "string output_name_prefix 2", "string output_format 3",
                            "string label_map_file 4", "string name_size_file 5", "uint32 num_test_image 6",
                            "ResizeParameter resize_param 7"],
    "DetectionOutputParameter": ["uint32 num_classes 1", "bool share_location 2", "int32 background_label_id 3",
                                 "NonMaximumSuppressionParameter nms_param 4",
                                 "SaveOutputParameter save_output_param 5", "CodeType code_type 6",
                                 "int32 keep_top_k 7", "bool variance_encoded_in_target 8",
                                 "float confidence_threshold 9", "bool visualize 10",
                                 "float visualize_threshold 11"],
    "DetectionEvaluateParameter": ["uint32 num_classes 1", "uint32 background_label_id 2",
                                   "float overlap_threshold 3", "bool evaluate_difficult_gt 4",
                                   "string name_size_file 5"],
    "NormalizeParameter": ["bool across_spatial 1", "FillerParameter scale_filler 2", "bool channel_shared 3",
                           "float eps 4"],
    "LayerParameter": ["string name 1", "string type 2", "repeated string bottom 3", "repeated string top 4",
                       "repeated float loss_weight 5", "repeated ParamSpec param 6", "repeated NetStateRule include 8",
                       "repeated NetStateRule exclude 9", "repeated bool propagate_down 11",
                       "TransformationParameter transform_param 100", "LossParameter loss_param 101",
                       "ConcatParameter concat_param 104", "ConvolutionParameter convolution_param 106",
                       "DataParameter data_param 107", "PoolingParameter pooling_param 121",
                       "SoftmaxParameter softmax_param 125", "ReshapeParameter reshape_param 133",
                       "FlattenParameter flatten_param 135", "InputParameter input_param 143",
                       "AnnotatedDataParameter annotated_data_param 200",
                       "MultiBoxLossParameter multibox_loss_param 201", "PermuteParameter permute_param 202",
                       "PriorBoxParameter prior_box_param 203", "DetectionOutputParameter detection_output_param 204",
                       "DetectionEvaluateParameter detection_evaluate_param 205", "NormalizeParameter norm_param 206"],
    "NetParameter": ["string name 1", "repeated LayerParameter layer 100"],
    "SolverParameter": ["string train_net 1", "repeated string test_net 2", "repeated int32 test_iter 3",
                        "int32 test_interval 4", "float base_lr 5", "int32 display 6", "int32 max_iter 7",
                        "string lr_policy 8", "float gamma 9", "float power 10", "float momentum 11",
                        "float weight_decay 12", "int32 stepsize 13", "int32 snapshot 14",
                        "string snapshot_prefix 15", "SolverMode solver_mode 17", "int32 device_id 18",
                        "int64 random_seed 20", "bool debug_info 23", "string net 24",
                        "bool snapshot_after_train 28", "bool test_initialization 32", "int32 average_loss 33",
                        "repeated int32 stepvalue 34", "int32 iter_size 36", "string type 40",
                        "string eval_type 41", "string ap_version 42", "bool show_per_class_result 44"],
    "LabelMapItem": ["string name 1", "int32 label 2", "string display_name 3"],
    "LabelMap": ["repeated LabelMapItem item 1"],
}

# Enums by "Owner.Name" (nested, as in caffe.proto: proto2 enum values share their parent's scope,
# so two top-level enums could not both have NONE) or "Name" (top level). Fields use the short name.
ENUMS: dict[str, dict[str, int]] = {
    "Phase": {"TRAIN": 0, "TEST": 1},
    "AnnotationType": {"BBOX": 0},
    "PoolingParameter.PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2},
    "DataParameter.DB": {"LEVELDB": 0, "LMDB": 1},
    "LossParameter.NormalizationMode": {"FULL": 0, "VALID": 1, "BATCH_SIZE": 2, "NONE": 3},
    "ResizeParameter.Resize_mode": {"WARP": 1, "FIT_SMALL_SIZE": 2, "FIT_LARGE_SIZE_AND_PAD": 3},
    "ResizeParameter.Pad_mode": {"CONSTANT": 1, "MIRRORED": 2, "REPEAT_NEAREST": 3},
    "ResizeParameter.Interp_mode": {"LINEAR": 1, "AREA": 2, "NEAREST": 3, "CUBIC": 4, "LANCZOS4": 5},
    "EmitConstraint.EmitType": {"CENTER": 0, "MIN_OVERLAP": 1},
    "MultiBoxLossParameter.LocLossType": {"L2": 0, "SMOOTH_L1": 1},
    "MultiBoxLossParameter.ConfLossType": {"SOFTMAX": 0, "LOGISTIC": 1},
    "MultiBoxLossParameter.MatchType": {"BIPARTITE": 0, "PER_PREDICTION": 1},
    "MultiBoxLossParameter.MiningType": {"NONE": 0, "MAX_NEGATIVE": 1, "HARD_EXAMPLE": 2},
    "PriorBoxParameter.CodeType": {"CORNER": 1, "CENTER_SIZE": 2, "CORNER_SIZE": 3},
    "SolverParameter.SolverMode": {"CPU": 0, "GPU": 1},
}
_ENUM_PATHS = {key.rsplit(".", 1)[-1]: key for key in ENUMS}

#: (message, field) that weiliu89's proto has and brocolli-caffe 9.0.2's does not (or has elsewhere).
WEILIU89_ONLY = {
    ("TransformationParameter", "resize_param"), ("TransformationParameter", "distort_param"),
    ("TransformationParameter", "expand_param"), ("AnnotatedDataParameter", "anno_type"),
    ("SaveOutputParameter", "resize_param"), ("SolverParameter", "show_per_class_result"),
}
WEILIU89_ONLY_MESSAGES = {"ResizeParameter", "DistortionParameter", "ExpansionParameter"}

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"double": _F.TYPE_DOUBLE, "float": _F.TYPE_FLOAT, "int32": _F.TYPE_INT32, "int64": _F.TYPE_INT64,
            "uint32": _F.TYPE_UINT32, "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES}


def parse_field(spec: str) -> tuple[bool, str, str, int]:
    """``"[repeated] TYPE NAME NUMBER"`` -> (repeated, type, name, number)."""
    words = spec.split()
    repeated = words[0] == "repeated"
    kind, name, number = words[1:] if repeated else words
    return repeated, kind, name, int(number)


def schema_fields() -> dict[str, dict[str, tuple[int, str, bool]]]:
    """message -> field -> (number, type, repeated): the table as data, for cross-checks."""
    return {message: {name: (number, kind, repeated)
                      for repeated, kind, name, number in map(parse_field, fields)}
            for message, fields in MESSAGES.items()}


def _add_field(message: descriptor_pb2.DescriptorProto, spec: str) -> None:
    repeated, kind, name, number = parse_field(spec)
    field = message.field.add(name=name, number=number,
                              label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if kind in _SCALARS:
        field.type = _SCALARS[kind]
    elif kind in _ENUM_PATHS:
        field.type, field.type_name = _F.TYPE_ENUM, f".{PACKAGE}.{_ENUM_PATHS[kind]}"
    elif kind in MESSAGES:
        field.type, field.type_name = _F.TYPE_MESSAGE, f".{PACKAGE}.{kind}"
    else:
        raise ValueError(f"weiliu89 schema: field {spec!r} has an undeclared type {kind!r}")


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name="harness_weiliu89_ssd.proto", package=PACKAGE, syntax="proto2")
    messages = {}
    for message_name, fields in MESSAGES.items():
        messages[message_name] = message = fdp.message_type.add(name=message_name)
        for spec in fields:
            _add_field(message, spec)
    for path, values in ENUMS.items():
        owner, _, enum_name = path.rpartition(".")
        enum = (messages[owner].enum_type if owner else fdp.enum_type).add(name=enum_name)
        for value_name, number in values.items():
            enum.value.add(name=value_name, number=number)
    return fdp


def _message_classes() -> dict[str, type]:
    pool = descriptor_pool.DescriptorPool()      # private: never clashes with pycaffe's caffe_pb2
    pool.Add(_file_descriptor())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
            for name in MESSAGES}


_CLASSES = _message_classes()


def message_for(path: PathLike):
    """The top-level message a rendered file holds, chosen by its name as Caffe's tools do."""
    name = Path(path).name
    if name.endswith("solver.prototxt"):
        return _CLASSES["SolverParameter"]()
    if name.endswith("labelmap.prototxt"):
        return _CLASSES["LabelMap"]()
    return _CLASSES["NetParameter"]()


def parse_with_weiliu89_schema(paths: Iterable[PathLike]) -> dict[str, object]:
    """Parse each file strictly; returns the messages by file name, raises ValueError naming every failure."""
    parsed, failures = {}, []
    for path in map(Path, paths):
        message = message_for(path)
        try:
            text_format.Parse(path.read_text(), message)
        except text_format.ParseError as exc:
            failures.append(f"{path}: {exc}")
            continue
        parsed[path.name] = message
    if failures:
        raise ValueError("rendered files do not parse with weiliu89's SSD caffe.proto schema:\n  "
                         + "\n  ".join(failures))
    return parsed
