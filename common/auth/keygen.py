"""Create the RS256 key pair for local runs: `python -m common.auth.keygen var/jwt`.

Idempotent: an existing pair is kept, so tokens stay valid across restarts. Production gets its keys
from the environment (`JWT_PRIVATE_KEY[_FILE]`, `JWT_PUBLIC_KEY[_FILE]`) instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def generate_pem_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def ensure_pair(directory: Path) -> bool:
    """Write private.pem and public.pem unless both exist; True when a pair was created."""
    private_path, public_path = directory / "private.pem", directory / "public.pem"
    if private_path.is_file() and public_path.is_file():
        return False
    directory.mkdir(parents=True, exist_ok=True)
    private, public = generate_pem_pair()
    private_path.write_bytes(private)
    private_path.chmod(0o600)
    public_path.write_bytes(public)
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "var/jwt")
    print(("created" if ensure_pair(target) else "kept") + f" JWT key pair in {target}")
