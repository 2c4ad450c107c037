"""The study's database, through SQLAlchemy Core: SQLite by default, any SQLAlchemy URL for a lab.

Four tables: ``study`` (one row: the configuration and the image set's digest), ``participants``
(an unguessable token, the seed of their plan, how many images they answered), ``trials`` (each
participant's plan, one row per image, written when the participant starts; ``shown_at`` is set
when the image is first served) and ``answers`` (one row per answer, at most one per trial: a
unique constraint on (participant, position) and a foreign key to the trial).

Every answer is committed in its own transaction before the server replies, and the reply is what
tells the browser to show the next image; an acknowledged answer is therefore on disk (SQLite runs
in WAL mode with ``synchronous=FULL``). A participant's answer is accepted only for the image they
are shown now: the position must equal the number of answers they have given and that trial must
have been served. The check and the write happen in one transaction that SQLite starts with
``BEGIN IMMEDIATE`` (one writer at a time) and that other databases guard with a conditional
``UPDATE ... WHERE answered = position``, so two copies of one answer can never both be stored.

PostgreSQL (``postgresql+psycopg://user:password@host/dbname``, needs ``pip install psycopg``) is
the choice when many people take part at once on a lab server.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import secrets
import urllib.parse
from pathlib import Path

try:
    import sqlalchemy as sa
except ImportError:  # pragma: no cover - depends on the installation
    raise ImportError(
        "The human study needs SQLAlchemy, Flask and waitress: pip install 'keras-fool[human-study]'."
    ) from None

from keras_fool.human_study.config import StudyConfig, participant_plan
from keras_fool.validation import check_int

__all__ = [
    "ANSWER_COLUMNS",
    "AnswerRejectedError",
    "NoStudyError",
    "Progress",
    "StudyFullError",
    "StudyStore",
    "TOKEN_PATTERN",
    "UnknownParticipantError",
    "check_database",
    "check_driver",
    "database_url",
    "open_study",
]

# The columns of answers.csv (export and /admin/answers.csv), one row per answer.
ANSWER_COLUMNS = ("participant", "simulated", "finished", "position", "condition", "noise", "level", "test_index",
                  "label", "answer", "correct", "shown_at", "answered_at", "response_ms")
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16)
_TEXT_LIMIT = 40

metadata = sa.MetaData()

study_table = sa.Table(
    "study", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("design_fingerprint", sa.String(16), nullable=False),
    sa.Column("images_digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.CheckConstraint("id = 1", name="one_study"),
)

participants_table = sa.Table(
    "participants", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token", sa.String(22), nullable=False, unique=True),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("answered", sa.Integer, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("finished_at", sa.String(32), nullable=True),
    sa.Column("age", sa.String(_TEXT_LIMIT), nullable=True),
    sa.Column("handedness", sa.String(_TEXT_LIMIT), nullable=True),
    sa.CheckConstraint("answered >= 0 AND answered <= total", name="answered_in_range"),
)

trials_table = sa.Table(
    "trials", metadata,
    sa.Column("participant_id", sa.Integer, sa.ForeignKey("participants.id", ondelete="CASCADE"),
              primary_key=True, autoincrement=False),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("condition_index", sa.Integer, nullable=False),
    sa.Column("noise", sa.String(16), nullable=False),
    sa.Column("level", sa.Float, nullable=False),
    sa.Column("pool_index", sa.Integer, nullable=False),
    sa.Column("test_index", sa.Integer, nullable=False),
    sa.Column("label", sa.Integer, nullable=False),
    sa.Column("shown_at", sa.String(32), nullable=True),
)

answers_table = sa.Table(
    "answers", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("participant_id", sa.Integer, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("digit", sa.Integer, nullable=False),
    sa.Column("answered_at", sa.String(32), nullable=False),
    sa.Column("response_ms", sa.Integer, nullable=True),
    sa.UniqueConstraint("participant_id", "position", name="one_answer_per_trial"),
    sa.ForeignKeyConstraint(["participant_id", "position"], ["trials.participant_id", "trials.position"],
                            ondelete="CASCADE"),
    sa.CheckConstraint("digit >= 0 AND digit <= 9", name="digit_0_to_9"),
)


class UnknownParticipantError(LookupError):
    """No participant has this id."""


class AnswerRejectedError(Exception):
    """An answer that is not for the image the participant is shown now (a replay, a skip, a guess)."""


class StudyFullError(Exception):
    """The study has reached ``max_participants``."""


class NoStudyError(ValueError):
    """The database holds no study (the server records it when it first starts)."""


class Progress:
    """Where a participant stands: ``position`` (answers given), ``total``, and the trial shown now.

    Attributes:
        position: the number of answers stored, which is also the index of the current image.
        total: images in the participant's plan.
        done: every image is answered.
        condition_index, pool_index: the current image in the image set (None when done).
    """

    __slots__ = ("position", "total", "condition_index", "pool_index")

    def __init__(self, position, total, condition_index=None, pool_index=None):
        self.position = position
        self.total = total
        self.condition_index = condition_index
        self.pool_index = pool_index

    @property
    def done(self):
        return self.position >= self.total


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def database_url(db):
    """A SQLAlchemy URL from a URL string or a path of a SQLite file.

    Raises:
        TypeError: not a string or path.
        ValueError: a malformed URL, or an in-memory SQLite database (it would vanish with the server).
    """
    if isinstance(db, sa.engine.URL):
        url = db
    elif isinstance(db, (str, Path)):
        text = str(db)
        if not text.strip():
            raise ValueError("The database must be a SQLite file path or a SQLAlchemy URL. Received: an empty string")
        if "://" in text:
            try:
                url = sa.engine.make_url(text)
            except sa.exc.ArgumentError:
                raise ValueError(f"Not a valid SQLAlchemy database URL: {text!r}") from None
        else:
            url = sa.engine.URL.create("sqlite", database=str(Path(text).expanduser().resolve()))
    else:
        raise TypeError(f"db must be a path or a database URL. Received: db={db!r}")
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError("An in-memory SQLite database would lose every answer when the server stops; give a file.")
    return url


def _sqlite_file(url):
    """The SQLite file of ``url`` (also of a ``file:`` URI with ``uri=true``), or None for another database."""
    if url.get_backend_name() != "sqlite":
        return None
    if url.query.get("uri") == "true" and url.database.startswith("file:"):
        return Path(urllib.parse.urlsplit(url.database).path)
    return Path(url.database)


def _unusable(url, error):
    """A ValueError that says in one sentence which database cannot be used and why (from a DBAPI error)."""
    cause = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    where = _sqlite_file(url) or url.render_as_string(hide_password=True)
    reasons = {"readonly": "it is read-only", "disk is full": "the disk is full",
               "unable to open": "it cannot be opened or made there (does its folder allow writing?)"}
    reason = next((text for key, text in reasons.items() if key in cause), None)
    return ValueError(f"Cannot use the study database {where}: " + (f"{reason} ({cause})." if reason else f"{cause}."))


class StudyStore:
    """The study's tables in one database.

    Args:
        db: a SQLite file path or a SQLAlchemy URL (``sqlite:///study.sqlite``,
            ``postgresql+psycopg://...``).
        create: create the tables when missing; with ``False`` the database must already hold a
            study (a SQLite file is never created then).

    Raises:
        FileNotFoundError: ``create=False`` and the SQLite file does not exist.
        ValueError: a bad URL, or a database (or its folder) that cannot be made, opened or written:
            one sentence naming it and the cause.
        NoStudyError: ``create=False`` and the database holds no study.
    """

    def __init__(self, db, create=True):
        self.url = database_url(db)
        sqlite_file = _sqlite_file(self.url)
        if sqlite_file is not None and not create and not sqlite_file.is_file():
            raise FileNotFoundError(f"No study database at {sqlite_file}.")
        if sqlite_file is not None and create:
            try:
                sqlite_file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ValueError(f"Cannot use the study database {sqlite_file}: its folder cannot be made "
                                 f"({e.strerror or e}).") from None
        self.engine = self._make_engine(self.url)
        try:
            if create:
                metadata.create_all(self.engine)
            elif not sa.inspect(self.engine).has_table("study"):
                raise NoStudyError(f"{self.describe()} holds no human study (no 'study' table).")
        except sa.exc.OperationalError as e:
            self.engine.dispose()
            raise _unusable(self.url, e) from None
        except BaseException:
            self.engine.dispose()
            raise

    @staticmethod
    def _make_engine(url):
        if url.get_backend_name() != "sqlite":
            try:
                return sa.create_engine(url, pool_pre_ping=True)
            except (sa.exc.NoSuchModuleError, ImportError) as e:
                raise ValueError(f"No database driver for {url.render_as_string(hide_password=True)} ({e}).") from None
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _configure(dbapi_connection, connection_record):
            # The driver's own transaction handling off, so that "begin" below decides how to begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(connection):
            # Take the write lock at the start: a transaction that reads and then writes cannot
            # fail half-way with "database is locked" when another one commits in between.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def describe(self):
        """The database, password hidden."""
        return self.url.render_as_string(hide_password=True)

    def close(self):
        self.engine.dispose()

    # ------------------------------------------------------------------ the study

    def initialise(self, config, image_set):
        """Record the study's configuration, or check that it is the one already recorded.

        Raises:
            ValueError: the database holds a study of another design or with other images.
        """
        config_json = json.dumps(config.to_dict(), sort_keys=True)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(study_table).where(study_table.c.id == 1)).first()
            if row is None:
                conn.execute(sa.insert(study_table).values(
                    id=1, config=config_json, design_fingerprint=config.design_fingerprint(),
                    images_digest=image_set.digest, created_at=_now()))
                return
            if row.design_fingerprint != config.design_fingerprint():
                raise ValueError(
                    f"{self.describe()} holds a study with another design (images, levels or counts); "
                    f"use another database or the configuration it was started with.")
            if row.images_digest != image_set.digest:
                raise ValueError(f"{self.describe()} was started with other images than the image set given "
                                 f"(digest {row.images_digest[:12]}..., given {image_set.digest[:12]}...).")
            # Settings that do not change what is shown (consent fields, texts, limits) may change.
            conn.execute(sa.update(study_table).where(study_table.c.id == 1).values(config=config_json))

    def study(self):
        """``(config, images_digest, created_at)`` of the recorded study.

        Raises:
            NoStudyError: no study recorded yet.
        """
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(study_table).where(study_table.c.id == 1)).first()
        if row is None:
            raise NoStudyError(f"{self.describe()} holds no human study yet (the server records it when it starts).")
        return StudyConfig.from_dict(json.loads(row.config)), row.images_digest, row.created_at

    # ------------------------------------------------------------------ participants

    def create_participant(self, config, image_set, age=None, handedness=None):
        """Register a participant and write their plan; returns their token (the secret in their link).

        Raises:
            StudyFullError: ``config.max_participants`` are registered already.
            ValueError: age or handedness longer than 40 characters.
        """
        age, handedness = _optional_text("age", age), _optional_text("handedness", handedness)
        token = secrets.token_urlsafe(16)
        total = config.images_per_participant
        conditions = config.conditions
        with self.engine.begin() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(participants_table)).scalar_one()
            if count >= config.max_participants:
                raise StudyFullError(f"The study is full ({config.max_participants} participants).")
            participant_id = conn.execute(sa.insert(participants_table).values(
                token=token, seed=0, created_at=_now(), answered=0, total=total, age=age,
                handedness=handedness)).inserted_primary_key[0]
            # A participant's seed is their number: plans are reproducible and differ between people.
            conn.execute(sa.update(participants_table).where(participants_table.c.id == participant_id)
                         .values(seed=participant_id))
            plan = participant_plan(config, participant_id)
            conn.execute(sa.insert(trials_table), [
                {"participant_id": participant_id, "position": position, "condition_index": int(c),
                 "noise": conditions[c].noise, "level": float(conditions[c].level), "pool_index": int(i),
                 "test_index": int(image_set.test_indices[i]), "label": int(image_set.labels[i]), "shown_at": None}
                for position, (c, i) in enumerate(plan)
            ])
        return token

    def _participant(self, conn, token):
        if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
            raise UnknownParticipantError("No such participant.")
        row = conn.execute(sa.select(participants_table).where(participants_table.c.token == token)).first()
        if row is None:
            raise UnknownParticipantError("No such participant.")
        return row

    def current(self, token):
        """The participant's :class:`Progress`, marking the current image as shown.

        Raises:
            UnknownParticipantError: no participant has this token.
        """
        with self.engine.begin() as conn:
            participant = self._participant(conn, token)
            if participant.answered >= participant.total:
                return Progress(participant.answered, participant.total)
            trial = conn.execute(sa.select(trials_table).where(
                trials_table.c.participant_id == participant.id,
                trials_table.c.position == participant.answered)).one()
            if trial.shown_at is None:
                conn.execute(sa.update(trials_table).where(
                    trials_table.c.participant_id == participant.id,
                    trials_table.c.position == participant.answered).values(shown_at=_now()))
            return Progress(participant.answered, participant.total, trial.condition_index, trial.pool_index)

    def record_answer(self, token, position, digit):
        """Store one answer, committed before this returns.

        Args:
            token: the participant's token.
            position: the index of the image answered; must be the one shown now.
            digit: the answer, 0-9.

        Returns:
            The participant's :class:`Progress` after the answer.

        Raises:
            TypeError, ValueError: ``position`` or ``digit`` is not an integer in range.
            UnknownParticipantError: no participant has this token.
            AnswerRejectedError: not the image shown now (already answered, not reached, never
                shown, or the study is finished); nothing is stored.
        """
        position = check_int("position", position, minimum=0)
        digit = check_int("digit", digit, minimum=0, maximum=9)
        try:
            with self.engine.begin() as conn:
                participant = self._participant(conn, token)
                if participant.answered >= participant.total:
                    raise AnswerRejectedError("This participant has answered every image already.")
                if position != participant.answered:
                    raise AnswerRejectedError(
                        f"Answer for image {position}, but image {participant.answered} is the one shown.")
                trial = conn.execute(sa.select(trials_table.c.shown_at).where(
                    trials_table.c.participant_id == participant.id,
                    trials_table.c.position == position)).one()
                if trial.shown_at is None:
                    raise AnswerRejectedError(f"Image {position} was never shown to this participant.")
                now = _now()
                finished = position + 1 == participant.total
                updated = conn.execute(sa.update(participants_table).where(
                    participants_table.c.id == participant.id,
                    participants_table.c.answered == position,
                ).values(answered=position + 1, finished_at=now if finished else None))
                if updated.rowcount != 1:  # another request stored this answer in the meantime
                    raise AnswerRejectedError(f"Image {position} has been answered already.")
                conn.execute(sa.insert(answers_table).values(
                    participant_id=participant.id, position=position, digit=digit, answered_at=now,
                    response_ms=_milliseconds_between(trial.shown_at, now)))
        except sa.exc.IntegrityError:
            raise AnswerRejectedError(f"Image {position} has been answered already.") from None
        return Progress(position + 1, participant.total)

    # ------------------------------------------------------------------ reading and admin

    def answer_rows(self):
        """Every stored answer with its trial, ordered by participant and position, as dicts.

        Keys: ``participant`` (the participant's number, never their token), ``finished``,
        ``position``, ``condition_index``, ``noise``, ``level``, ``test_index``, ``label``,
        ``answer``, ``correct``, ``shown_at``, ``answered_at``, ``response_ms``.
        """
        a, t, p = answers_table, trials_table, participants_table
        query = (
            sa.select(p.c.id.label("participant"), p.c.finished_at, t.c.position, t.c.condition_index, t.c.noise,
                      t.c.level, t.c.test_index, t.c.label, a.c.digit, t.c.shown_at, a.c.answered_at, a.c.response_ms)
            .select_from(a.join(t, sa.and_(a.c.participant_id == t.c.participant_id, a.c.position == t.c.position))
                         .join(p, p.c.id == a.c.participant_id))
            .order_by(p.c.id, t.c.position)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {"participant": r.participant, "finished": r.finished_at is not None, "position": r.position,
             "condition_index": r.condition_index, "noise": r.noise, "level": r.level, "test_index": r.test_index,
             "label": r.label, "answer": r.digit, "correct": r.digit == r.label, "shown_at": r.shown_at,
             "answered_at": r.answered_at, "response_ms": r.response_ms}
            for r in rows
        ]

    def participant_rows(self):
        """Every participant (number, never token) with progress and the optional answers, as dicts."""
        p = participants_table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(p).order_by(p.c.id)).all()
        return [
            {"participant": r.id, "seed": r.seed, "created_at": r.created_at, "finished_at": r.finished_at,
             "answered": r.answered, "total": r.total, "age": r.age, "handedness": r.handedness}
            for r in rows
        ]

    def counts(self):
        """``{"participants", "finished", "answers"}``."""
        p = participants_table
        with self.engine.connect() as conn:
            participants = conn.execute(sa.select(sa.func.count()).select_from(p)).scalar_one()
            finished = conn.execute(sa.select(sa.func.count()).select_from(p).where(p.c.finished_at.is_not(None))
                                    ).scalar_one()
            answers = conn.execute(sa.select(sa.func.count()).select_from(answers_table)).scalar_one()
        return {"participants": participants, "finished": finished, "answers": answers}

    def reset(self):
        """Delete every participant, trial and answer (the study's configuration stays); returns what was deleted."""
        with self.engine.begin() as conn:
            deleted = {
                "answers": conn.execute(sa.delete(answers_table)).rowcount,
                "trials": conn.execute(sa.delete(trials_table)).rowcount,
                "participants": conn.execute(sa.delete(participants_table)).rowcount,
            }
        return deleted


def check_driver(db):
    """The SQLAlchemy URL of ``db`` once its driver is known to be installed; connects to nothing, creates nothing.

    Raises:
        TypeError, ValueError: a bad URL, or no driver for it.
    """
    url = database_url(db)
    StudyStore._make_engine(url).dispose()
    return url


def open_study(db, config, image_set):
    """A :class:`StudyStore` of ``db`` (made when missing) with ``config``'s study recorded in it, or checked.

    If this fails, a SQLite file and folders made here are removed again.

    Raises:
        ValueError: a database that cannot be made, opened or written (one sentence naming it and
            the cause), or that holds a study of another design or with other images.
    """
    url = database_url(db)
    sqlite_file = _sqlite_file(url)
    made = []
    if sqlite_file is not None:
        sqlite_file = sqlite_file.absolute()
        made = [p for p in (sqlite_file, *sqlite_file.parents) if not p.exists()]
    try:
        store = StudyStore(url)
        try:
            store.initialise(config, image_set)
        except BaseException as e:
            store.close()
            if isinstance(e, sa.exc.OperationalError):
                raise _unusable(url, e) from None
            raise
        return store
    except BaseException:
        if made:
            _remove_made(made[0], made[1:])
        raise


def _remove_made(sqlite_file, folders):
    """Remove a SQLite file (with its journal files) and the folders above it that were made for it, if empty."""
    for path in (sqlite_file, *(sqlite_file.with_name(sqlite_file.name + end) for end in ("-wal", "-shm", "-journal"))):
        with contextlib.suppress(OSError):
            path.unlink()
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def check_database(db):
    """Check, without changing anything, that ``db`` holds a study; returns its configuration.

    Raises:
        FileNotFoundError: no such SQLite file.
        ValueError: a bad URL.
        NoStudyError: a database without a study.
    """
    store = StudyStore(db, create=False)
    try:
        return store.study()[0]
    finally:
        store.close()


def _optional_text(name, value):
    """Optional free text from a participant: stripped, at most 40 characters, no control characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string. Received: {type(value).__name__}")
    value = " ".join(value.split())
    if len(value) > _TEXT_LIMIT:
        raise ValueError(f"{name} must be at most {_TEXT_LIMIT} characters. Received: {len(value)} characters")
    if any(not ch.isprintable() for ch in value):
        raise ValueError(f"{name} must be printable text.")
    return value or None


def _milliseconds_between(start, end):
    try:
        delta = datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)
    except (TypeError, ValueError):
        return None
    return max(0, int(round(delta.total_seconds() * 1000)))
