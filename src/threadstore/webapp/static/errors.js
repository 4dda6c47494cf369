// Turning an ApiError into a sentence a person can act on. The server's own text is never shown: the status
// and the 409's reason decide the words, and the request id lets an operator find the request in the logs.

const CONFLICTS = {
  archived: "This thread is archived: it can't be changed.",
  version: "This thread changed while you were working on it. Try again.",
  offset: "This reply was changed elsewhere. It has been reloaded.",
  state: "This message is finished: it can't be changed.",
  "in-flight": "The same request is still being handled. Try again in a moment.",
};

const STATUSES = {
  400: "The request was malformed.",
  401: "The access token was not accepted (it may have expired). Sign in again.",
  404: "That thread or message doesn't exist, or is no longer there.",
  409: "That change conflicts with the thread's current state.",
  412: "Someone else changed this thread meanwhile. Look at it again and retry.",
  413: "That is too large for the server.",
  415: "The server refused the request's format.",
  422: "The server didn't accept what was entered (it may be empty or too long).",
  429: "Too many requests. Wait a moment and try again.",
  500: "Something went wrong on the server.",
  503: "The server is busy or restarting. Try again in a moment.",
};

export function describe(error, overrides = {}) {
  if (error?.network) return "Can't reach the server.";
  if (!error || typeof error.status !== "number") return "Something went wrong in this page.";
  const byReason = error.status === 409 && error.reason ? (overrides[error.reason] ?? CONFLICTS[error.reason]) : null;
  return (
    byReason ?? overrides[error.status] ?? STATUSES[error.status] ?? `The request failed (status ${error.status}).`
  );
}
