"""The one part of core that touches Streamlit, all of it per browser session: nothing per-user
goes in st.cache_resource. Pages use `session.<name>`; modules: frame (the gate), people (who is
signed in), stores, drafts (typed text across pages), chat (the chat on screen)."""

from core.session.chat import (
    CHAT_OPTION_DEFAULTS,
    adopt_title,
    conversation,
    title_pending,
    first_shown,
    show_earlier,
    show_from,
    new_chat,
    open_chat,
    live_reply,
    reopen_addressed_chat,
    send_reply,
    show_in_address,
    stop_reply,
)
from core.session.compare import picked as compared_targets
from core.session.compare import send_comparison
from core.session.budget import (
    ask_ahead,
    chat_budget,
    remember_typed_window,
    reply_cost,
    stated_window,
    typed_window,
    typing_rate,
)
from core.session.compose import (
    Draft,
    dismiss_refusal,
    drop_from_tray,
    hold,
    put_back,
    read_files,
    refusal,
    refuse,
    sent,
    takes_no_images,
    tray,
)
from core.session.compose import problem as draft_problem
from core.session.drafts import KEPT, keep, keeping, kept, put, restore
from core.session.frame import framing, run_in_frame
from core.session.people import (
    UNSENT,
    UNSENT_WHY,
    auth,
    current_user,
    discard_unsent_message,
    forget_old_outage,
    keep_unsent_message,
    settings,
    sign_out,
    take_auth_notice,
)
from core.session.stores import (
    PageRead,
    answering,
    chat_list,
    chat_store,
    connection_store,
    forget,
    history_changed,
    on_page,
    page_read,
    remembered,
    seed_store,
    store,
)

__all__ = [
    "ask_ahead", "compared_targets", "send_comparison", "first_shown", "show_earlier",
    "show_from", "adopt_title", "title_pending",
    "Draft", "chat_budget", "dismiss_refusal", "draft_problem", "drop_from_tray", "hold", "put_back", "read_files",
    "refusal", "refuse", "remember_typed_window", "reply_cost", "sent", "stated_window", "takes_no_images", "tray",
    "typed_window", "typing_rate",
    "CHAT_OPTION_DEFAULTS", "KEPT", "UNSENT", "UNSENT_WHY", "answering", "auth", "chat_list",
    "chat_store", "connection_store", "conversation", "current_user", "discard_unsent_message",
    "forget", "forget_old_outage", "framing", "history_changed", "keep", "keep_unsent_message",
    "keeping", "kept", "new_chat", "on_page", "open_chat", "page_read", "put",
    "remembered", "reopen_addressed_chat", "restore", "run_in_frame", "seed_store", "settings",
    "show_in_address", "sign_out", "live_reply", "send_reply", "stop_reply", "store",
    "take_auth_notice", "PageRead",
]
from core.session.stores import chat_store_opener  # an import in the background opens its own
