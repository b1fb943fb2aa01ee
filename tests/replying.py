"""Helpers for tests of a conversation whose replies the server process runs
(core/history/replies.py): ask for a reply as the chat page's Send does, wait for it to end,
and put it in the conversation as the page does when it finds the reply ended."""

from __future__ import annotations

import time

from core.chat.call import wire_messages
from core.config import load_settings
from core.history.conversation import Conversation, ShownMessage
from core.history.model import Message
from core.history.replies import Ask, Job, Replies, shown_final
from core.providers.kinds import Target
from core.store.sqlite import LOCAL_USER_ID, SQLiteChatStore

SETTINGS = load_settings(environ={}, dotenv_path=None)


def target(server) -> Target:
    return Target("openai-compatible", "Compatible", server.base_url, "k", "m")


def wait(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def ask(replies: Replies, conversation: Conversation, server, store=None, job=Job,
        settings=SETTINGS) -> Job:
    """A reply to the branch on screen, run by `replies`; its worker writes through `store`
    (by default its own store on the conversation's data file, as the app's workers do)."""
    messages = wire_messages(conversation.turns)
    retried = conversation.retrying is not None and bool(conversation.retrying.content)
    turn = conversation.ask_reply()
    folder = conversation.store.path.parent if conversation.store is not None else None
    asked = job(Message(turn.chat_id, "assistant", "", parent_id=turn.parent_id, id=turn.id,
                        model_label=target(server).label, status="streaming"),
                store if store is not None else (lambda: SQLiteChatStore(folder)),
                LOCAL_USER_ID, add_when_text=retried)
    return replies.start(asked, Ask(settings, target(server), messages))


class TimedJob(Job):
    """A reply that notes when its worker received each piece of the answer."""

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        self.received: list[float] = []

    def arrived(self, piece) -> None:
        self.received.append(time.monotonic())
        super().arrived(piece)


def settled(job: Job) -> bool:
    """Ended, and its end stored, left to the page, or refused by the store."""
    return job.done and (job.stored or job.left_to_page or job.problem is not None)


def show_ended(conversation: Conversation, job: Job, seconds: float = 20.0) -> ShownMessage:
    """Once the reply settled, the conversation shows it as it ended; the turn shown."""
    wait(lambda: settled(job), seconds)
    conversation.end_live(shown_final(job), stored=job.stored, added=job.added)
    return conversation.turns[-1]
