"""A test CA, a signer and a TLS server certificate made with ``cryptography``; signed images."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.x509.oid import NameOID

BLOCK = 32 * 1024
SIGNER_DN = "/DC=ch/DC=cern/OU=computers/CN=cvm-sign01.cern.ch"


def _name(*pairs) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert(subject, issuer, key, issuer_key, *, ca: bool, san=None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Pki:
    ca_dir: str
    ca_file: str
    signer_key: rsa.RSAPrivateKey
    signer_cert: x509.Certificate
    rogue_key: rsa.RSAPrivateKey
    rogue_cert: x509.Certificate        # same DN shape, issued by an untrusted CA
    other_cert: x509.Certificate        # trusted CA, other DN
    other_key: rsa.RSAPrivateKey
    server_cert_file: str
    server_key_file: str


def make_pki(directory: str) -> Pki:
    """CA in ``directory``/certificates plus signer, rogue, other and server certificates."""
    ca_key, rogue_ca_key = _key(), _key()
    ca_name = _name((NameOID.DOMAIN_COMPONENT, "ch"), (NameOID.COMMON_NAME, "Vac Test CA"))
    ca = _cert(ca_name, ca_name, ca_key, ca_key, ca=True)
    rogue_name = _name((NameOID.COMMON_NAME, "Rogue CA"))
    signer_name = _name((NameOID.DOMAIN_COMPONENT, "ch"), (NameOID.DOMAIN_COMPONENT, "cern"),
                        (NameOID.ORGANIZATIONAL_UNIT_NAME, "computers"),
                        (NameOID.COMMON_NAME, "cvm-sign01.cern.ch"))
    signer_key, rogue_key, other_key, server_key = _key(), _key(), _key(), _key()
    signer = _cert(signer_name, ca_name, signer_key, ca_key, ca=False)
    rogue = _cert(signer_name, rogue_name, rogue_key, rogue_ca_key, ca=False)
    other = _cert(_name((NameOID.COMMON_NAME, "someone.example.org")), ca_name, other_key,
                  ca_key, ca=False)
    server = _cert(_name((NameOID.COMMON_NAME, "127.0.0.1")), ca_name, server_key, ca_key,
                   ca=False, san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    ca_dir = os.path.join(directory, "certificates")
    os.makedirs(ca_dir, exist_ok=True)
    ca_file = os.path.join(ca_dir, "vac-test-ca.pem")
    with open(ca_file, "wb") as f:
        f.write(pem(ca))
    server_cert_file = os.path.join(directory, "server.pem")
    server_key_file = os.path.join(directory, "server.key")
    with open(server_cert_file, "wb") as f:
        f.write(pem(server))
    with open(server_key_file, "wb") as f:
        f.write(server_key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption()))
    return Pki(ca_dir, ca_file, signer_key, signer, rogue_key, rogue, other, other_key,
               server_cert_file, server_key_file)


def _pad(obj_text: str) -> bytes:
    raw = obj_text.encode()
    assert len(raw) < BLOCK
    return raw + b"\0" * (BLOCK - len(raw))


def signed_image(path: str, key, cert, payload_bytes: int = 100_000,
                 tamper: bool = False) -> str:
    """Write a CernVM-style signed image (payload | metadata | signature) to ``path``."""
    payload = bytes((i * 7) % 251 for i in range(payload_bytes))
    # the metadata block with the stray comma the original had to work around
    meta = _pad('{"ucernvm-version": "2.7.7", "branch": "devel-HEAD",\n}')
    digest = hashlib.sha256(payload + meta).digest()
    signature = key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    block = json.dumps({"certificate": base64.b64encode(pem(cert)).decode(),
                        "signature": base64.b64encode(signature).decode()})
    if tamper:
        payload = b"X" + payload[1:]
    with open(path, "wb") as f:
        f.write(payload + meta + _pad(block))
    return path
