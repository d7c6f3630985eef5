"""What the driver needs from a SavedModel, read from its protocol buffers without importing TensorFlow.

`import tensorflow` costs ~4 s here and a driver pod has one core, which the starting JVM wants: the driver only needs
the MetaGraphs' tags, one signature's inputs and outputs (name, dtype, shape) and the fingerprint, so this module decodes
exactly those fields of `saved_model.pb` (tensorflow.SavedModel → MetaGraphDef → MetaInfoDef.tags, signature_def →
SignatureDef.inputs/outputs → TensorInfo) and `fingerprint.pb` (tensorflow.FingerprintDef) from the protobuf wire format,
skipping everything else (the graph itself) by its length. Field numbers are those of TensorFlow's .proto files
(tensorflow/core/protobuf/{saved_model,meta_graph,fingerprint}.proto, tensorflow/core/framework/tensor_shape.proto);
a unit test checks this decoder against TensorFlow's own on real SavedModels.
"""

from __future__ import annotations

from collections.abc import Iterator

# tensorflow/core/framework/types.proto DataType → numpy dtype names (what TensorInfo.dtype holds); "string" for DT_STRING
DTYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string", 9: "int64", 10: "bool",
          17: "uint16", 19: "float16", 22: "uint32", 23: "uint64", 14: "bfloat16", 8: "complex64", 18: "complex128"}


class DecodeError(ValueError):
    """The bytes are not the protocol buffer they were said to be."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 70:
            raise DecodeError("varint too long")


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of one message: ints for varint/fixed, bytes for length-delimited."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wire == 2:
            length, i = _varint(buf, i)
            if i + length > n:
                raise DecodeError("truncated field")
            value, i = buf[i:i + length], i + length
        elif wire == 5:
            value, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        else:
            raise DecodeError(f"unsupported wire type {wire}")
        yield number, wire, value


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _map_entries(raw: list[bytes]) -> Iterator[tuple[str, bytes]]:
    for entry in raw:
        key, value = "", b""
        for number, _, v in fields(entry):
            if number == 1:
                key = v.decode()
            elif number == 2:
                value = v
        yield key, value


def _tensor_info(buf: bytes) -> tuple[str, tuple[int | None, ...] | None]:
    dtype, shape = "invalid", None
    for number, _, v in fields(buf):
        if number == 2:
            dtype = DTYPES.get(v, f"dtype{v}")
        elif number == 3:
            dims, unknown = [], False
            for n2, _, v2 in fields(v):
                if n2 == 2:
                    size = next((_signed(v3) for n3, _, v3 in fields(v2) if n3 == 1), 0)
                    dims.append(None if size < 0 else size)
                elif n2 == 3 and v2:
                    unknown = True
            shape = None if unknown else tuple(dims)
    return dtype, shape


def meta_graphs(saved_model: bytes) -> list[tuple[frozenset[str], dict[str, tuple[dict, dict]]]]:
    """Per MetaGraph: its tags and its signatures {name: ({input: (dtype, shape)}, {output: (dtype, shape)})}."""
    out = []
    for number, _, mg in fields(saved_model):
        if number != 2:
            continue
        tags: set[str] = set()
        sig_raw: list[bytes] = []
        for n2, _, v in fields(mg):
            if n2 == 1:
                tags |= {t.decode() for n3, _, t in fields(v) if n3 == 4}
            elif n2 == 5:
                sig_raw.append(v)
        sigs = {}
        for name, body in _map_entries(sig_raw):
            ins: list[bytes] = []
            outs: list[bytes] = []
            for n3, _, v in fields(body):
                (ins if n3 == 1 else outs if n3 == 2 else []).append(v)
            sigs[name] = ({k: _tensor_info(t) for k, t in _map_entries(ins)},
                          {k: _tensor_info(t) for k, t in _map_entries(outs)})
        out.append((frozenset(tags), sigs))
    return out


def singleprint(fingerprint_pb: bytes) -> str:
    """TensorFlow's fingerprint "singleprint": graph_def_program_hash/signature_def_hash/saved_object_graph_hash/
    checkpoint_hash (FingerprintDef fields 2-5)."""
    values = {number: v for number, wire, v in fields(fingerprint_pb) if wire == 0}
    if not all(k in values for k in (2, 3, 4, 5)):
        raise DecodeError("fingerprint.pb lacks one of its hashes")
    return "/".join(str(values[k]) for k in (2, 3, 4, 5))
