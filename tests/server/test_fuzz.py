"""Schema-driven fuzzing of the REST API: schemathesis sends a real ``taskops serve`` (the
``served`` fixture: a throwaway copy of the demo site) what the OpenAPI document allows and,
in its negative mode, what it does not; every answer must be one the document promises.

Per answer: never a 5xx; the status code, content type and JSON body are those the
document gives for the operation; an answer below 300 has a JSON body; a 400, 403, 404 or
409 has a JSON ``message``. Three phases: the document's own examples (they name demo
tasks, so tasks really are created, changed, deleted, restored and run), boundary cases
(each value at and past its bounds, missing and unknown fields, other methods on each
route) and random cases. Destructive on purpose: it may stop and remove jobs, force-close
runspaces and change settings. No operation is left out.

Deterministic: Hypothesis is derandomized and schemathesis has a fixed seed, so each run
sends the same requests (the answers still depend on which demo jobs the engine has run by
then). Few random examples per operation and no shrinking keep the run to a few seconds.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Case

from taskops.server.openapi import openapi_document

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 25
"""Random cases per operation (the examples and boundary phases add their own)."""
SEED = 20240611
REQUEST_TIMEOUT = 30.0
"""Seconds per request; the slowest answers (stopping a job, force-closing a runspace) wait
a few seconds for a process to end."""
ERROR_STATUSES = (400, 403, 404, 409)
OUTPUT_PATH = "/jobs/{jobId}/output"

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        # they judge how fast data is generated, not the API: a slow CI machine fails them
        "suppress-health-check": ["all"],
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
            # the test sends the token itself: the security scheme is not fuzzed
            "with-security-parameters": False,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            # stateful runs chain operations through links, which the document has none of
            "stateful": {"enabled": False},
        },
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
        },
    }
)
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)


@schema.parametrize()
def test_api_answers_what_the_document_promises(case: Case, served: Any) -> None:
    headers = {"Authorization": f"token {served.token}"}
    documented = case.method.upper() == case.operation.method.upper()
    if documented and case.operation.path == OUTPUT_PATH:
        response = _output(case, served.api, headers)
        if response is None:
            return  # a followed stream: its first page was checked
    else:
        response = case.call(base_url=served.api, headers=headers, timeout=REQUEST_TIMEOUT)
    if response.status_code >= 500:
        pytest.fail(
            f"{case.method} {case.formatted_path} answered {response.status_code}\n"
            f"{case.as_curl_command(headers, base_url=served.api)}\n{_server_log(served)}"
        )
    case.validate_response(response, headers=headers)
    if not documented:
        return  # another method on the route: 405 (OPTIONS: jupyter-server's CORS answer)
    body = _strict_json(response.text) if response.content or response.status_code < 300 else None
    _check_error(response.status_code, body)


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_every_operation_refuses_a_client_without_the_token(served: Any, token: str | None) -> None:
    """The document's security applies everywhere: each operation, called with its examples
    and no token or a wrong one, answers 403 with a JSON message (and changes nothing)."""
    headers = {"Authorization": f"token {token}"} if token else {}
    document = openapi_document()
    for path, item in document["paths"].items():
        examples = {p["name"]: p["example"] for p in item.get("parameters", [])}
        url = served.api + path.format(**examples)
        for method in ("get", "put", "post", "delete"):
            if method not in item:
                continue
            body = b"{}" if method in ("put", "post") else None
            response = requests.request(
                method, url, data=body, headers=headers, timeout=REQUEST_TIMEOUT
            )
            assert response.status_code == 403, (method, url, response.text)
            _check_error(403, _strict_json(response.text))


HUGE = "99999999999999999999"
"""A whole number past SQLite's 64-bit integers."""


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        # bodies: JSON text that parses in Python but is no JSON value taskops can keep
        ("POST", "/tasks/global.HealthCheck/duplicate", '{"name": "A\\ud800"}'),
        ("PUT", "/tasks/global.HealthCheck", '{"description": "\\udfff"}'),
        ("PUT", "/tasks/global.HealthCheck", '{"parameters": {"A": 1e400}}'),
        ("PUT", "/settings", '{"autoRefreshInterval": NaN}'),
        ("PUT", "/settings", '{"runspaceMemoryWarning": -Infinity}'),
        pytest.param("PUT", "/settings", '{"x": ' + "[" * 500 + "]" * 500 + "}", id="nested-500"),
        pytest.param("PUT", "/tasks/global.HealthCheck", "[" * 100_000, id="nested-100000"),
        # values the checks let through to a library that raises
        ("PUT", "/settings", '{"notificationWebhook": "http://[::1"}'),
        ("GET", "/schedule/preview?expression=*+*+*+*+*&start=0001-01-01T00:00:00%2B14:00", None),
        # ids and offsets past 64 bits, and digits int() does not read
        ("GET", f"/jobs/{HUGE}", None),
        ("POST", f"/jobs/{HUGE}/remove", ""),
        ("GET", f"/runspaces/{HUGE}", None),
        ("GET", "/jobs/%C2%B2", None),
        ("GET", "/runspaces/%C2%B2/memory", None),
        ("GET", f"/jobs?offset={HUGE}", None),
        ("GET", f"/tasks/global.HealthCheck/history?offset={HUGE}", None),
        ("GET", f"/notifications?after={HUGE}", None),
    ],
)
def test_inputs_the_fuzz_may_miss_get_no_server_error(
    served: Any, method: str, path: str, body: str | None
) -> None:
    """Inputs found by probing beside the fuzz (its strings hold no lone surrogates, and
    its numbers rarely leave 64 bits): each answers 4xx or 2xx, never 5xx."""
    response = requests.request(
        method,
        served.api + path,
        data=None if body is None else body.encode(),
        headers={"Authorization": f"token {served.token}"},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code < 500, _server_log(served)
    _check_error(response.status_code, _strict_json(response.text))


def _output(case: Case, api: str, headers: dict[str, str]) -> requests.Response | None:
    """GET /jobs/:id/output. With ``follow=true`` it streams pages until the job ends,
    and a demo job may run for minutes: only the first page is read (the handler sends one
    at once), checked, and the connection closed; then None. Else the whole answer."""
    kwargs = case.as_transport_kwargs(base_url=api, headers=headers)
    response = requests.request(**kwargs, stream=True, timeout=REQUEST_TIMEOUT)
    if not response.headers.get("Content-Type", "").startswith("application/x-ndjson"):
        response.content  # noqa: B018 (reads the body)
        return response
    with response:
        assert response.status_code == 200
        first = next(response.iter_lines(), b"")
    page = _strict_json(first.decode())
    assert isinstance(page, dict) and set(page) == {"text", "nextOffset", "done", "size"}, page
    return None


def _strict_json(text: str) -> Any:
    """``text`` parsed as JSON (RFC 8259: no NaN, no Infinity); raises ValueError."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} in a JSON answer")

    return json.loads(text, parse_constant=refuse)


def _check_error(status: int, body: Any) -> None:
    if status in ERROR_STATUSES:
        assert isinstance(body, dict), body
        assert isinstance(body.get("message"), str) and body["message"], body


def _server_log(served: Any, lines: int = 60) -> str:
    """The server's log from its last uncaught exception on (the traceback of a 500), when
    the fixture keeps a log."""
    log = getattr(served, "log", None)
    if log is None:
        return ""
    text = log.read_text()
    start = text.rfind("Uncaught exception")
    tail = text[text.rfind("\n", 0, start) + 1 :] if start >= 0 else text
    return "server log:\n" + "\n".join(tail.splitlines()[:lines])
