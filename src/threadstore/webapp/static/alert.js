// The one error alert of the page: plain words and, when the server answered, its request id.

import { describe } from "./errors.js";

const box = () => document.getElementById("alert");

export function showError(error, overrides = {}) {
  if (!(error && (typeof error.status === "number" || error.network))) console.error(error);
  document.getElementById("alert-text").textContent = describe(error, overrides);
  const requestId = document.getElementById("alert-request-id");
  requestId.textContent = error?.requestId ? `Request ID: ${error.requestId}` : "";
  requestId.hidden = !error?.requestId;
  box().hidden = false;
}

// A sentence of the page itself (no request behind it).
export function showNotice(text) {
  document.getElementById("alert-text").textContent = text;
  document.getElementById("alert-request-id").hidden = true;
  box().hidden = false;
}

export function hideError() {
  box().hidden = true;
}

export function installAlert() {
  document.getElementById("alert-dismiss").addEventListener("click", hideError);
}

// Runs an action of a button or form, showing its failure in the alert instead of losing it.
export async function attempt(action, overrides = {}) {
  try {
    return await action();
  } catch (error) {
    showError(error, overrides);
    return undefined;
  }
}
