"""Key material: signing key generation and JWK export. At-rest encryption is ``core.encryption``."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from core.encryption import decrypt, decrypt_json, encrypt, encrypt_json

__all__ = ["decrypt", "decrypt_json", "encrypt", "encrypt_json"]  # re-exported: migration 0003 uses them

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def generate_private_key(algorithm: str) -> PrivateKey:
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"Unsupported signing algorithm {algorithm!r}")


def private_key_to_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_key_to_pem(key: PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@lru_cache(maxsize=64)
def load_public_key(pem: str) -> PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        raise ValueError("Unsupported public key type")
    return key


@lru_cache(maxsize=16)
def load_private_key(encrypted_pem: str) -> PrivateKey:
    key = serialization.load_pem_private_key(decrypt(encrypted_pem).encode(), password=None)
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError("Unsupported private key type")
    return key


def public_jwk(*, pem: str, kid: str, algorithm: str) -> dict[str, Any]:
    key = load_public_key(pem)
    if isinstance(key, ed25519.Ed25519PublicKey):
        jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(key, as_dict=True)
    return jwk | {"kid": kid, "alg": algorithm, "use": "sig"}
