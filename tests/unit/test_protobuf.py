"""Decoding of kubectl's protobuf request bodies (netplane.api.protobuf)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netplane.api import protobuf
from netplane.api.protobuf import CONTENT_TYPE, ProtobufDecodeError, decode

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.bin"))


# --- a minimal encoder, so tests can build bodies kubectl never sends --------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negatives as 64-bit two's complement, as Go writes int32/int64
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def f_int(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def f_len(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def f_fixed64(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 1) + payload


def f_fixed32(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 5) + payload


def entry(key: str, value: bytes | str) -> bytes:
    return f_len(1, key) + f_len(2, value)


def envelope(api_version: str, kind: str, raw: bytes, *extra: bytes) -> bytes:
    type_meta = f_len(1, api_version) + f_len(2, kind)
    return b"k8s\x00" + f_len(1, type_meta) + f_len(2, raw) + f_len(3, b"") + f_len(4, b"") + b"".join(extra)


def meta(name: str, *extra: bytes) -> bytes:
    return f_len(1, f_len(1, name) + b"".join(extra))


# --- captured kubectl bodies -------------------------------------------------------------


def test_fixtures_present() -> None:
    assert len(FIXTURE_NAMES) >= 25
    for name in FIXTURE_NAMES:
        assert (FIXTURES / f"{name}.json").exists(), name


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_decodes_captured_kubectl_body(name: str) -> None:
    body = (FIXTURES / f"{name}.bin").read_bytes()
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    assert decode(body) == expected


def test_deployment_zero_values_are_normalised() -> None:
    obj = decode((FIXTURES / "deployment.bin").read_bytes())
    container = obj["spec"]["template"]["spec"]["containers"][0]
    # kubectl's Go structs carry hostPort 0, protocol "", strategy.type "" on the wire.
    assert container["ports"] == [{"containerPort": 8080}]
    assert obj["spec"]["strategy"] == {}
    assert obj["spec"]["template"]["metadata"] == {"labels": {"app": "web"}}
    assert "creationTimestamp" not in obj["metadata"]


def test_secret_data_is_base64() -> None:
    obj = decode((FIXTURES / "secret_generic.bin").read_bytes())
    assert base64.b64decode(obj["data"]["pass"]) == b"s3cr3t"


def test_configmap_binary_data_is_base64() -> None:
    obj = decode((FIXTURES / "configmap_binary.bin").read_bytes())
    assert base64.b64decode(obj["binaryData"]["blob"]) == b"\x00\x01\x02\xffbinary"
    assert obj["data"] == {"text": "hello"}


def test_every_truncation_of_the_typed_message_is_rejected() -> None:
    body = (FIXTURES / "deployment.bin").read_bytes()
    assert body.endswith(b"\x1a\x00\x22\x00")  # empty contentEncoding, contentType
    for cut in range(4, len(body) - 4):
        with pytest.raises(ProtobufDecodeError):
            decode(body[:cut])


# --- conversions ---------------------------------------------------------------------------


def test_time_becomes_rfc3339_and_zero_time_is_omitted() -> None:
    stamp = f_len(8, f_int(1, 1_700_000_000) + f_int(2, 5))
    obj = decode(envelope("v1", "Namespace", meta("a", stamp)))
    assert obj["metadata"]["creationTimestamp"] == "2023-11-14T22:13:20Z"
    obj = decode(envelope("v1", "Namespace", meta("a", f_len(8, f_int(1, 0)))))
    assert obj["metadata"] == {"name": "a"}


def test_int_or_string_both_forms() -> None:
    by_name = f_len(4, f_int(1, 1) + f_len(3, "http"))
    by_number = f_len(4, f_int(1, 0) + f_int(2, 8080))
    ports = f_len(1, f_int(3, 80) + by_name) + f_len(1, f_int(3, 81) + by_number)
    obj = decode(envelope("v1", "Service", meta("s") + f_len(2, ports)))
    assert obj["spec"]["ports"] == [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8080}]


def test_zero_target_port_is_dropped_but_zero_port_kept() -> None:
    # port has no omitempty in Go; targetPort does.
    ports = f_len(1, f_int(3, 0) + f_len(4, b"") + f_len(2, b""))
    obj = decode(envelope("v1", "Service", meta("s") + f_len(2, ports)))
    assert obj["spec"]["ports"] == [{"port": 0}]


def test_pointer_fields_keep_zero_values() -> None:
    # replicas is *int32: present on the wire means set, so 0 must survive.
    spec = f_int(1, 0) + f_int(5, 0) + f_int(7, 0)
    obj = decode(envelope("apps/v1", "Deployment", meta("d") + f_len(2, spec)))
    assert obj["spec"] == {"replicas": 0}


def test_negative_int32() -> None:
    spec = f_int(1, -1)
    obj = decode(envelope("apps/v1", "Deployment", meta("d") + f_len(2, spec)))
    assert obj["spec"]["replicas"] == -1


def test_omitempty_string_zero_is_type_aware() -> None:
    # Toleration.value "0" is not Go's zero string and must not be dropped.
    toleration = f_len(1, "k") + f_len(2, "Equal") + f_len(3, "0") + f_len(4, "")
    obj = decode(envelope("v1", "Pod", meta("p") + f_len(2, f_len(22, toleration))))
    assert obj["spec"]["tolerations"] == [{"key": "k", "operator": "Equal", "value": "0"}]


def test_inline_structs_merge_into_parent() -> None:
    config_map = f_len(1, f_len(1, "cm")) + f_len(2, f_len(1, "a") + f_len(2, "a.txt"))
    volume = f_len(1, "v") + f_len(2, f_len(19, config_map))
    probe = f_len(1, f_len(1, f_len(1, "true"))) + f_int(4, 10)
    container = f_len(1, "c") + f_len(10, probe)
    obj = decode(envelope("v1", "Pod", meta("p") + f_len(2, f_len(1, volume) + f_len(2, container))))
    items = [{"key": "a", "path": "a.txt"}]
    assert obj["spec"]["volumes"] == [{"name": "v", "configMap": {"name": "cm", "items": items}}]
    probe_json = {"exec": {"command": ["true"]}, "periodSeconds": 10}
    assert obj["spec"]["containers"][0]["livenessProbe"] == probe_json


def test_maps_of_quantities_and_missing_map_values() -> None:
    resources = f_len(1, entry("cpu", f_len(1, "500m"))) + f_len(2, f_len(1, "memory"))
    container = f_len(1, "c") + f_len(8, resources)
    obj = decode(envelope("v1", "Pod", meta("p") + f_len(2, f_len(2, container))))
    expected = {"limits": {"cpu": "500m"}, "requests": {"memory": "0"}}
    assert obj["spec"]["containers"][0]["resources"] == expected


def test_packed_and_unpacked_repeated_ints() -> None:
    packed = f_len(4, varint(1000) + varint(2000))
    unpacked = f_int(4, 3000)
    obj = decode(envelope("v1", "Pod", meta("p") + f_len(2, f_len(14, packed + unpacked))))
    assert obj["spec"]["securityContext"] == {"supplementalGroups": [1000, 2000, 3000]}


def test_managed_fields_raw_json() -> None:
    fields_v1 = f_len(7, f_len(1, b'{"f:metadata":{"f:labels":{}}}'))
    managed = f_len(17, f_len(1, "kubectl") + f_len(2, "Update") + fields_v1)
    obj = decode(envelope("v1", "ConfigMap", meta("c", managed)))
    assert obj["metadata"]["managedFields"] == [
        {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:metadata": {"f:labels": {}}}}
    ]


def test_user_info_extra_is_map_of_lists() -> None:
    user = f_len(1, "alice") + f_len(4, entry("scopes", f_len(1, "a") + f_len(1, "b")))
    obj = decode(envelope("authentication.k8s.io/v1", "SelfSubjectReview", f_len(2, f_len(1, user))))
    assert obj["status"]["userInfo"] == {"username": "alice", "extra": {"scopes": ["a", "b"]}}


def test_eviction_with_delete_options() -> None:
    options = f_int(1, 5) + f_len(2, f_len(1, "uid-1")) + f_len(5, "All")
    obj = decode(envelope("policy/v1", "Eviction", meta("p1", f_len(3, "default")) + f_len(2, options)))
    assert obj == {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "p1", "namespace": "default"},
        "deleteOptions": {"gracePeriodSeconds": 5, "preconditions": {"uid": "uid-1"}, "dryRun": ["All"]},
    }


# --- forward compatibility ---------------------------------------------------------------


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    unknown = f_int(99, 7) + f_len(98, b"\xff\x00junk") + f_fixed64(97, b"\x00" * 8) + f_fixed32(96, b"abcd")
    raw = meta("ns1", unknown) + unknown + f_len(2, unknown + f_len(1, "kubernetes"))
    body = envelope("v1", "Namespace", raw, unknown)
    assert decode(body) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "ns1"},
        "spec": {"finalizers": ["kubernetes"]},
    }


def test_repeated_scalar_field_last_value_wins() -> None:
    obj = decode(envelope("v1", "Namespace", meta("a", f_len(1, "b"))))
    assert obj["metadata"]["name"] == "b"


# --- malformed input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "prefix"),
        (b'{"kind":"Namespace"}', "prefix"),
        (b"k8s\x00", "no raw object"),
        (b"k8s\x00" + f_len(2, b""), "apiVersion/kind"),
        (b"k8s\x00\x0a\x05", "truncated"),
        (b"k8s\x00\x0a", "truncated varint"),
        (b"k8s\x00" + b"\xff" * 11, "10 bytes"),
        (b"k8s\x00\x0b", "wire type 3"),
        (b"k8s\x00\x02\x00", "field number 0"),
        (b"k8s\x00\x08\x01", "runtime.Unknown field 1"),
        (envelope("v1", "Frobnicator", b""), "not supported"),
        (envelope("apps/v1beta1", "Deployment", b""), "not supported"),
        (envelope("v1", "Namespace", b"", f_len(3, "gzip")), "contentEncoding"),
        (envelope("v1", "Namespace", b"", f_len(4, "application/json")), "contentType"),
    ],
)
def test_malformed_envelopes(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufDecodeError, match=message):
        decode(body)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (f_int(1, 3), "Namespace.metadata: wire type 0"),
        (f_len(1, f_int(1, 3)), "ObjectMeta.name: wire type 0"),
        (f_len(1, f_len(1, b"\xff\xfe")), "invalid UTF-8"),
        (f_len(1, f_len(8, f_int(1, 1 << 60))), "time out of range"),
        (f_len(1, f_len(11, f_int(1, 1))), "key: wire type 0"),
        (f_len(1, f_len(17, f_len(7, f_len(1, b"{nope")))), "not JSON"),
    ],
)
def test_malformed_messages(raw: bytes, message: str) -> None:
    with pytest.raises(ProtobufDecodeError, match=message):
        decode(envelope("v1", "Namespace", raw))


def test_error_is_a_value_error_and_content_type() -> None:
    assert issubclass(ProtobufDecodeError, ValueError)
    assert CONTENT_TYPE == "application/vnd.kubernetes.protobuf"


def test_table_rejects_dangling_message_references() -> None:
    with pytest.raises(AssertionError, match="Missing"):
        protobuf._parse_schema({"A": "1 b Missing"})


def test_every_top_level_kind_has_metadata() -> None:
    for message in set(protobuf._KINDS.values()) - {"DeleteOptions"}:
        assert protobuf._MESSAGES[message][1].name == "metadata", message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_errors(tail: bytes) -> None:
    _decode_or_error(b"k8s\x00" + tail)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIXTURE_NAMES), st.integers(min_value=4), st.integers(min_value=0, max_value=255))
def test_corrupted_fixtures_raise_only_decode_errors(name: str, position: int, byte: int) -> None:
    body = bytearray((FIXTURES / f"{name}.bin").read_bytes())
    body[position % len(body)] = byte
    _decode_or_error(bytes(body))


def _decode_or_error(body: bytes) -> Any:
    try:
        return decode(body)
    except ProtobufDecodeError:
        return None
