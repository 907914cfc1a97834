"""Alembic's environment: the URL comes from the caller (`database.migrate`), never from a file of ours."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from synthforge.service.models import Base

config = context.config
connectable = config.attributes.get("connection")
if connectable is None:
    connectable = engine_from_config({"sqlalchemy.url": config.get_main_option("sqlalchemy.url")}, prefix="sqlalchemy.",
                                     poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connectable, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
