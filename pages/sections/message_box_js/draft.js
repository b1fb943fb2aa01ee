// The chat input's draft (its text and attached files) kept across page visits in this tab:
// Streamlit's page navigation draws a new, empty chat input. The text is also kept in
// sessionStorage, for a reload. A draft that is sent is forgotten.
(() => {
  if (document.currentScript && document.currentScript.dataset.forget === "true") {
    if (window.sbDraft) window.sbDraft.forget();
    sessionStorage.removeItem("switchboard:draft");
    return;
  }
  if (window.sbDraft) {
    window.sbDraft.restore();
    return;
  }
  const BOX = '[data-testid="stChatInput"]';
  const TEXTAREA = `${BOX} textarea`;
  const FILES = `${BOX} input[type="file"]`;
  const CHIP = `${BOX} [data-testid="stFileChip"]`;
  const REMOVE = `${CHIP} [data-testid="stFileChipDeleteBtn"] button`;
  const SEND = `${BOX} [data-testid="stChatInputSubmitButton"]`;
  const STORED = "switchboard:draft";
  const WAIT_MS = 10000;
  const draft = { text: sessionStorage.getItem(STORED) || "", files: [] };

  function keepText(text) {
    draft.text = text;
    if (text) sessionStorage.setItem(STORED, text);
    else sessionStorage.removeItem(STORED);
  }

  function sameFile(a, b) {
    return a.name === b.name && a.size === b.size && a.lastModified === b.lastModified;
  }

  function keepFiles(files) {
    for (const file of files) {
      if (!draft.files.some((kept) => sameFile(kept, file))) draft.files.push(file);
    }
  }

  function forget() {
    keepText("");
    draft.files = [];
  }

  function chipName(chip) {
    const name = chip.querySelector('[data-testid="stFileChipName"]');
    return name ? name.getAttribute("title") || name.textContent : "";
  }

  // A chip removed by the user: forget the file with its name (the nth of that name).
  function forgetChip(button) {
    const chip = button.closest('[data-testid="stFileChip"]');
    const name = chipName(chip);
    const twins = [...document.querySelectorAll(CHIP)].filter((c) => chipName(c) === name);
    let nth = twins.indexOf(chip);
    draft.files = draft.files.filter((file) => file.name !== name || nth-- !== 0);
  }

  function matches(event, selector) {
    return event.target instanceof Element && event.target.closest(selector);
  }

  document.addEventListener("input", (event) => {
    if (matches(event, TEXTAREA)) keepText(event.target.value);
  }, true);
  document.addEventListener("change", (event) => {
    if (matches(event, FILES)) keepFiles(event.target.files);
  }, true);
  document.addEventListener("paste", (event) => {
    if (matches(event, TEXTAREA) && event.clipboardData) keepFiles(event.clipboardData.files);
  }, true);
  document.addEventListener("drop", (event) => {
    if (document.querySelector(FILES) && event.dataTransfer) keepFiles(event.dataTransfer.files);
  }, true);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && matches(event, TEXTAREA)) {
      forget();
    }
  }, true);
  document.addEventListener("click", (event) => {
    const remove = matches(event, REMOVE);
    if (remove) forgetChip(remove);
    else if (matches(event, SEND)) forget();
  }, true);

  // Put the draft into a fresh chat input; never over what is already in it.
  function putBack(box) {
    const textarea = box.querySelector("textarea");
    if (draft.text && textarea && !textarea.value) {
      const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value").set;
      setter.call(textarea, draft.text);
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    }
    const input = box.querySelector('input[type="file"]');
    if (draft.files.length && input && !box.querySelector('[data-testid="stFileChip"]')) {
      const files = new DataTransfer();
      for (const file of draft.files) files.items.add(file);
      input.files = files.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  // The chat input may be drawn after this script: wait for it (a while, then give up).
  function restore() {
    if (!draft.text && !draft.files.length) return;
    const found = document.querySelector(BOX);
    if (found) {
      putBack(found);
      return;
    }
    const watcher = new MutationObserver(() => {
      const box = document.querySelector(BOX);
      if (box) {
        watcher.disconnect();
        putBack(box);
      }
    });
    watcher.observe(document.body, { childList: true, subtree: true });
    setTimeout(() => watcher.disconnect(), WAIT_MS);
  }

  window.sbDraft = { restore, forget };
  restore();
})();
