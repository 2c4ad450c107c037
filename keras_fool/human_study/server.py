"""Serve a study with waitress, a pure-Python production WSGI server."""

from __future__ import annotations

import errno
import ipaddress
import os
import secrets
import signal
import threading

from keras_fool.validation import check_int

__all__ = ["ADMIN_TOKEN_VARIABLE", "serve"]

ADMIN_TOKEN_VARIABLE = "KERAS_FOOL_STUDY_ADMIN_TOKEN"


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(db="study.sqlite", host="127.0.0.1", port=8000, config=None, images=None, threads=8, admin_token=None,
          announce=print):
    """Run the study's web app until interrupted (Ctrl-C or SIGTERM).

    Generates the image set first when it is not there yet (that one step imports TensorFlow;
    serving never does).

    Args:
        db: SQLite file path or SQLAlchemy URL.
        host: address to listen on; the loopback address by default, so nobody else can reach
            the study until you choose an address on your network (or 0.0.0.0).
        port: TCP port (0 picks a free one; the address printed says which).
        config: a :class:`~keras_fool.human_study.config.StudyConfig` (the paper's design by default).
        images: path of the image set (default: the cache, see
            :func:`~keras_fool.human_study.images.default_image_path`).
        threads: worker threads of the server.
        admin_token: secret for the admin endpoints; default ``$KERAS_FOOL_STUDY_ADMIN_TOKEN``, or a
            new random one that is printed.
        announce: called with each line to tell the user (the address, the admin token).

    Nothing is made before the inputs are accepted: the port is taken and the images are loaded
    (or made) before the database is created, and a database that cannot be set up is removed again.

    Raises:
        TypeError, ValueError: bad arguments, a port that cannot be had, images of another study,
            or a database that cannot be written or holds another study.
    """
    from keras_fool.human_study.app import create_app
    from keras_fool.human_study.config import StudyConfig
    from keras_fool.human_study.images import ensure_image_set
    from keras_fool.human_study.storage import check_driver, open_study

    config = StudyConfig() if config is None else config
    if not isinstance(config, StudyConfig):
        raise TypeError(f"config must be a StudyConfig. Received: {type(config).__name__}")
    if not isinstance(host, str) or not host.strip():
        raise TypeError(f"host must be a host name or an IP address. Received: host={host!r}")
    port = check_int("port", port, minimum=0, maximum=65535)
    threads = check_int("threads", threads, minimum=1, maximum=256)
    generated_token = admin_token is None and not os.environ.get(ADMIN_TOKEN_VARIABLE)
    admin_token = admin_token or os.environ.get(ADMIN_TOKEN_VARIABLE) or secrets.token_urlsafe(24)
    if len(admin_token) < 16:
        raise ValueError(f"The admin token must have at least 16 characters. Received: {len(admin_token)} characters")

    check_driver(db)

    def application(environ, start_response):  # the server listens from now on; it serves once run() starts
        return app(environ, start_response)

    server = _listen(application, host, port, threads)  # a busy port is refused before anything is made
    try:
        image_set, image_path = ensure_image_set(config, images, verbose=True)
        store = open_study(db, config, image_set)
    except BaseException:
        _close(server)
        raise
    try:
        app = create_app(store, image_set, config, admin_token)
        shown_host = f"[{host}]" if ":" in host else host
        announce(f"Images: {image_path} ({config.images_per_participant} per participant)")
        announce(f"Database: {store.describe()}")
        if generated_token:
            announce(f"Admin token (for /admin/status, /admin/answers.csv, /admin/reset): {admin_token}")
        if not _is_loopback(host):
            announce(f"Warning: listening on {host}: anyone who can reach this machine can open the study.")
        announce(f"Serving the study at http://{shown_host}:{server.effective_port}/ (Ctrl-C stops it)")
        # SIGTERM stops the server like Ctrl-C (signal handlers can only be set in the main thread).
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if main_thread else None
        try:
            server.run()  # waitress returns from here on Ctrl-C or SIGTERM, after its threads stop
        except KeyboardInterrupt:
            pass
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)
        announce("Stopped.")
    finally:
        _close(server)
        store.close()


_LISTEN_FAILURES = {
    errno.EADDRINUSE: "the port is in use (another server? choose another port, or 0 for any free one)",
    errno.EADDRNOTAVAIL: "this machine has no such address",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


def _listen(application, host, port, threads):
    """A waitress server bound to ``host:port``; a port or address that cannot be had is one ValueError naming it."""
    import socket

    try:
        import waitress.server
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError(
            "The human study needs waitress, Flask and SQLAlchemy: pip install 'keras-fool[human-study]'."
        ) from None
    try:
        return waitress.server.create_server(
            application, host=host, port=port, threads=threads, ident="keras-fool",
            max_request_body_size=64 * 1024, max_request_header_size=64 * 1024, expose_tracebacks=False,
            channel_timeout=60, connection_limit=200,
        )
    except OSError as e:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = "no such host" if isinstance(e, socket.gaierror) else _LISTEN_FAILURES.get(e.errno, e.strerror or e)
        raise ValueError(f"Cannot listen on {shown}: {reason}.") from None


def _close(server):
    """Stop listening and stop the server's worker threads."""
    server.close()
    server.task_dispatcher.shutdown()


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
