"""A model that takes no images is learned once, per connection and model: from the server's
words when it says so, or, when it sends no reply to a message with an image (llama.cpp's
server without a vision projector sends an empty stream), from the same message answered
without the image. Against the real servers, and a canned refusal worded as llama.cpp's C++
server words it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.chat.call import Reply, start_reply, wire_messages
from core.chat.errors import images_refused
from core.config import load_settings
from core.history.model import Attachment, Message
from core.providers.connections import NO_IMAGES, is_quirk, no_images
from core.providers.kinds import Target


def _picture() -> Attachment:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(out, "JPEG")
    return Attachment("photo.jpg", "image", "image/jpeg", data=out.getvalue(), width=64,
                      height=48)


def _ask(server, message: Message) -> tuple[Reply, list[str], str]:
    target = Target("compat", "Test server", server.base_url, server.api_key,
                    model=server.model, connection_id="profile:openai-compatible")
    reply, learned = Reply(), []
    text = "".join(piece for piece in start_reply(
        load_settings({}), target, wire_messages([message]), reply, on_quirk=learned.append)
        if isinstance(piece, str))
    return reply, learned, text


WITH_IMAGE = Message("chat", "user", "What is in it?", attachments=(_picture(),))


def test_llama_without_a_projector_is_learned_to_take_no_images(llama_server):
    reply, learned, _ = _ask(llama_server, WITH_IMAGE)
    assert reply.status == "failed"
    assert learned == [no_images(llama_server.model)]
    assert reply.error.startswith(f"{llama_server.model} does not take images: the server "
                                  "sent no reply")
    assert reply.error_field is None  # nothing in Settings to fix


def test_the_same_words_without_an_image_reach_llama_and_teach_nothing(llama_server):
    reply, learned, text = _ask(llama_server, Message("chat", "user", "What is in it?"))
    assert reply.status in ("complete", "incomplete") and text
    assert learned == []


def test_a_server_that_takes_images_teaches_nothing(katan_server):
    reply, learned, text = _ask(katan_server, WITH_IMAGE)
    assert reply.status == "complete", reply.error
    assert "[image:image/jpeg]" in text
    assert learned == []


def test_a_refusal_that_says_images_is_learned_from_its_words(canned_server):
    server = canned_server(500, {"error": {"code": 500, "type": "server_error", "message":
                                           "image input is not supported - hint: if this is "
                                           "unexpected, you may need to provide the mmproj"}})
    reply, learned, _ = _ask(server, WITH_IMAGE)
    assert learned == [no_images(server.model)]
    assert "image input is not supported" in reply.error
    assert reply.error.startswith(f"{server.model} does not take images")


def test_a_failure_unrelated_to_images_is_not_taken_for_one(canned_server):
    """The probe without the image fails too: the server is down, not blind."""
    server = canned_server(500, {"error": {"message": "upstream exploded"}})
    reply, learned, _ = _ask(server, WITH_IMAGE)
    assert learned == []
    assert "does not take images" not in reply.error


def test_an_image_too_big_is_not_a_model_that_takes_none(canned_server):
    server = canned_server(400, {"error": {"message": "Image too large: exceeds 20 MB"}})
    reply, learned, _ = _ask(server, WITH_IMAGE)
    assert learned == []


@pytest.mark.parametrize("said", [
    "This model does not support image input",
    "Invalid content type. image_url is only supported by certain models.",
    "The model is not a multimodal model",
    "can only concatenate str (not \"list\") to str",
])
def test_refusals_worded_by_servers_are_recognised(said):
    import httpx2
    import openai

    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(400, request=request, json={"error": {"message": said}})
    exc = openai.BadRequestError(f"Error code: 400 - {said}", response=response,
                                 body={"error": {"message": said}})
    refusal = images_refused(exc, "m1")
    assert refusal is not None and said[:40] in str(refusal)


@pytest.mark.parametrize("quirk,valid", [
    (no_images("llava:13b"), True),
    (no_images("org/model-v1.5"), True),
    (NO_IMAGES, False),  # no model
    (no_images("a,b"), False),  # the seed's column is a comma-separated list
    (no_images("line\nbreak"), False),
    (no_images("x" * 201), False),
    ("no_stream_options", True),
    ("whatever", False),
])
def test_which_quirks_are_kept(quirk, valid):
    assert is_quirk(quirk) is valid
