/**
 * The trainer console: navigate the course's screens (seeing who is where),
 * lock them, point and mark, decide whether students may mark and point, run
 * polls (who answered, who has not, results hidden until revealed), a lesson
 * timer, take raised hands in order, chat (remove a message, read private
 * questions), and end the lesson.
 *
 * Trainers see students' full names (the contract's privacy rule for trainers).
 */

import { randomId } from "./classroom.js";
import { $, announce, describeError, flash, followPresence, joinSession, personName, start, h, showNotice } from "./common.js";
import { MarkTools } from "./drawing.js";
import { lang, onLangChange, t, tn } from "./i18n.js";
import { SessionModel } from "./model.js";
import { Course } from "./screens.js";
import { bindTimer, lessonPanels, renderPeople, renderTally } from "./widgets.js";

const started = await start({ page: "trainer", roles: ["trainer"] });
if (started) run(started);

function run({ client, me, session, token }) {
  const model = new SessionModel();
  const course = new Course();
  let shown = { screen: undefined, lang: undefined };
  /** pid -> the screen each student last reported (progress), for the counts per screen. */
  const whereabouts = new Map();

  const { stage, chat, reactions, video } = lessonPanels(client, session, me, "trainer", publish, {
    removeChat: (offset) => publish({ kind: "chat.remove", message: offset }).catch(ignore),
  });
  const marks = new MarkTools({
    container: $("mark-tools"), stage, publish,
    sendPointer: (event) => client.publish(session, event).catch(ignore),
    screen: () => model.screen,
    myMarks: () => (model.screen ? model.myAnnotationsOn(model.screen) : []),
    myPid: () => (model.me ? model.me.pid : ""),
    sharesPointer: () => true,
  });
  const tickTimer = bindTimer($("timer"), () => model.timer);

  // The dashboard opens in a new tab with the same token, again in the fragment only.
  const dashboard = $("dashboard-link");
  const linkDashboard = () => {
    const query = new URLSearchParams(globalThis.location.search);
    query.set("session", session);
    if (lang() === "en") query.set("lang", "en");
    else query.delete("lang");
    dashboard.href = `/dashboard?${query}#${new URLSearchParams({ token })}`;
  };
  linkDashboard();
  dashboard.hidden = false;

  async function publish(event) {
    try {
      return await client.publish(session, event);
    } catch (err) {
      flash(describeError(err));
      throw err;
    }
  }

  function ignore() {}

  // -- navigation, lock, end ------------------------------------------------------------

  function navigate(screen) {
    if (!screen || screen === model.screen) return;
    publish({ kind: "screen.navigate", screen }).catch(ignore);
  }

  $("prev").addEventListener("click", () => {
    const index = course.index(model.screen);
    if (index > 0) navigate(course.ids()[index - 1]);
  });
  $("next").addEventListener("click", () => {
    const index = course.index(model.screen);
    navigate(course.ids()[index < 0 ? 0 : index + 1]);
  });
  $("lock").addEventListener("click", () => {
    publish({ kind: "screen.lock", locked: !model.locked }).catch(ignore);
  });

  const dialog = /** @type {HTMLDialogElement} */ ($("end-dialog"));
  $("end-lesson").addEventListener("click", () => {
    dialog.showModal();
    $("end-cancel").focus();
  });
  $("end-cancel").addEventListener("click", () => dialog.close());
  $("end-confirm").addEventListener("click", async () => {
    dialog.close();
    await publish({ kind: "session.end" }).catch(ignore);
  });

  // -- marks and what students may do -------------------------------------------------------

  $("clear-annotations").addEventListener("click", () => {
    if (!model.screen) return;
    publish({ kind: "annotation.clear", screen: model.screen }).catch(ignore);
  });
  $("clear-person").addEventListener("click", () => {
    const pid = /** @type {HTMLSelectElement} */ ($("clear-person-select")).value;
    if (!pid || !model.screen) return;
    publish({ kind: "annotation.clear", screen: model.screen, participant: pid }).catch(ignore);
  });
  for (const [id, option] of [["opt-student-marks", "student_marks"], ["opt-student-pointers", "student_pointers"]]) {
    const box = /** @type {HTMLInputElement} */ ($(id));
    box.addEventListener("change", () => {
      publish({ kind: "session.options", [option]: box.checked }).catch(() => {
        box.checked = Boolean(model.options[option]);
      });
    });
  }

  // -- polls -------------------------------------------------------------------------------------

  const questionInput = $("poll-question-input");
  const optionsInput = $("poll-options-input");
  questionInput.value = t("poll.default_question");
  optionsInput.value = t("poll.default_options");
  let pollFormOpen = false;

  $("poll-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = questionInput.value.trim();
    const options = optionsInput.value.split("\n").map((line) => line.trim()).filter(Boolean);
    if (!question || options.length < 2 || options.length > 10) {
      flash(t("poll.invalid"));
      return;
    }
    const hide = /** @type {HTMLInputElement} */ ($("poll-hide")).checked;
    try {
      await publish({
        kind: "poll.open", poll: `poll-${randomId().slice(0, 10)}`, question, options,
        ...(hide ? { hide_results: true } : {}),
      });
    } catch {
      return;
    }
    pollFormOpen = false;
    $("poll-close").focus();
  });
  $("poll-close").addEventListener("click", async () => {
    if (!model.poll) return;
    try {
      await publish({ kind: "poll.close", poll: model.poll.poll });
    } catch {
      return;
    }
    $("poll-new").focus();
  });
  $("poll-reveal").addEventListener("click", () => {
    const poll = model.poll || model.closedPoll;
    if (poll) publish({ kind: "poll.reveal", poll: poll.poll }).catch(ignore);
  });
  $("poll-new").addEventListener("click", () => {
    pollFormOpen = true;
    renderPoll();
    questionInput.focus();
  });

  // -- timer ----------------------------------------------------------------------------------------

  $("timer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const minutes = Number(/** @type {HTMLInputElement} */ ($("timer-minutes")).value);
    if (!Number.isFinite(minutes) || minutes < 1 || minutes > 240) {
      flash(t("timer.invalid"));
      return;
    }
    publish({ kind: "timer.start", seconds: Math.round(minutes * 60) }).catch(ignore);
  });
  $("timer-stop").addEventListener("click", () => publish({ kind: "timer.stop" }).catch(ignore));

  // -- state changes ------------------------------------------------------------------------------

  client.on("joined", async (info) => {
    if (info.session !== session) return;
    model.applyJoined(info.reply);
    if (course.setRoster(model.screens)) shown = { screen: undefined, lang: undefined };
    renderAll();
    loadWhereabouts();
    if (!info.recovered) {
      try {
        model.loadHistory(await client.history(session, { limit: 300 }));
        renderAll();
      } catch (err) {
        flash(describeError(err));
      }
    }
  });

  /** Where each student is, from the cohort table (later from progress pushes). */
  async function loadWhereabouts() {
    try {
      const reply = await client.cohort(session);
      if (reply.screens !== undefined && course.setRoster(reply.screens)) {
        shown = { screen: undefined, lang: undefined };
      }
      for (const row of reply.students || []) {
        if (row.participant && row.screen) whereabouts.set(row.participant.pid, row.screen);
      }
      renderAll();
    } catch {
      // the counts per screen fill in from progress pushes
    }
  }

  client.on("progress", (frame) => {
    if (frame.session !== session || !frame.participant || !frame.progress) return;
    whereabouts.set(frame.participant.pid, frame.progress.screen);
    renderScreenList();
  });

  client.on("event", (frame) => {
    if (frame.session !== session) return;
    const event = model.applyEvent(frame);
    switch (event.kind) {
      case "pointer":
        if (event.by && model.me && event.by.pid !== model.me.pid && event.screen === model.screen) {
          stage.showPointer(event.by.pid, event.x, event.y, personName(event.by, "trainer"), false);
        }
        return;
      case "reaction":
        reactions.show(personName(event.by, "trainer"), event.emoji);
        return;
      case "hand.raise":
        announce(t("announce.hand_raised", { name: personName(event.by, "trainer") }));
        break;
      case "chat":
        if (event.to && event.by && model.me && event.by.pid !== model.me.pid) {
          announce(t("announce.private_question", { name: personName(event.by, "trainer") }));
        }
        break;
      case "timer.start":
      case "timer.stop":
        tickTimer();
        break;
      case "session.ended":
        showNotice(t("error.ended"));
        for (const control of document.querySelectorAll("main button, main input, main select, main textarea")) {
          control.disabled = true;
        }
        break;
      default:
        break;
    }
    renderAll();
  });
  followPresence(client, session, model, () => {
    renderPeopleList();
    renderScreenList();
    renderPoll();
  });

  // -- rendering ---------------------------------------------------------------------------------

  function renderAll() {
    renderScreen();
    renderScreenList();
    renderQueue();
    renderPoll();
    chat.render(model.chat, model.me);
    renderPeopleList();
    $("timer-stop").hidden = !model.timer;
  }

  function renderScreen() {
    if (shown.screen !== model.screen || shown.lang !== lang()) {
      const screen = course.find(model.screen, lang());
      stage.show(screen, t("screen.trainer_waiting"));
      $("screen-title").textContent = screen ? screen.title : t("screen.waiting_title");
      const index = course.index(model.screen);
      $("screen-position").textContent = index >= 0
        ? t("screen.position", { n: index + 1, total: course.ids().length }) : "";
      shown = { screen: model.screen, lang: lang() };
    }
    const annotations = model.screen ? model.annotationsOn(model.screen) : [];
    stage.setAnnotations(annotations, (p) => personName(p, "trainer"));
    $("annotation-summary").textContent = annotations.length
      ? tn("screen.annotations", annotations.length) : "";
    const index = course.index(model.screen);
    $("prev").disabled = index <= 0;
    $("next").disabled = index >= course.ids().length - 1;
    // The label says what pressing does next.
    $("lock-label").textContent = t(model.locked ? "trainer.unlock" : "trainer.lock");
    $("lock-badge").hidden = !model.locked;
    $("lock-state").textContent = t(model.locked ? "trainer.locked" : "trainer.unlocked");
    $("clear-annotations").disabled = annotations.length === 0;
    renderMarkAuthors(annotations);
    /** @type {HTMLInputElement} */ ($("opt-student-marks")).checked = Boolean(model.options.student_marks);
    /** @type {HTMLInputElement} */ ($("opt-student-pointers")).checked = Boolean(model.options.student_pointers);
    marks.refresh();
  }

  /** The people who have marks on this screen, for "clear one person's marks". */
  function renderMarkAuthors(annotations) {
    const select = /** @type {HTMLSelectElement} */ ($("clear-person-select"));
    const authors = new Map();
    for (const annotation of annotations) {
      if (annotation.by && annotation.by.pid) authors.set(annotation.by.pid, annotation.by);
    }
    const chosen = select.value;
    select.replaceChildren(...[...authors.values()].map((person) =>
      h("option", { value: person.pid, selected: person.pid === chosen }, personName(person, "trainer"))));
    select.disabled = authors.size === 0;
    $("clear-person").disabled = authors.size === 0;
  }

  function renderScreenList() {
    // Who is where: students present now, by the screen they last reported.
    const here = new Map();
    for (const participant of model.participants.values()) {
      if (participant.role !== "student") continue;
      const screen = whereabouts.get(participant.pid);
      if (!screen) continue;
      if (!here.has(screen)) here.set(screen, []);
      here.get(screen).push(personName(participant, "trainer"));
    }
    $("screen-list").replaceChildren(...course.ids().map((id) => {
      const current = id === model.screen;
      const title = course.title(id, lang());
      const names = here.get(id) || [];
      const label = names.length
        ? t("trainer.go_to_with", { title, people: tn("trainer.students_here", names.length), names: names.join(", ") })
        : t("trainer.go_to", { title });
      return h("li", {},
        h("button", {
          type: "button", class: current ? "screen-link current" : "screen-link",
          "aria-current": current ? "step" : null, dataset: { screen: id },
          "aria-label": label, title: names.length ? names.join(", ") : null,
          onclick: () => navigate(id),
        }, h("span", { class: "screen-link-title", text: title }),
        names.length ? h("span", { class: "screen-count", "aria-hidden": "true", text: String(names.length) }) : null));
    }));
  }

  function renderQueue() {
    const queue = $("hand-queue");
    queue.replaceChildren(...model.hands.map((participant) => {
      const name = personName(participant, "trainer");
      return h("li", { class: "queue-item", dataset: { pid: participant.pid } },
        h("span", { class: "queue-name", text: name }),
        h("button", {
          type: "button", class: "button button-small",
          "aria-label": t("hand.lower_for", { name }),
          onclick: () => publish({ kind: "hand.lower", participant: participant.pid }).catch(ignore),
        }, t("hand.lower")));
    }));
    $("queue-empty").hidden = model.hands.length > 0;
  }

  function renderPoll() {
    const poll = model.poll || model.closedPoll;
    const open = Boolean(model.poll);
    $("poll-form").hidden = open || (Boolean(poll) && !pollFormOpen);
    $("poll-live").hidden = !poll || (!open && pollFormOpen);
    $("poll-close").hidden = !open;
    $("poll-new").hidden = open || pollFormOpen;
    if (!poll) return;
    $("poll-question").textContent = open ? poll.question : t("poll.final", { question: poll.question });
    // Trainers always see the counts; say when students do not.
    renderTally($("poll-tally"), poll.options, poll.counts);
    // `hidden` (from the server, or set by poll.open) means: students do not see them.
    const hiddenFromStudents = Boolean(poll.hidden);
    $("poll-reveal").hidden = !hiddenFromStudents;
    const answers = poll.answers || [];
    $("poll-answers").replaceChildren(...(answers.length ? answers.map((answer) =>
      h("li", { class: "poll-answer" },
        h("span", { class: "answer-name", text: personName(answer.participant, "trainer") }),
        " — ",
        h("span", { class: "answer-option", text: poll.options[answer.option] ?? "?" })))
      : [h("li", { class: "muted", text: t("poll.no_answers") })]));
    const answered = new Set(answers.map((a) => a.participant && a.participant.pid));
    const waiting = [...model.participants.values()]
      .filter((p) => p.role === "student" && !answered.has(p.pid));
    $("poll-waiting-heading").hidden = !open;
    $("poll-waiting").hidden = !open;
    $("poll-waiting").replaceChildren(...(waiting.length ? waiting.map((p) =>
      h("li", { class: "poll-waiting-name", text: personName(p, "trainer") }))
      : [h("li", { class: "muted", text: t("poll.everyone_answered") })]));
    $("poll-progress").textContent = open
      ? t("poll.progress", { answered: answers.length, total: answers.length + waiting.length }) : "";
  }

  function renderPeopleList() {
    renderPeople($("people"), $("people-count"), model, "trainer");
  }

  onLangChange(() => {
    linkDashboard();
    reactions.render();
    marks.relabel();
    chat.redraw(model.chat, model.me);
    renderAll();
  });

  // -- go ---------------------------------------------------------------------------------------

  renderAll();
  joinSession(client, session).then((ok) => {
    if (ok) video.check();
  });
}
