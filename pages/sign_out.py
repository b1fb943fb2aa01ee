"""Sign out (Supabase mode)."""

import streamlit as st

from core import session
from core.failures import UserFacingError

session.run_in_frame()  # never drawn without the frame's gate

if session.current_user() is None:  # signed in or out just now: move on
    st.switch_page("pages/sign_in.py")

st.title("Sign out")
user = session.current_user()
st.write(f"Signed in as **{user.email if user else ''}**.")
if st.button("Sign out", type="primary", key="sign_out"):
    try:
        session.sign_out()
    except UserFacingError as exc:
        st.error(str(exc))
    else:
        st.rerun()
