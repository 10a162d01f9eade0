"""The floor: the irreducible work of one signed-in page in Flask + SQLAlchemy, nothing else.

One session lookup (a signed cookie naming a server-side session row, checked against the database),
one small query (the person's five devices), one small template. Every Lanyard figure in the benchmarks
is printed beside this app's, measured in the same run on the same database and settings, interleaved.

`create_floor_app(url)` builds it on its own tables (``floor_*``) in any database; `seed_floor(app)`
adds one person with a live session and five devices, and returns the cookie value to send.
"""

from __future__ import annotations

import secrets

from flask import Flask, abort, render_template, session
from flask_sqlalchemy import SQLAlchemy
from jinja2 import DictLoader
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PAGE = """<!doctype html>
<html lang="en-GB"><head><meta charset="utf-8"><title>{{ person.name }}'s devices</title></head>
<body><h1>{{ person.name }}</h1><ul>
{% for device in devices %}<li>{{ device.make }} {{ device.model }}</li>
{% endfor %}</ul></body></html>"""


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class FloorPerson(db.Model):
    __tablename__ = "floor_person"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class FloorSession(db.Model):
    __tablename__ = "floor_session"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("floor_person.id"), index=True)


class FloorDevice(db.Model):
    __tablename__ = "floor_device"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("floor_person.id"), index=True)
    make: Mapped[str] = mapped_column(String(50))
    model: Mapped[str] = mapped_column(String(50))


def create_floor_app(database_url: str, secret_key: str = "floor-" + secrets.token_hex(8)) -> Flask:
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        SQLALCHEMY_DATABASE_URI=database_url,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.jinja_loader = DictLoader({"page.html": PAGE})  # compiled once, cached, as Lanyard's files are
    db.init_app(app)

    @app.get("/floor")
    def page():
        person = db.session.execute(
            select(FloorPerson)
            .join(FloorSession, FloorSession.person_id == FloorPerson.id)
            .where(FloorSession.id == session.get("sid", ""))
        ).scalar_one_or_none()
        if person is None:
            abort(401)
        devices = db.session.execute(
            select(FloorDevice).where(FloorDevice.person_id == person.id).order_by(FloorDevice.id).limit(5)
        ).scalars()
        return render_template("page.html", person=person, devices=list(devices))

    @app.get("/floor/sign-in/<sid>")
    def sign_in(sid: str):
        session["sid"] = sid
        return "signed in"

    return app


def seed_floor(app: Flask) -> str:
    """Create the floor's tables and one signed-in person with five devices; returns the session id."""
    with app.app_context():
        db.create_all()
        person = FloorPerson(name="Floor Person")
        db.session.add(person)
        db.session.flush()
        sid = secrets.token_hex(16)
        db.session.add(FloorSession(id=sid, person_id=person.id))
        db.session.add_all(FloorDevice(person_id=person.id, make="Apple", model=f"iPhone {n}") for n in range(5))
        db.session.commit()
        return sid


def wsgi_app():  # gunicorn benchmarks.floor:wsgi_app() with FLOOR_DATABASE_URL set
    import os

    return create_floor_app(os.environ["FLOOR_DATABASE_URL"], os.environ["SECRET_KEY"])
