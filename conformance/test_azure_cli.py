"""The real Azure CLI (azure-cli, pinned in azure-cli-requirements.txt, in its own virtual
environment) uses the emulator as a cloud: it registers it from the endpoints document, logs in as
a service principal and as a managed identity, and runs secret, key and certificate commands.
Then akvfs signs in through it (`--credential azure-cli`), with `akvfs get` and a real mount.

Each test runs az as docs/emulator.md, "Using the Azure CLI", tells users to.
"""
import json
import os
import pathlib
import subprocess
import time

import pytest

from conftest import ROOT, SECRET_APP

CLOUD = "AkvfsEmulator"


def installed(variable, default, how):
    """A program the tests run: $variable if set, else default; fails saying how to get it."""
    candidate = pathlib.Path(os.environ.get(variable) or default)
    if not candidate.exists():
        pytest.fail(f"{candidate} is missing; {how} (or set {variable})")
    return candidate


def az_binary():
    return installed("AKVFS_AZ_BIN", ROOT / ".venv-azure-cli" / "bin" / "az", "run scripts/bootstrap to install the Azure CLI")


def akvfs_binary():
    return installed("AKVFS_BIN", ROOT / ".build" / "debug" / "akvfs", "run `swift build` first")


class AzureCLI:
    """az with its own configuration directory, trusting the emulator's CA."""

    def __init__(self, emulator, config_dir):
        self.emulator = emulator
        self.environment = {
            "PATH": f"{az_binary().parent}:/usr/bin:/bin",
            "HOME": str(config_dir),
            "AZURE_CONFIG_DIR": str(config_dir),
            "REQUESTS_CA_BUNDLE": emulator.ca_bundle,
            # MSAL would ask login.microsoftonline.com whether the emulator is a known authority.
            "AZURE_CORE_INSTANCE_DISCOVERY": "false",
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
        }

    def run(self, *arguments, check=True, extra_environment=None):
        environment = dict(self.environment, **(extra_environment or {}))
        result = subprocess.run([str(az_binary()), *arguments], env=environment, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            pytest.fail(f"az {' '.join(arguments[:3])} failed ({result.returncode}):\n{result.stderr}")
        return result

    def json(self, *arguments, **options):
        return json.loads(self.run(*arguments, "--output", "json", **options).stdout)

    def register_cloud(self):
        self.run("cloud", "register", "--name", CLOUD, "--endpoint-resource-manager", f"https://localhost:{self.emulator.port}/")
        self.run("cloud", "set", "--name", CLOUD)

    def login_service_principal(self):
        return self.json(
            "login", "--service-principal", "--username", SECRET_APP["clientId"], "--password", SECRET_APP["clientSecret"],
            "--tenant", self.emulator.tenant_id,
        )


@pytest.fixture
def az(emulator, tmp_path):
    cli = AzureCLI(emulator, tmp_path / "azure")
    cli.register_cloud()
    return cli


def test_cloud_registration_reads_the_endpoints_document(emulator, az):
    cloud = az.json("cloud", "show", "--name", CLOUD)
    assert cloud["endpoints"]["activeDirectory"] == f"https://localhost:{emulator.port}"
    assert cloud["endpoints"]["resourceManager"] == f"https://localhost:{emulator.port}/"
    assert cloud["endpoints"]["activeDirectoryResourceId"] == "https://management.core.windows.net/"
    assert cloud["suffixes"]["keyvaultDns"] == f".vault.localhost:{emulator.port}"
    paths = [e["path"] for e in emulator.requests() if e["endpoint"] == "arm"]
    assert "//metadata/endpoints" in paths, "az asks with a doubled slash when the endpoint ends in one"


def test_service_principal_login_lists_the_emulated_subscription(emulator, az):
    accounts = az.login_service_principal()
    assert [(a["name"], a["tenantId"], a["state"]) for a in accounts] == [("akvfs emulator", emulator.tenant_id, "Enabled")]
    assert accounts[0]["user"] == {"name": SECRET_APP["clientId"], "type": "servicePrincipal"}
    assert az.json("account", "show")["id"] == accounts[0]["id"]


def test_wrong_secret_is_refused_with_entra_s_error(az):
    result = az.run(
        "login", "--service-principal", "--username", SECRET_APP["clientId"], "--password", "not-the-secret",
        "--tenant", az.emulator.tenant_id, check=False,
    )
    assert result.returncode != 0
    assert "AADSTS7000215" in result.stderr
    assert "not-the-secret" not in result.stderr


def test_secret_commands(az):
    az.login_service_principal()
    vault = ("--vault-name", "conformance")
    created = az.json("keyvault", "secret", "set", *vault, "--name", "from-az", "--value", "az-value-1")
    assert created["value"] == "az-value-1"
    assert created["id"].startswith(f"https://conformance.vault.localhost:{az.emulator.port}/secrets/from-az/")
    az.run("keyvault", "secret", "set", *vault, "--name", "from-az", "--value", "az-value-2")
    assert az.json("keyvault", "secret", "show", *vault, "--name", "from-az")["value"] == "az-value-2"
    assert az.json("keyvault", "secret", "show", "--id", created["id"])["value"] == "az-value-1"
    versions = az.json("keyvault", "secret", "list-versions", *vault, "--name", "from-az")
    assert len(versions) == 2
    assert "from-az" in [item["name"] for item in az.json("keyvault", "secret", "list", *vault)]

    az.run("keyvault", "secret", "delete", *vault, "--name", "from-az")
    deleted = az.json("keyvault", "secret", "show-deleted", *vault, "--name", "from-az")
    assert deleted["recoveryId"].endswith("/deletedsecrets/from-az")
    az.run("keyvault", "secret", "recover", *vault, "--name", "from-az")
    assert az.json("keyvault", "secret", "show", *vault, "--name", "from-az")["value"] == "az-value-2"

    missing = az.run("keyvault", "secret", "show", *vault, "--name", "never-set", check=False)
    assert missing.returncode != 0 and "SecretNotFound" in missing.stderr


def test_key_commands(az):
    az.login_service_principal()
    vault = ("--vault-name", "conf-keys")
    rsa = az.json("keyvault", "key", "create", *vault, "--name", "az-rsa", "--kty", "RSA", "--size", "3072")
    assert rsa["key"]["kty"] == "RSA" and len(rsa["key"]["n"]) > 300
    ec = az.json("keyvault", "key", "create", *vault, "--name", "az-ec", "--kty", "EC", "--curve", "P-256")
    assert ec["key"]["crv"] == "P-256"
    assert az.json("keyvault", "key", "show", *vault, "--name", "az-ec")["key"]["kid"] == ec["key"]["kid"]
    names = [item["name"] for item in az.json("keyvault", "key", "list", *vault)]
    assert {"az-rsa", "az-ec"} <= set(names)


def test_certificate_commands(az, tmp_path):
    az.login_service_principal()
    vault = ("--vault-name", "conf-certs")
    policy = az.run("keyvault", "certificate", "get-default-policy").stdout
    az.run("keyvault", "certificate", "create", *vault, "--name", "az-made", "--policy", policy)
    made = az.json("keyvault", "certificate", "show", *vault, "--name", "az-made")
    assert made["policy"]["x509CertificateProperties"]["subject"] == "CN=CLIGetDefaultPolicy"
    assert made["attributes"]["expires"] is not None
    downloaded = tmp_path / "az-made.pem"
    az.run("keyvault", "certificate", "download", *vault, "--name", "az-made", "--file", str(downloaded), "--encoding", "PEM")
    assert downloaded.read_text().startswith("-----BEGIN CERTIFICATE-----")

    # Import as users do: a PEM file with its key. Without a policy naming PEM, az sends no content
    # type and the service reads the file as PKCS#12, so users pass one.
    pem = tmp_path / "imported.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=imported.example", "-days", "30",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True,
    )
    pem.write_text((tmp_path / "key.pem").read_text() + (tmp_path / "cert.pem").read_text())
    unnamed = az.run("keyvault", "certificate", "import", *vault, "--name", "az-imported", "--file", str(pem), check=False)
    assert unnamed.returncode != 0 and "PKCS#12" in unnamed.stderr
    pem_policy = json.dumps({"secret_properties": {"content_type": "application/x-pem-file"}})
    imported = az.json("keyvault", "certificate", "import", *vault, "--name", "az-imported", "--file", str(pem), "--policy", pem_policy)
    assert imported["policy"]["x509CertificateProperties"]["subject"] == "CN=imported.example"
    assert az.json("keyvault", "secret", "show", *vault, "--name", "az-imported")["contentType"] == "application/x-pem-file"


