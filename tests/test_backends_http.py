"""HTTPTarget against a real HTTP server on 127.0.0.1 that speaks TF Serving's REST protocol, LeNet behind it."""

import itertools
import json
import socket

import numpy as np
import pytest

from keras_fool.backends import http as http_backend
from keras_fool.backends.http import HTTPTarget
from keras_fool.errors import BackendError, NonFiniteError, QueryBudgetError
from serving import ServingServer, self_signed_certificate

SHAPE = (28, 28, 1)


class FakeTime:
    """A clock that moves only when slept on; records the sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def server(lenet):
    with ServingServer(lenet, name="lenet") as server:
        yield server


@pytest.fixture
def fake():
    return FakeTime()


def _target(server, fake, **options):
    options = {"batch_size": 4, "retries": 2, "timeout": 5.0, "seed": 0, **options}
    return HTTPTarget(options.pop("url", server.url), sleep=fake.sleep, clock=fake.clock, **options)


def _images(n, seed=1):
    return np.random.default_rng(seed).uniform(size=(n, *SHAPE)).astype(np.float32)


def test_probabilities_are_the_keras_models_and_requests_carry_batch_size_images(server, lenet, fake):
    target = _target(server, fake)  # no image_shape: read from the metadata
    assert target.image_shape == SHAPE and target.num_classes == 10
    images = _images(10)
    np.testing.assert_allclose(target(images), np.asarray(lenet(images)), rtol=1e-6, atol=1e-7)
    assert server.predict_sizes == [4, 4, 4, 4, 2]  # the probe's 8, then 10 images 4 at a time
    assert target.queries == 8 + 10
    assert [r["method"] for r in server.requests][0] == "GET" and server.requests[0]["path"].endswith("/metadata")
    assert target.get_config()["models"] == [{"url": server.url, "model_version": "1"}]
    assert target.get_config()["backend"] == "http"
    assert fake.sleeps == []  # no retry, no rate limit


def test_a_versioned_url_asks_that_version(server, fake):
    url = server.url.replace(":predict", "/versions/1:predict")
    target = _target(server, fake, url=url)
    assert target.get_config()["models"] == [{"url": url, "model_version": "1"}]
    assert {r["path"] for r in server.requests} == {"/v1/models/lenet/versions/1/metadata",
                                                     "/v1/models/lenet/versions/1:predict"}


def test_inside_a_compiled_function_the_served_model_is_asked(server, lenet, fake):
    import tensorflow as tf

    target = _target(server, fake)

    @tf.function
    def probabilities(images):
        return target(images) * 1.0

    images = _images(6)
    np.testing.assert_allclose(probabilities(tf.constant(images)).numpy(), np.asarray(lenet(images)), rtol=1e-6,
                               atol=1e-7)
    assert server.predict_sizes[-2:] == [4, 2] and target.queries == 8 + 6


@pytest.mark.slow  # compiling MapElites' loop takes ~3-5 s here
def test_map_elites_evolves_against_the_served_model_and_its_queries_are_counted(server, fake):
    from keras_fool.encodings import DirectEncoding
    from keras_fool.evolution import MapElites

    target = _target(server, fake, batch_size=32)
    evolver = MapElites(target, DirectEncoding(SHAPE), population=8, seed=0, steps_per_call=5)
    archive = evolver.run(5)
    assert target.queries == 8 + 8 * 6  # the probe, then generations 0..5
    assert server.predict_sizes == [8] * 7
    assert archive.confidences.shape == (10,) and archive.confidences.max() > 0.1


@pytest.mark.parametrize("answer", [
    lambda out: {"outputs": out.tolist()},
    lambda out: {"outputs": {"probabilities": out.tolist()}},
    lambda out: {"predictions": [{"probabilities": row} for row in out.tolist()]},
], ids=["columnar", "columnar-named", "rows-named"])
def test_the_other_answer_forms_give_the_same_probabilities(server, lenet, fake, answer):
    target = _target(server, fake)
    server.faults = itertools.repeat(answer)
    images = _images(3)
    np.testing.assert_allclose(target(images), np.asarray(lenet(images)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fault", [500, 503, 429, "close"])
def test_a_passing_failure_is_retried_after_a_backoff(server, lenet, fake, fault):
    target = _target(server, fake)
    server.faults = iter([fault])
    images = _images(3)
    np.testing.assert_allclose(target(images), np.asarray(lenet(images)), rtol=1e-6, atol=1e-7)
    assert server.predict_sizes[-2:] == [3, 3] and target.queries == 8 + 3
    assert len(fake.sleeps) == 1 and 0.25 <= fake.sleeps[0] <= 0.5


def test_a_busy_servers_retry_after_is_waited_for(server, fake):
    target = _target(server, fake)
    server.faults = iter([(429, "busy", {"Retry-After": "7"}), (503, "busy", {"Retry-After": "600"})])
    target(_images(1))
    assert fake.sleeps[0] == 7.0 and fake.sleeps[1] == 60.0  # obeyed, up to a minute


def test_a_server_that_keeps_failing_is_given_up_after_the_retries_with_its_message(server, fake):
    target = _target(server, fake, retries=3)
    spent, sent = target.queries, len(server.requests)
    server.faults = itertools.repeat((500, "Tensor input_1:0, specified in either feed_devices or fetch_devices"))
    with pytest.raises(BackendError) as error:
        target(_images(3))
    assert str(error.value) == (f"Gave up on {server.url} after 4 tries (3 retries): HTTP 500 Internal Server Error: "
                                "Tensor input_1:0, specified in either feed_devices or fetch_devices.")
    assert len(server.requests) == sent + 4 and target.queries == spent  # nothing answered, nothing counted
    assert len(fake.sleeps) == 3
    for k, delay in enumerate(fake.sleeps):  # doubling, half of each jittered
        assert 0.25 * 2**k <= delay <= 0.5 * 2**k
    assert len(set(fake.sleeps)) == 3


def test_a_slow_server_times_out_after_the_retries(server, fake):
    target = _target(server, fake, timeout=0.25, retries=1)
    server.delay = 1.0
    server.faults = itertools.repeat("slow")
    with pytest.raises(BackendError, match=r"after 2 tries \(1 retry\): no answer within 0\.25 s\.$"):
        target(_images(2))
    assert target.queries == 8


def test_a_connection_closed_mid_run_is_named_and_only_answered_images_count(server, fake):
    target = _target(server, fake)
    server.faults = itertools.chain([None], itertools.repeat("close"))
    with pytest.raises(BackendError, match=r"after 3 tries \(2 retries\): the server closed the connection before "
                                           r"it answered\.$"):
        target(_images(10))
    assert target.queries == 8 + 4  # the first batch was answered
    assert server.predict_sizes[-4:] == [4, 4, 4, 4]


def test_a_client_error_is_not_retried_and_names_the_servers_message(server, fake):
    target = _target(server, fake)
    server.faults = iter([(400, "Input to reshape is a tensor with 784 values, but the requested shape has 3072")])
    with pytest.raises(BackendError, match=r"^http://127\.0\.0\.1:\d+/v1/models/lenet:predict answered HTTP 400 Bad "
                                           r"Request: Input to reshape is a tensor with 784 values"):
        target(_images(2))
    assert fake.sleeps == [] and server.predict_sizes == [4, 4, 2]  # the probe, then one request, not retried


def test_an_unknown_model_is_tf_servings_404(server, fake):
    url = server.url.replace("lenet", "nosuch")
    with pytest.raises(BackendError, match=r"answered HTTP 404 Not Found: Servable not found for request: "
                                           r"Latest\(nosuch\); check the model's name and version in the URL\.$"):
        _target(server, fake, url=url, image_shape=SHAPE)
    with pytest.raises(ValueError, match=r"Could not read the model's input shape from http://127\.0\.0\.1:\d+/v1/"
                                         r"models/nosuch/metadata \(HTTP 404 Not Found: Servable not found .*\); "
                                         r"pass image_shape\.$"):
        _target(server, fake, url=url)
    assert fake.sleeps == []


def test_an_image_shape_that_is_not_the_served_models_is_refused(server, fake):
    with pytest.raises(ValueError, match=r"takes inputs of shape \(28, 28, 1\) \(its metadata\); "
                                         r"image_shape=\(32, 32, 3\) differs"):
        _target(server, fake, image_shape=(32, 32, 3))
    assert server.predict_sizes == []


def test_a_server_without_metadata_needs_image_shape(server, fake):
    url = f"{server.base}/custom/lenet:predict"  # not a /v1/models path: no metadata endpoint
    with pytest.raises(ValueError, match=r"not a /v1/models/NAME:predict URL.*; pass image_shape\.$"):
        _target(server, fake, url=url)
    with pytest.raises(BackendError, match="HTTP 404"):  # the stand-in serves /v1/models only
        _target(server, fake, url=url, image_shape=SHAPE)


@pytest.mark.parametrize("answer, error, message", [
    (lambda out: {"predictions": out[:-1].tolist()}, BackendError,
     r"The model at {url} answered 4 images with an array of shape \(3, 10\); a classifier answers"),
    (lambda out: {"predictions": np.full_like(out, np.nan).tolist()}, NonFiniteError,  # 4 answered, so counted
     r"The model at {url} returned NaN or infinite scores\.$"),
    (lambda out: {"predictions": out[:, :5].tolist()}, BackendError,  # 4 answered, so counted
     r"The model at {url} answered with 5 scores per image; it had 10 classes\.$"),
    (b"<html><body>502 Bad Gateway</body></html>", BackendError,
     r"^{url} answered with something that is not JSON \(<html><body>502 Bad Gateway</body></html>\)\.$"),
    (lambda out: {"result": out.tolist()}, BackendError, r'^{url} answered JSON without "predictions" or "outputs" '
                                                        r"\(result\)\.$"),
    (lambda out: {"predictions": [["high"] * 10] * len(out)}, BackendError,
     r'^{url} answered "predictions" that are not a table of numbers\.$'),
    (lambda out: {"predictions": [[0.5, 0.5], [0.1]]}, BackendError, r"not a table of numbers"),
    (lambda out: {"outputs": {"a": out.tolist(), "b": out.tolist()}}, BackendError,
     r"^{url} answered 2 outputs \(a, b\); serve a signature with the classifier's output alone\.$"),
    (lambda out: {"error": "Could not allocate memory"}, BackendError,
     r"^{url} answered with an error: Could not allocate memory\.$"),
], ids=["wrong-shape", "nan", "classes", "not-json", "no-predictions", "strings", "ragged", "two-outputs", "error"])
def test_a_bad_answer_is_one_sentence_naming_the_endpoint(server, fake, answer, error, message):
    target = _target(server, fake)
    server.faults = itertools.repeat(answer)
    with pytest.raises(error, match=message.format(url=server.url.replace(".", r"\."))):
        target(_images(4))
    assert target.queries == 8 + (4 if error is NonFiniteError or "classes" in message else 0)
    assert fake.sleeps == []  # a bad answer is not retried


def test_a_model_with_one_output_is_refused_when_built(server, fake):
    server.faults = itertools.repeat(lambda out: {"predictions": out[:, :1].tolist()})
    with pytest.raises(BackendError, match=r"at least two classes; the model at http://127\.0\.0\.1:\d+/v1/models/"
                                           r"lenet:predict returns 1 score\(s\) per image\.$"):
        _target(server, fake)


def test_logits_are_told_apart_from_probabilities_on_the_probe(server, fake):
    server.faults = itertools.repeat(lambda out: {"predictions": (np.log(out + 1e-12) + 3.0).tolist()})
    with pytest.raises(ValueError, match=r"model at http://.* does not output probabilities.*pass logits=True"):
        _target(server, fake)
    target = _target(server, fake, logits=True)
    images = _images(2)
    server_outputs = np.asarray(server.model(images))
    np.testing.assert_allclose(target(images), server_outputs, rtol=1e-4, atol=1e-6)


def test_the_query_budget_refuses_before_sending(server, fake):
    target = _target(server, fake, max_queries=12)
    target(_images(4))
    sent = len(server.requests)
    with pytest.raises(QueryBudgetError, match=r"query budget of 12 \(12 spent\)"):
        target(_images(1))
    assert len(server.requests) == sent


def test_the_token_is_sent_as_a_bearer_header_and_written_nowhere(server, fake):
    token = "s3cret-t0ken"
    target = _target(server, fake, token=token)
    assert {r["headers"].get("Authorization") for r in server.requests} == {f"Bearer {token}"}
    assert token not in json.dumps(target.get_config()) and token not in repr(target)
    server.faults = itertools.repeat((401, f"the token {token} has expired"))
    with pytest.raises(BackendError) as error:
        target(_images(1))
    assert token not in str(error.value) and "the token *** has expired; check the token." in str(error.value)


def test_credentials_in_the_url_become_basic_auth_and_are_left_out_of_the_config(server, fake):
    url = server.url.replace("http://", "http://alice:pa55word@")
    target = _target(server, fake, url=url)
    assert server.requests[-1]["headers"]["Authorization"] == "Basic YWxpY2U6cGE1NXdvcmQ="  # alice:pa55word
    assert target.get_config()["models"][0]["url"] == server.url
    server.faults = iter([(403, "pa55word is not allowed")])
    with pytest.raises(BackendError) as error:
        target(_images(1))
    assert "pa55word" not in str(error.value) and "*** is not allowed" in str(error.value)


def test_the_rate_limit_spaces_the_requests(server, fake):
    server.clock = fake.clock
    _target(server, fake, rate_limit=4.0, batch_size=2)  # the metadata, then the probe in 4 requests
    arrivals = [r["at"] for r in server.requests]
    assert len(arrivals) == 5
    np.testing.assert_allclose(np.diff(arrivals), 0.25)
    assert fake.sleeps == pytest.approx([0.25] * 4)


def test_without_a_rate_limit_requests_are_not_spaced(server, fake):
    server.clock = fake.clock
    _target(server, fake, batch_size=2)
    assert len(server.requests) == 5 and fake.sleeps == [] and {r["at"] for r in server.requests} == {0.0}


def test_a_refused_connection_is_retried_then_named(fake):
    with socket.socket() as sock:  # a port that nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendError, match=rf"^Gave up on http://127\.0\.0\.1:{port}/v1/models/lenet:predict after 2 "
                                           r"tries \(1 retry\): the connection was refused\.$"):
        HTTPTarget(f"http://127.0.0.1:{port}/v1/models/lenet:predict", retries=1, sleep=fake.sleep)
    assert len(fake.sleeps) == 1


def test_an_answer_over_the_size_limit_is_refused_unread(server, fake, monkeypatch):
    target = _target(server, fake)
    monkeypatch.setattr(http_backend, "MAX_ANSWER_BYTES", 100)
    with pytest.raises(BackendError, match=r"sent an answer larger than 100 B; lower batch_size\.$"):
        target(_images(4))
    assert fake.sleeps == []


@pytest.mark.parametrize("options, error, message", [
    ({"url": "ftp://127.0.0.1/v1/models/a:predict"}, ValueError, "must be an http:// or https:// address"),
    ({"url": "http://u:secret@127.0.0.1:8501/predict"}, ValueError, r"predict endpoint.*Received: url=http://127"),
    ({"url": "http://127.0.0.1:99999/v1/models/a:predict"}, ValueError, "no valid port"),
    ({"timeout": 0}, ValueError, "timeout must be a finite number greater than 0"),
    ({"retries": -1}, ValueError, "retries must be at least 0"),
    ({"rate_limit": 0.0}, ValueError, "rate_limit must be a finite number greater than 0"),
    ({"token": "a\nb"}, ValueError, "token must be a non-empty string on one line"),
    ({"url": "https://127.0.0.1:1/v1/models/a:predict", "verify": "missing.pem"}, ValueError,
     "verify names a CA bundle that does not exist: missing.pem"),
    ({"url": "https://127.0.0.1:1/v1/models/a:predict", "verify": 1}, TypeError, "verify must be True, False or"),
])
def test_bad_arguments_are_refused_before_any_request(options, error, message):
    options = {"url": "http://127.0.0.1:1/v1/models/a:predict", "retries": 0, **options}
    with pytest.raises(error, match=message) as raised:
        HTTPTarget(options.pop("url"), image_shape=SHAPE, **options)
    assert "secret" not in str(raised.value)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    pair = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    if pair is None:
        pytest.skip("neither the cryptography package nor the openssl command is installed to make a certificate")
    return pair


def test_https_verifies_the_certificate_by_default(lenet, certificate, fake):
    with ServingServer(lenet, name="lenet", certificate=certificate) as server:
        assert server.url.startswith("https://")
        with pytest.raises(BackendError, match=r"^The TLS certificate of https://127\.0\.0\.1:\d+/v1/models/lenet:"
                                               r"predict could not be verified \(self.signed certificate\); pass "
                                               r"verify=PATH with the CA bundle that signed it, or verify=False"):
            _target(server, fake)
        assert fake.sleeps == []  # a certificate is not retried
        images = _images(2)
        for verify in (str(certificate[0]), False):
            target = _target(server, fake, verify=verify)
            np.testing.assert_allclose(target(images), np.asarray(lenet(images)), rtol=1e-6, atol=1e-7)
            target.close()
