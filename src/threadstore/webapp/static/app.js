// The page's entry: the token screen or the workspace, the hash routes (#/ and #/threads/{id}), and the event
// stream's status line. Everything else lives in the modules it wires together.

import { clearToken, get, getToken, onUnauthorized, setToken } from "./api.js";
import { attempt, hideError, installAlert, showError } from "./alert.js";
import { EventStream } from "./events.js";
import { ThreadList } from "./threads.js";
import { ThreadView } from "./thread-view.js";

const tokenScreen = document.getElementById("token-screen");
const workspace = document.getElementById("workspace");
const tokenInput = document.getElementById("token-input");
const streamStatus = document.getElementById("stream-status");

const events = new EventStream();
const list = new ThreadList(document.getElementById("thread-list"), events);
const view = new ThreadView(document.getElementById("thread-view"), events, list);

function route() {
  if (workspace.hidden) return;
  const match = /^#\/threads\/([^/]+)$/.exec(location.hash);
  const threadId = match ? decodeURIComponent(match[1]) : null;
  document.body.classList.toggle("thread-open", threadId !== null);
  list.setOpenThread(threadId);
  if (threadId) view.open(threadId);
  else view.close();
}

function showWorkspace() {
  tokenScreen.hidden = true;
  workspace.hidden = false;
  events.start();
  list.reload();
  route();
}

function showTokenScreen() {
  events.stop();
  view.close();
  workspace.hidden = true;
  tokenScreen.hidden = false;
  tokenInput.value = "";
  tokenInput.focus();
}

async function signIn(event) {
  event.preventDefault();
  const token = tokenInput.value.trim();
  if (!token) return;
  // The token is checked before it is kept: a wrong one leaves the page on this screen, with the alert.
  const checked = await attempt(() => get("threads", { limit: 1 }, { token }));
  if (!checked) return;
  hideError();
  setToken(token);
  showWorkspace();
}

function signOut() {
  clearToken();
  hideError();
  showTokenScreen();
}

installAlert();
document.getElementById("token-form").addEventListener("submit", signIn);
document.getElementById("sign-out").addEventListener("click", signOut);
events.onStatus((live) => {
  streamStatus.textContent = live ? "Live" : "Reconnecting…";
  streamStatus.classList.toggle("live", live);
});
onUnauthorized((error) => {
  clearToken();
  showTokenScreen();
  showError(error);
});
window.addEventListener("hashchange", route);

if (getToken()) showWorkspace();
else showTokenScreen();
