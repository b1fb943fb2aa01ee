"""A message's attachments as they go to the server: documents fenced with their names before
the user's words, images as image_url parts (and then only), nothing else changed."""

from __future__ import annotations

import base64
import re

from hypothesis import given
from hypothesis import strategies as st

from core.attachments.wire import carries_images, content, data_url, fenced, message_text
from core.chat.call import wire_messages
from core.history.model import Attachment, Message


def document(name: str, text: str) -> Attachment:
    return Attachment(name, "document", "text/plain", text=text, size=len(text))


def image(name: str = "a.jpg", data: bytes = b"\xff\xd8jpeg") -> Attachment:
    return Attachment(name, "image", "image/jpeg", data=data, width=10, height=5)


def test_words_alone_go_as_a_plain_string():
    assert content(Message("c", "user", "hello")) == "hello"


def test_documents_are_fenced_with_their_names_before_the_words():
    message = Message("c", "user", "Compare them.", attachments=(
        document("a.md", "# A\nalpha"), document("b.csv", "x,y\n1,2")))
    assert content(message) == ("```a.md\n# A\nalpha\n```\n\n```b.csv\nx,y\n1,2\n```\n\n"
                                "Compare them.")


def test_a_document_without_words_is_the_whole_message():
    message = Message("c", "user", "", attachments=(document("n.txt", "only this"),))
    assert content(message) == "```n.txt\nonly this\n```"


def test_a_name_over_several_lines_is_put_on_one():
    assert fenced(document("two\nlines.txt", "t")).splitlines()[0] == "```two lines.txt"


def test_images_make_content_parts_after_the_words():
    picture = image(data=b"\x89PNG-bytes")
    message = Message("c", "user", "What is it?", attachments=(picture,))
    assert content(message) == [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {
            "url": "data:image/jpeg;base64," + base64.b64encode(b"\x89PNG-bytes").decode()}},
    ]


def test_an_image_without_words_has_no_empty_text_part():
    parts = content(Message("c", "user", "", attachments=(image(),)))
    assert [p["type"] for p in parts] == ["image_url"]


def test_documents_and_images_together():
    message = Message("c", "user", "Both", attachments=(image(), document("d.txt", "doc")))
    parts = content(message)
    assert parts[0] == {"type": "text", "text": "```d.txt\ndoc\n```\n\nBoth"}
    assert parts[1]["type"] == "image_url"


def test_for_a_model_that_takes_no_images_each_is_named_in_its_place():
    message = Message("c", "user", "And now?", attachments=(
        image("cat.jpg"), document("d.txt", "doc"), image("dog.png")))
    assert content(message, with_images=False) == (
        "[An image, cat.jpg, was attached here; this model does not take images.]\n\n"
        "[An image, dog.png, was attached here; this model does not take images.]\n\n"
        "```d.txt\ndoc\n```\n\nAnd now?")
    assert wire_messages([message], with_images=False)[0]["content"] == content(
        message, with_images=False)
    assert content(Message("c", "user", "", attachments=(image("x.jpg"),)),
                   with_images=False) == ("[An image, x.jpg, was attached here; this model "
                                          "does not take images.]")


def test_carries_images_sees_only_image_parts():
    assert carries_images([{"role": "user", "content": content(
        Message("c", "user", "x", attachments=(image(),)))}])
    assert not carries_images([{"role": "user", "content": "x"},
                               {"role": "user", "content": [{"type": "text", "text": "x"}]}])


def test_the_branch_sends_a_message_with_only_files_and_leaves_out_empty_ones():
    branch = [Message("c", "user", "", attachments=(document("d.txt", "doc"),)),
              Message("c", "assistant", "", status="failed", error="boom"),
              Message("c", "assistant", "")]
    assert wire_messages(branch) == [{"role": "user", "content": "```d.txt\ndoc\n```"}]


def test_data_url_names_the_images_type():
    png = Attachment("p.png", "image", "image/png", data=b"abc")
    assert data_url(png) == "data:image/png;base64,YWJj"


@given(st.text(alphabet=st.sampled_from("`a\n ~"), max_size=60))
def test_no_text_can_close_its_fence_early(text):
    """Property: the fence is longer than any run of backticks in the text, so the document's
    text is exactly what lies between the opening line and the closing fence."""
    block = fenced(document("f.txt", text))
    fence = re.match(r"`+", block).group(0)
    assert block == f"{fence}f.txt\n{text}\n{fence}"
    assert all(len(run) < len(fence) for run in re.findall(r"`+", text))


@given(st.text(max_size=40), st.lists(st.text(max_size=40), max_size=3))
def test_the_words_are_sent_last_and_unchanged(words, texts):
    """Property: whatever the documents, the user's words end the message as typed."""
    message = Message("c", "user", words,
                      attachments=tuple(document(f"d{i}.txt", t) for i, t in enumerate(texts)))
    sent = message_text(message)
    assert sent.endswith(words)
    for i, text in enumerate(texts):
        assert text in sent and f"d{i}.txt" in sent


def test_the_fence_is_one_backtick_longer_than_the_longest_run_and_at_least_three():
    assert fenced(document("a", "no ticks")).startswith("```a\n")
    assert fenced(document("a", "``` and ``")).startswith("````a\n")
    assert fenced(document("a", "`````")).startswith("``````a\n")
