"""A browser-less Streamlit client: one session over Streamlit 1.67's own websocket protocol.

What a browser does, read from the installed streamlit package
(web/server/starlette/starlette_websocket.py, runtime/app_session.py, proto/*.pyi):

- it opens `ws://HOST:PORT/_stcore/stream` (subprotocol "streamlit"; no Origin header is
  allowed, as for any non-browser client), and each connection is a new session;
- it sends a `BackMsg` whose `rerun_script` is a `ClientState`: query string, page script hash
  ("" on a first load: the default page), widget states, context info;
- it receives `ForwardMsg`s: `new_session` when a script run starts, `delta`s (`add_block` /
  `new_element` at a `metadata.delta_path`, a new element at a path replacing the old one) and
  `script_finished` when the run ends (FINISHED_EARLY_FOR_RERUN when the script called
  `st.rerun()`, then a new run). A fragment's run (`metadata.run.fragment_ids` set) redraws
  only the fragment: what the page showed elsewhere stays. `page_info_changed` carries the
  address's query string, which the browser sends back with every rerun;
- a widget's value goes back in the next `rerun_script`'s widget states under the widget's id,
  taken from the element that drew it (a widget with a key has an id ending in `-<key>`). The
  server keeps every other widget's value between runs (session_state's old state), so only
  the changed widget is sent. A chat input is a trigger: its text is sent once, as
  `chat_input_value.data`; a button is a trigger too (`trigger_value`). A form sends its
  inputs' values with its submit button's trigger, in one rerun. A multiselect sends the
  options picked as they are shown (`string_array_value`, each option's text; see
  elements/widgets/multiselect.py's serializer). The server does not keep a multiselect's
  value for a page that reads it before drawing it (the chat page reads the models to compare
  when the message is sent): as a browser does, the session sends it again with every rerun,
  until the app sets another (`set_value` on the element it draws);
- a container drawn with a key carries it at the end of its block's `id` (the browser makes it
  the CSS class `st-key-<key>`): the page's compared replies are the containers keyed
  `compare-col-<i>`, column i from 0.

Behind a load balancer with sticky sessions, the page's cookie goes with the websocket's
handshake, as a browser sends it (`Session.open(..., cookie=...)`).

Nothing needs acknowledging: the websocket library answers the server's pings, and the
browser's optional `app_heartbeat` is not needed on loopback. The server drops a client whose
send queue passes 500 messages, so a session must read all the time (see `Session.read`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.Markdown_pb2 import Markdown
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect

FINISHED = ForwardMsg.FINISHED_SUCCESSFULLY
# Blocks whose text is not the reply itself: a reasoning expander, the Copy popover.
ASIDE_BLOCKS = frozenset({"expandable", "popover", "dialog"})
COLUMN_KEY = re.compile(r"-compare-col-(\d+)$")  # a compared reply's container, column i


def element_text(element) -> str:
    """The text an element shows: Markdown (not captions), code, plain text; else ""."""
    kind = element.WhichOneof("type")
    if kind == "markdown":
        return "" if element.markdown.element_type == Markdown.CAPTION else element.markdown.body
    if kind == "code":
        return element.code.code_text
    if kind == "text":
        return element.text.body
    return ""


def _alert_text(element) -> str:
    if element.WhichOneof("type") == "alert":
        return element.alert.body
    return f"{element.exception.type}: {element.exception.message}"


@dataclass
class ReplyWatcher:
    """Follows the assistant's chat messages in one session's ForwardMsgs.

    `on_text(at, text)` gets every reply element's text as it arrives (an element may hold the
    whole reply, or one block of it). `texts` holds the current run's reply text per delta path.
    The replies of a comparison are followed per column: `on_column_text(at, column, text)`
    and `column_texts`, the same for the elements inside a `compare-col-<i>` container.
    """

    on_text: Callable[[float, str], None] = lambda at, text: None
    on_column_text: Callable[[float, int, str], None] = lambda at, column, text: None
    blocks: dict[tuple, str] = field(default_factory=dict)  # path -> block kind, this run
    texts: dict[tuple, str] = field(default_factory=dict)
    columns: dict[tuple, int] = field(default_factory=dict)  # path -> column, this run
    column_texts: dict[tuple, tuple[int, str]] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)  # errors and warnings shown, this run
    last_finish: int | None = None  # the script_finished status of the last run that ended

    def feed(self, at: float, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session" and not msg.metadata.run.fragment_ids:  # a full run
            self.blocks, self.texts, self.alerts, self.last_finish = {}, {}, [], None
            self.columns, self.column_texts = {}, {}
        elif kind == "script_finished":
            self.last_finish = msg.script_finished
        elif kind == "delta":
            self._delta(at, tuple(msg.metadata.delta_path), msg.delta)

    def _delta(self, at: float, path: tuple, delta) -> None:
        kind = delta.WhichOneof("type")
        if kind == "add_block":
            block = delta.add_block
            block_kind = block.WhichOneof("type")
            if block_kind == "chat_message":
                block_kind = f"chat_message:{block.chat_message.name}"
            self.blocks[path] = block_kind
            if column := COLUMN_KEY.search(block.id):
                self.columns[path] = int(column[1])
            else:
                self.columns.pop(path, None)
        elif kind == "new_element":
            self.blocks.pop(path, None)
            self.columns.pop(path, None)
            element = delta.new_element
            if element.WhichOneof("type") in ("alert", "exception"):  # anywhere on the page
                self.alerts.append(_alert_text(element))
            if (column := self._column_of(path)) is not None:
                text = element_text(element)
                self.column_texts[path] = (column, text)
                if text:
                    self.on_column_text(at, column, text)
                return
            if not self._in_reply(path):
                return
            text = element_text(element)
            self.texts[path] = text
            if text:
                self.on_text(at, text)

    def _in_reply(self, path: tuple) -> bool:
        """Inside an assistant chat message, and not inside an expander or popover there."""
        for end in range(len(path) - 1, 0, -1):
            kind = self.blocks.get(path[:end])
            if kind == "chat_message:assistant":
                return True
            if kind in ASIDE_BLOCKS or (kind or "").startswith("chat_message:"):
                return False
        return False

    def _column_of(self, path: tuple) -> int | None:
        """The compared reply's column the path is in, unless in an expander or popover there."""
        for end in range(len(path) - 1, 0, -1):
            if (column := self.columns.get(path[:end])) is not None:
                return column
            if self.blocks.get(path[:end]) in ASIDE_BLOCKS:
                return None
        return None

    def reply_text(self) -> str:
        """The current run's reply, its elements in page order."""
        return "\n\n".join(text for _, text in sorted(self.texts.items()) if text)

    def column_text(self, column: int) -> str:
        """The current run's text of one compared reply's column, in page order."""
        return "\n\n".join(text for _, (at, text) in sorted(self.column_texts.items())
                             if at == column and text)


