"""The participants' web app (Flask): consent, one image at a time, thank you; and a small admin API.

Pages (HTML, work without JavaScript; the script only adds the keyboard keys 0-9):

- ``GET /``: consent and instructions; ``POST /start`` registers a participant and redirects to
  their own link ``/p/<token>``, which also resumes the study after the tab was closed.
- ``GET /p/<token>``: the current image (a 28x28 PNG inlined in the page, shown large and
  pixelated), ten digit buttons and a progress bar; the thank-you page once every image is
  answered.
- ``POST /p/<token>/answer`` (form fields ``position`` and ``digit``): stores the answer, then
  ``303 See Other`` back to ``/p/<token>``. Refusals store nothing: 400 a malformed form, 403 a
  request from another site, 404 an unknown participant, 409 an answer that is not for the image
  shown now (replayed, skipped ahead, already finished), 413 a body over 1 KiB, 415 not a form,
  422 a digit outside 0-9.

Admin (``Authorization: Bearer <token>``; 401 without the right token): ``GET /admin/status``
(counts, JSON), ``GET /admin/answers.csv``, ``POST /admin/reset`` with form field
``confirm=reset`` (deletes every participant and answer).

Static files come only from the package's ``static`` folder; Flask never lists a folder.
"""

from __future__ import annotations

import base64
import hmac
import re
import urllib.parse
from pathlib import Path

try:
    import flask
    from werkzeug.exceptions import HTTPException
except ImportError:  # pragma: no cover - depends on the installation
    raise ImportError(
        "The human study needs Flask, waitress and SQLAlchemy: pip install 'keras-fool[human-study]'."
    ) from None

from keras_fool.human_study.images import png_bytes
from keras_fool.human_study.storage import (
    ANSWER_COLUMNS,
    AnswerRejectedError,
    StudyFullError,
    UnknownParticipantError,
)
from keras_fool.report.tables import csv_text

__all__ = ["MAX_BODY_BYTES", "create_app"]

PACKAGE_DIR = Path(__file__).resolve().parent
MAX_BODY_BYTES = 1024
_INTEGER = re.compile(r"-?[0-9]{1,9}")

_SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The participant's token is in the URL: never send it to another site.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class _BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(store, image_set, config, admin_token):
    """The Flask app of one study.

    Args:
        store: a :class:`~keras_fool.human_study.storage.StudyStore` already initialised for ``config``.
        image_set: the study's :class:`~keras_fool.human_study.images.ImageSet`.
        config: the :class:`~keras_fool.human_study.config.StudyConfig`.
        admin_token: the secret of the admin endpoints (at least 16 characters).

    Returns:
        A ``flask.Flask`` WSGI app.
    """
    if not isinstance(admin_token, str) or len(admin_token) < 16:
        raise ValueError("admin_token must be a string of at least 16 characters.")
    app = _flask_app()
    _register_error_handlers(app, config)
    app.after_request(_security_headers)
    _register_participant_routes(app, store, image_set, config)
    _register_admin_routes(app, store, config, admin_token)
    return app


def _flask_app():
    """A bare Flask app: the package's static and template folders, small bodies, no reloading."""
    app = flask.Flask(
        __name__,
        static_folder=str(PACKAGE_DIR / "static"),
        static_url_path="/static",
        template_folder=str(PACKAGE_DIR / "templates"),
    )
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES,
        MAX_FORM_PARTS=8,
        SEND_FILE_MAX_AGE_DEFAULT=300,
        TEMPLATES_AUTO_RELOAD=False,
    )
    return app


# ---------------------------------------------------------------------- responses and request checks


def _page(config, template, status=200, **context):
    html = flask.render_template(template, config=config, **context)
    response = flask.make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _error_page(config, status, message, token=None):
    return _page(config, "error.html", status=status, status_code=status, message=message, token=token)


def _security_headers(response):
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _check_same_origin():
    # Browsers name the page a form was sent from; refuse forms sent from other sites. Only the
    # host is compared (not the scheme), so the check holds behind an HTTPS reverse proxy that
    # passes the Host header on.
    origin = flask.request.headers.get("Origin")
    if origin is not None and urllib.parse.urlsplit(origin).netloc != flask.request.host:
        raise _BadRequest(403, "This form can only be sent from the study's own pages.")


def _form_fields(*names):
    if flask.request.mimetype != "application/x-www-form-urlencoded":
        raise _BadRequest(415, "Expected an HTML form (application/x-www-form-urlencoded).")
    form = flask.request.form  # raises 413 past MAX_CONTENT_LENGTH
    values = {}
    for name in names:
        found = form.getlist(name)
        if len(found) > 1:
            raise _BadRequest(400, f"The field {name!r} was sent more than once.")
        values[name] = found[0] if found else None
    return values


