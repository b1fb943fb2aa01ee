"""The chat page's sidebar: New chat, search as you type, and the user's chats: pinned first,
then by day, or one folder's."""

import html
import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from core import session
from core.auth import SessionEnded
from core.failures import UserFacingError
from core.history.listing import (
    PAGE,
    PINNED,
    by_day,
    folder_name,
    found_count,
    marked_html,
    plain_label,
    safe_file_name,
    search_found,
    shown_title,
    sidebar_groups,
    with_marks,
)
from core.history.model import MAX_FOLDER_LENGTH, MAX_TITLE_LENGTH
from core.history.transfer import to_json, to_markdown

LIMIT = "history:limit"
FOUND_LIMIT = "history:found_limit"  # (query, how many hits are shown)
RENAMING = "history:renaming"
DELETING = "history:deleting"
FLASH = "history:flash"
SHOWING = "history:showing"  # the list's filter: ALL, PINNED or a folder's name
ALL = "All chats"
# The message a search hit opened the chat at; the chat page draws each message with the
# element id MESSAGE_ANCHOR.format(id) (or in a container keyed so, whose class is
# "st-key-" + that), which the page then scrolls to.
SCROLL_TO = "history:scroll_to"
MESSAGE_ANCHOR = "chat-msg-{}"
HITS_PER_PAGE = 20
# Set by a click in the list that changes what the page shows (another chat, a rename...):
# drawn alone, the list then asks for the whole page to be drawn again.
WHOLE_PAGE = "history:whole_page"

_SCROLL_SCRIPT = """<script>
(function () {
  const wanted = %s, keyed = %s;
  let tries = 0;
  const look = () => {
    const place = document.getElementById(wanted) || document.querySelector("." + keyed);
    if (place) { place.scrollIntoView({block: "center"}); return; }
    if (++tries < 50) setTimeout(look, 100);
  };
  look();
})();
</script>"""

_HIT_STYLE = """<style>
.sb-hit { font-size: 0.85rem; line-height: 1.3; margin: 0 0 -0.5rem 0; overflow-wrap: anywhere; }
.sb-hit-title { font-weight: 600; }
.sb-hit-snippet, .sb-hit-folder { opacity: 0.8; }
.sb-hit mark { padding: 0 0.1em; border-radius: 2px; }
</style>"""


def _whole_page(callback):
    """`callback`, then the whole page is drawn again (not only the list)."""
    def run(*args, **kwargs) -> None:
        st.session_state[WHOLE_PAGE] = True
        callback(*args, **kwargs)
    return run


def _open(chat_id: str) -> None:
    try:  # a reply arriving in the chat on screen goes on
        session.open_chat(chat_id)
    except SessionEnded:
        return
    except UserFacingError as exc:
        st.session_state[FLASH] = str(exc)


def _open_at(chat_id: str, message_id: str | None) -> None:
    """A search hit: the chat, showing the branch that holds the message, scrolled to it."""
    _open(chat_id)
    conversation = session.conversation()
    if message_id is None or conversation.chat.id != chat_id:
        return
    if conversation.message(message_id) is not None:
        conversation.switch_to(message_id)
        session.show_from(conversation, message_id)  # drawn, however early in a long chat
        st.session_state[SCROLL_TO] = message_id


def reopen() -> None:
    """Before the page reads its conversation: the chat the address names, in a new session."""
    try:
        session.reopen_addressed_chat()
    except SessionEnded:
        raise
    except UserFacingError as exc:
        st.session_state[FLASH] = str(exc)


def _new_chat() -> None:
    session.new_chat()
    session.history_changed()


def _more() -> None:
    st.session_state[LIMIT] = st.session_state.get(LIMIT, PAGE) + PAGE


def _more_found(query: str) -> None:
    shown = st.session_state.get(FOUND_LIMIT, (query, HITS_PER_PAGE))
    st.session_state[FOUND_LIMIT] = (query, shown[1] + HITS_PER_PAGE)


def _change(chat_id: str, **changes) -> None:
    """Write a chat's title, pin or folder; the open chat's own copy too, so its next save
    keeps them."""
    conversation = session.conversation()
    store = session.chat_store()
    if conversation.chat.id == chat_id:
        conversation.chat = conversation.chat.with_changes(**changes)
        store.save_chat(conversation.chat)
    elif (chat := store.get_chat(chat_id)) is not None:
        store.save_chat(chat.with_changes(**changes))


def _changed(chat_id: str, **changes) -> None:
    try:
        _change(chat_id, **changes)
    except SessionEnded:
        return
    except UserFacingError as exc:
        st.session_state[FLASH] = str(exc)
    session.history_changed()


def _rename(chat_id: str) -> None:
    title = (st.session_state.get(f"history:title:{chat_id}") or "").strip()
    st.session_state.pop(RENAMING, None)
    conversation = session.conversation()
    if conversation.chat.id == chat_id:
        try:
            conversation.rename(title)
        except UserFacingError as exc:
            st.session_state[FLASH] = str(exc)
        session.history_changed()
    else:
        _changed(chat_id, title=title)


