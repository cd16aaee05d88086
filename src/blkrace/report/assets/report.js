/* blkrace HTML report: draws the data of <script id="blkrace-data"> (see report/html.py). */
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("blkrace-data").textContent);
  const FRAMES = DATA.frames;
  const SOURCES = DATA.sources;
  const KINDS = ["step", "event", "block", "timer", "choose", "exit", "spawn"];
  const BAND_CLASS = { stop_machine: "sm", cpuhp: "hp", irqs_off: "irq", offline: "off" };
  const app = document.getElementById("app");
  let view = null; // the finding shown
  let state = null; // its filters and selection

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = v;
        else if (k === "style") e.setAttribute("style", v);
        else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? "" : v);
      }
    }
    for (const kid of kids) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function sv(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }
  const ms = (ns) => (ns / 1e6).toFixed(3);
  const laneName = (cpu) => (typeof cpu === "number" ? "CPU" + cpu : String(cpu));

  const hues = new Map();
  function hueOf(task) {
    if (!hues.has(task)) {
      const i = view.tasks.indexOf(task);
      hues.set(task, i < 0 ? 0 : Math.round((210 + i * 137.508) % 360));
    }
    return hues.get(task);
  }

  // The entry's source line: its site frame (the model function the terminal report names).
  function siteFrame(e) {
    if (!e.stack || !e.stack.length) return null;
    return FRAMES[e.stack[e.site >= 0 ? e.site : e.stack.length - 1]];
  }
  function where(e) {
    const f = siteFrame(e);
    return f ? f[1] + ":" + f[2] : null;
  }

  // ------------------------------------------------------------------ panel
  const panel = el("aside", { id: "panel" });

  function framesList(stack, sleeping) {
    const ol = el("ol", { class: "frames" });
    if (sleeping) ol.append(el("li", null, el("span", { class: "fn", text: "__schedule" })));
    for (let i = stack.length - 1; i >= 0; i--) {
      const [fn, file, line, off] = FRAMES[stack[i]];
      const src = SOURCES[file + ":" + line];
      ol.append(
        el(
          "li",
          null,
          el("span", { class: "fn", text: fn + "+" + off }),
          " ",
          el("span", { class: "loc", text: "(" + file + ":" + line + ")" }),
          src ? el("code", { text: src }) : null
        )
      );
    }
    return ol;
  }

  function showEntry(i) {
    const e = view.entries[i];
    panel.replaceChildren();
    const title = e.cpu === null ? "step " + e.step : "step " + e.step + " · " + laneName(e.cpu);
    panel.append(el("h2", { text: title }));
    const kv = el("dl", { class: "kv" });
    const add = (k, v) => { if (v !== null && v !== undefined && v !== "") kv.append(el("dt", { text: k }), el("dd", null, v)); };
    add("time", ms(e.t) + " ms (virtual)");
    add("task", e.task || "(the clock)");
    add("cpu", e.cpu === null ? "" : laneName(e.cpu));
    add("kind", e.kind);
    add("what", el("span", { class: "mono", text: e.text }));
    panel.append(kv);
    const w = where(e);
    if (w) {
      panel.append(el("h3", { text: "Source line" }));
      panel.append(el("div", { class: "loc mono", id: "source-line", text: siteFrame(e)[0] + " (" + w + ")" }));
      if (SOURCES[w]) panel.append(el("pre", { class: "detail" }, el("code", { text: SOURCES[w] })));
    }
    const v = view.violations.find((x) => x.entry === i);
    if (v) {
      panel.append(el("h3", { text: "Violation: " + v.kind }));
      panel.append(el("div", { class: "detail" }, el("pre", { text: [v.message].concat(v.detail).join("\n") })));
    }
    if (e.stack && e.stack.length) {
      panel.append(el("h3", { text: "Call Trace (innermost first)" }));
      panel.append(framesList(e.stack, e.kind === "block"));
    } else if (!v) {
      panel.append(el("p", { class: "empty", text: "No backtrace: the clock moved (no task ran)." }));
    }
    select(i);
  }

  function showBlocked(b) {
    panel.replaceChildren();
    panel.append(el("h2", { text: "task " + b.task }));
    const kv = el("dl", { class: "kv" });
    kv.append(el("dt", { text: "state" }), el("dd", { text: b.state === "D" ? "D (blocked)" : b.state + " (runnable, kept off its CPU)" }));
    kv.append(el("dt", { text: "cpu" }), el("dd", { text: b.cpu === null ? "-" : laneName(b.cpu) }));
    kv.append(el("dt", { text: "waits on" }), el("dd", { class: "mono", text: b.waits_on || "-" }));
    panel.append(kv);
    if (b.entry !== null) {
      panel.append(el("p", null, el("span", { class: "linkish", text: "go to where it went to sleep (step " + view.entries[b.entry].step + ")", onclick: () => { showEntry(b.entry); reveal(b.entry); } })));
    }
    panel.append(el("h3", { text: "Call Trace at the end of the run" }));
    panel.append(framesList(b.stack, b.state === "D"));
  }

  // --------------------------------------------------------------- timeline
  // A long run (a lockup spins for thousands of steps) is drawn a window of
  // entries at a time; the window moves to whatever is revealed.
  const WINDOW = 1500;
  let rows = []; // tr per rendered entry (sparse)
  let selected = null;
  let grid = null, marks = null, tbody = null, table = null;

  function select(i) {
    if (selected !== null && rows[selected]) rows[selected].classList.remove("sel");
    selected = i;
    if (rows[i]) rows[i].classList.add("sel");
  }

  function reveal(i) {
    if (!rows[i]) renderWindow(Math.max(0, i - WINDOW / 2));
    const r = rows[i];
    if (r.classList.contains("hidden")) {
      // Bring a filtered-out entry back: its task, CPU and kind.
      const e = view.entries[i];
      if (e.task) state.tasks.add(e.task);
      if (e.cpu !== null) state.cpus.add(e.cpu);
      state.kinds.add(e.kind);
      syncFilters();
      applyFilters();
    }
    // Scroll the timeline's own box, then bring the box into the window if it is not.
    const wrap = document.getElementById("timeline");
    wrap.scrollTop = Math.max(0, r.offsetTop - wrap.clientHeight / 2);
    const box = wrap.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) wrap.scrollIntoView({ block: "nearest" });
  }

  function bandGrid() {
    // grid[i][lane index] = {sm, hp, irq, off, tags[]}, or nothing where no band is
    const n = view.entries.length;
    const g = new Array(n);
    for (const b of view.bands) {
      const cls = BAND_CLASS[b.band];
      const lanes = b.cpu === null ? view.lanes.map((_, j) => j) : [view.lanes.indexOf(b.cpu)];
      for (const j of lanes) {
        if (j < 0) continue;
        for (let i = b.first; i <= b.last && i < n; i++) {
          const r = g[i] || (g[i] = []);
          const c = r[j] || (r[j] = { tags: [] });
          c[cls] = true;
          if (i === b.first && (b.cpu !== null || j === 0)) c.tags.push([cls, b.label]);
        }
      }
    }
    return g;
  }

  function entryRow(i) {
    const e = view.entries[i];
    const mark = marks.get(i);
    const tr = el("tr", { class: "e" + (mark ? " " + mark : ""), "data-i": i });
    tr.append(el("td", { class: "n", text: e.step }), el("td", { class: "n", text: ms(e.t) }));
    if (e.cpu === null) {
      tr.append(el("td", { class: "full" + (mark ? " act" : ""), colspan: view.lanes.length, text: "── " + e.text }));
    } else {
      view.lanes.forEach((cpu, j) => {
        const c = grid[i] && grid[i][j];
        const td = el("td", { class: "lane" + (c && c.off ? " off" : ""), "data-lane": j });
        if (c) {
          for (const g of ["sm", "hp", "irq"]) if (c[g]) td.append(el("span", { class: "g " + g }));
          for (const [cls, label] of c.tags) td.append(el("span", { class: "tag " + cls, text: label }));
        }
        if (cpu === e.cpu) {
          td.classList.add("act", "k-" + e.kind);
          td.style.setProperty("--h", hueOf(e.task));
          td.append(el("span", { class: "t", text: "[" + e.task + "] " }), el("span", { class: "x", text: e.text }));
          const w = where(e);
          if (w) td.append(el("span", { class: "src", title: SOURCES[w] || null, text: w.replace(/^blkrace\//, "") }));
        }
        tr.append(td);
      });
    }
    tr.addEventListener("click", () => showEntry(i));
    return tr;
  }

  function moreRow(text, lo) {
    const td = el("td", { class: "more", colspan: view.lanes.length + 2 }, el("button", { type: "button", text, onclick: () => { renderWindow(lo); } }));
    return el("tr", { class: "more" }, td);
  }

  function renderWindow(lo) {
    const n = view.entries.length;
    lo = Math.max(0, Math.min(lo, n - WINDOW));
    const hi = Math.min(n, lo + WINDOW);
    rows = [];
    const kids = [];
    if (lo > 0) kids.push(moreRow("▲ entries " + Math.max(0, lo - WINDOW) + "–" + (lo - 1) + " (of " + n + ")", lo - WINDOW));
    for (let i = lo; i < hi; i++) kids.push((rows[i] = entryRow(i)));
    if (hi < n) kids.push(moreRow("▼ entries " + hi + "–" + (Math.min(n, hi + WINDOW) - 1) + " (of " + n + ")", hi));
    tbody.replaceChildren(...kids);
    if (selected !== null && rows[selected]) rows[selected].classList.add("sel");
    applyRowFilters();
  }

  function buildTimeline() {
    table = el("table", { class: "tl", style: "min-width: " + (130 + 220 * view.lanes.length) + "px" });
    const head = el("tr", null, el("th", { class: "n-h", text: "step" }), el("th", { class: "n-h", text: "ms" }));
    view.lanes.forEach((cpu, j) => head.append(el("th", { class: "lane-h", "data-lane": j, text: laneName(cpu) })));
    table.append(el("thead", null, head));
    tbody = el("tbody");
    table.append(tbody);
    // One rule per lane hides its column: a class on the table, not a walk over the cells.
    const rules = view.lanes.map((_, j) => "table.tl.hide-l" + j + ' [data-lane="' + j + '"] { display: none; }').join("\n");
    grid = bandGrid();
    marks = new Map();
    for (const v of view.violations) if (v.entry !== null) marks.set(v.entry, "violation");
    // Where each task left waiting at the end (the cycle's among them) went to sleep.
    for (const b of view.blocked) if (b.entry !== null) marks.set(b.entry, marks.get(b.entry) || "culprit");
    rows = [];
    return el("div", { class: "tl-wrap", id: "timeline" }, el("style", { text: rules }), table);
  }

  // --------------------------------------------------------------- overview
  let ovBox = null;

  function drawOverview() {
    const n = view.entries.length;
    const lanes = view.lanes.filter((cpu) => state.cpus.has(cpu));
    const W = Math.max(600, ovBox.clientWidth - 16);
    const L = 48, H = 16, top = 4;
    const height = top + lanes.length * (H + 4) + 18;
    const svg = sv("svg", { class: "overview", viewBox: "0 0 " + W + " " + height, height: height, role: "img" });
    const maxT = view.entries.reduce((m, e) => Math.max(m, e.t), 1);
    const x = state.axis === "time" ? (i) => L + (view.entries[i].t / maxT) * (W - L - 4) : (i) => L + (n > 1 ? (i / (n - 1)) * (W - L - 4) : 0);
    const laneY = (cpu) => top + lanes.indexOf(cpu) * (H + 4);
    lanes.forEach((cpu) => {
      const t = sv("text", { x: 2, y: laneY(cpu) + 12 });
      t.textContent = laneName(cpu);
      svg.append(t, sv("rect", { x: L, y: laneY(cpu), width: W - L - 4, height: H, fill: "#f4f5f6" }));
    });
    const colors = { sm: "#5c6bc0", hp: "#00897b", irq: "#e53935", off: "#9e9e9e" };
    for (const b of view.bands) {
      const cls = BAND_CLASS[b.band];
      const targets = b.cpu === null ? lanes : lanes.filter((c) => c === b.cpu);
      for (const cpu of targets) {
        const x0 = x(b.first), x1 = Math.max(x(b.last), x0 + 2);
        const y = laneY(cpu), r = { x: x0, width: x1 - x0, fill: colors[cls] };
        if (cls === "off") Object.assign(r, { y: y, height: H, "fill-opacity": 0.35 });
        else if (cls === "sm") Object.assign(r, { y: y, height: 3, "fill-opacity": 0.9 });
        else if (cls === "hp") Object.assign(r, { y: y + H - 3, height: 3, "fill-opacity": 0.9 });
        else Object.assign(r, { y: y + 3, height: 2, "fill-opacity": 0.8 });
        const rect = sv("rect", r);
        const tt = sv("title");
        tt.textContent = b.band + ": " + b.label + (b.cpu === null ? "" : " (" + laneName(b.cpu) + ")");
        rect.append(tt);
        svg.append(rect);
      }
    }
    // One tick per pixel column and lane (the last task there): a long run stays cheap to draw.
    const ticks = new Map();
    view.entries.forEach((e, i) => {
      if (e.cpu === null || !state.cpus.has(e.cpu) || !visible(e)) return;
      ticks.set(e.cpu + "|" + Math.round(x(i) * 2), [x(i), e]);
    });
    for (const [xx, e] of ticks.values()) {
      svg.append(sv("rect", { x: xx, y: laneY(e.cpu) + 5, width: 1.5, height: H - 9, fill: "hsl(" + hueOf(e.task) + ",60%,45%)" }));
    }
    for (const v of view.violations) {
      if (v.entry === null) continue;
      svg.append(sv("line", { x1: x(v.entry), x2: x(v.entry), y1: 0, y2: height - 16, stroke: "#c62828", "stroke-width": 2 }));
    }
    const nticks = 6;
    for (let k = 0; k <= nticks; k++) {
      const xx = L + (k / nticks) * (W - L - 4);
      let label;
      if (state.axis === "time") label = ms((k / nticks) * maxT) + " ms";
      else label = "step " + (n ? view.entries[Math.min(n - 1, Math.round((k / nticks) * (n - 1)))].step : 0);
      const t = sv("text", { x: Math.min(xx, W - 90), y: height - 4 });
      t.textContent = label;
      svg.append(t);
    }
    svg.addEventListener("click", (ev) => {
      const rect = svg.getBoundingClientRect();
      const px = ((ev.clientX - rect.left) / rect.width) * W;
      let best = 0, bestD = Infinity;
      view.entries.forEach((e, i) => {
        if (e.cpu !== null && !state.cpus.has(e.cpu)) return;
        const d = Math.abs(x(i) - px);
        if (d < bestD) { bestD = d; best = i; }
      });
      showEntry(best);
      reveal(best);
    });
    ovBox.querySelector("svg")?.remove();
    ovBox.append(svg);
  }

  // ---------------------------------------------------------------- filters
  const visible = (e) => state.kinds.has(e.kind) && (!e.task || state.tasks.has(e.task)) && (e.cpu === null || state.cpus.has(e.cpu)) && (!state.text || e.text.toLowerCase().includes(state.text) || e.task.toLowerCase().includes(state.text));
  let filterBox = null;

  function applyRowFilters() {
    const shown = Math.max(1, view.lanes.filter((c) => state.cpus.has(c)).length);
    rows.forEach((r, i) => {
      if (!r) return;
      r.classList.toggle("hidden", !visible(view.entries[i]));
      const full = r.querySelector("td.full");
      if (full) full.colSpan = shown;
    });
    for (const td of tbody.querySelectorAll("td.more")) td.colSpan = shown + 2;
  }

  function applyFilters() {
    view.lanes.forEach((cpu, j) => table.classList.toggle("hide-l" + j, !state.cpus.has(cpu)));
    applyRowFilters();
    drawOverview();
  }

  function syncFilters() {
    for (const box of filterBox.querySelectorAll("input[type=checkbox]")) {
      const kind = box.dataset.f, val = box.dataset.v;
      if (kind === "cpu") box.checked = state.cpus.has(view.lanes[Number(val)]);
      else if (kind === "task") box.checked = state.tasks.has(val);
      else if (kind === "kind") box.checked = state.kinds.has(val);
    }
  }

  function buildFilters() {
    const cpus = el("fieldset", null, el("legend", { text: "CPU" }));
    view.lanes.forEach((cpu, j) => {
      cpus.append(el("label", null, el("input", { type: "checkbox", checked: true, "data-f": "cpu", "data-v": j, onchange: (ev) => { ev.target.checked ? state.cpus.add(cpu) : state.cpus.delete(cpu); applyFilters(); } }), " " + laneName(cpu)));
    });
    const tasks = el("div", { class: "tasks" });
    for (const t of view.tasks) {
      tasks.append(el("label", { style: "--h:" + hueOf(t) }, el("input", { type: "checkbox", checked: true, "data-f": "task", "data-v": t, onchange: (ev) => { ev.target.checked ? state.tasks.add(t) : state.tasks.delete(t); applyFilters(); } }), " ", el("span", { class: "chip" }), t));
    }
    const all = (on) => () => { state.tasks = new Set(on ? view.tasks : []); syncFilters(); applyFilters(); };
    const taskSet = el("fieldset", null, el("legend", null, "Task ", el("button", { type: "button", onclick: all(true), text: "all" }), " ", el("button", { type: "button", onclick: all(false), text: "none" })), tasks);
    const kinds = el("fieldset", null, el("legend", { text: "Entries" }));
    for (const k of KINDS) {
      kinds.append(el("label", null, el("input", { type: "checkbox", checked: state.kinds.has(k), "data-f": "kind", "data-v": k, onchange: (ev) => { ev.target.checked ? state.kinds.add(k) : state.kinds.delete(k); applyFilters(); } }), " " + k));
    }
    const search = el("fieldset", null, el("legend", { text: "Text" }), el("input", { type: "search", placeholder: "function, object, task", oninput: (ev) => { state.text = ev.target.value.trim().toLowerCase(); applyFilters(); } }));
    filterBox = el("div", { class: "filters", id: "filters" }, cpus, taskSet, kinds, search);
    return filterBox;
  }

  // ---------------------------------------------------------------- finding
  function buildFinding() {
    const main = view.violations[0];
    const box = el("section", { class: "finding" + (main ? "" : " clean"), id: "finding" });
    if (main) {
      box.append(el("div", null, el("span", { class: "kind", text: main.kind }), el("span", { class: "msg", text: main.message })));
    } else {
      box.append(el("div", null, el("span", { class: "kind", text: "clean" }), el("span", { class: "msg", text: "no violation in this run" })));
    }
    box.append(el("div", { class: "meta", text: view.title + " — " + view.found }));
    if (main && main.entry !== null) {
      box.append(el("div", { class: "also" }, el("a", { text: "show it in the timeline (step " + view.entries[main.entry].step + ")", onclick: () => { showEntry(main.entry); reveal(main.entry); } })));
    }
    for (const v of view.violations.slice(1)) {
      box.append(el("div", { class: "also" }, "also in this run: ", el("a", { text: v.kind, onclick: () => { if (v.entry !== null) { showEntry(v.entry); reveal(v.entry); } } }), ": " + v.message));
    }
    for (const v of view.violations) {
      if (!v.cycle.length) continue;
      const cyc = el("div", { class: "cycle", id: "cycle" }, el("span", { class: "edge", text: "wait-for cycle:" }));
      v.cycle.forEach((c, k) => {
        cyc.append(el("span", { class: "node", "data-task": c.task, text: c.task, onclick: () => openTask(c.task) }));
        cyc.append(el("span", { class: "edge" }, "waits on ", el("b", { text: c.waits_on }), ", held by →"));
        if (k === v.cycle.length - 1) cyc.append(el("span", { class: "node", "data-task": c.held_by, text: c.held_by + " ↺", onclick: () => openTask(c.held_by) }));
      });
      box.append(cyc);
    }
    if (view.blocked.length) {
      const bl = el("div", { class: "blocked" }, el("b", { text: "Tasks left waiting at the end of the run:" }));
      for (const b of view.blocked) {
        bl.append(el("span", { class: "bt mono linkish", "data-task": b.task, text: "task:" + b.task + " state:" + b.state + " cpu:" + (b.cpu === null ? "-" : b.cpu) + "  waiting on " + b.waits_on, onclick: () => showBlocked(b) }));
      }
      box.append(bl);
    }
    if (view.token) box.append(el("div", { class: "replay mono" }, "Replay this run exactly with: blkrace replay " + view.token));
    return box;
  }

  function openTask(task) {
    const b = view.blocked.find((x) => x.task === task);
    if (b) showBlocked(b);
  }

  // ------------------------------------------------------------------- page
  function show(k) {
    view = DATA.findings[k];
    hues.clear();
    state = { cpus: new Set(view.lanes), tasks: new Set(view.tasks), kinds: new Set(KINDS.filter((x) => x !== "spawn")), text: "", axis: "step" };
    selected = null;
    const main = document.getElementById("main");
    for (const b of main.querySelectorAll("nav.tabs button")) b.classList.toggle("on", Number(b.dataset.k) === k);
    const body = document.getElementById("finding-body");
    body.replaceChildren();
    body.append(buildFinding());
    body.append(buildFilters());
    const legend = el("div", { class: "legend" },
      el("span", null, el("i", { style: "background: var(--sm)" }), "stop_machine stage"),
      el("span", null, el("i", { style: "background: var(--hp)" }), "cpuhp state"),
      el("span", null, el("i", { style: "background: var(--irq)" }), "interrupts off"),
      el("span", null, el("i", { style: "background: #bbb" }), "CPU offline"),
      el("span", null, el("i", { style: "background: var(--redbg); border: 1px solid var(--red)" }), "the finding"),
      el("span", null, el("i", { style: "background: var(--amberbg); border: 1px solid var(--amber)" }), "where a task left waiting went to sleep"));
    const axis = el("select", { onchange: (ev) => { state.axis = ev.target.value; drawOverview(); } }, el("option", { value: "step", text: "steps" }), el("option", { value: "time", text: "virtual time" }));
    ovBox = el("div", { class: "ov-wrap", id: "overview" }, el("div", { class: "ov-head" }, "Swimlanes per CPU over ", axis, " — click to jump"));
    body.append(legend, ovBox, buildTimeline());
    const main0 = view.violations[0];
    renderWindow(main0 && main0.entry !== null ? main0.entry - WINDOW / 2 : 0);
    applyFilters();
    panel.replaceChildren(el("h2", { text: "Details" }), el("p", { class: "empty", text: "Click an entry of the timeline (or step with j/k), a task of the cycle or a blocked task for its source line and backtrace." }));
    if (main0 && main0.entry !== null) {
      showEntry(main0.entry);
      const wrap = document.getElementById("timeline");
      wrap.scrollTop = Math.max(0, rows[main0.entry].offsetTop - wrap.clientHeight / 2);
    }
  }

  function summaryTable() {
    if (!DATA.summary.length) return null;
    const proving = DATA.summary.some((s) => s.proved !== null && s.proved !== undefined);
    const heads = ["scenario", "variant", "expected", "found", "schedules", "seconds"].concat(proving ? ["proved"] : [], ["held"]);
    const t = el("table", { class: "summary" }, el("tr", null, ...heads.map((h) => el("th", { text: h }))));
    for (const s of DATA.summary) {
      const cells = [
        el("td", { text: s.scenario }), el("td", { text: s.variant }),
        el("td", { text: s.expected.join(", ") || "none" }), el("td", { text: s.found.join(", ") || "none" }),
        el("td", { text: s.schedules + (s.exhausted ? " (exhausted)" : "") }), el("td", { text: s.elapsed_s.toFixed(2) })];
      if (proving) cells.push(el("td", { text: s.proved || "-" }));
      cells.push(el("td", { class: s.held ? "yes" : "no", text: s.held ? "yes" : "NO" }));
      t.append(el("tr", null, ...cells));
    }
    return t;
  }

  const header = el("header", { class: "top" }, el("h1", { text: "blkrace" }), el("span", { class: "cmd mono", text: DATA.command }), el("span", { class: "cmd", text: "v" + DATA.version }));
  const main = el("div", { id: "main" }, summaryTable());
  if (DATA.findings.length > 1) {
    main.append(el("nav", { class: "tabs" }, ...DATA.findings.map((f, k) => el("button", { type: "button", "data-k": k, text: f.title, onclick: () => show(k) }))));
  }
  main.append(el("div", { id: "finding-body" }));
  app.replaceChildren(header, el("div", { id: "layout" }, main, panel));
  if (DATA.findings.length) show(0);
  else main.append(el("p", { class: "empty", text: "No violation found: nothing to draw." }));
  window.addEventListener("resize", () => { if (view) drawOverview(); });
  // j/k or the arrow keys step through the visible entries of the timeline.
  document.addEventListener("keydown", (ev) => {
    if (!view || ev.target.closest("input, select, textarea")) return;
    const dir = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 }[ev.key];
    if (!dir) return;
    const n = view.entries.length;
    let i = selected === null ? (dir > 0 ? -1 : n) : selected;
    do i += dir; while (i >= 0 && i < n && !visible(view.entries[i]));
    if (i < 0 || i >= n) return;
    ev.preventDefault();
    showEntry(i);
    reveal(i);
  });
})();
