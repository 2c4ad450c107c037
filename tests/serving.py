"""A stand-in for TensorFlow Serving's REST API on 127.0.0.1, a real Keras model behind it, for tests.

It answers ``POST /v1/models/NAME[/versions/N]:predict`` (``{"instances": ...}`` in,
``{"predictions": ...}`` out) and ``GET /v1/models/NAME[/versions/N]/metadata`` as TensorFlow
Serving does, errors included (``{"error": "..."}``), on a free port, HTTP/1.1 with keep-alive,
optionally over TLS. Faults are scripted per predict request::

    with ServingServer(model, name="lenet") as server:
        server.faults = iter([500, "close"])  # the next two predict requests fail, then all is well
        target = HTTPTarget(server.url)

A fault is an HTTP status (answered with TF Serving's error JSON), ``(status, message[, headers])``,
``"close"`` (the connection is closed without an answer), ``"slow"`` (the answer waits
``server.delay`` seconds), ``bytes`` (answered as the body, HTTP 200) or a function of the model's
outputs (a NumPy array) that returns the JSON answer to send instead.
"""

import http.server
import json
import re
import shutil
import ssl
import subprocess
import threading
import time

import numpy as np

PREDICT = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?:predict")
METADATA = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?/metadata")


class ServingServer:
    """A TF Serving-like REST server of one Keras ``model`` named ``name``, version ``version``.

    Attributes:
        url: the predict URL, ``http(s)://127.0.0.1:PORT/v1/models/NAME:predict``.
        requests: one dict per request received: method, path, headers, instances (predict: the count),
            at (``clock()`` when it came).
        faults: an iterator of faults for the next predict requests (exhausted: answer normally).
        delay: seconds a ``"slow"`` fault waits before answering.
        clock: what ``at`` is read from (a test's fake clock, say).
    """

    def __init__(self, model, name="model", version=1, certificate=None):
        self.model, self.name, self.version = model, name, str(version)
        self.requests = []
        self.faults = iter(())
        self.delay = 1.0
        self.clock = time.monotonic
        self._httpd = _Server(("127.0.0.1", 0), _handler(self))
        scheme = "http"
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            scheme = "https"
        self.base = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self.url = f"{self.base}/v1/models/{name}:predict"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def predict_sizes(self):
        """The number of instances in each predict request, in order."""
        return [r["instances"] for r in self.requests if r["path"].endswith(":predict")]

    def metadata(self):
        """The model's metadata as TF Serving answers it (sizes as strings, -1 for the batch)."""
        dims = [{"size": str(-1 if d is None else d), "name": ""} for d in self.model.input_shape]
        tensor = {"dtype": "DT_FLOAT", "tensor_shape": {"dim": dims, "unknown_rank": False},
                  "name": "serving_default_inputs:0"}
        signature = {"inputs": {"inputs": tensor}, "outputs": {"output_0": {"dtype": "DT_FLOAT"}},
                     "method_name": "tensorflow/serving/predict"}
        return {"model_spec": {"name": self.name, "signature_name": "", "version": self.version},
                "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}}}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still waiting on a "slow" fault does not hold up the test

    def handle_error(self, request, client_address):
        """A client that gave up (a timeout, a refused certificate) is part of the tests, not an error."""


def _handler(server):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self._record(0)
            match = METADATA.fullmatch(self.path)
            if not match:
                return self._answer(404, {"error": "Malformed request: GET " + self.path})
            if not self._servable(match):
                return None
            return self._answer(200, server.metadata())

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            match = PREDICT.fullmatch(self.path)
            try:
                instances = np.asarray(json.loads(body)["instances"], np.float32)
            except (ValueError, KeyError, TypeError):
                self._record(0)
                return self._answer(400, {"error": "JSON Parse error: Invalid value. at offset: 0"})
            self._record(len(instances))
            if not match:
                return self._answer(404, {"error": "Malformed request: POST " + self.path})
            if not self._servable(match):
                return None
            fault = next(server.faults, None)
            if fault == "close":
                self.close_connection = True
                return None
            if fault == "slow":
                time.sleep(server.delay)
            if isinstance(fault, int):
                fault = (fault, f"fault {fault} for the test")
            if isinstance(fault, tuple):
                return self._answer(fault[0], {"error": fault[1]}, *fault[2:])
            if isinstance(fault, bytes):
                return self._send(200, fault)
            outputs = np.asarray(server.model(instances, training=False), np.float32)
            if callable(fault):
                return self._answer(200, fault(outputs))
            return self._answer(200, {"predictions": outputs.tolist()})

        def _servable(self, match):
            if match["name"] != server.name or match["version"] not in (None, server.version):
                name, version = match["name"], match["version"]
                what = f"Specific({name}, {version})" if version else f"Latest({name})"
                self._answer(404, {"error": f"Servable not found for request: {what}"})
                return False
            return True

        def _record(self, instances):
            server.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                    "instances": instances, "at": server.clock()})

        def _answer(self, status, answer, headers=None):
            self._send(status, json.dumps(answer).encode(), headers)

        def _send(self, status, body, headers=None):
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def self_signed_certificate(folder):
    """(certificate, key) PEM paths of a self-signed certificate for 127.0.0.1, made with ``cryptography`` or the
    ``openssl`` command; None when neither is available."""
    certificate, key = folder / "cert.pem", folder / "key.pem"
    try:
        from cryptography import x509  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            return None
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(certificate)], check=True, capture_output=True)
        return certificate, key
    return _cryptography_certificate(certificate, key)


def _cryptography_certificate(certificate, key):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(private, hashes.SHA256()))
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certificate, key
