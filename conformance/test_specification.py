"""Every secrets, keys and certificates operation the emulator serves, held to Microsoft's REST
specification of the Key Vault data plane (2025-07-01).

spec/keyvault-2025-07-01.json is a table of facts taken from that specification (see
spec/README.md for its source and licence): each operation's success status and response model,
each model's fields with their types and enums, and the fields each operation's example response
shows. The walk drives every operation in the table against the emulator and checks that

- the status is the specification's,
- the body has no field the model lacks and every field has the model's type (and enum value),
- every field the example shows is there (fixtures set tags, content types and validity, so that
  fields which depend on the data are present), and
- the service's headers are there.
"""
import base64
import json
import pathlib
import subprocess

import pytest
import requests

SPEC = json.loads((pathlib.Path(__file__).parent / "spec" / "keyvault-2025-07-01.json").read_text())
MODELS = SPEC["models"]
OPERATIONS = {operation["operationId"]: operation for operation in SPEC["operations"]}
VAULT = "conf-spec"
API_VERSION = "2025-07-01"

# Fields an example shows that the service leaves out in the state the walk sees:
# - a certificate operation says what is happening while it is; once completed it has nothing to
#   add (the example shows an operation in progress);
# - a certificate read by version comes without its policy, which belongs to the certificate, not
#   the version (the SDKs document get_certificate_version as "without its management policy";
#   the example reads the latest).
STATE_DEPENDENT = {"GetCertificateOperation": {"status_details"}}
WITHOUT_POLICY = {field for field in OPERATIONS["GetCertificate"]["exampleFields"] if field.split(".")[0] == "policy"}


