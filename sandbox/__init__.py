"""A local Telegram Bot API server and web chat, for end-to-end tests and for trying the bot."""
