"""Microsoft's SDKs through the service's timing: a delete and a recovery that take a while (the
SDKs' pollers must wait them out), Key Vault's own throttling (the SDKs' retry policy must honour
Retry-After), and empty pages in the middle of a listing."""
import pytest
from azure.keyvault.secrets import SecretClient

VAULT = "conf-timing"


@pytest.fixture
def timing(emulator):
    def apply(**settings):
        return emulator.admin_call("PUT", f"/vaults/{VAULT}/timing", settings)

    yield apply
    apply()


@pytest.fixture
def client(emulator, secret_credential):
    return SecretClient(emulator.vault_url(VAULT), secret_credential)


def statuses(emulator, path):
    return [e["status"] for e in emulator.requests(vault=VAULT, path_prefix=path)]


def test_pollers_wait_out_a_slow_delete_and_recovery(emulator, timing, client):
    timing(deleteSeconds=5, recoverSeconds=5)
    client.set_secret("slow-delete", "kept")
    poller = client.begin_delete_secret("slow-delete")
    poller.wait()  # result() does not wait; wait() polls until the delete has completed
    assert poller.result().name == "slow-delete"
    assert client.get_deleted_secret("slow-delete").recovery_id.endswith("/deletedsecrets/slow-delete")
    assert 404 in statuses(emulator, "/deletedsecrets/slow-delete"), "the poller saw the delete under way"

    client.begin_recover_deleted_secret("slow-delete").wait()
    assert client.get_secret("slow-delete").value == "kept"
    assert 404 in statuses(emulator, "/secrets/slow-delete"), "the poller saw the recovery under way"


def test_retry_policy_honours_the_services_throttling(emulator, timing, client):
    client.set_secret("busy", "value")
    timing(throttleScale=0.001)  # 4 reads per 10 s
    for _ in range(8):
        assert client.get_secret("busy").value == "value"
    throttled = [e for e in emulator.requests(vault=VAULT, path_prefix="/secrets/busy") if e["status"] == 429]
    assert throttled, "the SDK was throttled and retried"


def test_listing_through_empty_middle_pages(emulator, timing, client):
    names = {f"paged-{n}" for n in range(7)}
    for name in names:
        client.set_secret(name, "v")
    timing(emptyMiddlePages=True)
    listed = {p.name for p in client.list_properties_of_secrets(max_page_size=2)}
    assert names <= listed
