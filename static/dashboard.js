/**
 * The cohort dashboard: one row per rostered student with online state, current
 * screen, how far behind, idle, hand raised, screens done and score, updating
 * without a reload, sortable, with the people who need help listed on top.
 *
 * Data: the `cohort` command's table. It is fetched again (throttled) whenever
 * something that changes it arrives: a `progress` push (trainers only), a
 * presence change, a hand or a navigation event; and every 15 s, because "idle"
 * changes with the clock alone and planners receive no progress pushes.
 * Trainers see names; planners and content managers see pids only, so their
 * rows are numbered instead.
 */

import { $, describeError, flash, h, joinSession, start } from "./common.js";
import { Course } from "./screens.js";
import { formatTime, lang, onLangChange, t, tn } from "./i18n.js";

/** At most one `cohort` request per second, however busy the session is. */
const REFRESH_MIN_MS = 1000;
const REFRESH_EVERY_MS = 15000;
/** This many screens behind the trainer counts as needing help. */
const BEHIND_HELP = 2;
const REFRESHING_EVENTS = new Set(["hand.raise", "hand.lower", "screen.navigate", "session.ended"]);

/**
 * Columns: the header text key, how to sort, and how to show a row's cell.
 * `sort` gives a comparable value (numbers or strings; null sorts last).
 */
const COLUMNS = [
  { id: "student", key: "dashboard.col.student", sort: (r) => r.label.toLocaleLowerCase() },
  { id: "help", key: "dashboard.col.help", sort: (r) => (r.reasons.length ? 0 : 1) },
  { id: "online", key: "dashboard.col.online", sort: (r) => (r.online ? 0 : 1) },
  { id: "screen", key: "dashboard.col.screen", sort: (r) => screenOrder(r.screen) },
  { id: "behind", key: "dashboard.col.behind", sort: (r) => (r.behind === null ? null : -r.behind) },
  { id: "activity", key: "dashboard.col.activity", sort: (r) => activityRank(r) },
  { id: "hand", key: "dashboard.col.hand", sort: (r) => (r.hand_raised ? 0 : 1) },
  { id: "completed", key: "dashboard.col.completed", sort: (r) => -r.completed_count },
  { id: "score", key: "dashboard.col.score", sort: (r) => (r.score === null ? null : -r.score) },
];

/** The session's course: the roster's screens (from the cohort reply) or the demo's. */
const course = new Course();

function screenOrder(screen) {
  if (!screen) return null;
  const index = course.index(screen);
  return index < 0 ? course.ids().length : index;
}

function activityRank(row) {
  if (!row.online) return 2;
  return row.idle ? 0 : 1;
}

const started = await start({ page: "dashboard", roles: ["trainer", "planner", "content_manager"] });
if (started) run(started);

