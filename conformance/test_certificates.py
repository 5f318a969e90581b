"""azure-keyvault-certificates against the emulator, and the backing secrets they create."""
import base64
import datetime

import pytest
from azure.keyvault.certificates import CertificateClient, CertificateContentType, CertificatePolicy
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


@pytest.fixture
def clients(emulator, secret_credential):
    url = emulator.vault_url("conf-certs")
    return CertificateClient(url, secret_credential), SecretClient(url, secret_credential)


def public_bytes(key):
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_create_with_default_policy(clients):
    certificates, secrets = clients
    certificate = certificates.begin_create_certificate("default-policy", CertificatePolicy.get_default()).result()
    assert certificate.name == "default-policy"
    assert certificate.policy.issuer_name == "Self"
    leaf = x509.load_der_x509_certificate(certificate.cer)
    assert leaf.subject.rfc4514_string() == "CN=DefaultPolicy"

    backing = secrets.get_secret("default-policy")
    assert backing.properties.managed is True
    assert backing.properties.key_id == certificate.key_id
    assert backing.properties.content_type == CertificateContentType.pkcs12
    key, cert, extra = pkcs12.load_key_and_certificates(base64.b64decode(backing.value), None)
    assert cert == leaf
    assert public_bytes(key) == leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert extra == []
    assert certificates.get_certificate_policy("default-policy").content_type == CertificateContentType.pkcs12


def test_import_pfx(clients):
    certificates, secrets = clients
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imported.conformance.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pfx = pkcs12.serialize_key_and_certificates(b"imported", key, cert, None, serialization.BestAvailableEncryption(b"pfx-password"))
    imported = certificates.import_certificate("imported-pfx", pfx, password="pfx-password")
    assert x509.load_der_x509_certificate(imported.cer) == cert
    assert [v.version for v in certificates.list_properties_of_certificate_versions("imported-pfx")] == [imported.properties.version]

    backing = secrets.get_secret("imported-pfx")
    opened_key, opened_cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(backing.value), b"")
    assert opened_cert == cert
    assert public_bytes(opened_key) == public_bytes(key)
    assert "imported-pfx" in {p.name for p in certificates.list_properties_of_certificates()}
