"""Saved prompts: a user's library and the administrator's, their `{{variables}}`, their JSON
file, and the stores that keep a user's."""
