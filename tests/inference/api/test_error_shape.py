"""One error shape everywhere, and never a 500 for bad input."""

from __future__ import annotations

import pytest

from inference.models import AIModel, Job
from tests.inference.api.helpers import CHAT, api, assert_error

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def embedding_model():
    return AIModel.objects.create(slug="embed", display_name="Embeddings", task="embedding", backend="echo")


def post_raw(client, path: str, content: bytes, content_type: str = "application/json"):
    return client.post(path, content=content, headers={"Content-Type": content_type})


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/v1/chat/completions", "/api/v1/keys"])
def test_malformed_json_is_a_400(live_server_url, owner_key, path):
    with api(live_server_url, owner_key) as client:
        response = post_raw(client, path, b'{"model": "echo", "input": ')
    assert_error(response, 400, "malformed_json")


@pytest.mark.parametrize("charset", ["zlib", "bz2", "rot13", "base64", "hex", "latin-1", "utf-16", "no-such-codec"])
@pytest.mark.parametrize("path", ["/api/v1/jobs", "/v1/chat/completions", "/api/v1/keys"])
def test_a_body_in_any_charset_but_utf8_is_a_415(live_server_url, owner_key, echo_model, path, charset):
    with api(live_server_url, owner_key) as client:
        response = post_raw(client, path, b'{"model": "echo"}', f"application/json; charset={charset}")
    assert_error(response, 415, "unsupported_charset")
    assert not Job.objects.exists()


@pytest.mark.parametrize("charset", ["utf-8", "UTF8", "utf_8"])
def test_a_body_that_names_utf8_under_any_alias_is_read(live_server_url, owner_key, echo_model, charset):
    body = '{"model": "echo", "input": {"messages": [{"role": "user", "content": "café"}]}}'.encode()
    with api(live_server_url, owner_key) as client:
        response = post_raw(client, "/api/v1/jobs", body, f"application/json; charset={charset}")
    assert response.status_code == 202, response.text
    assert Job.objects.get().input["messages"][0]["content"] == "café"


def test_a_body_that_is_not_utf8_is_a_400(live_server_url, owner_key, echo_model):
    with api(live_server_url, owner_key) as client:
        response = post_raw(client, "/api/v1/jobs", '{"model": "échő"}'.encode("latin-1", "replace"))
    assert_error(response, 400, "malformed_json")


def test_nan_is_not_json(live_server_url, owner_key, echo_model):
    with api(live_server_url, owner_key) as client:
        response = post_raw(client, "/api/v1/jobs", b'{"model": "echo", "input": {"temperature": NaN}}')
    assert_error(response, 400, "malformed_json")


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"model": 5, "input": CHAT}, "invalid", "model"),
        ({"model": "echo", "input": "hello"}, "not_a_dict", "input"),
        ({"model": "echo"}, "required", "input"),
        ({"model": "echo", "input": CHAT, "colour": "blue"}, "unknown_field", "colour"),
        ({"model": "echo", "input": CHAT, "webhook": {"url": "not a url"}}, "invalid", "webhook.url"),
        (
            {"model": "echo", "input": CHAT, "webhook": {"url": "https://example.com", "x": 1}},
            "unknown_field",
            "webhook.x",
        ),
        (
            {"model": "echo", "input": CHAT, "webhook": {"url": "https://example.com", "events": ["x"]}},
            "invalid_choice",
            "webhook.events.0",
        ),
    ],
)
def test_wrong_types_and_unknown_fields_are_400s_naming_the_field(
    live_server_url, owner_key, echo_model, body, code, param
):
    with api(live_server_url, owner_key) as client:
        response = client.post("/api/v1/jobs", json=body)
    assert_error(response, 400, code, param)
    assert not Job.objects.exists()


@pytest.mark.parametrize(("body", "kind"), [(b"[1, 2]", "an array"), (b'"hello"', "a string"), (b"null", "null")])
def test_a_body_that_is_not_a_json_object_is_a_400_saying_what_it_is(live_server_url, owner_key, body, kind):
    with api(live_server_url, owner_key) as client:
        response = post_raw(client, "/api/v1/jobs", body)
    error = assert_error(response, 400, "invalid")
    assert error["message"] == f"The body must be a JSON object, not {kind}."


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"model": "echo", "input": "hello"}, "not_a_dict", "input: Give a JSON object, not a string."),
        ({"model": "echo", "input": [CHAT]}, "not_a_dict", "input: Give a JSON object, not an array."),
        (
            {"model": "echo", "input": CHAT, "webhook": "https://example.com"},
            "invalid",
            "webhook: Give a JSON object, not a string.",
        ),
    ],
)
def test_a_field_that_is_not_a_json_object_says_what_it_is(live_server_url, owner_key, echo_model, body, code, message):
    with api(live_server_url, owner_key) as client:
        response = client.post("/api/v1/jobs", json=body)
    error = assert_error(response, 400, code, message.split(":")[0])
    assert error["message"] == message
    assert not Job.objects.exists()


