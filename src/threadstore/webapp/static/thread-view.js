// The open thread (<main>): its title and actions, its active path, and the composer. The path is read page
// by page (following cursors) and kept current by the event stream; the demo responder's writes are applied
// here at once too, by the same functions, which ignore what is already shown.

import { del, get, newIdempotencyKey, patch, post, put } from "./api.js";
import { attempt, showError, showNotice } from "./alert.js";
import { respond } from "./demo-responder.js";
import { button, codePoints, h, uniqueId } from "./dom.js";
import { renderMessage } from "./message-view.js";
import { threadTitle } from "./threads.js";

const PATH_PAGE = 100;

export class ThreadView {
  constructor(main, events, list) {
    this.main = main;
    this.list = list;
    this.threadId = null;
    this.thread = null;
    this.messages = [];
    this.editing = null;
    this.demoOn = true;
    this.sending = false;
    this.unsent = null;
    this.generation = 0;
    this.reloading = null;
    events.on("thread.updated", (thread) => this.applyThread(thread));
    events.on("thread.deleted", ({ id }) => this.applyDeleted(id));
    events.on("message.created", (message) => this.applyCreated(message));
    events.on("message.delta", (delta) => this.applyDelta(delta));
    events.on("message.updated", (message) => this.applyUpdated(message));
    events.on("message.deleted", ({ thread_id }) => thread_id === this.threadId && this.reloadMessages());
    events.onCatchUp(() => this.threadId && this.load());
    this.actions = {
      switchAlternative: (message, step) => attempt(() => this.switchAlternative(message, step)),
      startEdit: (message) => this.setEditing(message.id),
      cancelEdit: () => this.setEditing(null),
      saveEdit: (message, text) => attempt(() => this.saveEdit(message, text)),
      regenerate: (message) => attempt(() => this.regenerate(message)),
      fork: (message) => attempt(() => this.fork(message)),
      rate: (message, rating) => attempt(() => this.rate(message, rating)),
    };
    this.close();
  }

  get base() {
    return `threads/${encodeURIComponent(this.threadId)}`;
  }

  close() {
    this.generation += 1;
    this.threadId = null;
    this.thread = null;
    this.messages = [];
    this.main.replaceChildren(
      h(
        "div",
        { className: "placeholder" },
        h("h2", {}, "No thread open"),
        h("p", {}, "Choose a thread in the list, or create a new one."),
      ),
    );
  }

  showMissing() {
    this.main.replaceChildren(
      h(
        "div",
        { className: "placeholder" },
        h("a", { href: "#/", className: "back" }, "Back to threads"),
        h("h2", {}, "Thread not found"),
        h("p", {}, "It may have been deleted. Choose another thread in the list."),
      ),
    );
  }

  open(threadId) {
    if (threadId === this.threadId) return;
    this.close();
    this.threadId = threadId;
    this.editing = null;
    this.build();
    this.load();
  }

  // ---- drawing

