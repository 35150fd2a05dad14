"""The token lifecycle at its simplest; the tokens issue grows this into a full specification."""

import pytest

from tokens.exceptions import TokenRevoked
from tokens.services import authenticate_token, revoke_token


def test_issued_token_authenticates_until_revoked(make_token):
    issued = make_token({"demo": ["echo"]})

    authed = authenticate_token(raw_token=issued.secret)
    assert authed.jti == issued.token.jti
    assert authed.scope.allows_tool("demo", "echo")
    assert not authed.scope.allows_tool("demo", "delete_everything")

    revoke_token(token=issued.token, actor="tests", reason="leaked")
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=issued.secret)
