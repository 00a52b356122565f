/**
 * Marking the screen, for everyone the session allows: a circle, a freehand
 * line, a text note, in a few colours; undo and "remove my marks"; and sharing
 * one's pointer. The trainer's page adds its own controls (clear everyone's,
 * switch student marks and pointers) on top of these.
 *
 * Freehand lines are simplified before they are sent (Ramer-Douglas-Peucker),
 * so a long scribble stays far below the protocol's bound on points and a
 * phone's 120 touch events a second do not turn into 120 points.
 *
 * @module drawing
 */

import { randomId } from "./classroom.js";
import { flash, h } from "./common.js";
import { t } from "./i18n.js";
import { MARK_COLOURS } from "./stage.js";

/** Points a stroke may have on the wire (the server's bound is 500). */
const MAX_POINTS = 400;
/** Pointer updates per second at most: smooth enough, far below the rate limit. */
const POINTER_INTERVAL_MS = 100;
const TOOLS = ["none", "circle", "pen", "text"];

export class MarkTools {
  /**
   * @param {object} options
   * @param {HTMLElement} options.container where the toolbar goes
   * @param {import("./stage.js").Stage} options.stage
   * @param {(event: object) => Promise<unknown>} options.publish shows its own errors
   * @param {(event: object) => void} options.sendPointer fire and forget
   * @param {() => string | null} options.screen the screen being looked at
   * @param {() => object[]} options.myMarks this user's marks on that screen, oldest first
   * @param {() => string} options.myPid
   * @param {() => boolean} options.sharesPointer whether moves are sent as a pointer
   */
  constructor(options) {
    this.o = options;
    this.tool = "none";
    this.colour = "red";
    this._stroke = null;
    this._lastPointer = 0;
    this._pendingPointer = null;
    this._pointerTimer = null;
    this._build();
    this._listen();
  }

  _build() {
    const tools = h("fieldset", { class: "tool-group" },
      h("legend", { class: "tool-legend", text: t("mark.tools") }),
      ...TOOLS.map((tool) => h("label", { class: "tool-choice" },
        h("input", {
          type: "radio", name: "mark-tool", value: tool, checked: tool === this.tool,
          onchange: () => this.setTool(tool),
        }),
        h("span", { text: t(`mark.tool.${tool}`) }))));
    const colours = h("fieldset", { class: "tool-group colours" },
      h("legend", { class: "tool-legend", text: t("mark.colour") }),
      ...Object.entries(MARK_COLOURS).map(([name, css]) => {
        const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
        swatch.style.background = css;
        return h("label", { class: "colour-choice", title: t(`colour.${name}`) },
          h("input", {
            type: "radio", name: "mark-colour", value: name, checked: name === this.colour,
            "aria-label": t(`colour.${name}`), onchange: () => { this.colour = name; },
          }), swatch);
      }));
    this.textInput = h("input", {
      id: "mark-text", type: "text", maxlength: "200", autocomplete: "off",
    });
    this.textRow = h("div", { class: "mark-text-row", hidden: true },
      h("label", { for: "mark-text", text: t("mark.text_label") }), this.textInput);
    this.undoButton = h("button", {
      type: "button", class: "button", id: "mark-undo", onclick: () => this.undo(),
    }, t("mark.undo"));
    this.clearButton = h("button", {
      type: "button", class: "button", id: "mark-clear-mine", onclick: () => this.clearMine(),
    }, t("mark.clear_mine"));
    this.o.container.replaceChildren(tools, colours, this.textRow,
      h("div", { class: "toolbar" }, this.undoButton, this.clearButton));
  }

  /** @param {string} tool one of TOOLS */
  setTool(tool) {
    this.tool = tool;
    const marking = tool !== "none";
    const root = this.o.stage.el.root;
    root.classList.toggle("marking", marking);
    root.dataset.tool = tool;
    // Keyboard users: the stage takes focus, and Enter marks its centre.
    if (marking) root.setAttribute("tabindex", "0");
    else root.removeAttribute("tabindex");
    this.textRow.hidden = tool !== "text";
    for (const input of this.o.container.querySelectorAll("input[name=mark-tool]")) {
      input.checked = input.value === tool;
    }
  }

  /** Enable or disable the whole toolbar (the trainer switched student marks off). */
  setEnabled(enabled) {
    if (!enabled) this.setTool("none");
    this.o.container.hidden = !enabled;
  }

  /** Redraw the labels after a language switch, keeping the choices. */
  relabel() {
    const tool = this.tool;
    this._build();
    this.setTool(tool);
  }

  /** Disable undo and clear when there is nothing of mine on this screen. */
  refresh() {
    const none = this.o.myMarks().length === 0;
    this.undoButton.disabled = none;
    this.clearButton.disabled = none;
  }

  async undo() {
    const mine = this.o.myMarks();
    const last = mine[mine.length - 1];
    if (last) await this.o.publish({ kind: "annotation.remove", annotation_id: last.annotation_id }).catch(() => {});
  }

