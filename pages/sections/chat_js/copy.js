// One click on a reply's Copy puts the reply's Markdown (kept beside the button) on the
// clipboard and says so in a toast. Installed once per tab: every Copy button is handled by one
// listener on the document, so a reply drawn again needs nothing more.
(() => {
  if (window.switchboardCopy) return;
  window.switchboardCopy = true;
  const style = document.createElement("style");
  style.textContent = `
.sb-copy { font: inherit; background: none; border: 1px solid rgba(49, 51, 63, 0.2);
  border-radius: 0.5rem; padding: 0.25rem 0.75rem; cursor: pointer; width: 100%;
  color: inherit; }
.sb-copy:hover { border-color: #ff4b4b; color: #ff4b4b; }
.sb-copy:focus-visible { outline: 2px solid #ff4b4b; }
.sb-copy-toast { position: fixed; right: 1.5rem; bottom: 6rem; z-index: 1000;
  background: #262730; color: #fff; padding: 0.6rem 1rem; border-radius: 0.5rem;
  box-shadow: 0 2px 8px rgba(0, 0, 0, 0.25); font-family: sans-serif; font-size: 0.9rem; }
.sb-copy-failed { background: #7d2020; }
`;
  document.head.appendChild(style);

  function toast(text, failed) {
    const box = document.createElement("div");
    box.className = "sb-copy-toast" + (failed ? " sb-copy-failed" : "");
    box.setAttribute("role", "status");
    box.textContent = text;
    document.body.appendChild(box);
    setTimeout(() => box.remove(), 2500);
  }

  function copiedBySelection(text) {
    // Outside a secure context (plain http on a LAN) there is no clipboard API.
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    let done = false;
    try { done = document.execCommand("copy"); } catch (e) { done = false; }
    area.remove();
    return done;
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".sb-copy");
    if (!button) return;
    const source = button.parentElement.querySelector(".sb-copy-text");
    if (!source) return;
    const text = source.value;
    const said = () => toast("Copied to the clipboard", false);
    const refused = () => toast("The browser refused to copy; select the text instead", true);
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(said, () => (copiedBySelection(text) ? said() : refused()));
    } else if (copiedBySelection(text)) {
      said();
    } else {
      refused();
    }
  });
})();
