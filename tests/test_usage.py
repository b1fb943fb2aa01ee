"""Usage: each chat shows the tokens its replies used, every version summed, and Settings
shows the user's totals per model and connection, as the servers reported them."""

from __future__ import annotations

import re

from tests.chatting import send, start_chat, use_server


def _usage_line(at) -> str:
    return next((c.value for c in at.caption if c.value.startswith("This chat used")), "")


def test_a_chat_sums_its_replies_and_settings_sums_the_users(katan_server):
    use_server(katan_server)
    at = start_chat()
    assert _usage_line(at) == ""  # nothing reported yet
    send(at, "first question")
    footer = [c.value for m in at.chat_message if m.name == "assistant" for c in m.caption][-1]
    total, prompt, completion = re.search(r"(\d+) tokens \((\d+) in, (\d+) out\)",
                                          footer).groups()  # as the reply's footer says
    assert _usage_line(at) == (f"This chat used {total} tokens ({prompt} in, {completion} out) "
                               "over 1 reply.")
    first = int(total)
    at.button(key="chat:retry").click().run()  # a second version: both are counted
    assert _usage_line(at).endswith("over 2 replies.")

    at.switch_page("pages/settings.py").run()
    (table,) = [d.value for d in at.dataframe if "Model · connection" in d.value.columns]
    row = table[table["Model · connection"] == f"{katan_server.model} · OpenAI-compatible"]
    assert row["Replies"].tolist() == [2]
    assert row["Total"].tolist()[0] >= 2 * first - 10  # the echo is about as long again
    assert (row["Tokens in"] + row["Tokens out"]).tolist() == row["Total"].tolist()


def test_settings_says_when_nothing_was_reported(isolated_data_dir):
    at = start_chat()
    at.switch_page("pages/settings.py").run()
    assert any(c.value.startswith("No reply has reported its tokens yet") for c in at.caption)
