"""Create an account with email and password (Supabase mode)."""

import streamlit as st

from core import session
from core.auth import MIN_PASSWORD_LENGTH
from core.failures import UserFacingError

session.run_in_frame()  # never drawn without the frame's gate

if session.current_user() is not None:  # signed in or out just now: move on
    st.switch_page("pages/chat.py")

st.title("Sign up")
with st.form("sign_up"):
    email = st.text_input("Email", key="sign_up:email", autocomplete="email")
    password = st.text_input(
        "Password",
        type="password",
        key="sign_up:password",
        help=f"At least {MIN_PASSWORD_LENGTH} characters.",
    )
    submitted = st.form_submit_button("Create account", type="primary")

if submitted:
    try:
        session.auth().sign_up(email, password)
    except UserFacingError as exc:
        st.error(str(exc))
    else:
        st.rerun()
st.page_link("pages/sign_in.py", label="Already have an account? Sign in", icon="🔑")
