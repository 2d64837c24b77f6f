"""Service-account tokens: the JWS layer, issuing and authenticating, the TokenRequest API, and the
ServiceAccount admission of pods (token volume, missing accounts)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from netplane.api.auth import jws
from netplane.api.auth.satokens import ISSUER, ServiceAccountTokens, load_or_create_key
from netplane.api.core import ApiCore, WriteOptions
from netplane.api.errors import ApiError
from netplane.api.registry import storage_type
from netplane.api.serviceaccounts import TOKEN_MOUNT_PATH, admit_pod
from netplane.api.tokenrequest import create_token
from netplane.apiserver_main import build
from netplane.up import UpOptions

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0
SA = {"metadata": {"name": "bot", "namespace": "team", "uid": "sa-uid"}}
POD = {"metadata": {"name": "web", "namespace": "team", "uid": "pod-uid"}, "spec": {"serviceAccountName": "bot"}}
NODE = {"metadata": {"name": "node1", "uid": "node-uid"}}
SECRET = {"metadata": {"name": "s", "namespace": "team", "uid": "secret-uid"}}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def make(clock: Clock | None = None) -> ServiceAccountTokens:
    return ServiceAccountTokens(ec.generate_private_key(ec.SECP256R1()), clock=clock or Clock())


def lookup(sa: dict[str, Any] | None = None, pod: dict[str, Any] | None = None, node: dict[str, Any] | None = None,
           secret: dict[str, Any] | None = None) -> Any:
    found = {}
    for kind, obj in (("ServiceAccount", sa), ("Pod", pod), ("Node", node), ("Secret", secret)):
        if obj is not None:
            found[(kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj
    return lambda kind, namespace, name: found.get((kind, namespace, name))


def _recreated(obj: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], **meta}}


def payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


# --- the JWS layer -------------------------------------------------------------------------------

def test_jws_round_trip_and_tampering() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = jws.sign({"sub": "x", "n": 1}, key)
    assert jws.looks_like_jws(token)
    assert jws.verify(token, key.public_key()) == {"sub": "x", "n": 1}
    header, body, signature = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"sub": "admin", "n": 1}).encode()).rstrip(b"=").decode()
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    for bad in (f"{header}.{forged}.{signature}", f"{unsigned}.{body}.", f"{header}.{body}.{signature[:-4]}",
                "a.b", "!!.!!.!!", f"{header}.{body}.{signature}x"):
        with pytest.raises(jws.InvalidToken):
            jws.verify(bad, key.public_key())
    with pytest.raises(jws.InvalidToken, match="another key"):
        jws.verify(token, ec.generate_private_key(ec.SECP256R1()).public_key())


def test_signing_key_is_made_once_and_private(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "pki")
    assert stat.S_IMODE((tmp_path / "pki" / "sa.key").stat().st_mode) == 0o600
    again = load_or_create_key(tmp_path / "pki")
    assert jws.key_id(again.public_key()) == jws.key_id(key.public_key())


# --- issuing and authenticating ------------------------------------------------------------------

def test_claims_are_kubernetes_claims() -> None:
    tokens = make()
    token, expires = tokens.issue(SA, [ISSUER], 3600, pod=POD, node=NODE)
    claims = payload(token)
    assert expires == NOW + 3600
    assert claims["iss"] == ISSUER and claims["aud"] == [ISSUER]
    assert claims["sub"] == "system:serviceaccount:team:bot"
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (NOW, NOW, NOW + 3600)
    assert claims["jti"]
    assert claims["kubernetes.io"] == {"namespace": "team", "serviceaccount": {"name": "bot", "uid": "sa-uid"},
                                       "pod": {"name": "web", "uid": "pod-uid"},
                                       "node": {"name": "node1", "uid": "node-uid"}}


def test_a_valid_token_is_its_service_account() -> None:
    tokens = make()
    token, _ = tokens.issue(SA, [ISSUER, "vault"], 3600, pod=POD, node=NODE)
    user = tokens.authenticate(token, lookup(SA, POD))  # the pod's node is not checked
    assert user.name == "system:serviceaccount:team:bot" and user.uid == "sa-uid"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated")
    extra = dict(user.extra)
    assert extra["authentication.kubernetes.io/pod-name"] == ("web",)
    assert extra["authentication.kubernetes.io/pod-uid"] == ("pod-uid",)
    assert extra["authentication.kubernetes.io/node-name"] == ("node1",)
    assert extra["authentication.kubernetes.io/credential-id"] == (f"JTI={payload(token)['jti']}",)


def test_expiry_and_not_before() -> None:
    clock = Clock()
    tokens = make(clock)
    token, _ = tokens.issue(SA, [ISSUER], 600)
    clock.now = NOW + 599
    assert tokens.authenticate(token, lookup(SA)).name.endswith(":bot")
    clock.now = NOW + 600
    with pytest.raises(jws.InvalidToken, match="expired"):
        tokens.authenticate(token, lookup(SA))
    clock.now = NOW - 5
    with pytest.raises(jws.InvalidToken, match="not valid yet"):
        tokens.authenticate(token, lookup(SA))


def test_audience_and_issuer_must_be_the_apis() -> None:
    tokens = make()
    other, _ = tokens.issue(SA, ["vault"], 600)
    with pytest.raises(jws.InvalidToken, match="audiences"):
        tokens.authenticate(other, lookup(SA))
    foreign = ServiceAccountTokens(tokens._key, issuer="https://elsewhere", clock=tokens.clock)
    token, _ = foreign.issue(SA, [ISSUER], 600)
    with pytest.raises(jws.InvalidToken, match="issuer"):
        tokens.authenticate(token, lookup(SA))
    stranger = make()
    token, _ = stranger.issue(SA, [ISSUER], 600)
    with pytest.raises(jws.InvalidToken):
        tokens.authenticate(token, lookup(SA))


@pytest.mark.parametrize(("objects", "reason"), [
    ({"pod": POD}, "ServiceAccount team/bot has been deleted"),
    ({"sa": _recreated(SA, uid="new"), "pod": POD},
     r"ServiceAccount team/bot UID \(new\) does not match claim \(sa-uid\)"),
    ({"sa": SA}, "Pod team/web has been deleted"),
    ({"sa": SA, "pod": _recreated(POD, uid="other")}, "Pod team/web UID"),
    ({"sa": SA, "pod": _recreated(POD, deletionTimestamp="2027-01-15T07:58:00Z")}, "being deleted"),
])
def test_bound_objects_must_still_exist(objects: dict[str, Any], reason: str) -> None:
    tokens = make()
    token, _ = tokens.issue(SA, [ISSUER], 3600, pod=POD)
    with pytest.raises(jws.InvalidToken, match=reason):
        tokens.authenticate(token, lookup(**objects))


def test_a_terminating_pods_tokens_work_for_a_minute_after_its_deletion_time() -> None:
    clock = Clock()
    tokens = make(clock)
    token, _ = tokens.issue(SA, [ISSUER], 3600, pod=POD)
    deleting = lookup(SA, _recreated(POD, deletionTimestamp="2027-01-15T08:00:00Z"))  # = NOW
    clock.now = NOW + 30
    assert tokens.authenticate(token, deleting)
    clock.now = NOW + 61
    with pytest.raises(jws.InvalidToken, match="being deleted"):
        tokens.authenticate(token, deleting)


def test_secret_and_node_bound_tokens() -> None:
    tokens = make()
    by_secret, _ = tokens.issue(SA, [ISSUER], 3600, secret=SECRET)
    assert tokens.authenticate(by_secret, lookup(SA, secret=SECRET))
    with pytest.raises(jws.InvalidToken, match="Secret team/s has been deleted"):
        tokens.authenticate(by_secret, lookup(SA))
    by_node, _ = tokens.issue(SA, [ISSUER], 3600, node=NODE)
    assert tokens.authenticate(by_node, lookup(SA, node=NODE))
    with pytest.raises(jws.InvalidToken, match="Node node1 has been deleted"):
        tokens.authenticate(by_node, lookup(SA))


# --- the TokenRequest API, in process --------------------------------------------------------------

@pytest.fixture
def core(tmp_path: Path) -> ApiCore:
    made, _ = build(UpOptions(data_dir=tmp_path / "data", dataplane=False), 6443)
    return made


def _type(core: ApiCore, plural: str) -> Any:
    rt = storage_type(core.registry, "", plural)
    assert rt is not None
    return rt


def _pod(core: ApiCore, name: str, **spec: Any) -> dict[str, Any]:
    return core.create(_type(core, "pods"), "default", {"metadata": {"name": name}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}], **spec}}, WriteOptions())


def test_token_request_defaults_and_binding(core: ApiCore) -> None:
    tokens = ServiceAccountTokens(ec.generate_private_key(ec.SECP256R1()))
    answer = create_token(core, tokens, "default", "default", {"spec": {}})
    assert answer["kind"] == "TokenRequest" and answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["spec"] == {"audiences": [ISSUER], "expirationSeconds": 3600, "boundObjectRef": None}
    claims = payload(answer["status"]["token"])
    assert claims["exp"] - claims["iat"] == 3600 and answer["status"]["expirationTimestamp"].endswith("Z")
    pod = _pod(core, "web")
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web"}
    bound = create_token(core, tokens, "default", "default", {"spec": {"boundObjectRef": ref,
                                                                       "expirationSeconds": 600}})
    assert payload(bound["status"]["token"])["kubernetes.io"]["pod"] == {"name": "web",
                                                                          "uid": pod["metadata"]["uid"]}


@pytest.mark.parametrize(("spec", "code", "message"), [
    ({"expirationSeconds": 599}, 422, 'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
                                      "Invalid value: 599: may not specify a duration less than 10 minutes"),
    ({"expirationSeconds": (1 << 32) + 1}, 422, "may not specify a duration larger than 2^32 seconds"),
    ({"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "x"}}, 400,
     "cannot bind token to object of type /v1, Kind=ConfigMap"),
    ({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "nope"}}, 404, 'pods "nope" not found'),
    ({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "other-sa"}}, 400,
     'cannot bind token for serviceaccount "default" to pod running with different serviceaccount name.'),
    ({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "stale"}}, 409,
     "the UID in the bound object reference (stale) does not match the UID in record"),
])
def test_token_request_errors(core: ApiCore, spec: dict[str, Any], code: int, message: str) -> None:
    core.create(_type(core, "serviceaccounts"), "default", {"metadata": {"name": "robot"}}, WriteOptions())
    _pod(core, "web")
    _pod(core, "other-sa", serviceAccountName="robot")
    tokens = ServiceAccountTokens(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ApiError) as raised:
        create_token(core, tokens, "default", "default", {"spec": spec})
    assert raised.value.code == code and message in raised.value.message


def test_token_request_for_a_missing_account_or_a_mismatched_name(core: ApiCore) -> None:
    tokens = ServiceAccountTokens(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ApiError, match='serviceaccounts "ghost" not found'):
        create_token(core, tokens, "default", "ghost", {"spec": {}})
    with pytest.raises(ApiError, match=r'metadata\.name: Invalid value: "x": must match the service account name'):
        create_token(core, tokens, "default", "default", {"metadata": {"name": "x"}, "spec": {}})


# --- ServiceAccount admission ------------------------------------------------------------------

def _token_mounts(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return [m for c in spec.get("initContainers", []) + spec["containers"] for m in c.get("volumeMounts", [])
            if m["mountPath"] == TOKEN_MOUNT_PATH]


def test_admission_mounts_the_token_volume_in_every_container(core: ApiCore) -> None:
    pod = _pod(core, "web", initContainers=[{"name": "init", "image": "busybox"}])
    assert pod["spec"]["serviceAccountName"] == pod["spec"]["serviceAccount"] == "default"
    volumes = [v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
    assert len(volumes) == 1 and len(volumes[0]["name"]) == len("kube-api-access-") + 5
    assert volumes[0]["projected"]["defaultMode"] == 420
    assert [next(iter(s)) for s in volumes[0]["projected"]["sources"]] == \
        ["serviceAccountToken", "configMap", "downwardAPI"]
    assert _token_mounts(pod) == [{"name": volumes[0]["name"], "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}] * 2


def test_automount_off_and_own_mounts(core: ApiCore) -> None:
    assert "volumes" not in _pod(core, "off", automountServiceAccountToken=False)["spec"]
    accounts = _type(core, "serviceaccounts")
    core.create(accounts, "default", {"metadata": {"name": "quiet"}, "automountServiceAccountToken": False,
                                      "imagePullSecrets": [{"name": "regcred"}]}, WriteOptions())
    quiet = _pod(core, "quiet", serviceAccountName="quiet")
    assert "volumes" not in quiet["spec"] and quiet["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    # The pod's own choice wins over its account's.
    assert _token_mounts(_pod(core, "loud", serviceAccountName="quiet", automountServiceAccountToken=True))
    own = _pod(core, "own", volumes=[{"name": "mine", "emptyDir": {}}], containers=[
        {"name": "c", "image": "busybox", "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]}])
    assert [v["name"] for v in own["spec"]["volumes"]] == ["mine"]


def test_a_copied_token_volume_is_reused() -> None:
    spec: dict[str, Any] = {"containers": [{"name": "c"}],
                            "volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": []}}]}
    admit_pod({"metadata": {"name": "p"}, "spec": spec}, "ns", lambda name: {"metadata": {"name": name}})
    assert [v["name"] for v in spec["volumes"]] == ["kube-api-access-abcde"]
    assert spec["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-abcde"


def test_a_missing_service_account_is_forbidden(core: ApiCore) -> None:
    with pytest.raises(ApiError) as raised:
        _pod(core, "lost", serviceAccountName="ghost")
    assert raised.value.code == 403
    assert raised.value.message == ('pods "lost" is forbidden: error looking up service account default/ghost: '
                                    'serviceaccount "ghost" not found')
