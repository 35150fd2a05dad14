"""mask_secrets: no credential survives, whatever surrounds it; the display form stays useful."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from hypothesis import assume, given
from hypothesis import strategies as st

from core.secrets_mask import mask_query_string, mask_secrets

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def fake_token(jti: str = "abcdefgh12345678", signature: str = "S" * 86) -> str:
    """Shaped like a Gatehouse token: gth_ + header.payload.signature (not validly signed)."""
    return f"gth_{_b64({'alg': 'EdDSA', 'kid': 'k1'})}.{_b64({'jti': jti, 'sub': 'alice'})}.{signature}"


signatures = st.text(alphabet=B64URL, min_size=43, max_size=120)
jtis = st.text(alphabet=B64URL, min_size=8, max_size=32)
secrets = st.text(alphabet=B64URL, min_size=12, max_size=60)
# Text around a credential: anything printable, including quotes, JSON and URL punctuation.
surrounding = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


def test_token_becomes_its_display_prefix():
    token = fake_token(jti="abcdefgh12345678")
    assert mask_secrets(f"used {token} today") == "used gth_abcdefgh… today"


def test_real_issued_token_is_masked_to_its_jti_prefix(make_token):
    issued = make_token({"demo": None})
    masked = mask_secrets(f"Authorization: Bearer {issued.secret}")
    assert issued.secret not in masked
    assert issued.secret.split(".")[-1] not in masked
    assert f"gth_{issued.token.jti[:8]}" in masked


def test_api_key_keeps_only_its_public_id():
    assert mask_secrets("X-API-Key: gthk_ab12cd34_s3cr3tS3cr3tS3cr3t") == "X-API-Key: gthk_ab12cd34_***"


def test_token_glued_to_other_credential_prefixes_is_masked():
    token = fake_token(signature="Z" * 43)
    for glue in ["gthk_", "gth_", "key=", "eyJ", "Bearer "]:
        assert "Z" * 43 not in mask_secrets(glue + token)


def test_bare_jwt_is_masked():
    jwt = fake_token()[len("gth_"):]
    assert mask_secrets(f"token={jwt}") == "token=***"
    assert mask_secrets(f"jwt {jwt} end") == "jwt *** end"


def test_query_key_value_is_masked_but_similar_names_are_not():
    assert mask_secrets("GET /mcp/demo/?key=hunter2hunter2&x=1") == "GET /mcp/demo/?key=***&x=1"
    assert mask_secrets("?monkey=banana&sort_key=name") == "?monkey=banana&sort_key=name"


def test_authorization_and_api_key_headers_in_every_shape():
    cases = {
        "Authorization: Bearer opaque-upstream-secret": "Authorization: Bearer ***",
        "authorization: Basic dXNlcjpwYXNz": "authorization: Basic ***",
        '{"Authorization": "Token abc123"}': '{"Authorization": "Token ***"}',
        "{'HTTP_AUTHORIZATION': 'Bearer abc', 'HTTP_X_API_KEY': 'xyz'}":
            "{'HTTP_AUTHORIZATION': 'Bearer ***', 'HTTP_X_API_KEY': '***'}",
        "[(b'authorization', b'Bearer abc'), (b'host', b'h')]":
            "[(b'authorization', b'Bearer ***'), (b'host', b'h')]",
        "X-Api-Key=opaque": "X-Api-Key=***",
    }
    for raw, expected in cases.items():
        assert mask_secrets(raw) == expected


def test_prose_mentioning_authorization_is_left_alone():
    text = 'missing authorization, see ["bad authorization", "next"]'
    assert mask_secrets(text) == text


def test_masking_is_idempotent_on_display_forms():
    for text in ["gth_abcdefgh…", "gth_***", "gthk_ab12cd34_…", "gthk_ab12cd34_***", "?key=***",
                 "Authorization: Bearer gth_abcdefgh…"]:
        assert mask_secrets(text) == text


def test_percent_encoded_query_names_and_values_are_masked():
    token = fake_token()
    encoded = quote(token, safe="")
    masked = mask_query_string(f"k%65y=opaque-secret&next={quote('/mcp?key=' + token, safe='')}&x={encoded}")
    assert "opaque-secret" not in masked
    assert token.split(".")[-1] not in masked
    assert masked.startswith("k%65y=***&")


@given(prefix=surrounding, suffix=surrounding, jti=jtis, signature=signatures)
def test_no_token_signature_survives_any_surrounding_text(prefix, suffix, jti, signature):
    assume(signature not in prefix and signature not in suffix)
    token = fake_token(jti=jti, signature=signature)
    masked = mask_secrets(prefix + token + suffix)
    assert signature not in masked


@given(prefix=surrounding, suffix=surrounding, signature=signatures)
def test_no_bare_jwt_signature_survives(prefix, suffix, signature):
    assume(signature not in prefix and signature not in suffix)
    jwt = fake_token(signature=signature)[len("gth_"):]
    assert signature not in mask_secrets(prefix + jwt + suffix)


@given(prefix=surrounding, suffix=surrounding, key_id=st.text(alphabet=B64URL[:62], min_size=4, max_size=16),
       secret=secrets)
def test_no_api_key_secret_survives(prefix, suffix, key_id, secret):
    assume(secret not in prefix and secret not in suffix)
    masked = mask_secrets(f"{prefix}gthk_{key_id}_{secret}{suffix}")
    assert f"{key_id}_{secret}" not in masked


@given(prefix=surrounding, suffix=surrounding, secret=secrets,
       form=st.sampled_from(["?key={}", "&key={}", "?KEY={}", "%3Fkey%3D{}", "%26key%3D{}", "?api_key={}",
                             "?access_token={}"]))
def test_no_query_credential_survives(prefix, suffix, secret, form):
    assume(secret not in prefix and secret not in suffix)
    masked = mask_secrets(prefix + form.format(secret) + "&" + suffix)
    assert secret not in masked


@given(prefix=surrounding, suffix=surrounding, secret=secrets,
       form=st.sampled_from(["Authorization: Bearer {}", "authorization: {}", '"x-api-key": "{}"',
                             "X-API-Key={}", "'HTTP_AUTHORIZATION': 'Bearer {}'", "(b'x-api-key', b'{}')"]))
def test_no_header_credential_survives(prefix, suffix, secret, form):
    assume(secret not in prefix and secret not in suffix)
    masked = mask_secrets(prefix + form.format(secret) + " " + suffix)
    assert secret not in masked


@given(jti=jtis, signature=signatures, key=st.sampled_from(["token", "note", "nested"]))
def test_tokens_inside_json_documents_are_masked(jti, signature, key):
    token = fake_token(jti=jti, signature=signature)
    document = json.dumps({key: {"list": ["x", token], "text": f"saw {token}."}})
    masked = mask_secrets(document)
    assert signature not in masked
    json.loads(masked)  # still a JSON document


@given(name=st.sampled_from(["key", "k%65y", "KEY", "api_key", "token"]), secret=secrets,
       other=st.text(alphabet=B64URL, max_size=20))
def test_query_string_masking_handles_encoded_names(name, secret, other):
    assume(secret not in other)
    masked = mask_query_string(f"a={other}&{name}={secret}&b=2")
    assert secret not in masked
    assert masked.endswith("&b=2")
