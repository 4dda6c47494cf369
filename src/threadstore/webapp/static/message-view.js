// One message of the active path as an <article aria-label="{role} message">: its content, its place among
// its alternatives ("2/3"), and the actions the contract gives its role. Actions are callbacks of the thread
// view; this module only draws.

import { button, h, uniqueId } from "./dom.js";
import { contentNodes } from "./content.js";

const ROLE_NAMES = { user: "You", assistant: "Assistant", system: "System", tool: "Tool" };

export function renderMessage(message, actions, editing = false) {
  const article = h("article", {
    "aria-label": `${message.role} message`,
    className: `message message-${message.role}`,
    "data-message-id": message.id,
  });
  const state =
    message.status === "in_progress"
      ? h("span", { className: "state writing" }, "Writing…")
      : message.status === "incomplete"
        ? h("span", { className: "state stopped" }, "Stopped")
        : null;
  const role = h("span", { className: "role" }, ROLE_NAMES[message.role] ?? message.role);
  article.append(h("p", { className: "message-head" }, role, state));
  if (editing) {
    article.append(editForm(message, actions));
  } else {
    article.append(
      h(
        "div",
        { className: "content", "aria-live": message.status === "in_progress" ? "polite" : null },
        contentNodes(message.content),
      ),
    );
  }
  if (message.sibling_count > 1) {
    article.append(
      h(
        "div",
        { className: "alternatives" },
        button("Previous alternative", () => actions.switchAlternative(message, -1), {
          disabled: message.sibling_index <= 1,
          "data-step": "-1",
        }),
        h("span", { className: "position" }, `${message.sibling_index}/${message.sibling_count}`),
        button("Next alternative", () => actions.switchAlternative(message, 1), {
          disabled: message.sibling_index >= message.sibling_count,
          "data-step": "1",
        }),
      ),
    );
  }
  if (!editing) article.append(actionBar(message, actions));
  return article;
}

function actionBar(message, actions) {
  const bar = h("div", { className: "actions" });
  if (message.role === "user") bar.append(button("Edit", () => actions.startEdit(message)));
  // Not while the reply is being written: a second writer would answer beside the first.
  const writing = message.status === "in_progress";
  if (message.role === "assistant" && !writing) bar.append(button("Regenerate", () => actions.regenerate(message)));
  bar.append(button("Fork from here", () => actions.fork(message)));
  if (message.role === "assistant" && !writing) {
    const rating = message.feedback?.rating ?? null;
    const toggle = (label, value) =>
      button(label, () => actions.rate(message, value), {
        "aria-pressed": rating === value ? "true" : "false",
        className: "toggle",
      });
    bar.append(toggle("Good response", "up"), toggle("Bad response", "down"));
  }
  return bar;
}

function editForm(message, actions) {
  const id = uniqueId("edit");
  const text = typeof message.content === "string" ? message.content : textOf(message.content);
  const area = h("textarea", { id, rows: 3 });
  area.value = text;
  const form = h(
    "form",
    {
      className: "edit-form",
      onsubmit: (event) => {
        event.preventDefault();
        actions.saveEdit(message, area.value);
      },
    },
    h("label", { for: id }, "Edit message"),
    area,
    h(
      "div",
      { className: "row" },
      h("button", { type: "submit", className: "primary" }, "Save edit"),
      button("Cancel", () => actions.cancelEdit(message)),
    ),
  );
  queueMicrotask(() => area.focus());
  return form;
}

export function textOf(content) {
  if (typeof content === "string") return content;
  return content
    .filter((piece) => piece.type === "text")
    .map((piece) => piece.text)
    .join("\n");
}
