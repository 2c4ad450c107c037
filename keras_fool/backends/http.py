"""A classifier served over HTTP, asked through TensorFlow Serving's REST predict protocol.

:class:`HTTPTarget` posts ``{"instances": [...]}`` (the model-ready inputs of at most
``batch_size`` images, as nested lists) to ``http(s)://HOST:PORT/v1/models/NAME[/versions/N]:predict``
and reads ``{"predictions": [[...], ...]}``, or the columnar ``{"outputs": ...}``, from the answer:
the protocol of TensorFlow Serving and of the servers that copy it. Without ``image_shape`` the
input shape is read from the model's metadata (``GET .../v1/models/NAME[/versions/N]/metadata``,
the ``serving_default`` signature).

A request that times out, cannot connect, is cut off, or is answered HTTP 429 or 5xx is sent again
after an exponential backoff with jitter, ``retries`` times at most; any other failure is final.
Every failure is a :class:`~keras_fool.errors.BackendError` (or the base's
:class:`~keras_fool.errors.NonFiniteError` / :class:`~keras_fool.errors.QueryBudgetError`) whose
one sentence names the endpoint and the cause. Only answered images are counted as queries.

What this backend trusts: nothing but the bytes the server answers, read as JSON (at most
``MAX_ANSWER_BYTES``) and then as a table of numbers; nothing from the server is executed,
unpickled or written anywhere. TLS certificates are verified unless ``verify=False``. The token
(sent as ``Authorization: Bearer <token>``) and any password in the URL appear in no config,
log or error message: the endpoint is named by its URL without credentials or query string.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse

import numpy as np

from keras_fool.backends.query import QueryTarget
from keras_fool.errors import BackendError, KerasFoolError, QueryBudgetError
from keras_fool.validation import check_int, check_number, format_bytes

__all__ = ["HTTPTarget", "MAX_ANSWER_BYTES"]

MAX_ANSWER_BYTES = 256 * 2**20  # an answer larger than this is refused, not read
BACKOFF = 0.5  # seconds before the first retry, doubled for each next one, then jittered
MAX_BACKOFF = 30.0
MAX_RETRY_AFTER = 60.0  # a server's Retry-After is obeyed up to this many seconds
MESSAGE_CHARS = 200  # how much of a server's error message an error quotes
# /v1/models/NAME, optionally /versions/N or /labels/L, optionally :predict
MODEL_PATH = re.compile(r"(?P<model>/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/[^/:]+)?)"
                        r"(?::predict)?/?")
HINTS = {401: "; check the token", 403: "; check the token", 404: "; check the model's name and version in the URL"}


class HTTPTarget(QueryTarget):
    """A classifier behind a TensorFlow Serving REST endpoint, asked by queries alone.

    Args:
        url: ``http(s)://HOST:PORT/v1/models/NAME[/versions/N]:predict`` (``:predict`` may be
            left off); any other path ending in ``:predict`` is taken as is, with ``image_shape``.
        image_shape: (H, W, C) the model takes; None reads it from the model's metadata.
        logits: the model outputs logits (as :class:`~keras_fool.backends.query.QueryTarget`).
        class_names: names, or a file of one name per line.
        input_range: ``"0-1"`` or ``"0-255"``, the range of the model's pixels.
        preprocess: ``"none"``, ``"tf"``, ``"torch"`` or ``"caffe"``.
        batch_size: images per request at most.
        max_queries: the query budget (None: no limit).
        timeout: seconds to wait for the server to connect or to send the next bytes of an answer.
        retries: times a request is sent again after a timeout, a lost connection, HTTP 429 or 5xx.
        rate_limit: requests per second at most (None: as fast as answered).
        token: sent as ``Authorization: Bearer <token>``; never written anywhere.
        verify: check the server's TLS certificate (True), do not (False), or against the CA
            bundle at this path.
        sleep: the waiting function (tests replace it, with ``clock``, so that nothing waits).
        clock: the monotonic clock the rate limit reads.
        seed: the seed of the backoff's jitter.
    """

    backend = "http"

    def __init__(self, url, image_shape=None, logits=False, class_names=None, input_range=None, preprocess="none",
                 batch_size=32, max_queries=None, timeout=30.0, retries=3, rate_limit=None, token=None, verify=True,
                 *, sleep=time.sleep, clock=time.monotonic, seed=None):
        self._parse_url(url)
        self.timeout = check_number("timeout", timeout, strict=True)
        self.retries = check_int("retries", retries, minimum=0)
        self.rate_limit = None if rate_limit is None else check_number("rate_limit", rate_limit, strict=True)
        if token is not None and (not isinstance(token, str) or not token or any(c in token for c in "\r\n")):
            raise ValueError("token must be a non-empty string on one line.")
        self._secrets = [s for s in (token, self._password) if s]
        self._headers = {"Accept": "application/json"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        elif self._password is not None or self._user is not None:
            pair = f"{self._user or ''}:{self._password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        self._ssl = _ssl_context(verify) if self._https else None
        self._sleep, self._clock, self._jitter = sleep, clock, random.Random(seed)
        self._next_send = None
        self._connection = None
        self._lock = threading.Lock()
        self.requests = 0  # requests sent, retries included
        try:
            self.model_version, served_shape = self._read_metadata(image_shape is None)
            if image_shape is None:
                image_shape = served_shape
            elif served_shape is not None and tuple(int(d) for d in image_shape) != served_shape:
                raise ValueError(f"The model at {self.url} takes inputs of shape {served_shape} (its metadata); "
                                 f"image_shape={tuple(image_shape)} differs.")
            self._setup(image_shape, logits=logits, class_names=class_names, input_range=input_range,
                        preprocess=preprocess, batch_size=batch_size, max_queries=max_queries)
        except (KerasFoolError, ValueError) as error:
            self.close()
            raise self._located(error) from None

    # ---- the model contract --------------------------------------------------------------------
    def source(self):
        source = {"url": self.url}
        if self.model_version is not None:
            source["model_version"] = self.model_version
        return source

    def scores(self, images):
        try:
            return super().scores(images)
        except KerasFoolError as error:
            raise self._located(error) from None

    def _raw_outputs(self, inputs):
        body = json.dumps({"instances": np.asarray(inputs, np.float32).tolist()}).encode()
        status, reason, data = self._exchange("POST", self._predict_path, body)
        if status != 200:
            raise BackendError(f"{self.url} answered HTTP {status} {reason}{self._server_message(data)}"
                               f"{HINTS.get(status, '')}.")
        return self._table(self._json(data))

    def close(self):
        """Close the connection to the server (a later query opens a new one)."""
        with self._lock:
            self._disconnect()

    # ---- the URL and the metadata -------------------------------------------------------------
    def _parse_url(self, url):
        if not isinstance(url, str):
            raise TypeError(f"url must be a string. Received: {type(url).__name__}")
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError:
            raise ValueError(f"url is not a valid URL. Received: url={_without_credentials(url)}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// address of a TensorFlow Serving predict endpoint, "
                             f"like http://HOST:8501/v1/models/NAME:predict. Received: url={_without_credentials(url)}")
        try:
            self._port = parts.port
        except ValueError:
            raise ValueError(f"url has no valid port number. Received: url={_without_credentials(url)}") from None
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._user = urllib.parse.unquote(parts.username) if parts.username is not None else None
        self._password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        match = MODEL_PATH.fullmatch(parts.path)
        if match:
            self._predict_path = match["model"] + ":predict"
            self._metadata_path = match["model"] + "/metadata"
            self.model_name = match["name"]
        elif parts.path.endswith(":predict"):
            self._predict_path, self._metadata_path, self.model_name = parts.path, None, None
        else:
            raise ValueError("url must be a TensorFlow Serving predict endpoint, "
                             "http(s)://HOST:PORT/v1/models/NAME[/versions/N]:predict. "
                             f"Received: url={_without_credentials(url)}")
        self.url = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{self._predict_path}"
        query = f"?{parts.query}" if parts.query else ""
        self._predict_path += query
        if self._metadata_path is not None:
            self._metadata_url = self.url.removesuffix(":predict") + "/metadata"
            self._metadata_path += query

    def _read_metadata(self, needed):
        """(version, (H, W, C)) from the model's metadata, None for what it does not tell.

        An unreachable server is a :class:`BackendError`; metadata that cannot be had or read is a
        ``ValueError`` when the shape is ``needed``, and otherwise leaves both unknown.
        """
        def refuse(cause):
            if needed:
                raise ValueError(f"Could not read the model's input shape from {cause}; pass image_shape.")
            return None, None

        if self._metadata_path is None:
            return refuse(f"{self.url} (not a /v1/models/NAME:predict URL, so it has no metadata endpoint)")
        status, reason, data = self._exchange("GET", self._metadata_path)
        if status != 200:
            return refuse(f"{self._metadata_url} (HTTP {status} {reason}{self._server_message(data)})")
        try:
            answer = json.loads(data)
            version = answer.get("model_spec", {}).get("version")
            signature = answer["metadata"]["signature_def"]["signature_def"]["serving_default"]
            (tensor,) = signature["inputs"].values()
            dims = tuple(int(d["size"]) for d in tensor["tensor_shape"]["dim"])
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
            return refuse(f"{self._metadata_url} (no serving_default signature with one input tensor of known shape)")
        version = str(version) if isinstance(version, (str, int)) and str(version) else None
        if len(dims) == 4 and min(dims[1:]) >= 1:
            return version, dims[1:]
        if needed:
            refuse(f"{self._metadata_url} (its input has shape {list(dims)}, not a batch of images of one size)")
        return version, None

    # ---- requests ------------------------------------------------------------------------------
    def _exchange(self, method, path, body=None):
        """(status, reason, body) of the server's answer, after retrying what may pass.

        Raises:
            BackendError: no usable answer after ``retries`` retries, or a failure that retrying
                cannot mend (a certificate, an unknown host, an answer too large).
        """
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        tries = self.retries + 1
        retry_after = None
        for attempt in range(tries):
            if attempt:
                self._sleep(self._backoff(attempt, retry_after))
            retry_after = None
            self._pace()
            try:
                status, reason, data, retry_after = self._send(method, path, body, headers)
            except ssl.SSLCertVerificationError as error:
                raise BackendError(f"The TLS certificate of {self.url} could not be verified "
                                   f"({error.verify_message}); pass verify=PATH with the CA bundle that signed it, "
                                   "or verify=False to skip the check.") from None
            except ssl.SSLError as error:
                raise BackendError(f"The TLS connection to {self.url} failed ({error.reason or error}).") from None
            except socket.gaierror as error:
                raise BackendError(f"The host of {self.url} cannot be found ({error.strerror}).") from None
            except TimeoutError:
                cause = f"no answer within {self.timeout:g} s"
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.IncompleteRead):
                cause = "the server closed the connection before it answered"
            except ConnectionRefusedError:
                cause = "the connection was refused"
            except (http.client.HTTPException, OSError) as error:
                cause = f"the connection failed ({self._clean(str(error)) or type(error).__name__})"
            else:
                if status != 429 and status < 500:
                    return status, reason, data
                cause = f"HTTP {status} {reason}{self._server_message(data)}"
        raise BackendError(f"Gave up on {self.url} after {tries} {'try' if tries == 1 else 'tries'} "
                           f"({self.retries} {'retry' if self.retries == 1 else 'retries'}): {cause}.")

    def _send(self, method, path, body, headers):
        """One request on the kept-alive connection: (status, reason, body, Retry-After seconds or None)."""
        with self._lock:
            if self._connection is None:
                if self._https:
                    self._connection = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                                                   context=self._ssl)
                else:
                    self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            try:
                self.requests += 1
                self._connection.request(method, path, body=body, headers=headers)
                response = self._connection.getresponse()
                length = response.getheader("Content-Length")
                if length is not None and length.isdigit() and int(length) > MAX_ANSWER_BYTES:
                    raise _TooLarge()
                data = response.read(MAX_ANSWER_BYTES + 1)
                if len(data) > MAX_ANSWER_BYTES:
                    raise _TooLarge()
                if response.will_close:
                    self._disconnect()
            except _TooLarge:
                self._disconnect()
                raise BackendError(f"{self.url} sent an answer larger than {format_bytes(MAX_ANSWER_BYTES)}; "
                                   "lower batch_size.") from None
            except BaseException:
                self._disconnect()
                raise
        return response.status, response.reason, data, _seconds(response.getheader("Retry-After"))

    def _disconnect(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _pace(self):
        """Wait until ``rate_limit`` allows the next request."""
        if self.rate_limit is None:
            return
        now = self._clock()
        if self._next_send is not None and now < self._next_send:
            self._sleep(self._next_send - now)
            now = self._next_send
        self._next_send = now + 1.0 / self.rate_limit

    def _backoff(self, attempt, retry_after):
        """Seconds before retry ``attempt`` (1, 2, ...): doubling, half of it jittered, at least a Retry-After."""
        delay = min(MAX_BACKOFF, BACKOFF * 2 ** (attempt - 1)) * (0.5 + 0.5 * self._jitter.random())
        return max(delay, min(retry_after or 0.0, MAX_RETRY_AFTER))

    # ---- answers -------------------------------------------------------------------------------
    def _json(self, data):
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            raise BackendError(f"{self.url} answered with something that is not JSON "
                               f"({self._clean(data.decode('utf-8', 'replace')) or 'an empty body'}).") from None

    def _table(self, answer):
        """The (n, k) numbers of a predict answer, row (``predictions``) or columnar (``outputs``)."""
        if isinstance(answer, dict) and "error" in answer:
            raise BackendError(f"{self.url} answered with an error: {self._clean(str(answer['error']))}.")
        key = next((k for k in ("predictions", "outputs") if isinstance(answer, dict) and k in answer), None)
        if key is None:
            keys = ", ".join(map(str, answer)) if isinstance(answer, dict) else type(answer).__name__
            raise BackendError(f'{self.url} answered JSON without "predictions" or "outputs" ({self._clean(keys)}).')
        values = answer[key]
        if isinstance(values, dict):  # columnar, named outputs
            values = self._one_output(values.keys(), values)
        elif isinstance(values, list) and values and all(isinstance(row, dict) for row in values):  # rows, named
            names = values[0].keys()
            if any(row.keys() != names for row in values):
                raise BackendError(f"{self.url} answered rows with different output names.")
            name = self._one_output(names, None)
            values = [row[name] for row in values]
        try:
            table = np.array(values)
        except (ValueError, TypeError):
            table = None
        if table is None or table.dtype.kind not in "iuf":
            raise BackendError(f'{self.url} answered "{key}" that are not a table of numbers.')
        return table.astype(np.float64)

    def _one_output(self, names, columns):
        """The one output's column (or its name when ``columns`` is None)."""
        names = list(names)
        if len(names) != 1:
            raise BackendError(f"{self.url} answered {len(names)} outputs ({self._clean(', '.join(names))}); "
                               "serve a signature with the classifier's output alone.")
        return names[0] if columns is None else columns[names[0]]

    def _server_message(self, data):
        """': <the server's error message>' from an error answer (TF Serving sends {"error": ...}), or ''."""
        try:
            answer = json.loads(data)
            message = answer["error"] if isinstance(answer, dict) and "error" in answer else data.decode()
        except (ValueError, RecursionError):
            message = data.decode("utf-8", "replace")
        message = self._clean(str(message))
        return f": {message}" if message else ""

    def _clean(self, text):
        """``text`` on one line, short, without the token or the URL's password, and without a final period."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
        if len(text) > MESSAGE_CHARS:
            text = text[:MESSAGE_CHARS] + "..."
        return text.rstrip(".")

    def _located(self, error):
        """``error`` again with its sentence naming this endpoint instead of "the http model"."""
        text = str(error)
        if self.url in text:
            return error
        for article in ("The", "the"):
            text = text.replace(f"{article} {self.backend} model", f"{article} model at {self.url}")
        if self.url not in text and isinstance(error, KerasFoolError) and not isinstance(error, QueryBudgetError):
            text = f"{text.rstrip('.')} ({self.url})."
        return type(error)(text)


class _TooLarge(Exception):
    """An answer over MAX_ANSWER_BYTES (turned into a BackendError that names the endpoint)."""


def _ssl_context(verify):
    if verify is True:
        return ssl.create_default_context()
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, (str, os.PathLike)):
        if not os.path.isfile(verify):
            raise ValueError(f"verify names a CA bundle that does not exist: {os.fspath(verify)}")
        try:
            return ssl.create_default_context(cafile=os.fspath(verify))
        except ssl.SSLError:
            raise ValueError(f"verify names a file that is no PEM CA bundle: {os.fspath(verify)}") from None
    raise TypeError(f"verify must be True, False or the path of a CA bundle. Received: verify={verify!r}")


def _without_credentials(url):
    """``url`` with any user:password@ left out (for messages)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1", url)


def _seconds(value):
    """A Retry-After header's seconds (its date form is ignored), or None."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