def test_invalid_model_input_is_a_422_naming_the_field_by_its_path_in_the_body(live_server_url, owner_key, echo_model):
    with api(live_server_url, owner_key) as client:
        response = client.post("/api/v1/jobs", json={"model": "echo", "input": {"messages": [{"role": "robot"}]}})
    error = assert_error(response, 422, "invalid_choice", "input.messages.0.role")
    assert error["message"].startswith("input.messages.0.role: ")


@pytest.mark.parametrize(
    ("job_input", "code", "message"),
    [
        ({"texts": ["a"]}, "required", "input.input: This field is required."),
        ({"input": "a", "texts": ["a"]}, "unknown_field", "input.texts: Unknown field."),
        ({"input": []}, "too_short", "input.input: Give at least 1 item, not 0."),
        ({"input": ["a"] * 257}, "too_long", "input.input: Give at most 256 items, not 257."),
    ],
)
def test_an_embedding_input_misnamed_or_empty_is_named_inside_the_bodys_input(
    live_server_url, owner_key, embedding_model, job_input, code, message
):
    # An embedding job's text is itself called `input`: a bare "input" would name the wrong one.
    with api(live_server_url, owner_key) as client:
        response = client.post("/api/v1/jobs", json={"model": embedding_model.slug, "input": job_input})
    error = assert_error(response, 422, code, message.split(":")[0])
    assert error["message"] == message


def test_an_unknown_model_is_a_404(live_server_url, owner_key, echo_model):
    with api(live_server_url, owner_key) as client:
        response = client.post("/api/v1/jobs", json={"model": "nope", "input": CHAT})
    assert_error(response, 404, "model_not_found", "model")


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/v1/chat/completions", "/v1/embeddings"])
def test_an_oversized_body_is_a_413(live_server_url, owner_key, settings, path):
    too_big = b'{"model": "echo", "input": {"x": "' + b"x" * (settings.API_MAX_REQUEST_BYTES + 10) + b'"}}'
    with api(live_server_url, owner_key) as client:
        response = post_raw(client, path, too_big)
    assert_error(response, 413, "request_too_large")


def test_input_over_the_models_limit_is_a_413(live_server_url, owner_key, echo_model):
    huge = {"messages": [{"role": "user", "content": "x" * (echo_model.max_input_chars + 1)}]}
    with api(live_server_url, owner_key) as client:
        response = client.post("/api/v1/jobs", json={"model": "echo", "input": huge})
    assert_error(response, 413, "input_too_large")


def test_a_body_that_is_not_json_is_a_415(live_server_url, owner_key):
    with api(live_server_url, owner_key) as client:
        response = post_raw(client, "/api/v1/jobs", b"model=echo", "application/x-www-form-urlencoded")
    error = assert_error(response, 415, "unsupported_media_type")
    assert error["message"] == (
        'Send the body as JSON, with Content-Type: application/json (not "application/x-www-form-urlencoded").'
    )


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/v1/chat/completions"])
def test_a_multipart_body_that_does_not_parse_is_answered_by_the_api(live_server_url, owner_key, path):
    # Twisted used to parse it before daphne handed it on, and answered a bare 400 itself.
    with api(live_server_url, owner_key) as client:
        response = post_raw(client, path, b"not multipart at all", "multipart/form-data; boundary=xyz")
    assert_error(response, 415, "unsupported_media_type")
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here", "/api/v2/jobs", "/api/v1/jobs/", "/v1/nothing", "/v1", "/api"]
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_urls_under_the_apis_are_json_404s(live_server_url, owner_key, path, method):
    with api(live_server_url, owner_key) as client:
        response = client.request(method, path)
    assert_error(response, 404, "unknown_url")


def test_a_wrong_method_is_a_405(live_server_url, owner_key):
    with api(live_server_url, owner_key) as client:
        response = client.put("/api/v1/jobs", json={})
    assert_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/keys", "/api/v1/usage", "/api/v1/models", "/v1/models"])
def test_no_key_is_a_401_with_a_bearer_challenge(live_server_url, path):
    with api(live_server_url) as client:
        response = client.get(path)
    assert_error(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer djn_abc_def", "Bearer nonsense", "Basic dXNlcjpwdw=="])
def test_a_bad_key_is_a_401(live_server_url, header):
    with api(live_server_url) as client:
        response = client.get("/api/v1/jobs", headers={"Authorization": header})
    assert_error(response, 401, "invalid_api_key")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/jobs", {"model": "echo", "input": CHAT}),
        ("/v1/chat/completions", {"model": "echo", **CHAT}),
    ],
)
def test_an_idempotency_key_over_255_characters_is_a_400_naming_the_header(
    live_server_url, owner_key, echo_model, path, body
):
    with api(live_server_url, owner_key) as client:
        response = client.post(path, json=body, headers={"Idempotency-Key": "k" * 256})
    error = assert_error(response, 400, "invalid_idempotency_key", "Idempotency-Key")
    assert "255" in error["message"]
    assert not Job.objects.exists()


def test_an_idempotency_key_of_255_characters_is_kept(live_server_url, owner_key, echo_model):
    with api(live_server_url, owner_key) as client:
        response = client.post(
            "/api/v1/jobs", json={"model": "echo", "input": CHAT}, headers={"Idempotency-Key": "k" * 255}
        )
    assert response.status_code == 202, response.text
    assert Job.objects.get().idempotency_key == "k" * 255