  async clearMine() {
    const screen = this.o.screen();
    if (!screen) return;
    await this.o.publish({ kind: "annotation.clear", screen, participant: this.o.myPid() }).catch(() => {});
  }

  _listen() {
    const root = this.o.stage.el.root;
    root.addEventListener("pointerdown", (event) => {
      if (this.tool === "pen" && this.o.screen()) {
        event.preventDefault();
        root.setPointerCapture?.(event.pointerId);
        this._stroke = [this._point(event)];
      }
    });
    root.addEventListener("pointermove", (event) => {
      if (this._stroke) {
        const point = this._point(event);
        const last = this._stroke[this._stroke.length - 1];
        if (point[0] !== last[0] || point[1] !== last[1]) this._stroke.push(point);
        this.o.stage.preview(this._stroke, this.colour);
        return;
      }
      if (this.o.sharesPointer() && this.o.screen()) this._queuePointer(event);
    });
    const finish = () => {
      const points = this._stroke;
      this._stroke = null;
      this.o.stage.endPreview();
      if (points && points.length >= 2) this._add({ type: "stroke", points: simplify(points), width: 3 });
    };
    root.addEventListener("pointerup", finish);
    root.addEventListener("pointercancel", finish);
    root.addEventListener("click", (event) => {
      if (this.tool === "circle" || this.tool === "text") {
        const { x, y } = this.o.stage.fractionOf(event);
        this._place(x, y);
      }
    });
    root.addEventListener("keydown", (event) => {
      if (event.target !== root || (event.key !== "Enter" && event.key !== " ")) return;
      if (this.tool === "circle" || this.tool === "text") {
        event.preventDefault();
        this._place(0.5, 0.5);
      }
    });
  }

  _point(event) {
    const { x, y } = this.o.stage.fractionOf(event);
    return [x, y];
  }

  _place(x, y) {
    if (this.tool === "circle") {
      this._add({ type: "circle", x, y, r: 0.03 });
      return;
    }
    const text = this.textInput.value.trim();
    if (!text) {
      flash(t("mark.text_missing"));
      this.textInput.focus();
      return;
    }
    this._add({ type: "text", x, y, text });
  }

  _add(shape) {
    const screen = this.o.screen();
    if (!screen) return;
    this.o.publish({
      kind: "annotation.add",
      annotation_id: `a-${randomId().slice(0, 12)}`,
      screen,
      shape: { ...shape, color: this.colour },
    }).catch(() => {});
  }

  _queuePointer(event) {
    this._pendingPointer = this.o.stage.fractionOf(event);
    const wait = this._lastPointer + POINTER_INTERVAL_MS - Date.now();
    if (wait <= 0) this._sendPointer();
    else if (!this._pointerTimer) this._pointerTimer = setTimeout(() => this._sendPointer(), wait);
  }

  _sendPointer() {
    this._pointerTimer = null;
    const screen = this.o.screen();
    if (!this._pendingPointer || !screen) return;
    this._lastPointer = Date.now();
    const { x, y } = this._pendingPointer;
    this._pendingPointer = null;
    this.o.sendPointer({ kind: "pointer", x, y, screen });
  }
}

/**
 * Fewer points for the same line: Ramer-Douglas-Peucker with a tolerance that
 * grows until the line fits in {@link MAX_POINTS}.
 * @param {number[][]} points fractions
 * @returns {number[][]}
 */
export function simplify(points) {
  let tolerance = 0.0025; // a quarter of a percent: 2 px on a wide screen
  let result = rdp(points, tolerance);
  while (result.length > MAX_POINTS) {
    tolerance *= 2;
    result = rdp(points, tolerance);
  }
  return result.map(([x, y]) => [Math.round(x * 10000) / 10000, Math.round(y * 10000) / 10000]);
}

function rdp(points, tolerance) {
  if (points.length <= 2) return points.slice();
  const keep = new Uint8Array(points.length);
  keep[0] = 1;
  keep[points.length - 1] = 1;
  const stack = [[0, points.length - 1]];
  while (stack.length) {
    const [first, last] = stack.pop();
    let furthest = -1;
    let distance = tolerance;
    for (let i = first + 1; i < last; i += 1) {
      const d = segmentDistance(points[i], points[first], points[last]);
      if (d > distance) {
        distance = d;
        furthest = i;
      }
    }
    if (furthest >= 0) {
      keep[furthest] = 1;
      stack.push([first, furthest], [furthest, last]);
    }
  }
  return points.filter((_, i) => keep[i]);
}

function segmentDistance([px, py], [ax, ay], [bx, by]) {
  const dx = bx - ax;
  const dy = by - ay;
  const length = dx * dx + dy * dy;
  const u = length ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / length)) : 0;
  return Math.hypot(px - (ax + u * dx), py - (ay + u * dy));
}
