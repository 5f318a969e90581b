"""Each credential type of azure-identity obtains a token the emulated Key Vault accepts."""
import os

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, ManagedIdentityCredential, WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient

from conftest import SECRET_APP, USER_ASSIGNED, WORKLOAD_APP


def read_back(emulator, credential, name):
    client = SecretClient(emulator.vault_url("conf-identity"), credential)
    client.set_secret(name, f"value-of-{name}")
    return client.get_secret(name)


def last_identity(emulator, path):
    entries = [e for e in emulator.requests(vault="conf-identity") if e["path"].startswith(path) and e["status"] == 200]
    return entries[-1]["identity"]


def test_client_secret(emulator, secret_credential):
    secret = read_back(emulator, secret_credential, "via-client-secret")
    assert secret.value == "value-of-via-client-secret"
    assert last_identity(emulator, "/secrets/via-client-secret")["clientId"] == SECRET_APP["clientId"]


def test_wrong_client_secret_is_refused(emulator):
    credential = ClientSecretCredential(
        emulator.tenant_id, SECRET_APP["clientId"], "not-the-secret", authority=emulator.authority, disable_instance_discovery=True
    )
    with pytest.raises(ClientAuthenticationError) as failure:
        SecretClient(emulator.vault_url("conf-identity"), credential).get_secret("anything")
    assert "AADSTS7000215" in str(failure.value)


def test_workload_identity_with_token_file(emulator, tmp_path):
    minted = emulator.admin_call("POST", "/service-account-tokens", {"subject": WORKLOAD_APP["subject"]})
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(minted["token"] + "\n")  # kubelet-projected files may end in a newline
    credential = WorkloadIdentityCredential(
        tenant_id=emulator.tenant_id,
        client_id=WORKLOAD_APP["clientId"],
        token_file_path=str(token_file),
        authority=emulator.authority,
    )
    assert read_back(emulator, credential, "via-workload-identity").value == "value-of-via-workload-identity"
    assert last_identity(emulator, "/secrets/via-workload-identity")["clientId"] == WORKLOAD_APP["clientId"]


def test_managed_identity_through_imds(emulator, monkeypatch):
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", emulator.imds)
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    system = read_back(emulator, ManagedIdentityCredential(), "via-system-assigned")
    assert system.value == "value-of-via-system-assigned"
    assert last_identity(emulator, "/secrets/via-system-assigned")["name"] == "node"

    user = read_back(emulator, ManagedIdentityCredential(client_id=USER_ASSIGNED["clientId"]), "via-user-assigned")
    assert user.value == "value-of-via-user-assigned"
    assert last_identity(emulator, "/secrets/via-user-assigned")["objectId"] == USER_ASSIGNED["objectId"]
    imds_calls = [e for e in emulator.requests() if e["endpoint"] == "imds"]
    assert imds_calls, "the SDK reached the emulator's IMDS endpoint"


def test_managed_identity_through_app_service(emulator, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", emulator.info["appServiceEndpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", "conformance-header")
    secret = read_back(emulator, ManagedIdentityCredential(), "via-app-service")
    assert secret.value == "value-of-via-app-service"
