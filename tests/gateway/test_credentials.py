"""Which credential a request presents, and that none of it survives into a forwarded URL."""

from gateway.admission.credentials import extract_credential, strip_query_credentials


def test_bearer_wins_over_api_key_and_query():
    found = extract_credential([("x-api-key", "gth_b"), ("authorization", "Bearer gth_a")], "key=gth_c")
    assert (found.raw, found.source) == ("gth_a", "bearer")


def test_api_key_wins_over_query():
    found = extract_credential([("x-api-key", "gth_b")], "key=gth_c")
    assert (found.raw, found.source) == ("gth_b", "x-api-key")


def test_query_key_is_the_fallback_and_is_url_decoded():
    found = extract_credential([], "a=1&key=gth_x%2Ey&b=2")
    assert (found.raw, found.source) == ("gth_x.y", "query")


def test_bearer_scheme_is_case_insensitive_and_basic_is_not_a_credential():
    assert extract_credential([("authorization", "bEaReR gth_a")], "").raw == "gth_a"
    assert extract_credential([("authorization", "Basic dXNlcjpwYXNz")], "") is None


def test_no_credential_is_none():
    assert extract_credential([("accept", "*/*")], "session_id=1") is None


def test_credential_repr_never_shows_the_secret():
    assert "gth_secret" not in repr(extract_credential([("x-api-key", "gth_secret")], ""))


def test_key_parameter_is_removed_and_the_rest_kept_verbatim():
    assert strip_query_credentials("a=1&key=gth_x&b=%20two&key=again") == "a=1&b=%20two"
    assert strip_query_credentials("key=gth_x") == ""
    assert strip_query_credentials("monkey=1&k%65y=gth_x") == "monkey=1"
    assert strip_query_credentials("a=1&token=gth_abc&c=x%20gth_abc", credential="gth_abc") == "a=1"