  build() {
    const messageId = uniqueId("message");
    const demoId = uniqueId("demo");
    this.heading = h("h2", { tabindex: "-1" }, "Loading…");
    this.badge = h("span", { className: "badge", hidden: true }, "Archived");
    this.headActions = h("div", { className: "thread-actions" });
    this.renameSlot = h("div", { className: "rename-slot" });
    this.messageList = h("div", { className: "messages" });
    this.composerText = h("textarea", {
      id: messageId,
      rows: 3,
      onkeydown: (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          this.send();
        }
      },
    });
    this.demoBox = h("input", {
      id: demoId,
      type: "checkbox",
      checked: this.demoOn,
      onchange: () => {
        this.demoOn = this.demoBox.checked;
      },
    });
    this.deleteDialog = h(
      "dialog",
      { className: "confirm", "aria-labelledby": `${demoId}-delete` },
      h("h3", { id: `${demoId}-delete` }, "Delete this thread?"),
      h("p", {}, "The thread and all its messages are deleted for good."),
      h(
        "div",
        { className: "row" },
        button("Delete permanently", () => attempt(() => this.deletePermanently()), { className: "danger" }),
        button("Cancel", () => this.deleteDialog.close()),
      ),
    );
    this.main.replaceChildren(
      h(
        "div",
        { className: "thread-head" },
        h("a", { href: "#/", className: "back" }, "Back to threads"),
        h("div", { className: "title-row" }, this.heading, this.badge),
        this.headActions,
        this.renameSlot,
      ),
      this.messageList,
      h(
        "form",
        {
          className: "composer",
          onsubmit: (event) => {
            event.preventDefault();
            this.send();
          },
        },
        h("label", { for: messageId }, "Message"),
        this.composerText,
        h(
          "div",
          { className: "row composer-row" },
          h("button", { type: "submit", className: "primary" }, "Send"),
          h("span", { className: "check" }, this.demoBox, h("label", { for: demoId }, "Demo responder")),
        ),
        h("p", { className: "note" }, "Demo: replies are written by this page word by word, not by a model."),
      ),
      this.deleteDialog,
    );
  }

  drawThread() {
    const thread = this.thread;
    this.heading.textContent = threadTitle(thread);
    this.badge.hidden = thread.status !== "archived";
    const archived = thread.status === "archived";
    this.headActions.replaceChildren(
      button("Rename", () => attempt(() => this.startRename())),
      button("Auto-rename", () => attempt(() => this.autoRename(), AUTO_RENAME_ERRORS)),
      archived
        ? button("Restore", () => attempt(() => this.setStatus("active")))
        : button("Archive", () => attempt(() => this.setStatus("archived"))),
      button("Delete", () => this.confirmDelete(), { className: "danger" }),
    );
  }

  drawMessages() {
    const articles = this.messages.map((message) => renderMessage(message, this.actions, message.id === this.editing));
    if (articles.length === 0) articles.push(h("p", { className: "empty" }, "No messages yet."));
    this.messageList.replaceChildren(...articles);
  }

  redrawMessage(message) {
    const old = this.article(message.id);
    if (old) old.replaceWith(renderMessage(message, this.actions, message.id === this.editing));
  }

  article(messageId) {
    return [...this.messageList.children].find((node) => node.dataset.messageId === messageId) ?? null;
  }

  // ---- reading

  async load() {
    const generation = this.generation;
    let thread;
    try {
      thread = await get(this.base);
    } catch (error) {
      if (generation !== this.generation) return;
      showError(error);
      if (error.status === 404) this.showMissing();
      return;
    }
    if (generation !== this.generation) return;
    this.thread = thread;
    this.drawThread();
    await this.reloadMessages();
  }

  // Coalesces the reloads that a burst of events asks for into one running and at most one after it.
  reloadMessages() {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        await attempt(() => this.readPath());
      } while (this.reloadAgain);
      this.reloading = null;
    })();
    return this.reloading;
  }

  async readPath() {
    const generation = this.generation;
    const threadId = this.threadId;
    const messages = [];
    let cursor = null;
    do {
      const url = `threads/${encodeURIComponent(threadId)}/messages`;
      const page = await get(url, { limit: PATH_PAGE, order: "asc", cursor });
      if (generation !== this.generation) return;
      messages.push(...page.data);
      cursor = page.has_more ? page.next_cursor : null;
    } while (cursor);
    this.messages = messages;
    this.drawMessages();
  }

  find(messageId) {
    return this.messages.find((message) => message.id === messageId) ?? null;
  }

  // ---- live changes (events, and this page's own demo responder)

  applyThread(thread) {
    if (thread.id !== this.threadId || !this.thread) return;
    const last = this.messages.at(-1)?.id ?? null;
    this.thread = thread;
    this.drawThread();
    if (thread.current_message_id !== last) this.reloadMessages();
  }

  applyDeleted(threadId) {
    if (threadId !== this.threadId) return;
    location.hash = "#/";
  }

  applyCreated(message) {
    if (message.thread_id !== this.threadId || this.find(message.id)) return;
    const last = this.messages.at(-1)?.id ?? null;
    if (message.parent_id === last && !this.reloading) {
      // The path grows by one: nothing else on screen changed.
      this.messages.push(message);
      if (this.messages.length === 1) this.drawMessages();
      else this.messageList.append(renderMessage(message, this.actions));
    } else {
      // A new branch (an edit, a regenerate, another tab's): it became the current path.
      this.reloadMessages();
    }
  }

  applyDelta({ message_id, thread_id, offset, text }) {
    if (thread_id !== this.threadId) return;
    const message = this.find(message_id);
    if (!message || typeof message.content !== "string") return;
    const stored = codePoints(message.content);
    const end = offset + codePoints(text);
    if (end <= stored) return; // already shown
    if (offset > stored) {
      this.refetch(message_id); // a gap: some deltas were missed
      return;
    }
    message.content += Array.from(text).slice(stored - offset).join("");
    const content = this.article(message_id)?.querySelector(".content .part-text");
    if (content) content.textContent = message.content;
    else this.redrawMessage(message);
  }

  applyUpdated(message) {
    if (message.thread_id !== this.threadId) return;
    const index = this.messages.findIndex((shown) => shown.id === message.id);
    if (index < 0) return;
    this.messages[index] = message;
    if (message.id !== this.editing) this.redrawMessage(message);
  }

  async refetch(messageId) {
    const message = await attempt(() => get(`${this.base}/messages/${encodeURIComponent(messageId)}`));
    if (message) this.applyUpdated(message);
  }

  // ---- thread actions

  async startRename() {
    // The version is read now: If-Match then refuses the rename only if the thread changed while it was typed.
    const thread = await get(this.base);
    this.thread = thread;
    this.drawThread();
    const id = uniqueId("title");
    const input = h("input", { id, type: "text", maxlength: 256 });
    input.value = thread.title ?? "";
    const version = thread.version;
    const form = h(
      "form",
      {
        className: "rename-form",
        onsubmit: (event) => {
          event.preventDefault();
          attempt(() => this.saveTitle(input.value, version));
        },
      },
      h("label", { for: id }, "Title"),
      input,
      h(
        "div",
        { className: "row" },
        h("button", { type: "submit", className: "primary" }, "Save title"),
        button("Cancel", () => this.endRename()),
      ),
    );
    this.renameSlot.replaceChildren(form);
    input.focus();
    input.select();
  }

  endRename() {
    this.renameSlot.replaceChildren();
    this.heading.focus();
  }

  async saveTitle(title, version) {
    const trimmed = title.trim();
    const thread = await patch(this.base, { title: trimmed === "" ? null : trimmed }, { ifMatch: version });
    this.setThread(thread);
    this.endRename();
  }

  setThread(thread) {
    this.thread = thread;
    this.drawThread();
    this.list.upsert(thread, false);
  }

  async autoRename() {
    this.setThread(await post(`${this.base}/auto-rename`));
  }

  async setStatus(status) {
    this.setThread(await patch(this.base, { status }));
  }

  confirmDelete() {
    this.deleteDialog.showModal();
    // Cancel first: Enter or Space right away keeps the thread.
    this.deleteDialog.querySelector("button:last-of-type")?.focus();
  }

  async deletePermanently() {
    const threadId = this.threadId;
    await del(this.base, { permanent: "true" });
    this.deleteDialog.close();
    this.list.remove(threadId);
    location.hash = "#/";
  }

  // ---- message actions

  async send() {
    const text = this.composerText.value;
    if (text.trim() === "") {
      this.composerText.focus();
      return;
    }
    // One send at a time: a second Enter while the first is on its way would append the text twice.
    if (this.sending) return;
    this.sending = true;
    const threadId = this.threadId;
    // Sending the same text again after a failure that may have reached the server (no answer, 503) reuses
    // the key: if the first try landed, the server answers with that message instead of storing a second.
    if (this.unsent?.threadId !== threadId || this.unsent.text !== text) {
      this.unsent = { threadId, text, idempotencyKey: newIdempotencyKey() };
    }
    const { idempotencyKey } = this.unsent;
    const message = await attempt(() => post(`${this.base}/messages`, { content: text }, { idempotencyKey }));
    this.sending = false;
    if (!message) return;
    this.unsent = null;
    if (this.threadId === threadId) this.composerText.value = "";
    this.applyCreated(message);
    this.answer(threadId, message);
  }

  answer(threadId, prompt) {
    if (!this.demoOn) return;
    respond(threadId, prompt, this).catch((error) => showError(error));
  }

  setEditing(messageId) {
    const previous = this.editing;
    this.editing = messageId;
    for (const id of [previous, messageId]) {
      const message = id && this.find(id);
      if (message) this.redrawMessage(message);
    }
    if (messageId === null && previous) this.article(previous)?.querySelector("button")?.focus();
  }

  async saveEdit(original, text) {
    if (text.trim() === "") return;
    const threadId = this.threadId;
    const body = { role: original.role, content: text, parent_id: original.parent_id };
    const idempotencyKey = newIdempotencyKey();
    const message = await post(`${this.base}/messages`, body, { idempotencyKey });
    this.editing = null;
    await this.reloadMessages();
    this.answer(threadId, message);
  }

  async regenerate(reply) {
    const prompt = this.messages.find((message) => message.id === reply.parent_id) ?? null;
    if (!this.demoOn) {
      showNotice("Turn the demo responder on to regenerate an answer.");
      return;
    }
    await respond(this.threadId, prompt, this);
  }

  async switchAlternative(message, step) {
    const siblings = [];
    let cursor = null;
    do {
      const page = await get(`${this.base}/messages`, { siblings_of: message.id, limit: PATH_PAGE, cursor });
      siblings.push(...page.data);
      cursor = page.has_more ? page.next_cursor : null;
    } while (cursor);
    const target = siblings[siblings.findIndex((sibling) => sibling.id === message.id) + step];
    if (!target) return;
    this.thread = await patch(this.base, { current_message_id: target.id });
    this.drawThread();
    await this.reloadMessages();
    // The clicked button was redrawn away: keyboard focus goes to the same control of the alternative shown.
    const buttons = this.messageList.children[message.depth - 1]?.querySelectorAll(".alternatives button") ?? [];
    const same = [...buttons].filter((candidate) => candidate.dataset.step === String(step));
    const other = [...buttons].filter((candidate) => candidate.dataset.step !== String(step));
    [...same, ...other].find((candidate) => !candidate.disabled)?.focus();
  }

  async fork(message) {
    const idempotencyKey = newIdempotencyKey();
    const thread = await post(`${this.base}/fork`, { message_id: message.id }, { idempotencyKey });
    this.list.upsert(thread, true);
    location.hash = `#/threads/${encodeURIComponent(thread.id)}`;
  }

  async rate(message, rating) {
    const url = `${this.base}/messages/${encodeURIComponent(message.id)}/feedback`;
    if (message.feedback?.rating === rating) {
      await del(url);
      this.applyUpdated({ ...message, feedback: null });
    } else {
      this.applyUpdated(await put(url, { rating }));
    }
  }
}

const AUTO_RENAME_ERRORS = {
  422: "There is no message of yours in this thread to take a title from.",
  version: "The thread changed while its title was being made. Try again.",
};
