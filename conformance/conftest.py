"""Starts akvfs-emulator for the conformance suite and points Microsoft's SDKs at it.

The SDKs run unmodified: they are only given the emulator's authority host, a CA bundle that adds
the emulator's CA to the system CAs, vault URLs on *.vault.localhost (added to /etc/hosts, which
Python's resolver needs), and `disable_instance_discovery`, since MSAL would otherwise ask
login.microsoftonline.com about a non-Microsoft authority.
"""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import urllib.request
import ssl

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TENANT_ID = "8c6f4d2b-3a1e-4f5d-9b7c-2e1a0d3c4b5f"
SECRET_APP = {"clientId": "c0ffee00-0000-4000-8000-000000000001", "clientSecret": "conformance-secret"}
WORKLOAD_APP = {"clientId": "c0ffee00-0000-4000-8000-000000000002", "subject": "system:serviceaccount:conformance:reader"}
CERT_APP = {"clientId": "c0ffee00-0000-4000-8000-000000000003"}
USER_ASSIGNED = {"clientId": "c0ffee00-0000-4000-8000-0000000000a1", "objectId": "c0ffee00-0000-4000-8000-0000000000b1"}
VAULTS = ["conformance", "conf-keys", "conf-certs", "conf-pages", "conf-retry", "conf-identity", "conf-timing", "conf-spec"]


def emulator_binary():
    explicit = os.environ.get("AKVFS_EMULATOR_BIN")
    if explicit:
        return explicit
    for candidate in (ROOT / ".build" / "debug" / "akvfs-emulator", ROOT / ".build" / "release" / "akvfs-emulator"):
        if candidate.exists():
            return str(candidate)
    pytest.exit("akvfs-emulator is not built; run `swift build` first or set AKVFS_EMULATOR_BIN", returncode=2)


def ensure_hosts_entries(names):
    """Python's resolver (unlike curl) does not map *.localhost to loopback on stock Debian."""
    hosts = pathlib.Path("/etc/hosts")
    present = hosts.read_text()
    missing = [name for name in names if f" {name}\n" not in present and not present.rstrip().endswith(f" {name}")]
    if not missing:
        return
    try:
        with hosts.open("a") as handle:
            handle.write("\n# akvfs conformance suite\n")
            for name in missing:
                handle.write(f"127.0.0.1 {name}\n")
    except PermissionError:
        pytest.exit(f"add these names to /etc/hosts (needs root): {' '.join(missing)}", returncode=2)


def system_ca_bundle():
    for path in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if os.path.exists(path):
            return pathlib.Path(path).read_text()
    return ""


class Emulator:
    def __init__(self, info, workdir):
        self.info = info
        self.workdir = workdir
        self.port = info["port"]
        self.authority = info["authorityHost"]
        self.tenant_id = info["tenantId"]
        self.imds = info["imdsEndpoint"]
        self.admin = info["adminURL"]
        self.ca_bundle = str(workdir / "ca-bundle.pem")
        context = ssl.create_default_context(cafile=self.ca_bundle)
        self._ssl = context

    def vault_url(self, name):
        return f"https://{name}.vault.localhost:{self.port}"

    def admin_call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.admin}{path}", data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=self._ssl) as response:
            payload = response.read()
            return json.loads(payload) if payload else None

    def requests(self, vault=None, path_prefix=None):
        entries = self.admin_call("GET", "/requests")["requests"]
        if vault is not None:
            entries = [e for e in entries if e.get("vault") == vault]
        if path_prefix is not None:
            entries = [e for e in entries if e["path"].startswith(path_prefix)]
        return entries


@pytest.fixture(scope="session")
def emulator():
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="akvfs-conformance-"))
    seed = {
        "tenantId": TENANT_ID,
        "identities": [
            {"name": "secret-app", "type": "servicePrincipal", "clientId": SECRET_APP["clientId"], "clientSecret": SECRET_APP["clientSecret"]},
            {"name": "workload-app", "type": "servicePrincipal", "clientId": WORKLOAD_APP["clientId"], "federatedSubjects": [WORKLOAD_APP["subject"]]},
            {"name": "cert-app", "type": "servicePrincipal", "clientId": CERT_APP["clientId"]},
            {"name": "node", "type": "managedIdentity", "systemAssigned": True},
            {"name": "uami", "type": "managedIdentity", "clientId": USER_ASSIGNED["clientId"], "objectId": USER_ASSIGNED["objectId"]},
        ],
        "vaults": [{"name": name} for name in VAULTS],
    }
    seed_file = workdir / "seed.json"
    seed_file.write_text(json.dumps(seed))
    ca_file = workdir / "ca.pem"
    process = subprocess.Popen(
        [emulator_binary(), "--port", "0", "--imds-port", "0", "--ca-out", str(ca_file), "--seed", str(seed_file), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=open(workdir / "emulator.log", "w"),
        text=True,
    )
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        pytest.exit(f"akvfs-emulator did not start:\n{(workdir / 'emulator.log').read_text()}", returncode=2)
    info = json.loads(line)
    (workdir / "ca-bundle.pem").write_text(system_ca_bundle() + "\n" + ca_file.read_text())
    ensure_hosts_entries([f"{name}.vault.localhost" for name in VAULTS])
    # Sync SDK clients (requests) read REQUESTS_CA_BUNDLE.
    os.environ["REQUESTS_CA_BUNDLE"] = str(workdir / "ca-bundle.pem")
    try:
        yield Emulator(info, workdir)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        shutil.rmtree(workdir, ignore_errors=True)
        assert code == 0, "akvfs-emulator did not exit cleanly on SIGTERM"


@pytest.fixture(autouse=True)
def clean_faults(emulator):
    emulator.admin_call("DELETE", "/faults")
    yield
    emulator.admin_call("DELETE", "/faults")


@pytest.fixture(scope="session")
def secret_credential(emulator):
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(
        emulator.tenant_id,
        SECRET_APP["clientId"],
        SECRET_APP["clientSecret"],
        authority=emulator.authority,
        disable_instance_discovery=True,
    )