def _file(chat_id: str) -> None:
    _changed(chat_id, folder=folder_name(st.session_state.get(f"history:folder:{chat_id}")))


def _move_folder(name: str, to: str) -> None:
    try:
        moved = session.chat_store().move_folder(name, folder_name(to))
    except SessionEnded:
        return
    except UserFacingError as exc:
        st.session_state[FLASH] = str(exc)
        return
    st.session_state[SHOWING] = folder_name(to) or ALL
    for stale in [k for k in st.session_state if str(k).startswith("history:folder:")]:
        del st.session_state[stale]  # a chat's folder box holding the old name
    st.toast(f"{moved} chats moved." if to else
             f"Folder “{plain_label(name)}” deleted; its chats kept.")
    session.history_changed()


def _delete(chat_id: str) -> None:
    st.session_state.pop(DELETING, None)
    try:
        session.chat_store().delete_chat(chat_id)
    except UserFacingError as exc:
        st.session_state[FLASH] = str(exc)
        return
    if session.conversation().chat.id == chat_id:
        session.new_chat()
    session.history_changed()


def _folders() -> list[tuple[str, int]]:
    return session.remembered("chats:folders", lambda: session.chat_store().folders())


def _chat_menu(chat) -> None:
    """Pin, file, rename, export and delete, for the open chat."""
    conversation = session.conversation()
    with st.popover("Pin, file, rename, export, delete", icon=":material/more_horiz:",
                    width="stretch"):
        st.button("Unpin" if chat.pinned else "Pin to the top", key=f"history:pin:{chat.id}",
                  icon=":material/keep_off:" if chat.pinned else ":material/keep:",
                  on_click=_whole_page(_changed), args=(chat.id,),
                  kwargs={"pinned": not chat.pinned})
        names = [name for name, _ in _folders()]
        st.selectbox("Folder", ["", *names], index=None, key=f"history:folder:{chat.id}",
                     format_func=lambda name: name or "No folder", accept_new_options=True,
                     placeholder=chat.folder or "No folder: pick one or type a new name",
                     on_change=_whole_page(_file), args=(chat.id,))
        st.text_input("Title", value=shown_title(chat), max_chars=MAX_TITLE_LENGTH,
                      key=f"history:title:{chat.id}")
        st.button("Rename", key=f"history:rename:{chat.id}", on_click=_whole_page(_rename),
                  args=(chat.id,))
        name = safe_file_name(shown_title(chat))
        # Made when clicked (a callable), not on every rerun of a long chat.
        st.download_button("Export as Markdown",
                           lambda: to_markdown(conversation.chat, conversation.messages,
                                               conversation.comparisons),
                           file_name=f"{name}.md", mime="text/markdown", icon="⬇️",
                           key=f"history:export_md:{chat.id}", on_click="ignore")
        st.download_button("Export as JSON",
                           lambda: to_json([(conversation.chat, conversation.messages)],
                                           comparisons={conversation.chat.id:
                                                        conversation.comparisons}),
                           file_name=f"{name}.json", mime="application/json", icon="⬇️",
                           key=f"history:export_json:{chat.id}", on_click="ignore")
        if st.session_state.get(DELETING) == chat.id:
            st.warning(f"Delete “{plain_label(shown_title(chat))}” and all its messages?")
            left, right = st.columns(2)
            left.button("Delete for good", type="primary", key=f"history:delete_yes:{chat.id}",
                        on_click=_whole_page(_delete), args=(chat.id,))
            right.button("Cancel", key=f"history:delete_no:{chat.id}",
                         on_click=lambda: st.session_state.pop(DELETING, None))
        else:
            st.button("Delete…", key=f"history:delete:{chat.id}",
                      on_click=lambda: st.session_state.update({DELETING: chat.id}))


def _chat_button(chat, open_id: str) -> None:
    is_open = chat.id == open_id
    # The open chat's button is outlined; no tooltip, which would lie over the chat listed
    # under it while the pointer moves there.
    st.button(plain_label(shown_title(chat)), key=f"history:open:{chat.id}", width="stretch",
              type="secondary" if is_open else "tertiary", on_click=_whole_page(_open),
              args=(chat.id,))


