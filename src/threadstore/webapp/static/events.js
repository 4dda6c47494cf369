// The event stream of the signed-in user. A browser's EventSource cannot send Authorization, so the page first
// POSTs /api/events/session (bearer) for the HttpOnly events cookie, then opens /api/events, which the cookie
// authorizes. The browser reconnects by itself with Last-Event-ID; when it gives up (CLOSED: e.g. a 401 once
// the cookie expired, or a server that answered an error) the session is renewed and the stream reopened.
// After any interruption, listeners are told to catch up by re-reading what they show.

import { apiUrl, post } from "./api.js";

const TYPES = [
  "thread.created",
  "thread.updated",
  "thread.deleted",
  "message.created",
  "message.updated",
  "message.delta",
  "message.deleted",
];
const REOPEN_DELAYS_MS = [500, 1000, 2000, 4000, 8000];

export class EventStream {
  constructor() {
    this.listeners = new Map();
    this.statusListeners = [];
    this.catchUpListeners = [];
    this.source = null;
    this.stopped = true;
    this.failures = 0;
    this.timer = null;
  }

  on(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(listener);
  }

  onStatus(listener) {
    this.statusListeners.push(listener);
  }

  // After a manual reopen: events may have been missed, so whatever is on screen must be read again.
  onCatchUp(listener) {
    this.catchUpListeners.push(listener);
  }

  start() {
    this.stopped = false;
    this.failures = 0;
    this.open(false);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
    this.setStatus(false);
  }

  setStatus(live) {
    for (const listener of this.statusListeners) listener(live);
  }

  async open(reopening) {
    if (this.stopped) return;
    try {
      await post("events/session");
    } catch (error) {
      if (error.status === 401) return; // the token itself is refused: the app signs out
      this.scheduleReopen();
      return;
    }
    if (this.stopped) return;
    const source = new EventSource(apiUrl("events"));
    this.source = source;
    // Any open after the first one of this stream catches up too: the browser's own reconnect sends
    // Last-Event-ID only once an event with an id was received, so a stream that had none resumes "from now"
    // and would miss what was written while it was down. Re-reading is idempotent (views are redrawn whole).
    let interrupted = reopening;
    source.addEventListener("open", () => {
      this.failures = 0;
      this.setStatus(true);
      if (interrupted) {
        interrupted = false;
        for (const listener of this.catchUpListeners) listener();
      }
    });
    source.addEventListener("error", () => {
      interrupted = true;
      this.setStatus(false);
      if (source.readyState === EventSource.CLOSED && this.source === source) {
        source.close();
        this.scheduleReopen();
      }
    });
    for (const type of TYPES) {
      source.addEventListener(type, (event) => this.dispatch(type, event));
    }
  }

  scheduleReopen() {
    if (this.stopped) return;
    const delay = REOPEN_DELAYS_MS[Math.min(this.failures, REOPEN_DELAYS_MS.length - 1)];
    this.failures += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(true), delay);
  }

  dispatch(type, event) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    for (const listener of this.listeners.get(type) ?? []) listener(data);
  }
}
