// On a phone the sidebar covers most of the screen: picking a chat (or a search hit) or starting
// one closes it, so the chat (and a reply streaming in it) is what the user sees. Installed once
// per tab.
(() => {
  if (window.switchboardSidebar) return;
  window.switchboardSidebar = true;
  const PHONE = 640; // px: below this Streamlit draws the sidebar over the page
  const PICKS = '[class*="st-key-history-open-"] button, [class*="st-key-history-hit-"] button,'
    + ' .st-key-chat-new button';
  document.addEventListener("click", (event) => {
    if (window.innerWidth >= PHONE || !event.target.closest(PICKS)) return;
    setTimeout(() => {
      const close = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
      if (close) close.click();
    }, 0);
  }, true);
})();
