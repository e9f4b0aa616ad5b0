"""The storage tests' backends, for the commands that read and write the bot's database
(`lstmbot learn`): SQLite always, PostgreSQL too when TEST_POSTGRES_URL is set."""

from tests.bot.storage.conftest import backend, database_url, postgres_session_url

__all__ = ["backend", "database_url", "postgres_session_url"]