function run({ client, me, session }) {
  const seesNames = me.role === "trainer";
  let table = null;
  let updatedAt = null;
  /** @type {{column: string, direction: "ascending" | "descending"} | null} */
  let sort = null;

  // -- fetching ---------------------------------------------------------------------------

  let inFlight = false;
  let again = false;
  let lastFetch = 0;
  let timer = null;

  /** Fetch the table now, or as soon as the throttle allows; never two at once. */
  function refresh() {
    if (client.state === "closed") return;
    if (inFlight) {
      again = true;
      return;
    }
    const wait = lastFetch + REFRESH_MIN_MS - Date.now();
    if (wait > 0) {
      if (!timer) timer = setTimeout(() => {
        timer = null;
        refresh();
      }, wait);
      return;
    }
    inFlight = true;
    lastFetch = Date.now();
    client.cohort(session).then((reply) => {
      table = reply;
      course.setRoster(reply.screens);
      updatedAt = Date.now() / 1000;
      render();
    }, (err) => {
      // While reconnecting the status line already says so; other failures are news.
      if (!["connection_lost", "timeout", "closed"].includes(err.code)) flash(describeError(err));
    }).finally(() => {
      inFlight = false;
      if (again) {
        again = false;
        refresh();
      }
    });
  }

  client.on("joined", (info) => {
    if (info.session === session) refresh();
  });
  client.on("progress", (frame) => {
    if (frame.session === session) refresh();
  });
  for (const type of ["presence.join", "presence.leave"]) {
    client.on(type, (frame) => {
      if (frame.session === session) refresh();
    });
  }
  client.on("event", (frame) => {
    if (frame.session === session && REFRESHING_EVENTS.has(frame.event?.kind)) refresh();
  });
  setInterval(refresh, REFRESH_EVERY_MS);

  // -- rows -------------------------------------------------------------------------------------

  function rows() {
    if (!table) return [];
    return table.students.map((student, index) => {
      const participant = student.participant || {};
      const label = seesNames
        ? participant.name || participant.display_name || t("dashboard.pseudonym", { n: index + 1 })
        : t("dashboard.pseudonym", { n: index + 1 });
      const reasons = [];
      if (student.hand_raised) reasons.push(t("dashboard.reason.hand"));
      if (student.behind !== null && student.behind >= BEHIND_HELP) {
        reasons.push(t("dashboard.reason.behind", { n: student.behind }));
      }
      if (student.online && student.idle) reasons.push(t("dashboard.reason.idle"));
      return { ...student, index, label, reasons, pid: participant.pid };
    });
  }

  function sorted(list) {
    if (!sort) return list;
    const column = COLUMNS.find((c) => c.id === sort.column);
    const sign = sort.direction === "ascending" ? 1 : -1;
    return [...list].sort((a, b) => {
      const x = column.sort(a);
      const y = column.sort(b);
      if (x === y) return a.index - b.index;
      if (x === null) return 1; // unknowns last, whichever the direction
      if (y === null) return -1;
      return (x < y ? -1 : 1) * sign;
    });
  }

  // -- rendering ----------------------------------------------------------------------------------

  function renderHead() {
    $("cohort-head").replaceChildren(...COLUMNS.map((column) => {
      const active = sort && sort.column === column.id;
      const label = t(column.key);
      return h("th", { scope: "col", "aria-sort": active ? sort.direction : "none" },
        h("button", {
          type: "button", class: "sort-button", dataset: { column: column.id },
          onclick: () => {
            sort = active && sort.direction === "ascending"
              ? { column: column.id, direction: "descending" }
              : { column: column.id, direction: "ascending" };
            render();
            document.querySelector(`.sort-button[data-column="${column.id}"]`)?.focus();
          },
        }, label, h("span", { class: "sort-mark", "aria-hidden": "true",
          text: active ? (sort.direction === "ascending" ? " ▲" : " ▼") : "" })));
    }));
  }

  function cell(column, row) {
    const td = (content, extra = {}) => h("td", { "data-label": t(column.key), ...extra }, content);
    switch (column.id) {
      case "student":
        return h("th", { scope: "row", "data-label": t(column.key) }, row.label);
      case "help":
        return td(row.reasons.length
          ? h("span", { class: "badge badge-help", text: `⚠ ${t("dashboard.needs_help")}` })
          : t("dashboard.no"));
      case "online":
        return td(h("span", { class: row.online ? "dot dot-on" : "dot dot-off" },
          t(row.online ? "dashboard.online" : "dashboard.offline")));
      case "screen":
        return td(row.screen ? course.title(row.screen, lang()) : t("dashboard.no"));
      case "behind":
        if (row.behind === null) return td(t("dashboard.no"));
        return td(row.behind === 0 ? t("dashboard.level") : t("dashboard.behind_n", { n: row.behind }),
          { class: row.behind >= BEHIND_HELP ? "warn" : null });
      case "activity": {
        const idle = row.online && row.idle;
        let state = "dashboard.active";
        if (idle) state = "dashboard.idle";
        else if (!row.online) state = "dashboard.offline";
        if (row.last_activity === null && !idle) state = "dashboard.never";
        const when = row.last_activity === null ? "" : ` · ${formatTime(row.last_activity)}`;
        return td(`${t(state)}${when}`, { class: idle ? "warn" : null });
      }
      case "hand":
        return td(row.hand_raised ? t("dashboard.hand_up") : t("dashboard.no"),
          { class: row.hand_raised ? "warn" : null });
      case "completed":
        return td(`${row.completed_count}/${course.ids().length}`);
      case "score":
        return td(row.score === null ? t("dashboard.no") : String(Math.round(row.score)));
      default:
        return td("");
    }
  }

  function render() {
    renderHead();
    const all = rows();
    const helpOnly = $("help-only").checked;
    const shown = sorted(helpOnly ? all.filter((r) => r.reasons.length) : all);
    $("cohort-body").replaceChildren(...shown.map((row) =>
      h("tr", { class: row.reasons.length ? "needs-help" : null, dataset: { pid: row.pid || "" } },
        ...COLUMNS.map((column) => cell(column, row)))));
    $("cohort-empty").hidden = all.length > 0;

    const needing = all.filter((r) => r.reasons.length);
    $("help-list").replaceChildren(...needing.map((row) =>
      h("li", {}, h("strong", { text: row.label }), `: ${row.reasons.join(", ")}`)));
    $("help-none").hidden = needing.length > 0;

    const online = all.filter((r) => r.online).length;
    $("summary").textContent = table ? tn("dashboard.students", all.length, { online }) : "";
    $("trainer-screen").textContent = table && table.trainer_screen
      ? t("dashboard.trainer_screen", { title: course.title(table.trainer_screen, lang()) }) : "";
    $("updated").textContent = updatedAt ? t("dashboard.updated", { time: formatTime(updatedAt) }) : "";
  }

  $("help-only").addEventListener("change", render);
  onLangChange(render);
  render();
  joinSession(client, session);
}
