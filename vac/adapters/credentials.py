"""X.509 proxies with the ``cryptography`` package (SPEC §5.3, PEERS-AND-STANDARDS §3.4.7).

An RFC 3820 proxy (or a legacy Globus proxy on request) is signed by the machinetype's
``x509cert.pem``/``x509key.pem``: subject = issuer subject + one CN (the machinetype name,
``limited proxy`` for legacy proxies, or the serial number as text), a new 2048-bit RSA
key, notBefore = now, notAfter = the requested expiry (Unix seconds), keyUsage (critical)
and, for RFC proxies, proxyCertInfo (critical) with the Globus "limited proxy" policy
language of the original. Secret files must not be group or world readable.
"""

from __future__ import annotations

import datetime
import re
from typing import List, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from vac.adapters.secretfile import read_bounded as _read
from vac.adapters.secretfile import read_secret
from vac.errors import CredentialError

PROXY_CERT_INFO_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.14")     # id-pe-proxyCertInfo
LIMITED_PROXY_POLICY = "1.3.6.1.4.1.3536.1.1.1.9"                # Globus limited proxy
LEGACY_CN = "limited proxy"
KEY_BITS = 2048
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


# --- DER for ProxyCertInfo ::= SEQUENCE { pCPathLenConstraint INTEGER OPTIONAL,
#                                          proxyPolicy SEQUENCE { policyLanguage OID,
#                                                                 policy OCTET STRING OPTIONAL } }

def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def der_oid(dotted: str) -> bytes:
    """DER encoding of an OBJECT IDENTIFIER."""
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1]] + arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return _der(0x06, bytes(body))


def proxy_cert_info_der(policy_language: str = LIMITED_PROXY_POLICY) -> bytes:
    """ProxyCertInfo with no path length constraint and no policy octets."""
    return _der(0x30, _der(0x30, der_oid(policy_language)))


# --- reading credentials --------------------------------------------------------

def load_pem_certificates(pem: bytes) -> List[x509.Certificate]:
    """Every certificate in ``pem``, in file order. One block at a time, because
    ``x509.load_pem_x509_certificates`` needs cryptography 39 and EL9 ships 36."""
    return [x509.load_pem_x509_certificate(block) for block in _PEM_CERTIFICATE.findall(pem)]


def load_chain(pem: bytes, where: str) -> List[x509.Certificate]:
    try:
        chain = load_pem_certificates(pem)
    except ValueError as e:
        raise CredentialError(f"no usable certificate in {where}: {e}") from e
    if not chain:
        raise CredentialError(f"no certificate in {where}")
    return chain


def load_key(pem: bytes, where: str):
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise CredentialError(f"cannot load the private key in {where}: {e}") from e


# --- making proxies -------------------------------------------------------------

def _utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(int(seconds), tz=datetime.timezone.utc)


def _not_after(cert: x509.Certificate) -> datetime.datetime:
    try:
        return cert.not_valid_after_utc
    except AttributeError:   # cryptography < 42
        return cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _signing_hash(key):
    return None if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) \
        else hashes.SHA256()


def build_proxy(chain: List[x509.Certificate], issuer_key, *, expires: float, now: float,
                cn: Optional[str] = None, legacy: bool = False,
                key_bits: int = KEY_BITS) -> str:
    """PEM: proxy certificate, its unencrypted key, then the issuing chain."""
    issuer = chain[0]
    if _not_after(issuer) < _utc(expires):
        raise CredentialError(f"Cert/proxy {issuer.subject.rfc4514_string()} expires before "
                              f"given expiration time {_utc(expires).isoformat()}")
    if expires <= now:
        raise CredentialError("proxy expiration time is not in the future")
    if not isinstance(issuer_key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey,
                                   ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        raise CredentialError("unsupported issuer key type")
    serial = int(now * 100)
    last_cn = LEGACY_CN if legacy else (cn or str(serial))
    subject = x509.Name(list(issuer.subject.rdns) + [
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, last_cn)])])
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject)
               .public_key(key.public_key()).serial_number(serial)
               .not_valid_before(_utc(now)).not_valid_after(_utc(expires))
               .add_extension(x509.KeyUsage(
                   digital_signature=True, content_commitment=False, key_encipherment=True,
                   data_encipherment=False, key_agreement=True, key_cert_sign=False,
                   crl_sign=False, encipher_only=False, decipher_only=False), critical=True))
    if not legacy:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(PROXY_CERT_INFO_OID, proxy_cert_info_der()),
            critical=True)
    proxy = builder.sign(issuer_key, _signing_hash(issuer_key))
    parts = [proxy.public_bytes(serialization.Encoding.PEM),
             key.private_bytes(serialization.Encoding.PEM,
                               serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.NoEncryption())]
    parts += [c.public_bytes(serialization.Encoding.PEM) for c in chain]
    return b"".join(parts).decode()


def make_proxy(cert_file: str, key_file: str, *, expires: float, now: float,
               cn: Optional[str] = None, legacy: bool = False) -> str:
    """A proxy signed by ``cert_file``/``key_file`` (the key file must be private)."""
    key = load_key(read_secret(key_file), key_file)
    chain = load_chain(_read(cert_file), cert_file)
    return build_proxy(chain, key, expires=expires, now=now, cn=cn, legacy=legacy)
