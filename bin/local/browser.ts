/**
 * The stream browser the local server serves at `/` (local only: it calls the API of the same
 * server, which has no authorization on localhost; the deployed API takes SigV4, which a page
 * cannot sign without AWS credentials, so it is not deployed). One HTML page with plain web
 * components and no build step: a module here so that it ships in the package's `dist/` as is.
 */
export const BROWSER_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cairn stream browser</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
  header { background: #2f3e46; color: #fff; padding: 8px 16px; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header small { opacity: 0.8; }
  main { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; padding: 12px; }
  section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; min-width: 0; }
  section h2 { font-size: 15px; margin: 4px 0 8px; }
  pre { background: #f3f3f3; padding: 6px; margin: 4px 0; overflow: auto; max-height: 240px; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: 2px 6px; border-bottom: 1px solid #eee; vertical-align: top; }
  .event { border-bottom: 1px solid #eee; padding: 4px 0; }
  .event:target, .event.related { background: #fff6d5; }
  .muted { color: #777; }
  .error { color: #b00020; }
  button { cursor: pointer; }
</style>
</head>
<body>
<header><h1>Cairn</h1><small>stream browser: local only (npm start), no authorization</small></header>
<main>
  <section><h2>Streams</h2><cairn-streams></cairn-streams></section>
  <section><h2>Stream</h2><cairn-stream></cairn-stream></section>
  <section><h2>$all, live</h2><cairn-all></cairn-all></section>
  <section><h2>Projections</h2><cairn-projections></cairn-projections></section>
</main>
<script type="module">
const api = async (path, init) => {
  const response = await fetch(path, init);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.code + ": " + body.error.message : response.statusText);
  return body;
};
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
};
const json = (value) => el("pre", { textContent: JSON.stringify(value, null, 2) });
const fail = (host, error) => host.replaceChildren(el("p", { className: "error", textContent: String(error.message || error) }));

/** An event with its envelope, data, metadata and links to the events it names. */
function eventView(event) {
  const meta = event.metadata || {};
  const links = el("div");
  for (const key of ["correlationId", "causationId"]) {
    if (typeof meta[key] !== "string") continue;
    const link = el("a", { href: key === "causationId" ? "#event-" + meta[key] : "#", textContent: key + " " + meta[key] });
    link.addEventListener("click", (click) => {
      if (key === "correlationId") click.preventDefault();
      document.querySelector("cairn-all").highlight(key, meta[key]);
    });
    links.append(link, " ");
  }
  const where = (event.globalPosition ? "#" + event.globalPosition + " " : "") + event.streamId + "@" + event.version;
  const node = el("div", { className: "event", id: "event-" + event.eventId },
    el("div", {}, el("strong", { textContent: event.type }), " ", el("span", { textContent: where }),
      " ", el("span", { className: "muted", textContent: event.createdAt + " id " + event.eventId })),
    json(event.data),
    Object.keys(meta).length ? el("details", {}, el("summary", { textContent: "metadata" }), json(meta)) : "",
    links);
  if (typeof meta.correlationId === "string") node.dataset.correlationId = meta.correlationId;
  return node;
}

customElements.define("cairn-streams", class extends HTMLElement {
  connectedCallback() {
    const input = el("input", { name: "category", placeholder: "category, e.g. Order" });
    const list = el("div");
    const form = el("form", {}, input, " ", el("button", { textContent: "List" }));
    form.addEventListener("submit", (event) => { event.preventDefault(); this.load(input.value.trim(), list); });
    this.append(form, list);
  }
  async load(category, list, after) {
    try {
      const page = await api("/streams?category=" + encodeURIComponent(category) + "&limit=50" + (after ? "&after=" + encodeURIComponent(after) : ""));
      const rows = page.streams.map((stream) => {
        const open = el("a", { href: "#", textContent: stream.streamId });
        open.addEventListener("click", (event) => { event.preventDefault(); document.querySelector("cairn-stream").open(stream.streamId); });
        return el("tr", {}, el("td", {}, open), el("td", { textContent: "v" + stream.version }), el("td", { className: "muted", textContent: stream.updatedAt }));
      });
      const table = el("table", {}, el("tr", {}, el("th", { textContent: "stream" }), el("th", { textContent: "version" }), el("th", { textContent: "updated" })), ...rows);
      list.replaceChildren(rows.length ? table : el("p", { className: "muted", textContent: "no streams in " + category }));
      if (page.nextAfter) {
        const more = el("button", { textContent: "next page" });
        more.addEventListener("click", () => this.load(category, list, page.nextAfter));
        list.append(more);
      }
    } catch (error) { fail(list, error); }
  }
});

customElements.define("cairn-stream", class extends HTMLElement {
  connectedCallback() { this.replaceChildren(el("p", { className: "muted", textContent: "open a stream from the list" })); }
  async open(streamId, fromVersion = 1) {
    try {
      const page = await api("/streams/" + encodeURIComponent(streamId) + "/events?limit=20&fromVersion=" + fromVersion);
      const nav = el("div");
      if (fromVersion > 1) {
        const back = el("button", { textContent: "previous" });
        back.addEventListener("click", () => this.open(streamId, Math.max(1, fromVersion - 20)));
        nav.append(back, " ");
      }
      if (page.nextVersion) {
        const next = el("button", { textContent: "next" });
        next.addEventListener("click", () => this.open(streamId, page.nextVersion));
        nav.append(next);
      }
      this.replaceChildren(el("h3", { textContent: streamId }), ...page.events.map(eventView), nav);
    } catch (error) { fail(this, error); }
  }
});

customElements.define("cairn-all", class extends HTMLElement {
  connectedCallback() {
    this.after = 0;
    this.list = el("div");
    this.append(el("p", { className: "muted", textContent: "the last 50 events of $all, as the sequencer positions them" }), this.list);
    this.poll();
  }
  disconnectedCallback() { clearTimeout(this.timer); }
  async poll() {
    try {
      const page = await api("/all?limit=100&after=" + this.after);
      for (const event of page.events) this.list.prepend(eventView(event));
      while (this.list.children.length > 50) this.list.lastChild.remove();
      const last = page.events[page.events.length - 1];
      this.after = page.nextAfter || (last ? last.globalPosition : this.after);
    } catch (error) { this.list.prepend(el("p", { className: "error", textContent: String(error.message) })); }
    this.timer = setTimeout(() => this.poll(), 1000);
  }
  /** Marks the related events in view: the same correlationId, or the event a causationId names. */
  highlight(key, value) {
    for (const node of this.list.children) {
      const related = key === "correlationId" ? node.dataset.correlationId === value : node.id === "event-" + value;
      node.classList.toggle("related", related);
    }
  }
});

customElements.define("cairn-projections", class extends HTMLElement {
  connectedCallback() { this.load(); }
  disconnectedCallback() { clearTimeout(this.timer); }
  async load() {
    try {
      const { projections } = await api("/projections");
      const rows = [];
      for (const status of projections) {
        const reset = el("button", { textContent: "reset" });
        reset.addEventListener("click", async () => {
          if (!confirm("Reset " + status.name + "? It rebuilds from position 0 with an empty read model.")) return;
          await api("/projections/" + encodeURIComponent(status.name) + "/reset", { method: "POST" });
          this.load();
        });
        const actions = el("td", {}, reset);
        if (status.parkedCount > 0) {
          const replay = el("button", { textContent: "replay parked" });
          replay.addEventListener("click", async () => {
            if (!confirm("Replay the " + status.parkedCount + " parked events of " + status.name + "? Its handlers run again on them; those that pass are unparked.")) return;
            try {
              const result = await api("/projections/" + encodeURIComponent(status.name) + "/replay", { method: "POST" });
              this.notice = "replayed " + status.name + ": " + result.replayed + " unparked, " + result.stillParked + " failed again";
            } catch (error) { this.notice = String(error.message || error); }
            this.load();
          });
          actions.append(" ", replay);
        }
        const detail = status.parkedCount > 0 ? (await api("/projections/" + encodeURIComponent(status.name))).parked : [];
        rows.push(el("tr", { className: "projection" },
          el("td", { textContent: status.name }),
          el("td", { textContent: status.position + "/" + status.headPosition }),
          el("td", { textContent: "lag " + status.lag }),
          el("td", { textContent: "parked " + status.parkedCount }),
          el("td", { textContent: "generation " + status.generation }),
          actions));
        for (const parked of detail) rows.push(el("tr", {}, el("td", { colSpan: 6, className: "error", textContent: "parked #" + parked.position + " " + parked.streamId + "@" + parked.version + " " + parked.type + ": " + parked.error })));
      }
      this.replaceChildren(
        ...(this.notice ? [el("p", { className: "notice", textContent: this.notice })] : []),
        rows.length ? el("table", {}, ...rows) : el("p", { className: "muted", textContent: "no projections" }));
    } catch (error) { fail(this, error); }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), 2000);
  }
});
</script>
</body>
</html>
`;