def test_managed_identity_login(emulator, az):
    # az's managed identity reads IMDS at this variable's address; without it, on every command,
    # az goes to the real 169.254.169.254.
    imds = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": emulator.imds}
    accounts = az.json("login", "--identity", extra_environment=imds)
    assert accounts[0]["user"]["assignedIdentityInfo"] == "MSI"
    assert accounts[0]["name"] == "akvfs emulator"
    az.run("keyvault", "secret", "set", "--vault-name", "conf-identity", "--name", "az-mi", "--value", "via-mi", extra_environment=imds)
    shown = az.json("keyvault", "secret", "show", "--vault-name", "conf-identity", "--name", "az-mi", extra_environment=imds)
    assert shown["value"] == "via-mi"
    writer = [e for e in emulator.requests(vault="conf-identity") if e["path"].startswith("/secrets/az-mi") and e["method"] == "PUT"]
    assert writer[-1]["identity"]["name"] == "node"


def akvfs_environment(az):
    return dict(
        az.environment,
        AKVFS_CA_FILE=str(az.emulator.workdir / "ca.pem"),
        AKVFS_IMDS_ENDPOINT="http://127.0.0.1:9",
        AKVFS_CREDENTIAL="azure-cli",
    )


def test_akvfs_signs_in_through_the_azure_cli(emulator, az, tmp_path):
    az.login_service_principal()
    az.run("keyvault", "secret", "set", "--vault-name", "conformance", "--name", "for-akvfs", "--value", "read-by-akvfs")
    environment = akvfs_environment(az)
    vault = emulator.vault_url("conformance")
    got = subprocess.run([str(akvfs_binary()), "get", vault, "secrets/for-akvfs"], env=environment, capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    assert got.stdout == "read-by-akvfs"
    reader = [e for e in emulator.requests(vault="conformance") if e["path"].startswith("/secrets/for-akvfs") and e["method"] == "GET"]
    assert reader[-1]["identity"]["clientId"] == SECRET_APP["clientId"]

    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    # akvfs mount serves in the foreground until unmounted.
    log = tmp_path / "akvfs.log"
    with open(log, "w") as errors:
        daemon = subprocess.Popen([str(akvfs_binary()), "mount", vault, str(mountpoint)], env=environment, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        for _ in range(300):
            if os.path.ismount(mountpoint) or daemon.poll() is not None:
                break
            time.sleep(0.1)
        assert os.path.ismount(mountpoint), log.read_text()
        assert (mountpoint / "secrets" / "for-akvfs").read_text() == "read-by-akvfs"
        assert "for-akvfs" in os.listdir(mountpoint / "secrets")
    finally:
        subprocess.run([str(akvfs_binary()), "unmount", str(mountpoint)], env=environment, capture_output=True, timeout=30)
        try:
            status = daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            raise
    assert status == 0, log.read_text()
    assert not os.path.ismount(mountpoint)


def test_akvfs_says_what_the_azure_cli_said(emulator, tmp_path):
    cli = AzureCLI(emulator, tmp_path / "signed-out")
    cli.register_cloud()
    got = subprocess.run(
        [str(akvfs_binary()), "get", emulator.vault_url("conformance"), "secrets/anything"],
        env=akvfs_environment(cli), capture_output=True, text=True, timeout=60,
    )
    assert got.returncode != 0
    assert "az login" in got.stderr, got.stderr
    assert "Traceback" not in got.stderr and "unexpected error" not in got.stderr