def _zone():
    """The browser's time zone (days start at the user's midnight), else UTC."""
    try:
        return ZoneInfo(st.context.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def _draw_found(query: str) -> None:
    """What the search found: the true count, a page of hits with the matches marked (each
    opens its chat at the message), and Load more."""
    store = session.chat_store()
    shown = st.session_state.get(FOUND_LIMIT, (query, HITS_PER_PAGE))
    limit = shown[1] if shown[0] == query else HITS_PER_PAGE
    count, hits = search_found(store, query, limit)
    st.caption(found_count(count), help="Chats whose title or a message holds every word")
    st.html(_HIT_STYLE)
    for n, hit in enumerate(hits):
        title = marked_html(with_marks(shown_title(hit.chat), query))
        pin = '<span title="Pinned">📌 </span>' if hit.chat.pinned else ""
        folder = (f'<div class="sb-hit-folder">📁 {html.escape(hit.chat.folder)}</div>'
                  if hit.chat.folder else "")
        snippet = marked_html(hit.snippet) if hit.message_id else ""
        with st.container(key=f"history-found-{n}"):
            st.html(f'<div class="sb-hit">{pin}<span class="sb-hit-title">{title}</span>'
                    f'{folder}<div class="sb-hit-snippet">{snippet}</div></div>')
            st.button("Open at this message" if hit.message_id else "Open",
                      key=f"history:hit:{hit.chat.id}", type="tertiary",
                      icon=":material/arrow_forward:", on_click=_whole_page(_open_at),
                      args=(hit.chat.id, hit.message_id))
    if len(hits) < count:
        st.button(f"Load more ({count - len(hits):,} left)", key="history:more_found",
                  on_click=_more_found, args=(query,), width="stretch")


def _draw_folder_tools(name: str) -> None:
    with st.popover(f"Folder “{plain_label(name)}”", icon=":material/folder:",
                    width="stretch"):
        st.text_input("New name", value=name, max_chars=MAX_FOLDER_LENGTH,
                      key="history:folder_rename")
        st.button("Rename folder", key="history:folder_rename_go", on_click=_whole_page(lambda: _move_folder(
            name, st.session_state.get("history:folder_rename") or name)))
        st.button("Delete folder (its chats stay, in no folder)", key="history:folder_delete",
                  on_click=_whole_page(_move_folder), args=(name, ""))


def _draw_list(conversation) -> None:
    folders = _folders()
    choices = [ALL, PINNED, *(name for name, _ in folders)]
    if st.session_state.get(SHOWING) not in choices:
        st.session_state[SHOWING] = ALL
    counts = dict(folders)
    showing = st.selectbox("Show", choices, key=SHOWING, label_visibility="collapsed",
                           format_func=lambda c: f"📁 {c} ({counts[c]})" if c in counts else c)
    limit = st.session_state.get(LIMIT, PAGE)
    store = session.chat_store()
    if showing == ALL:
        pinned = session.remembered("chats:pinned", lambda: store.list_chats(PAGE, pinned=True))
        chats = session.remembered(f"chats:unpinned:{limit}",
                                   lambda: store.list_chats(limit, pinned=False))
        groups = sidebar_groups(pinned, chats, datetime.now(timezone.utc), _zone())
    else:
        filtered = ({"pinned": True} if showing == PINNED else {"folder": showing})
        chats = session.remembered(f"chats:{json.dumps(filtered)}:{limit}",
                                   lambda: store.list_chats(limit, **filtered))
        groups = by_day(chats, datetime.now(timezone.utc), _zone())
        if showing != PINNED:
            _draw_folder_tools(showing)
    shown = [chat for _, group in groups for chat in group]
    open_chat = next((c for c in shown if c.id == conversation.chat.id), None)
    if open_chat is not None:
        _chat_menu(open_chat)
    for label, group in groups:
        st.caption(("📌 " if label == PINNED else "") + label)
        for chat in group:
            _chat_button(chat, conversation.chat.id)
    if len(chats) >= limit:
        st.button("Load more", key="history:more", on_click=_more, width="stretch")


def draw(head, listing, *, alone: bool) -> None:
    """New chat in `head`; the search box and the chats (or what the search found), with the
    open chat's menu, in `listing` (two sidebar containers, the chat options between).

    `alone`: the list is drawn on its own as the user types, pages or picks a filter (a
    fragment: the chat on screen is not drawn again). Not while a reply arrives: the page's
    run follows it until it ends, and a fragment's run would wait for that, so each keystroke
    draws the whole page again (leaving the reply to go on, as any click does)."""
    with head:
        st.button("New chat", icon="➕", key="chat:new", width="stretch", on_click=_new_chat)
        if flash := st.session_state.pop(FLASH, None):
            st.error(flash)
    with listing:
        if alone:
            _listing_alone()
        else:
            _listing(alone=False)


def _listing(alone: bool) -> None:
    if st.session_state.pop(WHOLE_PAGE, False) and alone:
        st.rerun()  # a click changed the chat on screen, or what it shows: the whole page
    # Searched while the user types: the box sends what is typed after a 250 ms pause.
    query = st.text_input("Search chats", key="history:search", placeholder="Search chats",
                          label_visibility="collapsed", icon="🔎", live=True)
    if scroll_to := st.session_state.pop(SCROLL_TO, None):
        anchor = MESSAGE_ANCHOR.format(scroll_to)
        st.html(_SCROLL_SCRIPT % (json.dumps(anchor), json.dumps("st-key-" + anchor)),
                unsafe_allow_javascript=True)
    try:
        if query.strip():
            _draw_found(query.strip())
        else:
            _draw_list(session.conversation())
    except SessionEnded:
        return
    except UserFacingError as exc:
        st.error(str(exc))


@st.fragment
def _listing_alone() -> None:
    _listing(alone=True)
