"""X.509 proxies (SPEC §5.3, checklist rows 100 and 112): verified with ``cryptography``."""

from __future__ import annotations

import datetime
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from vac.adapters import credentials
from vac.errors import CredentialError

NOW = 1_700_000_000
UTC = datetime.timezone.utc


def _write_user_cert(directory, lifetime_days: float = 30, key_mode: int = 0o600,
                     now: int = NOW):
    """A CA-signed user certificate and key: returns (cert_file, key_file, ca_cert)."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    start = datetime.datetime.fromtimestamp(now - 86400, UTC)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(start)
          .not_valid_after(start + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "org"),
                      x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "vac01.example.org")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(2).not_valid_before(start)
            .not_valid_after(datetime.datetime.fromtimestamp(now + lifetime_days * 86400, UTC))
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = os.path.join(directory, "x509cert.pem"), \
        os.path.join(directory, "x509key.pem")
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_file, key_mode)
    return cert_file, key_file, ca


def _parse(pem: str):
    certs = credentials.load_pem_certificates(pem.encode())
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return certs, key


# Checks written with the API of cryptography 36 (EL9): verify_directly_issued_by needs 40,
# not_valid_*_utc needs 42.

def _verify_issued(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """Raise unless ``issuer``'s RSA key signed ``cert``."""
    assert cert.issuer == issuer.subject
    issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                               padding.PKCS1v15(), cert.signature_hash_algorithm)


def _validity(cert: x509.Certificate):
    """(not_valid_before, not_valid_after) as aware UTC datetimes."""
    if hasattr(cert, "not_valid_after_utc"):
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    return (cert.not_valid_before.replace(tzinfo=UTC),
            cert.not_valid_after.replace(tzinfo=UTC))


def test_rfc_proxy_verifies_as_a_chain(tmp_path):
    cert_file, key_file, ca = _write_user_cert(str(tmp_path))
    expires = NOW + 7 * 86400
    pem = credentials.make_proxy(cert_file, key_file, expires=expires, now=NOW,
                                 cn="lhcb-prod")
    (proxy, user), key = _parse(pem)
    assert pem.index("BEGIN CERTIFICATE") < pem.index("BEGIN RSA PRIVATE KEY")
    _verify_issued(proxy, user)
    _verify_issued(user, ca)
    assert proxy.issuer == user.subject
    assert list(proxy.subject)[:-1] == list(user.subject)
    assert proxy.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[-1].value == "lhcb-prod"
    assert _validity(proxy) == (datetime.datetime.fromtimestamp(NOW, UTC),
                                datetime.datetime.fromtimestamp(expires, UTC))
    assert proxy.serial_number == NOW * 100
    assert key.key_size == 2048
    assert key.public_key().public_numbers() == proxy.public_key().public_numbers()
    ku = proxy.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
    assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment \
        and ku.value.key_agreement and not ku.value.key_cert_sign
    pci = proxy.extensions.get_extension_for_oid(credentials.PROXY_CERT_INFO_OID)
    assert pci.critical
    # SEQUENCE { SEQUENCE { OID 1.3.6.1.4.1.3536.1.1.1.9 } }
    assert pci.value.value == bytes.fromhex("300f300d060b2b060104019b5001010109")


def test_proxy_init_style_cn_is_the_serial_and_legacy_proxy(tmp_path):
    cert_file, key_file, _ = _write_user_cert(str(tmp_path))
    (proxy, _), _ = _parse(credentials.make_proxy(cert_file, key_file, expires=NOW + 43200,
                                                  now=NOW))
    assert proxy.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[-1].value == \
        str(NOW * 100)
    (legacy, user), _ = _parse(credentials.make_proxy(cert_file, key_file,
                                                      expires=NOW + 43200, now=NOW,
                                                      cn="ignored", legacy=True))
    _verify_issued(legacy, user)
    assert legacy.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[-1].value == \
        "limited proxy"
    oids = [e.oid for e in legacy.extensions]
    assert credentials.PROXY_CERT_INFO_OID not in oids and ExtensionOID.KEY_USAGE in oids


def test_refuses_when_the_certificate_expires_first(tmp_path):
    cert_file, key_file, _ = _write_user_cert(str(tmp_path), lifetime_days=1)
    with pytest.raises(CredentialError, match="expires before given expiration time"):
        credentials.make_proxy(cert_file, key_file, expires=NOW + 2 * 86400, now=NOW)
    with pytest.raises(CredentialError, match="not in the future"):
        credentials.make_proxy(cert_file, key_file, expires=NOW - 1, now=NOW)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_refuses_readable_keys(tmp_path, mode):
    cert_file, key_file, _ = _write_user_cert(str(tmp_path), key_mode=mode)
    with pytest.raises(CredentialError, match="readable by group or others"):
        credentials.make_proxy(cert_file, key_file, expires=NOW + 3600, now=NOW)


def test_missing_and_garbage_files(tmp_path):
    cert_file, key_file, _ = _write_user_cert(str(tmp_path))
    with pytest.raises(CredentialError, match="cannot read"):
        credentials.make_proxy(str(tmp_path / "nope.pem"), key_file, expires=NOW + 1, now=NOW)
    with open(cert_file, "w") as f:
        f.write("not a certificate")
    with pytest.raises(CredentialError, match="certificate"):
        credentials.make_proxy(cert_file, key_file, expires=NOW + 1, now=NOW)


def test_der_oid_encoding():
    assert credentials.der_oid("1.3.6.1.5.5.7.1.14") == bytes.fromhex("06082b0601050507010e")


def test_openssl_accepts_the_rfc_proxy(tmp_path):
    """Independent check: OpenSSL's RFC 3820 path validation (-allow_proxy_certs)."""
    import shutil
    import subprocess
    import time
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    now = int(time.time())
    cert_file, key_file, ca = _write_user_cert(str(tmp_path), now=now)
    pem = credentials.make_proxy(cert_file, key_file, expires=now + 3600, now=now,
                                 cn="lhcb-prod")
    (tmp_path / "proxy.pem").write_text(pem)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    proc = subprocess.run(["openssl", "verify", "-allow_proxy_certs", "-CAfile",
                           str(tmp_path / "ca.pem"), "-untrusted", cert_file,
                           str(tmp_path / "proxy.pem")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr


def test_vac_proxy_init_prints_a_12_hour_proxy(tmp_path, capsys):
    import argparse
    import time
    from vac.cli import proxy_cmd
    now = int(time.time())
    cert_file, key_file, _ = _write_user_cert(str(tmp_path), now=now)
    args = argparse.Namespace(cert=cert_file, key=key_file, legacy_proxy=False)
    assert proxy_cmd.proxy_init(args) == 0
    (proxy, _), _ = _parse(capsys.readouterr().out)
    before, after = _validity(proxy)
    lifetime = after - before
    assert lifetime == datetime.timedelta(seconds=43200)
    assert proxy_cmd.proxy_init(argparse.Namespace(cert=None, key=key_file,
                                                   legacy_proxy=False)) == 2
    assert "requires the --cert/-c option!" in capsys.readouterr().err