def _integer_field(values, name):
    text = values.get(name)
    if text is None or not _INTEGER.fullmatch(text):
        raise _BadRequest(400, f"The field {name!r} must be an integer.")
    return int(text)


def _require_admin(admin_secret):
    header = flask.request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), admin_secret):
        flask.abort(flask.Response("Admin token required.\n", 401, {"WWW-Authenticate": "Bearer",
                                                                     "Content-Type": "text/plain"}))


def _answers_csv(rows, conditions):
    """The answers as CSV text (columns :data:`ANSWER_COLUMNS`), as ``GET /admin/answers.csv`` sends them."""
    return csv_text([dict(row, participant=f"P{row['participant']}", simulated=False,
                          condition=conditions[row["condition_index"]].key) for row in rows], ANSWER_COLUMNS)


# ---------------------------------------------------------------------- routes


def _register_error_handlers(app, config):
    """Refusals and HTTP errors as the study's own error page."""

    @app.errorhandler(_BadRequest)
    def _bad_request(error):
        return _error_page(config, error.status, error.message)

    @app.errorhandler(HTTPException)
    def _http_error(error):
        messages = {404: "There is no such page.", 405: "That request is not allowed here.",
                    413: "The request is too large."}
        response = _error_page(config, error.code or 500, messages.get(error.code, error.description or error.name))
        for name, value in error.get_headers():
            if name.lower() == "allow":  # 405 says which methods are
                response.headers[name] = value
        return response


def _register_participant_routes(app, store, image_set, config):
    """``/``, ``/start``, ``/p/<token>`` and ``/p/<token>/answer``."""

    @app.get("/")
    def consent():
        return _page(config, "consent.html", total=config.images_per_participant)

    @app.post("/start")
    def start():
        _check_same_origin()
        values = _form_fields("consent", "age", "handedness")
        if values["consent"] != "yes":
            raise _BadRequest(400, "Please tick the box to agree before you start.")
        try:
            token = store.create_participant(
                config, image_set,
                age=values["age"] if config.ask_age else None,
                handedness=values["handedness"] if config.ask_handedness else None,
            )
        except (ValueError, TypeError) as e:
            raise _BadRequest(400, str(e)) from None
        except StudyFullError:
            return _error_page(config, 503, "The study is full; thank you for your interest.")
        return flask.redirect(flask.url_for("study", token=token), code=303)

    @app.get("/p/<token>")
    def study(token):
        try:
            progress = store.current(token)
        except UnknownParticipantError:
            return _error_page(config, 404, "This link does not belong to any participant.")
        if progress.done:
            return _page(config, "done.html", total=progress.total)
        image = base64.b64encode(png_bytes(image_set.images[progress.condition_index, progress.pool_index])).decode()
        return _page(config, "study.html", token=token, position=progress.position, total=progress.total, image=image)

    @app.post("/p/<token>/answer")
    def answer(token):
        _check_same_origin()
        values = _form_fields("position", "digit")
        position = _integer_field(values, "position")
        digit = _integer_field(values, "digit")
        if not 0 <= digit <= 9:
            raise _BadRequest(422, "The answer must be a digit from 0 to 9.")
        try:
            store.record_answer(token, position, digit)
        except UnknownParticipantError:
            return _error_page(config, 404, "This link does not belong to any participant.")
        except AnswerRejectedError:
            return _error_page(config, 409, "That answer is not for the image on your screen (it may have been "
                                            "recorded already); nothing was changed.", token=token)
        except (ValueError, TypeError) as e:
            raise _BadRequest(400, str(e)) from None
        return flask.redirect(flask.url_for("study", token=token), code=303)


def _register_admin_routes(app, store, config, admin_token):
    """``/admin/status``, ``/admin/answers.csv`` and ``/admin/reset``, behind the bearer token."""
    admin_secret = admin_token.encode()

    @app.get("/admin/status")
    def admin_status():
        _require_admin(admin_secret)
        return flask.jsonify(dict(store.counts(), images_per_participant=config.images_per_participant))

    @app.get("/admin/answers.csv")
    def admin_answers():
        _require_admin(admin_secret)
        response = flask.make_response(_answers_csv(store.answer_rows(), config.conditions))
        response.headers["Content-Type"] = "text/csv; charset=utf-8"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/admin/reset")
    def admin_reset():
        _require_admin(admin_secret)
        values = _form_fields("confirm")
        if values["confirm"] != "reset":
            raise _BadRequest(400, "Send confirm=reset to delete every participant and answer.")
        return flask.jsonify(deleted=store.reset())
