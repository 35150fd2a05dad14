"""Log lines: one JSON object per line, and no credential in any part of the record."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.conf import settings
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.logging import JsonFormatter, MaskSecretsFilter
from tests.gatehouse.subprocesses import embedded_env, run_python
from tests.gatehouse.test_secrets_mask import B64URL, fake_token

SIGNATURE = "SIGNATUREsignatureSIGNATUREsignatureSIGNATURE0123"
TOKEN = fake_token(jti="jti12345abcdef", signature=SIGNATURE)


class Capture:
    """A logger wired exactly like settings.LOGGING's stdout handler, writing to a buffer."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(MaskSecretsFilter())
        self.logger = logging.getLogger("gatehouse.tests.capture")
        self.logger.handlers = [handler]
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text().splitlines()]


@pytest.fixture
def capture() -> Iterator[Capture]:
    capture = Capture()
    yield capture
    capture.logger.handlers = []


def test_settings_send_every_log_through_the_mask_and_json_formatter():
    handler = settings.LOGGING["handlers"]["stdout"]
    assert handler["filters"] == ["mask_secrets"]
    assert settings.LOGGING["filters"]["mask_secrets"]["()"] == "core.logging.MaskSecretsFilter"
    assert settings.LOGGING["formatters"]["json"]["()"] == "core.logging.JsonFormatter"
    assert handler["stream"] == "ext://sys.stdout"


def test_a_line_is_one_json_object_with_time_level_logger_message(capture):
    capture.logger.info("hello %s", "world", extra={"request_id": 7})
    (line,) = capture.lines()
    assert line["message"] == "hello world"
    assert line["level"] == "INFO"
    assert line["logger"] == "gatehouse.tests.capture"
    assert line["time"].endswith("Z")
    assert line["request_id"] == 7


def test_a_captured_warning_is_one_sentence_on_one_line():
    """Celery's warning about running as root reaches logging (``captureWarnings``) as
    warnings.formatwarning's text, several lines with the source line indented."""
    import warnings

    text = warnings.formatwarning(
        "You're running the worker with superuser privileges: this is\nabsolutely not recommended!\n\n"
        "Please specify a different user.", UserWarning, "platforms.py", 893, line="    _warn_or_raise()")
    record = logging.LogRecord("py.warnings", logging.WARNING, "platforms.py", 893, "%s", (text,), None)
    line = json.loads(JsonFormatter().format(record))
    assert "\n" not in line["message"]
    assert line["message"] == (
        "platforms.py:893: UserWarning: You're running the worker with superuser privileges: this is "
        "absolutely not recommended! Please specify a different user. _warn_or_raise()")


def test_token_in_message_and_args_is_masked(capture):
    capture.logger.warning("refused %s for ?key=%s", TOKEN, "opaque-secret")
    text = capture.text()
    assert SIGNATURE not in text and "opaque-secret" not in text
    assert capture.lines()[0]["message"] == "refused gth_jti12345… for ?key=***"


def test_exception_message_and_traceback_are_masked(capture):
    def fail(token: str) -> None:
        raise ValueError(f"upstream rejected {token} with Authorization: Bearer upstream-secret")

    try:
        fail(TOKEN)
    except ValueError:
        capture.logger.exception("call failed")
    (line,) = capture.lines()
    assert "Traceback" in line["exc_info"]
    assert "ValueError: upstream rejected gth_jti12345…" in line["exc_info"]
    assert SIGNATURE not in capture.text() and "upstream-secret" not in capture.text()


def test_chained_exception_causes_are_masked(capture):
    try:
        try:
            raise KeyError(TOKEN)
        except KeyError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError:
        capture.logger.error("boom", exc_info=True)
    assert SIGNATURE not in capture.text()
    assert "KeyError" in capture.lines()[0]["exc_info"]


def test_extras_of_every_type_are_masked(capture):
    class Opaque:
        def __str__(self) -> str:
            return f"Opaque({TOKEN})"

    capture.logger.info(
        "request",
        extra={
            "http": {"query": f"key={TOKEN}", "headers": [("authorization", "Bearer upstream-secret")]},
            "raw": f"x-api-key: {TOKEN}".encode(),
            "object": Opaque(),
            "exc": ValueError(TOKEN),
            "form": {"username": "bob", "password": "hunter2-secret"},
            "count": 3,
        },
    )
    text = capture.text()
    assert SIGNATURE not in text and "upstream-secret" not in text and "hunter2" not in text
    line = capture.lines()[0]
    assert line["form"] == {"username": "bob", "password": "***"}
    assert line["http"]["query"] == "key=gth_jti12345…"
    assert line["count"] == 3


def test_stack_info_is_masked(capture):
    capture.logger.info("where %s", TOKEN, stack_info=True)
    assert SIGNATURE not in capture.text()


def test_formatter_masks_even_without_the_filter():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gatehouse.tests.unfiltered")
    logger.handlers, logger.propagate = [handler], False
    try:
        try:
            raise ValueError(TOKEN)
        except ValueError:
            logger.exception("no filter %s", TOKEN, extra={"detail": {"token": TOKEN}})
    finally:
        logger.handlers = []
    assert SIGNATURE not in stream.getvalue()
    json.loads(stream.getvalue())


json_leaves = st.recursive(
    st.one_of(st.integers(), st.booleans(), st.none(), st.text(max_size=10)),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(alphabet="abcxyz_", min_size=1, max_size=6), children,
                                               max_size=3)),
    max_leaves=8,
)


@st.composite
def extras_with_a_token(draw: st.DrawFn) -> tuple[dict, str]:
    signature = draw(st.text(alphabet=B64URL, min_size=43, max_size=64))
    token = fake_token(signature=signature)
    surrounding = draw(st.text(max_size=12))
    value: object = surrounding + token
    depth = draw(st.integers(min_value=0, max_value=3))
    for _ in range(depth):
        wrapper = draw(st.sampled_from(["list", "dict", "tuple"]))
        value = [value] if wrapper == "list" else {"inner": value} if wrapper == "dict" else ("x", value)
    extras = {"field": value, "other": draw(json_leaves)}
    return extras, signature


@hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(case=extras_with_a_token())
def test_no_token_survives_in_random_extras(capture, case):
    extras, signature = case
    assume(signature not in json.dumps(extras["other"]))
    capture.stream.seek(0)
    capture.stream.truncate()
    capture.logger.info("event", extra=extras)
    assert signature not in capture.text()
    json.loads(capture.text())


@pytest.mark.integration
def test_process_stdout_is_json_lines_with_secrets_masked(tmp_path):
    """End to end: Django's configured logging, in a real process, writes masked JSON to stdout."""
    code = (
        "import logging, warnings, django; django.setup();"
        f"logging.getLogger('gatehouse.demo').info('token %s', {TOKEN!r});"
        "logging.getLogger('django.request').error('bad ?key=%s', 'opaque-secret');"
        f"warnings.warn('deprecated thing with {TOKEN}')"
    )
    result = run_python(code, env=embedded_env(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["logger"] for line in lines] == ["gatehouse.demo", "django.request", "py.warnings"]
    assert SIGNATURE not in result.stdout + result.stderr
    assert "opaque-secret" not in result.stdout
