"""CernVM image signature verification with ``cryptography`` (SPEC §3.6, bug B2).

Layout of a signed image: ... | metadata block (32 KiB) | signature block (32 KiB).
Both blocks are NUL-padded JSON. The signature is RSA PKCS#1 v1.5 over SHA-256 of
everything before the signature block; the signing certificate must chain to a CA in
the CA directory (``/etc/grid-security/certificates``).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from typing import List, Optional

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.x509.oid import NameOID

from vac.adapters.credentials import load_pem_certificates

log = logging.getLogger(__name__)

BLOCK = 32 * 1024
MIN_IMAGE_BYTES = 2 * BLOCK
MAX_CHAIN = 8

_SHORT = {NameOID.DOMAIN_COMPONENT: "DC", NameOID.COMMON_NAME: "CN",
          NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.ORGANIZATION_NAME: "O",
          NameOID.COUNTRY_NAME: "C", NameOID.LOCALITY_NAME: "L",
          NameOID.STATE_OR_PROVINCE_NAME: "ST", NameOID.EMAIL_ADDRESS: "emailAddress",
          NameOID.USER_ID: "UID"}


@dataclass(frozen=True)
class SignatureResult:
    """Outcome of a check: ``dn`` is the signer in OpenSSL slash form."""

    verified: bool
    dn: Optional[str] = None
    version: Optional[str] = None
    error: Optional[str] = None


def slash_dn(name: x509.Name) -> str:
    """``/DC=ch/DC=cern/OU=computers/CN=cvm-sign01.cern.ch`` (certificate order)."""
    parts = []
    for rdn in name.rdns:
        for attr in rdn:
            key = _SHORT.get(attr.oid, attr.oid.dotted_string)
            parts.append(f"/{key}={attr.value}")
    return "".join(parts)


def _block_json(raw: bytes) -> dict:
    text = raw.rstrip(b"\0").strip(b"\0").decode("utf-8", errors="replace")
    text = re.sub(r'HEAD"\s*,\s*}', 'HEAD"}', text)               # stray comma
    text = re.sub(r'"(\s*\n\s*)"', r'",\1"', text)                 # missing commas
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("block is not a JSON object")
    return value


def _image_digest(path: str, length: int) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        remaining = length
        while remaining > 0:
            chunk = f.read(min(1 << 20, remaining))
            if not chunk:
                raise ValueError("image shrank while reading")
            h.update(chunk)
            remaining -= len(chunk)
    return h.digest()


def _utc(cert: x509.Certificate, which: str) -> datetime.datetime:
    """not_valid_before/after as aware UTC (cryptography < 42 has only naive values)."""
    value = getattr(cert, which + "_utc", None)
    if value is None:
        value = getattr(cert, which).replace(tzinfo=datetime.timezone.utc)
    return value


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Signature check of ``cert`` by ``issuer`` (RSA issuers; any for cryptography >= 40)."""
    if hasattr(cert, "verify_directly_issued_by"):
        try:
            cert.verify_directly_issued_by(issuer)
            return True
        except (ValueError, TypeError, InvalidSignature):
            return False
    key = issuer.public_key()
    if cert.issuer != issuer.subject or not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                   cert.signature_hash_algorithm)
        return True
    except InvalidSignature:
        return False


def _load_ca_certs(ca_dir: str) -> List[x509.Certificate]:
    certs = []
    for entry in sorted(os.listdir(ca_dir)):
        path = os.path.join(ca_dir, entry)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
            certs += load_pem_certificates(data)
        except (OSError, ValueError):
            continue
    return certs


def _valid_now(cert: x509.Certificate) -> bool:
    now = datetime.datetime.now(datetime.timezone.utc)
    return _utc(cert, "not_valid_before") <= now <= _utc(cert, "not_valid_after")


def verify_chain(cert: x509.Certificate, ca_dir: str) -> Optional[str]:
    """None if ``cert`` chains to a self-signed CA in ``ca_dir``, else the reason."""
    if not os.path.isdir(ca_dir):
        return f"CA directory {ca_dir} does not exist"
    store = _load_ca_certs(ca_dir)
    current = cert
    for _ in range(MAX_CHAIN):
        if not _valid_now(current):
            return f"certificate {slash_dn(current.subject)} is not valid now"
        issuers = [c for c in store if c.subject == current.issuer]
        for issuer in issuers:
            if not _issued_by(current, issuer):
                continue
            if issuer.subject == issuer.issuer:
                return None if _valid_now(issuer) else "CA certificate is not valid now"
            current = issuer
            break
        else:
            return f"no trusted issuer {slash_dn(current.issuer)} in {ca_dir}"
    return "certificate chain too long"


def verify_cernvm_signature(path: str, ca_dir: str) -> SignatureResult:
    """Check the signature blocks of the image at ``path`` (never raises for bad images)."""
    try:
        size = os.path.getsize(path)
        if size <= MIN_IMAGE_BYTES:
            return SignatureResult(False, error=f"{path} is too small to be signed")
        with open(path, "rb") as f:
            f.seek(size - 2 * BLOCK)
            meta_raw, sig_raw = f.read(BLOCK), f.read(BLOCK)
        version = _version(meta_raw)
        sig_block = _block_json(sig_raw)
        cert = x509.load_pem_x509_certificate(base64.b64decode(sig_block["certificate"]))
        signature = base64.b64decode(sig_block["signature"])
        digest = _image_digest(path, size - BLOCK)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return SignatureResult(False, error=f"cannot read signature blocks of {path}: {e}")
    dn = slash_dn(cert.subject)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return SignatureResult(False, dn, version, "signing key is not RSA")
    try:
        key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    except InvalidSignature:
        return SignatureResult(False, dn, version, f"Failed to verify signature for {path}")
    problem = verify_chain(cert, ca_dir)
    if problem:
        return SignatureResult(False, dn, version, f"Failed to verify cert for {path}: {problem}")
    return SignatureResult(True, dn, version)


def _version(meta_raw: bytes) -> Optional[str]:
    try:
        value = _block_json(meta_raw).get("ucernvm-version")
        return None if value is None else str(value)
    except ValueError as e:
        log.info("no readable metadata block: %s", e)
        return None
