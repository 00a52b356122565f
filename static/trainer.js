/**
 * The trainer console: navigate the screens, lock them, point and mark, run
 * polls with live tallies and individual answers, take raised hands in order,
 * chat, and join the video when the tenant has it.
 *
 * Trainers see students' full names (the contract's privacy rule for trainers).
 */

import { randomId } from "./classroom.js";
import { $, announce, describeError, flash, followPresence, joinSession, personName, start, h, showNotice } from "./common.js";
import { SCREEN_IDS, screenIndex, screenTitle } from "./course.js";
import { lang, onLangChange, t } from "./i18n.js";
import { SessionModel } from "./model.js";
import { lessonPanels, renderPeople, renderTally } from "./widgets.js";

/** Pointer updates per second at most: smooth enough, far below the rate limit (50/s). */
const POINTER_INTERVAL_MS = 100;

const started = await start({ page: "trainer", roles: ["trainer"] });
if (started) run(started);

function run({ client, me, session, token }) {
  const model = new SessionModel();
  let shown = { screen: undefined, lang: undefined };
  let annotating = false;

  const { stage, chat, reactions, video } = lessonPanels(client, session, me, "trainer", publish);

  // The dashboard opens in a new tab with the same token, again in the fragment only.
  const dashboard = $("dashboard-link");
  const linkDashboard = () => {
    const query = new URLSearchParams({ session });
    if (lang() === "en") query.set("lang", "en");
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

  const ignore = () => {};

  // -- navigation and lock ---------------------------------------------------------------

  function navigate(screen) {
    if (!screen || screen === model.screen) return;
    publish({ kind: "screen.navigate", screen }).catch(ignore);
  }

  $("prev").addEventListener("click", () => {
    const index = screenIndex(model.screen);
    if (index > 0) navigate(SCREEN_IDS[index - 1]);
  });
  $("next").addEventListener("click", () => {
    const index = screenIndex(model.screen);
    navigate(index < 0 ? SCREEN_IDS[0] : SCREEN_IDS[index + 1]);
  });
  $("lock").addEventListener("click", () => {
    publish({ kind: "screen.lock", locked: !model.locked }).catch(ignore);
  });

  // -- pointer and annotations -------------------------------------------------------------

  let lastPointer = 0;
  let pendingPointer = null;
  let pointerTimer = null;

  $("stage").addEventListener("pointermove", (event) => {
    if (!model.screen) return;
    pendingPointer = stage.fractionOf(event);
    const wait = lastPointer + POINTER_INTERVAL_MS - Date.now();
    if (wait <= 0) sendPointer();
    else if (!pointerTimer) pointerTimer = setTimeout(sendPointer, wait);
  });

  function sendPointer() {
    pointerTimer = null;
    if (!pendingPointer || !model.screen) return;
    lastPointer = Date.now();
    const { x, y } = pendingPointer;
    pendingPointer = null;
    client.publish(session, { kind: "pointer", x, y, screen: model.screen }).catch(ignore);
  }

  function addAnnotation(x, y) {
    if (!model.screen) return;
    publish({
      kind: "annotation.add",
      annotation_id: `a-${randomId().slice(0, 12)}`,
      screen: model.screen,
      shape: { type: "circle", x, y, r: 0.04 },
    }).catch(ignore);
  }

  $("annotate").addEventListener("click", () => {
    annotating = !annotating;
    $("annotate").setAttribute("aria-pressed", String(annotating));
    $("annotate-hint").hidden = !annotating;
    const stageEl = $("stage");
    stageEl.classList.toggle("annotating", annotating);
    // Keyboard users: the stage takes focus, and Enter marks its centre.
    if (annotating) stageEl.setAttribute("tabindex", "0");
    else stageEl.removeAttribute("tabindex");
  });
  $("stage").addEventListener("click", (event) => {
    if (!annotating) return;
    const { x, y } = stage.fractionOf(event);
    addAnnotation(x, y);
  });
  $("stage").addEventListener("keydown", (event) => {
    if (annotating && event.target === $("stage") && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      addAnnotation(0.5, 0.5);
    }
  });
  $("clear-annotations").addEventListener("click", async () => {
    for (const annotation of model.annotationsOn(model.screen)) {
      try {
        await publish({ kind: "annotation.remove", annotation_id: annotation.annotation_id });
      } catch {
        break;
      }
    }
  });

  // -- polls ----------------------------------------------------------------------------------

  const questionInput = $("poll-question-input");
  const optionsInput = $("poll-options-input");
  questionInput.value = t("poll.default_question");
  optionsInput.value = t("poll.default_options");

  $("poll-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = questionInput.value.trim();
    const options = optionsInput.value.split("\n").map((line) => line.trim()).filter(Boolean);
    if (!question || options.length < 2 || options.length > 10) {
      flash(t("poll.invalid"));
      return;
    }
    try {
      await publish({ kind: "poll.open", poll: `poll-${randomId().slice(0, 10)}`, question, options });
    } catch {
      return;
    }
    $("poll-close").focus();
  });
  $("poll-close").addEventListener("click", async () => {
    if (!model.poll) return;
    try {
      await publish({ kind: "poll.close", poll: model.poll.poll });
    } catch {
      return;
    }
    questionInput.focus();
  });

  // -- state changes ----------------------------------------------------------------------------

  client.on("joined", async (info) => {
    if (info.session !== session) return;
    model.applyJoined(info.reply);
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
    const event = model.applyEvent(frame);
    switch (event.kind) {
      case "pointer":
        return; // the trainer sees their own mouse
      case "reaction":
        reactions.show(personName(event.by, "trainer"), event.emoji);
        return;
      case "hand.raise":
        announce(t("announce.hand_raised", { name: personName(event.by, "trainer") }));
        break;
      case "session.ended":
        showNotice(t("error.ended"));
        break;
      default:
        break;
    }
    renderAll();
  });
  followPresence(client, session, model, renderPeopleList);

  // -- rendering ----------------------------------------------------------------------------------

  function renderAll() {
    renderScreen();
    renderQueue();
    renderPoll();
    chat.render(model.chat, model.me);
    renderPeopleList();
  }

  function renderScreen() {
    if (shown.screen !== model.screen || shown.lang !== lang()) {
      stage.show(model.screen, "screen.trainer_waiting");
      shown = { screen: model.screen, lang: lang() };
      renderScreenList();
    }
    stage.setAnnotations(model.screen ? model.annotationsOn(model.screen) : []);
    const index = screenIndex(model.screen);
    $("prev").disabled = index <= 0;
    $("next").disabled = index >= SCREEN_IDS.length - 1;
    $("lock").setAttribute("aria-pressed", String(model.locked));
    $("lock-badge").hidden = !model.locked;
    $("lock-state").textContent = t(model.locked ? "trainer.locked" : "trainer.unlocked");
    $("clear-annotations").disabled = !model.screen || model.annotationsOn(model.screen).length === 0;
  }

  function renderScreenList() {
    $("screen-list").replaceChildren(...SCREEN_IDS.map((id) => {
      const current = id === model.screen;
      const title = screenTitle(id, lang());
      return h("li", {},
        h("button", {
          type: "button", class: current ? "screen-link current" : "screen-link",
          "aria-current": current ? "step" : null, dataset: { screen: id },
          "aria-label": t("trainer.go_to", { title }),
          onclick: () => navigate(id),
        }, title));
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
    $("poll-form").hidden = open;
    $("poll-live").hidden = !poll;
    $("poll-close").hidden = !open;
    if (!poll) return;
    $("poll-question").textContent = open ? poll.question : t("poll.final", { question: poll.question });
    renderTally($("poll-tally"), poll.options, poll.counts);
    const answers = poll.answers || [];
    $("poll-answers").replaceChildren(...(answers.length ? answers.map((answer) =>
      h("li", { class: "poll-answer" },
        h("span", { class: "answer-name", text: personName(answer.participant, "trainer") }),
        " — ",
        h("span", { class: "answer-option", text: poll.options[answer.option] ?? "?" })))
      : [h("li", { class: "muted", text: t("poll.no_answers") })]));
  }

  function renderPeopleList() {
    renderPeople($("people"), $("people-count"), model, "trainer");
  }

  onLangChange(() => {
    linkDashboard();
    reactions.render();
    chat.redraw(model.chat, model.me);
    renderAll();
  });

  // -- go ---------------------------------------------------------------------------------------

  renderAll();
  joinSession(client, session).then((ok) => {
    if (ok) video.check();
  });
}
