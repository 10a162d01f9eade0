"""Extension objects, created bare and bound to the app in the factory."""

from typing import TYPE_CHECKING, cast

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, Session


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


if TYPE_CHECKING:

    class _ScopedSession(Session):
        """What db.session offers: a scoped_session hands every Session call to this thread's Session,
        and remove() ends that Session."""

        def remove(self) -> None: ...

        def __call__(self) -> Session: ...

    class _SQLAlchemy(SQLAlchemy):
        # So the services take db.session as the Session it stands for (session: Session).
        session: _ScopedSession  # type: ignore[assignment]


db = cast("_SQLAlchemy", SQLAlchemy(model_class=Base))

# The models' base class. At run time it is db.Model (Base plus Flask-SQLAlchemy's table naming and
# bind handling); a type checker cannot take an attribute of an object as a base class, so it sees the
# typed declarative Base that db.Model extends, and with it every Mapped[...] column.
if TYPE_CHECKING:

    class Model(Base):
        __abstract__ = True

else:
    Model = db.Model

migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()
