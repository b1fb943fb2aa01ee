"""Conversations that last: chats and messages (model), their export and import."""
