/**
 * The student screen: shows the trainer's screen, follows it when the trainer
 * locks navigation and is offered it (not pulled along) when unlocked; shows the
 * pointers and marks and lets the student mark too (when the trainer allows),
 * raise a hand, chat (also privately to the trainers), answer polls, react and
 * report their own progress.
 *
 * Other people appear by display name only (the contract's privacy rule for
 * students; the server does not send more, and this page shows no more).
 */

import { $, announce, describeError, flash, followPresence, joinSession, personName, showNotice, start, h } from "./common.js";
import { MarkTools } from "./drawing.js";
import { lang, onLangChange, t, tn } from "./i18n.js";
import { SessionModel } from "./model.js";
import { Course } from "./screens.js";
import { bindTimer, lessonPanels, renderPeople, renderTally } from "./widgets.js";

/** Wait this long after the last screen change before reporting progress (no flood). */
const PROGRESS_DEBOUNCE_MS = 400;

const started = await start({ page: "student", roles: ["student"] });
if (started) run(started);

function run({ client, me, session }) {
  const model = new SessionModel();
  /** The screen this student is looking at (the trainer's, unless browsing while unlocked). */
  let view = null;
  let shown = { screen: undefined, lang: undefined };
  /** This student's poll answers (students get counts only, so we remember our own). */
  const myAnswers = new Map();
  const progress = loadProgress(me, session);

  const course = new Course();
  const { stage, chat, reactions, video } = lessonPanels(client, session, me, "student", publish);
  const marks = new MarkTools({
    container: $("mark-tools"), stage, publish,
    sendPointer: (event) => client.publish(session, event).catch(() => {}),
    screen: () => view,
    myMarks: () => (view ? model.myAnnotationsOn(view) : []),
    myPid: () => (model.me ? model.me.pid : ""),
    sharesPointer: () => Boolean(model.options.student_pointers),
  });
  const tickTimer = bindTimer($("timer"), () => model.timer);

  async function publish(event) {
    try {
      return await client.publish(session, event);
    } catch (err) {
      flash(describeError(err));
      throw err;
    }
  }

  // -- progress -----------------------------------------------------------------------

  let progressTimer = null;
  let reported = null;

  /** Report the screen being viewed, once it has settled (a student may click fast). */
  function reportScreen() {
    clearTimeout(progressTimer);
    if (!view || view === reported) return;
    progressTimer = setTimeout(() => {
      reported = view;
      publish({ kind: "progress", screen: view }).catch(() => {
        reported = null;
      });
    }, PROGRESS_DEBOUNCE_MS);
  }

  async function markComplete() {
    if (!view || progress.completed.includes(view)) return;
    const screen = view;
    try {
      await publish({ kind: "progress", screen, completed: true });
    } catch {
      return;
    }
    progress.completed.push(screen);
    saveProgress(me, session, progress);
    renderProgress();
  }

  // -- state changes ------------------------------------------------------------------

  function setView(next) {
    if (next === view) return;
    view = next;
    reportScreen();
  }

  client.on("joined", async (info) => {
    if (info.session !== session) return;
    const following = view === null || view === model.screen;
    model.applyJoined(info.reply);
    if (course.setRoster(model.screens)) shown = { screen: undefined, lang: undefined };
    if (model.locked || following) setView(model.screen);
    renderAll();
    if (!info.recovered) {
      try {
        model.loadHistory(await client.history(session, { limit: 300 }));
        renderAll();
      } catch (err) {
        flash(describeError(err));
      }
    }
  });

  client.on("event", (frame) => {
    if (frame.session !== session) return;
    const wasLocked = model.locked;
    const event = model.applyEvent(frame);
    switch (event.kind) {
      case "screen.navigate":
        // Locked: everyone follows. Unlocked: the student chooses (the prompt below).
        if (model.locked || view === null) {
          setView(model.screen);
          announce(t("announce.navigated", { title: course.title(model.screen, lang()) }));
        } else if (view !== model.screen) {
          announce(t("announce.trainer_elsewhere", trainerPlace()));
        }
        break;
      case "screen.lock":
        if (model.locked) setView(model.screen);
        if (model.locked !== wasLocked) {
          announce(t(model.locked ? "announce.locked" : "announce.unlocked"));
        }
        break;
      case "pointer":
        if (event.by && (!event.screen || event.screen === view)
            && !(model.me && event.by.pid === model.me.pid)) {
          const trainer = event.by.role === "trainer";
          stage.showPointer(event.by.pid, event.x, event.y, trainer ? "" : personName(event.by, "student"), trainer);
        }
        return; // nothing else changes: do not redraw for every mouse move
      case "reaction":
        reactions.show(personName(event.by, "student"), event.emoji);
        return;
      case "poll.open":
        announce(t("announce.poll_open", { question: event.question }));
        break;
      case "poll.close":
        announce(t("announce.poll_closed"));
        break;
      case "hand.lower":
        if (event.participant && model.me && event.participant.pid === model.me.pid
            && event.by && event.by.pid !== model.me.pid) {
          announce(t("announce.hand_lowered_you"));
        }
        break;
      case "session.ended":
        endLesson();
        break;
      case "session.options":
        if (typeof event.student_marks === "boolean") {
          announce(t(event.student_marks ? "announce.marks_on" : "announce.marks_off"));
        }
        break;
      case "timer.start":
        announce(t("announce.timer", { minutes: Math.round(event.seconds / 60) }));
        tickTimer();
        break;
      case "timer.stop":
        tickTimer();
        break;
      default:
        break;
    }
    renderAll();
  });

  followPresence(client, session, model, renderPeopleList);
  client.on("error", (err) => {
    if (err.session === session) showNotice(t("error.ended"));
  });

  function endLesson() {
    showNotice(t("error.ended"));
    marks.setTool("none");
    for (const control of document.querySelectorAll("main button, main input, main textarea")) {
      control.disabled = true;
    }
  }

  // -- controls -------------------------------------------------------------------------

  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
  $("follow").addEventListener("click", () => {
    setView(model.screen);
    renderAll();
    $("screen-title").focus();
  });
  $("complete").addEventListener("click", markComplete);
  $("hand").addEventListener("click", async () => {
    if (model.ended) return;
    const raised = model.handRaised;
    try {
      await publish({ kind: raised ? "hand.lower" : "hand.raise" });
    } catch {
      // shown by publish()
    }
  });
  $("quiz").addEventListener("submit", async (event) => {
    event.preventDefault();
    const screen = course.find(view, lang());
    const chosen = $("quiz").querySelector("input[name=quiz]:checked");
    const result = $("quiz-result");
    if (!screen || !screen.quiz) return;
    if (!chosen) {
      result.textContent = t("quiz.choose");
      return;
    }
    const correct = Number(chosen.value) === screen.quiz.correct;
    result.textContent = t(correct ? "quiz.correct" : "quiz.wrong");
    result.dataset.correct = String(correct);
    const score = correct ? 100 : 0;
    try {
      await publish({ kind: "progress", screen: view, score, ...(correct ? { completed: true } : {}) });
    } catch {
      return;
    }
    progress.score = score;
    if (correct && !progress.completed.includes(view)) progress.completed.push(view);
    saveProgress(me, session, progress);
    renderProgress();
  });

  function step(delta) {
    if (model.locked) return;
    const ids = course.ids();
    const index = course.index(view);
    const next = index < 0 ? ids[0] : ids[index + delta];
    if (!next) return;
    setView(next);
    renderAll();
  }

  // -- rendering ------------------------------------------------------------------------

  function renderAll() {
    renderScreen();
    renderHand();
    renderPoll();
    chat.render(model.chat, model.me);
    renderPeopleList();
    renderProgress();
  }

  /** Where the trainer is, for the prompt: "screen 4, “An example”". */
  function trainerPlace() {
    return { n: course.index(model.screen) + 1, title: course.title(model.screen, lang()) };
  }

  function renderScreen() {
    if (shown.screen !== view || shown.lang !== lang()) {
      const screen = course.find(view, lang());
      stage.show(screen, t("screen.waiting"));
      $("screen-title").textContent = screen ? screen.title : t("screen.waiting_title");
      const index = course.index(view);
      $("screen-position").textContent = index >= 0
        ? t("screen.position", { n: index + 1, total: course.ids().length }) : "";
      renderQuiz();
      shown = { screen: view, lang: lang() };
    }
    const annotations = view ? model.annotationsOn(view) : [];
    stage.setAnnotations(annotations, (p) => personName(p, "student"));
    $("annotation-summary").textContent = annotations.length
      ? tn("screen.annotations", annotations.length) : "";
    $("lock-badge").hidden = !model.locked;
    const index = course.index(view);
    $("prev").disabled = model.locked || index <= 0;
    $("next").disabled = model.locked || (index >= 0 && index >= course.ids().length - 1);
    const away = Boolean(model.screen) && view !== model.screen;
    $("follow-prompt").hidden = model.locked || !away;
    if (away) {
      const place = trainerPlace();
      $("follow-note").textContent = place.n > 0
        ? t("screen.trainer_is_on", place) : t("screen.trainer_is_on_other", place);
      $("follow").textContent = t("screen.follow");
    }
    $("following-note").textContent = model.screen && !away ? t("screen.following") : "";
    marks.setEnabled(model.options.student_marks !== false && !model.ended);
    $("marks-off").hidden = model.options.student_marks !== false;
    $("pointer-note").hidden = !(model.options.student_pointers && model.options.student_marks !== false);
    marks.refresh();
  }

  function renderQuiz() {
    const screen = course.find(view, lang());
    const form = $("quiz");
    form.hidden = !(screen && screen.quiz);
    $("quiz-result").textContent = "";
    if (form.hidden) return;
    const quiz = screen.quiz;
    $("quiz-question").textContent = quiz.question[lang()];
    $("quiz-options").replaceChildren(...quiz.options.map((option, index) => {
      const id = `quiz-option-${index}`;
      return h("div", { class: "choice" },
        h("input", { type: "radio", name: "quiz", id, value: String(index) }),
        h("label", { for: id, text: option[lang()] }));
    }));
  }

  function renderHand() {
    const raised = model.handRaised;
    // The label says what pressing does next: raise, or take the hand down again.
    $("hand").textContent = t(raised ? "hand.lower_mine" : "hand.raise");
    $("hand-note").hidden = !raised;
  }

  let pollShown = null;

  function renderPoll() {
    const panel = $("poll-panel");
    const poll = model.poll || model.closedPoll;
    panel.hidden = !poll;
    if (!poll) {
      pollShown = null;
      return;
    }
    const open = Boolean(model.poll);
    const key = `${poll.poll}:${open}:${lang()}`;
    $("poll-question").textContent = poll.question;
    $("poll-hint").hidden = !open;
    $("poll-closed-note").hidden = open;
    const options = $("poll-options");
    if (pollShown !== key) {
      // Rebuild only when the poll changes, so keyboard focus stays on the chosen button.
      pollShown = key;
      options.replaceChildren(...(open ? poll.options.map((option, index) =>
        h("button", {
          type: "button", class: "button poll-option", "aria-pressed": "false",
          dataset: { option: String(index) },
          onclick: () => answer(poll.poll, index),
        }, option)) : []));
    }
    const mine = myAnswers.get(poll.poll);
    for (const button of options.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.option) === mine));
    }
    $("poll-mine").textContent = mine === undefined ? ""
      : t("poll.your_answer", { option: poll.options[mine] });
    renderTally($("poll-tally"), poll.options, poll.counts, Boolean(poll.hidden));
  }

  async function answer(pollId, option) {
    try {
      await publish({ kind: "poll.answer", poll: pollId, option });
    } catch {
      return;
    }
    myAnswers.set(pollId, option);
    renderPoll();
  }

  function renderPeopleList() {
    renderPeople($("people"), $("people-count"), model, "student");
  }

  function renderProgress() {
    const ids = course.ids();
    const done = progress.completed.filter((id) => ids.includes(id)).length;
    let summary = t("progress.summary", { done, total: ids.length });
    if (progress.score !== null && progress.score !== undefined) {
      summary += ` · ${t("progress.score", { score: progress.score })}`;
    }
    $("progress-summary").textContent = summary;
    const button = $("complete");
    const completed = Boolean(view) && progress.completed.includes(view);
    button.textContent = completed ? t("progress.completed") : t("progress.complete");
    button.setAttribute("aria-pressed", String(completed));
    button.disabled = !view || completed;
  }

  onLangChange(() => {
    reactions.render();
    marks.relabel();
    chat.redraw(model.chat, model.me);
    pollShown = null;
    renderAll();
  });

  // -- go -------------------------------------------------------------------------------------

  renderAll();
  joinSession(client, session).then((ok) => {
    if (ok) video.check();
  });
}

/**
 * This student's own progress in this session, kept on this device: students
 * may not read the cohort table, and the server does not echo progress back.
 */
function loadProgress(me, session) {
  try {
    const stored = JSON.parse(localStorage.getItem(progressKey(me, session)) || "null");
    if (stored && Array.isArray(stored.completed)) return stored;
  } catch {
    // unreadable or storage disabled
  }
  return { completed: [], score: null };
}

function saveProgress(me, session, progress) {
  try {
    localStorage.setItem(progressKey(me, session), JSON.stringify(progress));
  } catch {
    // storage disabled: progress still reaches the trainer
  }
}

function progressKey(me, session) {
  return `classroom.progress.${me.tenant}.${session}.${me.sub}`;
}
