// The context meter: the conversation's tokens (numbers in the .sb-meter element's data-*
// attributes, drawn by the server) plus an estimate of the text being typed, shown on a pause.
// Installed once per tab: later draws (new numbers, another page visit) only refresh it.
(() => {
  if (window.sbMeter) {
    window.sbMeter.refresh();
    return;
  }
  const TEXTAREA = '[data-testid="stChatInput"] textarea';
  const PAUSE_MS = 50;
  const NEAR = 0.8;
  const count = new Intl.NumberFormat("en-US");
  let timer = null;

  function typedCharacters() {
    const box = document.querySelector(TEXTAREA);
    return box ? box.value.length : 0;
  }

  function reading(data, characters) {
    const typed = Math.ceil(characters * Number(data.tokensPerCharacter));
    const total = Number(data.conversation) + Number(data.waiting) + Number(data.replyRoom) + typed;
    const about = data.exact === "true" && typed === 0 ? "" : "≈";
    const room = Number(data.replyRoom) ? ` · ${count.format(Number(data.replyRoom))} kept for the reply` : "";
    if (!data.window) {
      return { total, level: "unknown",
               line: `${about}${count.format(total)} tokens${room} · window unknown — set it in Chat options` };
    }
    const window_ = Number(data.window);
    const level = total > window_ ? "over" : total >= NEAR * window_ ? "near" : "ok";
    const percent = level === "over" ? Math.max(101, Math.round((100 * total) / window_))
                                     : Math.min(100, Math.round((100 * total) / window_));
    let line = `${about}${count.format(total)} of ${count.format(window_)} tokens (${percent}%)${room}`;
    if (level === "near") line += " · nearly full";
    if (level === "over") line += " · over the window: Send will be refused";
    return { total, level, percent, line };
  }

  function refresh() {
    timer = null;
    const meter = document.querySelector(".sb-meter");
    if (!meter) return;
    const shown = reading(meter.dataset, typedCharacters());
    meter.dataset.level = shown.level;
    meter.dataset.total = String(shown.total);
    meter.querySelector(".sb-meter-line").textContent = shown.line;
    meter.querySelector(".sb-meter-fill").style.width = `${Math.min(100, shown.percent ?? 0)}%`;
    if (meter.getAttribute("role") === "meter") {
      meter.setAttribute("aria-valuenow", String(Math.min(shown.total, Number(meter.dataset.window))));
    }
    meter.setAttribute("aria-valuetext", shown.line);
  }

  // One listener on the document: the chat input's textarea may be drawn again (another page
  // visit, a rerun) and is still heard; nothing runs between key presses' pauses.
  document.addEventListener("input", (event) => {
    if (!(event.target instanceof Element) || !event.target.matches(TEXTAREA)) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, PAUSE_MS);
  }, true);
  // Where it floats: just above the chat input's bottom area (its height changes with the
  // files attached and the screen), on the app's own background. A ResizeObserver runs only
  // when that area's size changes.
  const root = document.documentElement.style;
  const app = document.querySelector(".stApp");
  if (app) root.setProperty("--sb-meter-background", getComputedStyle(app).backgroundColor);
  let bottom = null;
  const sizes = new ResizeObserver(([entry]) => {
    root.setProperty("--sb-meter-bottom", `${Math.ceil(entry.borderBoxSize[0].blockSize)}px`);
  });
  function followBottom() {
    const area = document.querySelector('[data-testid="stBottom"]');
    if (area === bottom) return;
    if (bottom) sizes.unobserve(bottom);
    bottom = area;
    if (area) sizes.observe(area);
  }

  window.sbMeter = { refresh: () => { followBottom(); refresh(); } };
  window.sbMeter.refresh();
})();
