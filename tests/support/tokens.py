"""Access tokens as the users service issues them, for tests of the verifying services."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt


def access_token(user_id: uuid.UUID, *, lifetime: timedelta = timedelta(minutes=5)) -> str:
    private_key = Path(os.environ["JWT_PRIVATE_KEY_FILE"]).read_text()
    now = datetime.now(UTC)
    claims = {
        "token_type": "access",
        "user_id": str(user_id),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + lifetime,
        "iss": "users",
        "aud": "suite",
    }
    return jwt.encode(claims, private_key, algorithm="RS256")
