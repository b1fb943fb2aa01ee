// Saved prompts in the message box: "/" at the start of the box offers them (filtered by what
// follows it; arrow keys and Enter, Tab or a click pick one, Escape closes). A prompt with
// {{variables}} opens a small form, one field per name; then its text, filled, replaces the
// "/..." in the box, ready to edit or send. The prompts come from the .sb-prompts element's
// data-prompts (drawn by the server on each run); a prompt that sets the chat's model or
// options tells the server through the hidden "apply" input. Installed once per tab.
(() => {
  if (window.sbPrompts) {
    window.sbPrompts.refresh();
    return;
  }
  const BOX = '[data-testid="stChatInput"]';
  const TEXTAREA = `${BOX} textarea`;
  const APPLY = ".st-key-message-box-prompts input";
  // The same pattern as core/prompts/variables.py.
  const VARIABLE = /\{\{[ \t]*([^{}\r\n]{1,64}?)[ \t]*\}\}/g;
  let menu = null; // { element, shown: [prompt], active: index }
  let form = null;

  function prompts() {
    const holder = document.querySelector(".sb-prompts");
    try {
      return holder ? JSON.parse(holder.dataset.prompts || "[]") : [];
    } catch (error) {
      return [];
    }
  }

  function variables(text) {
    const names = [];
    for (const match of text.matchAll(VARIABLE)) {
      const name = match[1].trim();
      if (name && !names.includes(name)) names.push(name);
    }
    return names;
  }

  function fill(text, values) {
    return text.replace(VARIABLE, (whole, raw) => {
      const name = raw.trim();
      return name && Object.hasOwn(values, name) ? values[name] : whole;
    });
  }

  function textarea() {
    return document.querySelector(TEXTAREA);
  }

  function setValue(input, value) {
    const proto = input instanceof HTMLTextAreaElement ? HTMLTextAreaElement : HTMLInputElement;
    Object.getOwnPropertyDescriptor(proto.prototype, "value").set.call(input, value);
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // A floating panel just above the chat input, as wide as it.
  function panel(kind, label) {
    const element = document.createElement("div");
    element.className = `sb-prompts-${kind}`;
    element.setAttribute("aria-label", label);
    const box = document.querySelector(BOX);
    const place = box ? box.getBoundingClientRect() : { left: 16, width: 480, top: innerHeight };
    Object.assign(element.style, {
      position: "fixed", left: `${place.left}px`, width: `${place.width}px`,
      bottom: `${innerHeight - place.top + 6}px`, zIndex: 1000, maxHeight: "50vh",
      overflowY: "auto", background: getComputedStyle(document.querySelector(".stApp") || document.body).backgroundColor,
      border: "1px solid rgba(128, 128, 128, 0.4)", borderRadius: "0.5rem",
      boxShadow: "0 4px 16px rgba(0, 0, 0, 0.15)", padding: "0.25rem",
    });
    document.body.appendChild(element);
    return element;
  }

  function closeMenu() {
    if (menu) menu.element.remove();
    menu = null;
  }

  function closeForm() {
    if (form) form.remove();
    form = null;
  }

  function drawMenu(query) {
    const wanted = query.toLowerCase();
    const shown = prompts().filter((p) => p.name.toLowerCase().includes(wanted));
    if (!menu) {
      const element = panel("menu", "Saved prompts");
      element.setAttribute("role", "listbox");
      element.id = "sb-prompts-menu";
      menu = { element, shown: [], active: 0 };
      element.addEventListener("mousedown", (event) => event.preventDefault()); // keep focus
      element.addEventListener("click", (event) => {
        const option = event.target.closest("[role=option]");
        if (option) pick(menu.shown[Number(option.dataset.index)]);
      });
    }
    menu.shown = shown;
    menu.active = Math.min(menu.active, Math.max(shown.length - 1, 0));
    menu.element.replaceChildren();
    if (!shown.length) {
      const none = document.createElement("div");
      none.className = "sb-prompts-none";
      none.textContent = prompts().length ? "No saved prompt has that name."
                                          : "No saved prompts yet: add some in Settings.";
      none.style.padding = "0.4rem 0.6rem";
      menu.element.appendChild(none);
    }
    shown.forEach((prompt, index) => {
      const option = document.createElement("div");
      option.setAttribute("role", "option");
      option.id = `sb-prompt-${index}`;
      option.dataset.index = String(index);
      option.setAttribute("aria-selected", String(index === menu.active));
      Object.assign(option.style, { padding: "0.4rem 0.6rem", cursor: "pointer", borderRadius: "0.35rem",
                                    background: index === menu.active ? "rgba(0, 104, 201, 0.15)" : "" });
      const name = document.createElement("strong");
      name.textContent = prompt.name;
      const about = document.createElement("span");
      about.style.opacity = "0.7";
      const extra = [prompt.origin === "operator" ? "from the administrator" : "",
                     prompt.model ? `model ${prompt.model}` : ""].filter(Boolean).join(" · ");
      about.textContent = ` ${prompt.text.slice(0, 80).replace(/\s+/g, " ")}${extra ? ` (${extra})` : ""}`;
      option.append(name, about);
      menu.element.appendChild(option);
    });
    const box = textarea();
    if (box) {
      box.setAttribute("aria-controls", "sb-prompts-menu");
      box.setAttribute("aria-activedescendant", shown.length ? `sb-prompt-${menu.active}` : "");
    }
    const active = menu.element.querySelector('[aria-selected="true"]');
    if (active) active.scrollIntoView({ block: "nearest" });
  }

  // "/" then a name, on one line, at the start of the box: what the menu filters by.
  function typedQuery(value) {
    const found = /^\/([^\n]*)$/.exec(value);
    return found ? found[1] : null;
  }

  function onInput(event) {
    if (!(event.target instanceof Element) || !event.target.matches(TEXTAREA)) return;
    const query = typedQuery(event.target.value);
    if (query === null) closeMenu();
    else drawMenu(query);
  }

  function onKeydown(event) {
    if (!menu || !(event.target instanceof Element) || !event.target.matches(TEXTAREA)) return;
    const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    const choose = (event.key === "Enter" && !event.shiftKey && !event.isComposing) || event.key === "Tab";
    if (!step && !choose && event.key !== "Escape") return;
    if (!menu.shown.length) { // nothing to pick: the keys do what they always do
      if (event.key !== "ArrowDown" && event.key !== "ArrowUp") closeMenu();
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    if (event.key === "Escape") closeMenu();
    else if (step) {
      menu.active = (menu.active + step + menu.shown.length) % menu.shown.length;
      drawMenu(typedQuery(event.target.value) ?? "");
    } else pick(menu.shown[menu.active]);
  }

  function pick(prompt) {
    closeMenu();
    const names = variables(prompt.text);
    if (names.length) askValues(prompt, names);
    else insert(prompt, prompt.text);
  }

  function insert(prompt, text) {
    closeForm();
    const box = textarea();
    if (!box) return;
    setValue(box, text);
    box.focus();
    box.setSelectionRange(text.length, text.length);
    if (prompt.applies) {
      const apply = document.querySelector(APPLY);
      if (apply) setValue(apply, `${prompt.id}#${Date.now()}`);
    }
  }

  function askValues(prompt, names) {
    closeForm();
    form = panel("form", `Fill in ${prompt.name}`);
    form.setAttribute("role", "dialog");
    form.style.padding = "0.75rem";
    const title = document.createElement("div");
    title.textContent = `Fill in “${prompt.name}”`;
    title.style.fontWeight = "600";
    title.style.marginBottom = "0.5rem";
    const fields = document.createElement("form");
    const inputs = names.map((name, index) => {
      const label = document.createElement("label");
      Object.assign(label.style, { display: "block", marginBottom: "0.5rem" });
      const caption = document.createElement("div");
      caption.textContent = name;
      caption.style.fontSize = "0.85rem";
      const input = document.createElement("input");
      input.type = "text";
      input.name = `sb-variable-${index}`;
      input.dataset.variable = name;
      input.autocomplete = "off";
      Object.assign(input.style, { width: "100%", padding: "0.35rem 0.5rem", boxSizing: "border-box",
                                   border: "1px solid rgba(128, 128, 128, 0.5)", borderRadius: "0.35rem",
                                   font: "inherit", color: "inherit", background: "transparent" });
      label.append(caption, input);
      fields.appendChild(label);
      return input;
    });
    const buttons = document.createElement("div");
    Object.assign(buttons.style, { display: "flex", gap: "0.5rem" });
    const ok = document.createElement("button");
    ok.type = "submit";
    ok.textContent = "Put in the message box";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    for (const button of [ok, cancel]) {
      Object.assign(button.style, { padding: "0.35rem 0.75rem", borderRadius: "0.35rem", font: "inherit",
                                    border: "1px solid rgba(128, 128, 128, 0.5)", cursor: "pointer",
                                    color: "inherit", background: "transparent" });
    }
    buttons.append(ok, cancel);
    fields.appendChild(buttons);
    // Enter in a field goes to the next one; in the last, it puts the text in the box.
    fields.addEventListener("keydown", (event) => {
      const at = inputs.indexOf(event.target);
      if (event.key === "Escape") {
        event.preventDefault();
        closeForm();
        const box = textarea();
        if (box) box.focus();
      } else if (event.key === "Enter" && at >= 0 && at < inputs.length - 1) {
        event.preventDefault();
        inputs[at + 1].focus();
      }
    });
    fields.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = Object.fromEntries(inputs.map((input) => [input.dataset.variable, input.value]));
      insert(prompt, fill(prompt.text, values));
    });
    cancel.addEventListener("click", () => {
      closeForm();
      const box = textarea();
      if (box) box.focus();
    });
    form.append(title, fields);
    inputs[0].focus();
  }

  document.addEventListener("input", onInput, true);
  document.addEventListener("keydown", onKeydown, true);
  document.addEventListener("mousedown", (event) => {
    if (menu && !menu.element.contains(event.target) && !(event.target instanceof Element && event.target.closest(BOX))) closeMenu();
  }, true);

  function refresh() {
    const box = textarea();
    if (menu && box) {
      const query = typedQuery(box.value);
      if (query === null) closeMenu();
      else drawMenu(query);
    }
  }

  window.sbPrompts = { refresh, variables, fill };
})();
