/**
 * Pieces of UI the student and trainer pages share: the lesson screen with its
 * pointer and annotations, chat, presence, reactions and poll tallies.
 * Everything builds DOM with textContent (never HTML), because chat text and
 * names come from other users.
 *
 * @module widgets
 */

import { SCREEN_IDS, findScreen, screenIndex } from "./course.js";
import { $, h, personName } from "./common.js";
import { formatTime, lang, t, tn } from "./i18n.js";
import { VideoPanel } from "./video.js";

/** How long the trainer's pointer stays visible after its last move. */
const POINTER_LINGER_MS = 4000;

/**
 * The lesson screen: title and text of the current screen, with an overlay for
 * the trainer's pointer and the annotations (positions are fractions 0..1, as in
 * the protocol, so they land in the same place on every screen size).
 */
export class Stage {
  /**
   * @param {{root: HTMLElement, title: HTMLElement, body: HTMLElement,
   *   position: HTMLElement, overlay: HTMLElement, summary: HTMLElement}} elements
   */
  constructor(elements) {
    this.el = elements;
    this.screen = null;
    this._pointer = null;
    this._pointerTimer = null;
  }

  /**
   * Show a screen, or `waitingKey`'s text when the trainer has not started.
   * @param {string | null} screenId
   * @param {string} [waitingKey]
   */
  show(screenId, waitingKey = "screen.waiting") {
    this.screen = screenId;
    const screen = findScreen(screenId);
    const language = lang();
    if (!screenId) {
      this.el.title.textContent = t(waitingKey);
      this.el.body.textContent = "";
      this.el.position.textContent = "";
    } else if (screen) {
      this.el.title.textContent = screen.title[language];
      this.el.body.textContent = screen.body[language];
      this.el.position.textContent = t("screen.position", {
        n: screenIndex(screenId) + 1, total: SCREEN_IDS.length,
      });
    } else {
      this.el.title.textContent = t("screen.unknown", { id: screenId });
      this.el.body.textContent = "";
      this.el.position.textContent = "";
    }
    this.el.root.dataset.screen = screenId || "";
    this.hidePointer();
  }

  /**
   * Draw the annotations of the shown screen.
   * @param {object[]} annotations
   */
  setAnnotations(annotations) {
    for (const old of this.el.overlay.querySelectorAll(".annotation")) old.remove();
    for (const annotation of annotations) {
      const shape = annotation.shape || {};
      const x = Number(shape.x);
      const y = Number(shape.y);
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      const mark = h("div", { class: "annotation", dataset: { id: annotation.annotation_id } });
      mark.style.left = `${clamp01(x) * 100}%`;
      mark.style.top = `${clamp01(y) * 100}%`;
      const radius = Number.isFinite(Number(shape.r)) ? clamp01(Number(shape.r)) : 0.03;
      mark.style.width = `${radius * 200}%`;
      if (typeof shape.label === "string" && shape.label) {
        mark.append(h("span", { class: "annotation-label", text: shape.label.slice(0, 80) }));
      }
      this.el.overlay.append(mark);
    }
    this.el.summary.textContent = annotations.length
      ? tn("screen.annotations", annotations.length) : "";
  }

  /** Show the trainer's pointer at (x, y), fractions of the screen. */
  showPointer(x, y) {
    if (!this._pointer) {
      this._pointer = h("div", { class: "pointer" });
      this.el.overlay.append(this._pointer);
    }
    this._pointer.style.left = `${clamp01(x) * 100}%`;
    this._pointer.style.top = `${clamp01(y) * 100}%`;
    this._pointer.hidden = false;
    clearTimeout(this._pointerTimer);
    this._pointerTimer = setTimeout(() => this.hidePointer(), POINTER_LINGER_MS);
  }

  hidePointer() {
    if (this._pointer) this._pointer.hidden = true;
  }

  /**
   * Where a mouse or touch event lies on the screen, as fractions 0..1.
   * @param {MouseEvent} event
   */
  fractionOf(event) {
    const box = this.el.root.getBoundingClientRect();
    return {
      x: round3(clamp01((event.clientX - box.left) / box.width)),
      y: round3(clamp01((event.clientY - box.top) / box.height)),
    };
  }
}

function clamp01(value) {
  return Math.min(1, Math.max(0, value));
}

function round3(value) {
  return Math.round(value * 1000) / 1000;
}

/**
 * The chat: a log of messages (appended, not redrawn, so screen readers announce
 * only the new ones) and a form to send.
 */
