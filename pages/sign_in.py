"""Sign in with email and password (Supabase mode)."""

import streamlit as st

from core import session
from core.failures import UserFacingError
from pages.sections.message_box import forget_draft

session.run_in_frame()  # never drawn without the frame's gate

if session.current_user() is not None:  # signed in or out just now: move on
    # keeping the address's query (a chat opened from its address comes up once signed in)
    st.switch_page("pages/chat.py", query_params=st.query_params.to_dict())

st.title("Sign in")
forget_draft()  # a draft left in this tab by whoever signed out is not the next user's
with st.form("sign_in"):
    email = st.text_input("Email", key="sign_in:email", autocomplete="email")
    password = st.text_input("Password", type="password", key="sign_in:password")
    submitted = st.form_submit_button("Sign in", type="primary")

if submitted:
    try:
        session.auth().sign_in(email, password)
    except UserFacingError as exc:
        st.error(str(exc))
    else:
        st.rerun()
st.page_link("pages/sign_up.py", label="No account yet? Sign up", icon="✍️")