@dataclass(frozen=True)
class Button:
    id: str
    label: str
    is_form_submitter: bool


class Session:
    """One Streamlit session: a websocket that is read all the time by `read`."""

    def __init__(self, ws: ClientConnection, watcher: ReplyWatcher) -> None:
        self.ws = ws
        self.watcher = watcher
        self.page_script_hash = ""
        self.query_string = ""  # the address's query, as the app last set it
        self.chat_input_id: str | None = None
        self.buttons: dict[str, Button] = {}  # drawn by the latest full run (and its fragments)
        self.text_inputs: dict[str, str] = {}  # id -> label, the same
        self.multiselects: dict[str, tuple[str, ...]] = {}  # id -> options, the same
        self.held: dict[str, list[str]] = {}  # multiselect id -> its value, sent every rerun
        self.finished = asyncio.Event()  # set when a full run ends successfully
        self.running = False  # a run (full or fragment) has started and not ended

    @classmethod
    async def open(cls, app_url: str, watcher: ReplyWatcher, cookie: str | None = None
                   ) -> "Session":
        url = app_url.replace("http://", "ws://", 1).rstrip("/") + "/_stcore/stream"
        headers = {"Cookie": cookie} if cookie else None
        ws = await connect(url, subprotocols=["streamlit"], max_size=None, max_queue=1024,
                           proxy=None, open_timeout=30,  # proxy=None: loopback, never a proxy
                           additional_headers=headers)
        return cls(ws, watcher)

    async def read(self) -> None:
        """Receive and interpret every message until the connection closes."""
        async for data in self.ws:
            at = time.time()  # wall clock: the relay's clock too
            msg = ForwardMsg()
            msg.ParseFromString(data)
            self._note(msg)
            self.watcher.feed(at, msg)

    def _note(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.page_script_hash = msg.new_session.page_script_hash
            self.running = True
            if not msg.metadata.run.fragment_ids:  # a full run draws every widget again
                self.buttons, self.text_inputs, self.multiselects = {}, {}, {}
        elif kind == "script_finished":
            self.running = False
            if msg.script_finished == FINISHED:
                self.finished.set()
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._note_widget(msg.delta.new_element)

    def _note_widget(self, element) -> None:
        kind = element.WhichOneof("type")
        if kind == "chat_input":
            self.chat_input_id = element.chat_input.id
        elif kind == "button":
            b = element.button
            self.buttons[b.id] = Button(b.id, b.label, b.is_form_submitter)
        elif kind == "text_input":
            self.text_inputs[element.text_input.id] = element.text_input.label
        elif kind == "multiselect":
            multiselect = element.multiselect
            self.multiselects[multiselect.id] = tuple(multiselect.options)
            if multiselect.set_value and multiselect.id in self.held:  # the app changed it
                self.held[multiselect.id] = list(multiselect.raw_values)

    def widget_id(self, key: str) -> str | None:
        """The id of the button, text input or multiselect drawn with `key`, if the page
        shows one."""
        return next((wid for wid in [*self.buttons, *self.text_inputs, *self.multiselects]
                     if wid.endswith(f"-{key}")), None)

    async def rerun(self, chat_text: str | None = None) -> None:
        """What the browser sends on a page load (no text) or on submitting the chat input."""
        if chat_text is None:
            await self._send([])
            return
        widget = WidgetState(id=self.chat_input_id)
        widget.chat_input_value.data = chat_text
        await self._send([widget])

    async def click(self, button_id: str) -> None:
        """A click on a button the page shows."""
        await self._send([WidgetState(id=button_id, trigger_value=True)])

    async def type_text(self, input_id: str, text: str) -> None:
        """A text input changed (typed, then Enter or focus left it)."""
        await self._send([WidgetState(id=input_id, string_value=text)])

    async def select(self, multiselect_id: str, options: list[str]) -> None:
        """A multiselect's options picked (as the page shows them), in this order."""
        self.held[multiselect_id] = list(options)
        await self._send([])

    async def submit_form(self, values: dict[str, str], submit_id: str) -> None:
        """A form's text inputs and its submit button, in one rerun as the browser sends them."""
        widgets = [WidgetState(id=wid, string_value=text) for wid, text in values.items()]
        await self._send([*widgets, WidgetState(id=submit_id, trigger_value=True)])

    async def _send(self, widgets: list) -> None:
        self.finished.clear()
        msg = BackMsg()
        state = msg.rerun_script
        state.page_script_hash = self.page_script_hash
        state.query_string = self.query_string
        state.context_info.timezone = "UTC"
        state.context_info.locale = "en-US"
        state.widget_states.widgets.extend(widgets)
        sent = {widget.id for widget in widgets}
        for widget_id, options in self.held.items():
            if widget_id not in sent:
                held = state.widget_states.widgets.add(id=widget_id)
                held.string_array_value.data.extend(options)
        await self.ws.send(msg.SerializeToString())

    async def close(self) -> None:
        await self.ws.close()
