"""azure-keyvault-keys against the emulator."""
import pytest
from azure.keyvault.keys import KeyClient, KeyType
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@pytest.fixture
def client(emulator, secret_credential):
    return KeyClient(emulator.vault_url("conf-keys"), secret_credential)


@pytest.mark.parametrize("size", [2048, 3072, 4096])
def test_rsa_keys(client, size):
    created = client.create_rsa_key(f"rsa-{size}", size=size)
    assert created.key_type == KeyType.rsa
    fetched = client.get_key(f"rsa-{size}")
    assert len(fetched.key.n) * 8 == size
    assert fetched.key.d is None
    assert fetched.id.startswith(client.vault_url)


@pytest.mark.parametrize("curve", ["P-256", "P-384", "P-521"])
def test_ec_keys(client, curve):
    client.create_ec_key(f"ec-{curve.lower()}", curve=curve)
    fetched = client.get_key(f"ec-{curve.lower()}")
    assert fetched.key_type == KeyType.ec
    assert fetched.key.crv == curve
    assert fetched.key.x and fetched.key.y and fetched.key.d is None


def test_import_list_and_versions(client):
    from azure.keyvault.keys import JsonWebKey

    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.private_numbers()
    jwk = JsonWebKey(
        kty="EC",
        crv="P-256",
        x=numbers.public_numbers.x.to_bytes(32, "big"),
        y=numbers.public_numbers.y.to_bytes(32, "big"),
        d=numbers.private_value.to_bytes(32, "big"),
    )
    imported = client.import_key("imported-ec", jwk)
    assert imported.key.x == jwk.x
    client.create_ec_key("imported-ec", curve="P-256")
    assert len(list(client.list_properties_of_key_versions("imported-ec"))) == 2
    assert "imported-ec" in {p.name for p in client.list_properties_of_keys()}
