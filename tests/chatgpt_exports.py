"""ChatGPT data exports (conversations.json) made up for tests and benches, shaped like real
ones: a null root, a hidden system node, sometimes hidden custom instructions, turns with
regenerated replies and edited questions (siblings under one parent), image parts, tool steps
(a code call and its output), and `current_node` on the last branch."""

from __future__ import annotations

import json
import random
import uuid

WORDS = ("the a of to and in is it that for on with as this was model reply code data "
         "python function value list error file time user answer question chat prompt "
         "Streamlit server token branch version export import summary").split()


def node(node_id: str, parent: str | None, role: str | None = None, parts=(),
         content_type: str = "text", created: float = 1_700_000_000.0, **extra) -> dict:
    message = None if role is None else {
        "id": node_id, "author": {"role": role, "name": extra.pop("name", None), "metadata": {}},
        "create_time": created, "update_time": None,
        "content": {"content_type": content_type, "parts": list(parts)},
        "status": "finished_successfully", "end_turn": True, "weight": 1.0,
        "metadata": extra.pop("metadata", {}), "recipient": extra.pop("recipient", "all"),
    }
    return {"id": node_id, "message": message, "parent": parent, "children": []}


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def conversation(rng: random.Random, number: int, turns: int = 6,
                 words: int = 60) -> dict:
    """One conversation with branches; about `turns` turns of about `words` words each."""
    ids = iter(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(10_000))
    start = 1_600_000_000.0 + number * 3_600
    clock = [start]

    def add(parent, role=None, parts=(), **extra):
        clock[0] += 1.5
        made = node(next(ids), parent, role, parts, created=clock[0], **extra)
        mapping[made["id"]] = made
        if parent is not None:
            mapping[parent]["children"].append(made["id"])
        return made["id"]

    mapping: dict[str, dict] = {}
    root = add(None)
    above = add(root, "system", [""],
                metadata={"is_visually_hidden_from_conversation": True})
    if rng.random() < 0.3:
        above = add(above, "user", ["About me: " + _text(rng, 12)],
                    content_type="user_editable_context",
                    metadata={"is_visually_hidden_from_conversation": True})
    leaf = above
    for _ in range(turns):
        parts = [_text(rng, words // 3)]
        kind = "text"
        if rng.random() < 0.1:
            file_id = f"file-{rng.getrandbits(40):x}"
            parts = [{"content_type": "image_asset_pointer",
                      "asset_pointer": f"file-service://{file_id}", "size_bytes": 31_472,
                      "width": 512, "height": 512}, *parts]
            kind = "multimodal_text"
        question = add(leaf, "user", parts, content_type=kind)
        if rng.random() < 0.15:  # an edited question: its own branch beside this one
            add(add(leaf, "user", [_text(rng, words // 3)]), "assistant", [_text(rng, words)],
                metadata={"model_slug": "gpt-4o"})
        answer_to = question
        if rng.random() < 0.1:  # a tool step: code sent to python, and its output
            call = add(question, "assistant", ["print(sum(range(10)))"], content_type="code",
                       recipient="python")
            answer_to = add(call, "tool", ["45"], content_type="execution_output",
                            name="python")
        if rng.random() < 0.2:  # a regenerated reply beside the one kept
            add(answer_to, "assistant", [_text(rng, words)], metadata={"model_slug": "gpt-4o"})
        leaf = add(answer_to, "assistant", [_text(rng, words)],
                   metadata={"model_slug": "gpt-4o"})
    return {"title": _text(rng, 4)[:-1], "create_time": start, "update_time": clock[0],
            "mapping": mapping, "moderation_results": [], "current_node": leaf,
            "plugin_ids": None, "conversation_id": str(uuid.UUID(int=number + 1)),
            "id": str(uuid.UUID(int=number + 1)), "is_archived": False}


def export(conversations: int, seed: int = 0, turns: int = 6, words: int = 60) -> bytes:
    """conversations.json of `conversations` conversations, as bytes."""
    rng = random.Random(seed)
    return json.dumps([conversation(rng, n, turns, words) for n in range(conversations)],
                      ensure_ascii=False).encode("utf-8")