def type_problems(value, schema, path):
    """Where `value` departs from `schema` (a field type of the table), as readable lines."""
    if value is None:
        return []  # the service writes absent optional values as null (nextLink on a last page)
    if "$ref" in schema:
        return model_problems(value, schema["$ref"], path)
    kind = schema["type"]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: {value!r} is not a string"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{path}: {value!r} is not one of {schema['enum']}"]
        if schema.get("format") == "byte":
            try:
                base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_" if ("-" in value or "_" in value) else None, validate=True)
            except ValueError:
                return [f"{path}: not base64"]
        return []
    if kind == "integer":
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{path}: {value!r} is not an integer"]
    if kind == "number":
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else [f"{path}: {value!r} is not a number"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a boolean"]
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        return [problem for index, item in enumerate(value) for problem in type_problems(item, schema["items"], f"{path}[{index}]")]
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        return [problem for key, item in value.items() for problem in type_problems(item, schema["additionalProperties"], f"{path}.{key}")]
    return [f"{path}: the table has an unknown type {kind}"]


def model_problems(value, model_name, path):
    if not isinstance(value, dict):
        return [f"{path}: not an object ({model_name})"]
    properties = MODELS[model_name]["properties"]
    problems = []
    for key, item in value.items():
        if key not in properties:
            problems.append(f"{path}.{key}: not a field of {model_name}")
        else:
            problems += type_problems(item, properties[key], f"{path}.{key}")
    return problems


def has_field(value, parts):
    """Whether the dotted example path (with [] for array elements) exists in `value`."""
    if not parts:
        return True
    if not isinstance(value, dict):
        return False
    head = parts[0]
    if head.endswith("[]"):
        items = value.get(head[:-2])
        return isinstance(items, list) and any(has_field(item, parts[1:]) for item in items)
    return head in value and has_field(value[head], parts[1:])


class Walk:
    """Raw HTTP against the emulator, recording which operations have been checked."""

    def __init__(self, emulator, credential):
        self.base = emulator.vault_url(VAULT)
        self.session = requests.Session()
        self.session.verify = emulator.ca_bundle
        token = credential.get_token(f"https://vault.localhost:{emulator.port}/.default").token
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.checked = set()
        self.problems = []

    def call(self, operation_id, method, path, body=None, query=None, allowed_missing=frozenset()):
        operation = OPERATIONS[operation_id]
        assert operation["method"] == method, f"{operation_id} is a {operation['method']} in the specification"
        params = {"api-version": API_VERSION, **(query or {})}
        response = self.session.request(method, self.base + path, params=params, json=body, timeout=30)
        where = f"{operation_id} ({method} {path})"
        if response.status_code != operation["status"]:
            self.problems.append(f"{where}: status {response.status_code}, the specification says {operation['status']}: {response.text[:300]}")
            return None
        for header in ("x-ms-request-id", "x-ms-keyvault-service-version"):
            if header not in response.headers:
                self.problems.append(f"{where}: no {header} header")
        self.checked.add(operation_id)
        if operation["response"] is None:
            if response.content:
                self.problems.append(f"{where}: a body where the specification has none")
            return None
        body = response.json()
        self.problems += [f"{where}: {problem}" for problem in model_problems(body, operation["response"], "")]
        allowed_missing = STATE_DEPENDENT.get(operation_id, set()) | allowed_missing
        for field in operation["exampleFields"]:
            if field not in allowed_missing and not has_field(body, field.split(".")):
                self.problems.append(f"{where}: no '{field}', which the specification's example shows")
        return body


    def soft_delete_cycle(self, noun, collection, name):
        """Delete, list and read the deleted object, recover it, then delete and purge it."""
        deleted = f"deleted{collection}"
        self.call(f"Delete{noun}", "DELETE", f"/{collection}/{name}")
        self.call(f"GetDeleted{noun}s", "GET", f"/{deleted}")
        self.call(f"GetDeleted{noun}", "GET", f"/{deleted}/{name}")
        self.call(f"RecoverDeleted{noun}", "POST", f"/{deleted}/{name}/recover")
        self.call(f"Delete{noun}", "DELETE", f"/{collection}/{name}")
        self.call(f"PurgeDeleted{noun}", "DELETE", f"/{deleted}/{name}")

    def assert_checked(self, belongs):
        """No problem found, and every operation of the table that `belongs` was walked."""
        assert not self.problems, "\n".join(self.problems)
        assert self.checked == {operation for operation in OPERATIONS if belongs(operation)}


@pytest.fixture
def walk(emulator, secret_credential):
    return Walk(emulator, secret_credential)


def version_of(identifier):
    return identifier.rstrip("/").split("/")[-1]


def test_secrets_operations_match_the_specification(walk):
    tags = {"owner": "conformance"}
    first = walk.call("SetSecret", "PUT", "/secrets/spec-secret", {"value": "one", "contentType": "text/plain", "tags": tags})
    walk.call("SetSecret", "PUT", "/secrets/spec-secret", {"value": "two", "contentType": "text/plain", "tags": tags})
    walk.call("GetSecret", "GET", f"/secrets/spec-secret/{version_of(first['id'])}")
    walk.call("GetSecret", "GET", "/secrets/spec-secret/")
    walk.call("UpdateSecret", "PATCH", f"/secrets/spec-secret/{version_of(first['id'])}", {"contentType": "text/plain", "tags": tags, "attributes": {"enabled": True}})
    walk.call("GetSecrets", "GET", "/secrets", query={"maxresults": "5"})
    walk.call("GetSecretVersions", "GET", "/secrets/spec-secret/versions")
    walk.call("SetSecret", "PUT", "/secrets/spec-gone", {"value": "x", "contentType": "text/plain", "tags": tags})
    walk.soft_delete_cycle("Secret", "secrets", "spec-gone")
    walk.assert_checked(lambda operation: "Secret" in operation)


def test_keys_operations_match_the_specification(walk, tmp_path):
    tags = {"owner": "conformance"}
    created = walk.call("CreateKey", "POST", "/keys/spec-key/create", {"kty": "RSA", "key_size": 2048, "tags": tags})
    walk.call("CreateKey", "POST", "/keys/spec-key/create", {"kty": "RSA", "key_size": 3072, "tags": tags})
    walk.call("GetKey", "GET", f"/keys/spec-key/{version_of(created['key']['kid'])}")
    walk.call("UpdateKey", "PATCH", f"/keys/spec-key/{version_of(created['key']['kid'])}", {"attributes": {"nbf": 1700000000, "exp": 4102444800}, "tags": tags})
    walk.call("GetKeys", "GET", "/keys")
    walk.call("GetKeyVersions", "GET", "/keys/spec-key/versions")
    walk.call("ImportKey", "PUT", "/keys/spec-imported", {"key": rsa_jwk(tmp_path), "tags": tags})
    walk.soft_delete_cycle("Key", "keys", "spec-imported")
    walk.assert_checked(lambda operation: operation.endswith(("Key", "Keys", "KeyVersions")))


def test_certificates_operations_match_the_specification(walk, tmp_path):
    tags = {"owner": "conformance"}
    policy = {
        "issuer": {"name": "Self"},
        "x509_props": {"subject": "CN=spec.example", "validity_months": 12},
        "key_props": {"kty": "RSA", "key_size": 2048, "exportable": True, "reuse_key": False},
        "secret_props": {"contentType": "application/x-pkcs12"},
    }
    walk.call("CreateCertificate", "POST", "/certificates/spec-cert/create", {"policy": policy, "tags": tags})
    walk.call("GetCertificateOperation", "GET", "/certificates/spec-cert/pending")
    made = walk.call("GetCertificate", "GET", "/certificates/spec-cert/")
    walk.call("GetCertificate", "GET", f"/certificates/spec-cert/{version_of(made['id'])}", allowed_missing=WITHOUT_POLICY)
    walk.call("GetCertificatePolicy", "GET", "/certificates/spec-cert/policy")
    walk.call("UpdateCertificate", "PATCH", f"/certificates/spec-cert/{version_of(made['id'])}", {"tags": tags, "attributes": {"enabled": True}})
    walk.call("GetCertificates", "GET", "/certificates")
    walk.call("GetCertificateVersions", "GET", "/certificates/spec-cert/versions")
    walk.call("ImportCertificate", "POST", "/certificates/spec-imported/import", {"value": pfx_base64(tmp_path), "tags": tags})
    walk.soft_delete_cycle("Certificate", "certificates", "spec-imported")
    walk.assert_checked(lambda operation: "Certificate" in operation)


def test_the_walk_covers_every_operation_of_the_table():
    """Each walk above checks that it ran every operation of its kind; together they are all."""
    kinds = [lambda o: "Secret" in o, lambda o: o.endswith(("Key", "Keys", "KeyVersions")), lambda o: "Certificate" in o]
    assert [o for o in OPERATIONS if not any(kind(o) for kind in kinds)] == []


def test_the_checker_finds_what_it_looks_for():
    """The checks themselves: a wrong type, an unknown field, a bad enum value and a missing
    example field are each reported."""
    assert model_problems({"id": 5}, "SecretBundle", "") == [".id: 5 is not a string"]
    assert model_problems({"surprise": 1}, "SecretBundle", "") == [".surprise: not a field of SecretBundle"]
    assert any("is not one of" in p for p in model_problems({"attributes": {"recoveryLevel": "Forever"}}, "SecretBundle", ""))
    assert not has_field({"attributes": {}}, "attributes.created".split("."))
    assert has_field({"value": [{}, {"id": "x"}]}, "value[].id".split("."))


def rsa_jwk(tmp_path):
    """An RSA key with its private members, as JSON Web Key (base64url, no padding)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()

    def encode(number):
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    public = numbers.public_numbers
    return {"kty": "RSA", "n": encode(public.n), "e": encode(public.e), "d": encode(numbers.d), "p": encode(numbers.p),
            "q": encode(numbers.q), "dp": encode(numbers.dmp1), "dq": encode(numbers.dmq1), "qi": encode(numbers.iqmp)}


def pfx_base64(tmp_path):
    key, cert, pfx = tmp_path / "key.pem", tmp_path / "cert.pem", tmp_path / "cert.pfx"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=spec-imported.example", "-days", "30",
                    "-addext", "keyUsage=critical,digitalSignature,keyEncipherment", "-addext", "extendedKeyUsage=serverAuth,clientAuth",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    subprocess.run(["openssl", "pkcs12", "-export", "-inkey", str(key), "-in", str(cert), "-out", str(pfx), "-passout", "pass:"],
                   check=True, capture_output=True)
    return base64.b64encode(pfx.read_bytes()).decode()
