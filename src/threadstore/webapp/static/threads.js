// The thread list (<nav aria-label="Threads">): pages of 20 followed by cursor (a sentinel seen at the end loads
// the next; "Load more" does the same from the keyboard), the Show filter, search with highlighted snippets,
// "New thread", and live changes from the event stream.

import { get, newIdempotencyKey, post } from "./api.js";
import { attempt } from "./alert.js";
import { button, h, uniqueId } from "./dom.js";
import { snippetNodes } from "./snippets.js";

const PAGE = 20;
const SEARCH_DELAY_MS = 250;

export function threadTitle(thread) {
  return thread.title ?? "Untitled";
}

export class ThreadList {
  constructor(nav, events) {
    this.nav = nav;
    this.openThreadId = null;
    this.status = "active";
    this.query = "";
    this.cursor = null;
    this.hasMore = false;
    this.loading = false;
    this.generation = 0;
    this.searchTimer = null;
    this.build();
    events.on("thread.created", (thread) => this.upsert(thread, true));
    events.on("thread.updated", (thread) => this.upsert(thread, false));
    events.on("thread.deleted", ({ id }) => this.remove(id));
    events.onCatchUp(() => this.reload());
  }

  build() {
    const searchId = uniqueId("search");
    const showId = uniqueId("show");
    this.searchInput = h("input", {
      id: searchId,
      type: "search",
      autocomplete: "off",
      maxlength: 256,
      oninput: () => this.searchSoon(),
      onkeydown: (event) => {
        if (event.key === "Enter") {
          event.preventDefault();
          this.searchNow();
        }
      },
    });
    this.showSelect = h(
      "select",
      { id: showId, onchange: () => this.setStatus(this.showSelect.value) },
      h("option", { value: "active" }, "Active"),
      h("option", { value: "archived" }, "Archived"),
      h("option", { value: "all" }, "All"),
    );
    this.list = h("ul", { className: "threads" });
    this.empty = h("p", { className: "list-empty", hidden: true });
    this.loadMoreButton = button("Load more", () => this.loadMore(), { hidden: true, className: "load-more" });
    this.sentinel = h("div", { className: "sentinel", "aria-hidden": "true" });
    this.nav.replaceChildren(
      h(
        "div",
        { className: "list-tools" },
        button("New thread", () => this.createThread(), { className: "primary" }),
        h("div", { className: "field" }, h("label", { for: searchId }, "Search threads"), this.searchInput),
        h("div", { className: "field field-inline" }, h("label", { for: showId }, "Show"), this.showSelect),
      ),
      this.list,
      this.empty,
      this.loadMoreButton,
      this.sentinel,
    );
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
    });
    this.observer.observe(this.sentinel);
  }

  get searching() {
    return this.query !== "";
  }

  setStatus(status) {
    this.status = status;
    this.reload();
  }

  searchSoon() {
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => this.searchNow(), SEARCH_DELAY_MS);
  }

  searchNow() {
    clearTimeout(this.searchTimer);
    const query = this.searchInput.value.trim();
    if (query === this.query && !this.loading) return;
    this.query = query;
    this.reload();
  }

  reload() {
    this.generation += 1;
    this.cursor = null;
    this.hasMore = true;
    this.loading = false;
    this.list.replaceChildren();
    this.empty.hidden = true;
    return this.loadMore();
  }

  async loadMore() {
    if (this.loading || !this.hasMore) return;
    this.loading = true;
    const generation = this.generation;
    const query = { limit: PAGE, status: this.status, cursor: this.cursor };
    const page = await attempt(() =>
      this.searching ? get("search", { ...query, q: this.query }) : get("threads", query),
    );
    if (generation !== this.generation) return;
    this.loading = false;
    if (!page) {
      this.hasMore = false;
      this.showLoadMore();
      return;
    }
    for (const item of page.data) {
      if (this.searching) this.list.append(this.resultItem(item));
      else if (!this.find(item.id)) this.list.append(this.threadItem(item));
    }
    this.cursor = page.next_cursor;
    this.hasMore = page.has_more && page.next_cursor !== null;
    this.empty.textContent = this.searching ? "No threads match." : "No threads yet.";
    this.empty.hidden = this.list.children.length > 0;
    this.showLoadMore();
    // Observing again reports the sentinel's current state: still in view after a short page → next page.
    this.observer.unobserve(this.sentinel);
    this.observer.observe(this.sentinel);
  }

  showLoadMore() {
    this.loadMoreButton.hidden = !this.hasMore;
  }

  link(thread) {
    const link = h("a", { href: `#/threads/${encodeURIComponent(thread.id)}` }, threadTitle(thread));
    if (thread.id === this.openThreadId) link.setAttribute("aria-current", "page");
    return link;
  }

  threadItem(thread) {
    const item = h("li", { "data-thread-id": thread.id }, this.link(thread));
    if (thread.status === "archived") item.append(h("span", { className: "badge" }, "Archived"));
    return item;
  }

  resultItem(result) {
    const snippets = result.matches.map((match) => h("p", { className: "snippet" }, snippetNodes(match.snippet)));
    return h("li", { "data-thread-id": result.thread.id, className: "result" }, this.link(result.thread), snippets);
  }

  find(threadId) {
    return [...this.list.children].find((item) => item.dataset.threadId === threadId) ?? null;
  }

  shows(thread) {
    return this.status === "all" || thread.status === this.status;
  }

  // A thread created or changed (by this page or, through the event stream, by any other client).
  upsert(thread, created) {
    const existing = this.find(thread.id);
    if (this.searching) {
      // Results stay as the search found them; only a renamed thread's title follows.
      const link = existing?.querySelector("a");
      if (link) link.textContent = threadTitle(thread);
      return;
    }
    if (!this.shows(thread)) {
      existing?.remove();
    } else if (existing) {
      existing.replaceWith(this.threadItem(thread));
    } else if (created || this.list.children.length > 0 || !this.hasMore) {
      this.list.prepend(this.threadItem(thread));
    }
    this.empty.hidden = this.list.children.length > 0;
  }

  remove(threadId) {
    this.find(threadId)?.remove();
    this.empty.hidden = this.list.children.length > 0;
  }

  setOpenThread(threadId) {
    this.openThreadId = threadId;
    for (const link of this.list.querySelectorAll("a")) {
      const item = link.closest("li");
      if (item.dataset.threadId === threadId) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  async createThread() {
    const idempotencyKey = newIdempotencyKey();
    const thread = await attempt(() => post("threads", {}, { idempotencyKey }));
    if (!thread) return;
    this.upsert(thread, true);
    location.hash = `#/threads/${encodeURIComponent(thread.id)}`;
  }
}
