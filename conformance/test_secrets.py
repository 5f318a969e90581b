"""azure-keyvault-secrets against the emulator."""
import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient


@pytest.fixture
def client(emulator, secret_credential):
    return SecretClient(emulator.vault_url("conformance"), secret_credential)


def test_set_get_and_versions(client):
    first = client.set_secret("db-password", "first", content_type="text/plain", tags={"team": "a"})
    second = client.set_secret("db-password", "second")
    assert client.get_secret("db-password").value == "second"
    old = client.get_secret("db-password", first.properties.version)
    assert old.value == "first"
    assert old.properties.content_type == "text/plain"
    assert old.properties.tags == {"team": "a"}
    versions = {p.version for p in client.list_properties_of_secret_versions("db-password")}
    assert versions == {first.properties.version, second.properties.version}
    assert second.properties.created_on is not None
    assert second.properties.vault_url.startswith("https://conformance.vault.localhost:")


def test_list_across_several_pages(emulator, secret_credential):
    client = SecretClient(emulator.vault_url("conf-pages"), secret_credential)
    for index in range(12):
        client.set_secret(f"paged-{index:02d}", str(index))
    before = len(emulator.requests(vault="conf-pages", path_prefix="/secrets"))
    names = [p.name for p in client.list_properties_of_secrets(max_page_size=5)]
    assert sorted(names) == [f"paged-{index:02d}" for index in range(12)]
    listing = [e for e in emulator.requests(vault="conf-pages") if e["path"] == "/secrets" and e["method"] == "GET"]
    pages = [e for e in listing if e["status"] == 200]
    assert len(pages) == 3, "12 secrets at 5 per page are 3 pages"
    assert all("maxresults=5" in (e["query"] or "") for e in pages)


def test_disabled_secret(client):
    client.set_secret("switched-off", "x", enabled=False)
    with pytest.raises(HttpResponseError) as failure:
        client.get_secret("switched-off")
    assert failure.value.status_code == 403
    assert "SecretDisabled" in str(failure.value)
    names = [p.name for p in client.list_properties_of_secrets()]
    assert "switched-off" in names
    props = client.update_secret_properties("switched-off", enabled=True)
    assert props.enabled is True
    assert client.get_secret("switched-off").value == "x"


def test_not_found(client):
    with pytest.raises(ResourceNotFoundError) as failure:
        client.get_secret("does-not-exist")
    assert "SecretNotFound" in str(failure.value)


def test_delete_recover_purge(client):
    client.set_secret("to-delete", "bye")
    deleted = client.begin_delete_secret("to-delete").result()
    assert deleted.name == "to-delete"
    assert deleted.recovery_id.endswith("/deletedsecrets/to-delete")
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("to-delete")
    assert client.get_deleted_secret("to-delete").name == "to-delete"
    with pytest.raises(ResourceExistsError):
        client.set_secret("to-delete", "again")
    client.begin_recover_deleted_secret("to-delete").result()
    assert client.get_secret("to-delete").value == "bye"
    client.begin_delete_secret("to-delete").result()
    client.purge_deleted_secret("to-delete")
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("to-delete")
    assert client.set_secret("to-delete", "new").value == "new"


def test_throttling_is_retried_after_retry_after(emulator, secret_credential):
    client = SecretClient(emulator.vault_url("conf-retry"), secret_credential)
    client.set_secret("retried", "made-it")
    emulator.admin_call(
        "POST", "/faults", {"method": "GET", "vault": "conf-retry", "pathPrefix": "/secrets/retried", "count": 1, "status": 429, "retryAfter": 1}
    )
    assert client.get_secret("retried").value == "made-it"
    statuses = [e["status"] for e in emulator.requests(vault="conf-retry", path_prefix="/secrets/retried") if e["method"] == "GET"]
    assert statuses[-2:] == [429, 200]
