// The demo responder: no model, only a canned answer this page writes word by word through the streamed-reply
// API, exactly as a real back end would: an in_progress assistant message, deltas with their offsets in code
// points, then a closing PATCH. Other tabs watch it grow through their event streams.

import { newIdempotencyKey, patch, post } from "./api.js";
import { codePoints } from "./dom.js";
import { textOf } from "./message-view.js";
import { withRetries } from "./retry.js";

const WORD_DELAY_MS = 80;
const QUOTED_WORDS = 12;
export const DEMO_MODEL = "demo-responder";

function cannedReply(prompt) {
  const words = textOf(prompt.content).trim().split(/\s+/).filter(Boolean);
  const quoted = words.slice(0, QUOTED_WORDS).join(" ") + (words.length > QUOTED_WORDS ? " …" : "");
  const opening = quoted ? `You wrote: “${quoted}”.` : "You sent an empty message.";
  return (
    `${opening} This is the demo responder, not a model: the page writes this answer one word at a time ` +
    "through the deltas API, so every open tab shows it growing live."
  );
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// prompt: the message answered (the reply's parent). listener: applyCreated / applyDelta / applyUpdated of the
// thread view, so this tab shows the reply at once even while its event stream is reconnecting.
export async function respond(threadId, prompt, listener) {
  const base = `threads/${encodeURIComponent(threadId)}/messages`;
  // Every write is retried through a restart of the server: the same key, the same offset, the same PATCH.
  const start = {
    role: "assistant",
    status: "in_progress",
    content: "",
    parent_id: prompt?.id ?? null,
    model: DEMO_MODEL,
  };
  const idempotencyKey = newIdempotencyKey();
  const reply = await withRetries(() => post(base, start, { idempotencyKey }));
  listener.applyCreated(reply);
  const url = `${base}/${encodeURIComponent(reply.id)}`;
  let offset = 0;
  try {
    for (const word of cannedReply(prompt).match(/\S+\s*/g) ?? []) {
      await sleep(WORD_DELAY_MS);
      await withRetries(() => post(`${url}/deltas`, { offset, text: word }));
      listener.applyDelta({ message_id: reply.id, thread_id: threadId, offset, text: word });
      offset += codePoints(word);
    }
    listener.applyUpdated(await withRetries(() => patch(url, { status: "completed", finish_reason: "stop" })));
  } catch (error) {
    // Whatever was written stays readable: the reply is closed as incomplete (the server's stale sweep
    // would do it later otherwise).
    await patch(url, { status: "incomplete", finish_reason: "error" }).then(listener.applyUpdated, () => {});
    throw error;
  }
}