export class ChatPanel {
  /**
   * @param {{list: HTMLElement, form: HTMLFormElement, input: HTMLInputElement,
   *   empty: HTMLElement}} elements
   * @param {{viewerRole: string, send: (text: string) => Promise<void>}} options
   */
  constructor(elements, options) {
    this.el = elements;
    this.viewerRole = options.viewerRole;
    this._rendered = [];
    this.el.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = this.el.input.value.trim();
      if (!text) return;
      this.el.input.value = "";
      try {
        await options.send(text);
      } catch {
        this.el.input.value = text; // keep what the user typed; the error is shown elsewhere
      }
    });
  }

  /** @param {{offset: number, by: object, text: string, at: number}[]} messages */
  render(messages, me) {
    const keys = messages.map((m) => m.offset);
    const prefixSame = this._rendered.length <= keys.length
      && this._rendered.every((key, index) => keys[index] === key);
    if (!prefixSame) {
      this.el.list.replaceChildren();
      this._rendered = [];
    }
    for (const message of messages.slice(this._rendered.length)) {
      this.el.list.append(this._item(message, me));
      this._rendered.push(message.offset);
    }
    this.el.empty.hidden = messages.length > 0;
    this.el.list.scrollTop = this.el.list.scrollHeight;
  }

  /** Redraw everything (after a language switch: "you" and times change). */
  redraw(messages, me) {
    this._rendered = [];
    this.el.list.replaceChildren();
    this.render(messages, me);
  }

  _item(message, me) {
    const own = me && message.by && message.by.pid === me.pid;
    const name = personName(message.by, this.viewerRole) + (own ? ` (${t("common.you")})` : "");
    return h("li", { class: own ? "chat-item own" : "chat-item" },
      h("span", { class: "chat-meta" },
        h("strong", { text: name }), " ",
        h("time", { text: formatTime(message.at || 0) })),
      h("span", { class: "chat-text", text: message.text }));
  }
}

/**
 * Who is present, with a hand symbol (and its text, for screen readers) for
 * raised hands. Students see display names only.
 */
export function renderPeople(list, countEl, model, viewerRole) {
  const raised = new Set(model.hands.map((p) => p.pid));
  list.replaceChildren();
  for (const participant of model.participants.values()) {
    const own = model.me && participant.pid === model.me.pid;
    const name = personName(participant, viewerRole) + (own ? ` (${t("common.you")})` : "");
    const role = t(`role.${participant.role}`);
    const item = h("li", { class: "person", dataset: { pid: participant.pid } },
      h("span", { class: "person-name", text: name }),
      h("span", { class: "person-role", text: role }));
    if (raised.has(participant.pid)) {
      item.append(h("span", { class: "hand-icon", "aria-hidden": "true", text: "✋" }),
        h("span", { class: "sr-only", text: t("hand.raised_label") }));
    }
    list.append(item);
  }
  countEl.textContent = t("people.count", { count: model.participants.size });
}

/** The reaction buttons' emoji and their spoken names. */
export const REACTIONS = [
  { emoji: "👍", key: "reactions.thumbs" },
  { emoji: "👏", key: "reactions.clap" },
  { emoji: "😕", key: "reactions.confused" },
  { emoji: "🐢", key: "reactions.slower" },
];

/**
 * Reaction buttons and a short-lived feed of everyone's reactions.
 * @param {HTMLElement} buttons container for the buttons
 * @param {HTMLElement} feed list the reactions appear in (a polite live region)
 * @param {(emoji: string) => void} send
 */
export function setupReactions(buttons, feed, send) {
  const render = () => {
    buttons.replaceChildren(...REACTIONS.map(({ emoji, key }) =>
      h("button", {
        type: "button", class: "reaction-button", "aria-label": t(key), title: t(key),
        onclick: () => send(emoji),
      }, emoji)));
  };
  render();
  return {
    render,
    /** Show someone's reaction for a few seconds. */
    show(name, emoji) {
      const item = h("li", { text: t("reactions.from", { name, emoji }) });
      feed.append(item);
      while (feed.children.length > 5) feed.firstElementChild.remove();
      setTimeout(() => item.remove(), 6000);
    },
  };
}

/**
 * Poll results: one row per option with its count, as text and as a bar.
 * @param {HTMLElement} list
 * @param {string[]} options
 * @param {number[]} counts
 */
export function renderTally(list, options, counts) {
  const total = counts.reduce((sum, n) => sum + n, 0);
  list.replaceChildren(...options.map((option, index) => {
    const count = counts[index] || 0;
    const bar = h("span", { class: "bar" });
    bar.style.width = `${total ? Math.round((count / total) * 100) : 0}%`;
    return h("li", { class: "tally-row", dataset: { option: String(index) } },
      h("span", { class: "tally-label" },
        h("span", { class: "tally-option", text: option }),
        h("span", { class: "tally-count", text: tn("poll.votes", count) })),
      h("span", { class: "bar-track", "aria-hidden": "true" }, bar));
  }));
}

/**
 * The panels the student screen and the trainer console share, wired to the
 * page's element ids: the stage, chat, reactions and video. One place, so both
 * pages lay out and behave alike.
 * @param {import("./classroom.js").ClassroomClient} client
 * @param {string} session
 * @param {{display_name?: string}} me
 * @param {"student" | "trainer"} viewerRole
 * @param {(event: object) => Promise<unknown>} publish
 */
export function lessonPanels(client, session, me, viewerRole, publish) {
  const stage = new Stage({
    root: $("stage"), title: $("screen-title"), body: $("screen-body"),
    position: $("screen-position"), overlay: $("overlay"),
    summary: $("annotation-summary"),
  });
  const chat = new ChatPanel(
    { list: $("chat-list"), form: $("chat-form"), input: $("chat-input"),
      empty: $("chat-empty") },
    { viewerRole, send: (text) => publish({ kind: "chat", text }) },
  );
  const reactions = setupReactions($("reaction-buttons"), $("reaction-feed"),
    (emoji) => publish({ kind: "reaction", emoji }));
  const video = new VideoPanel(client, session, {
    status: $("video-status"), join: $("video-join"), leave: $("video-leave"),
    stage: $("video-stage"),
  }, me.display_name || "");
  return { stage, chat, reactions, video };
}
