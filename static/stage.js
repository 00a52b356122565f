/**
 * The lesson screen: the screen's content on a fixed logical canvas, and an
 * overlay with the pointers and marks.
 *
 * Why a fixed canvas: marks must stay on the content they were put on, on a
 * 390 px phone as on a 1920 px console. The content is laid out once at a fixed
 * logical size (the built-in text at 640x400 CSS px, a customer's page in its
 * iframe at 960x600) and then scaled to the width of the stage, so text wraps
 * at the same words on every device. Pointer and mark coordinates are fractions
 * 0..1 of that 16:10 canvas (protocol section 7), so a mark on a word lands on
 * that word everywhere. The overlay is an SVG with a 1600x1000 viewBox over the
 * same box.
 *
 * @module stage
 */

const SVG = "http://www.w3.org/2000/svg";
/** The overlay's coordinate system: fractions times these. */
export const VIEW_W = 1600;
export const VIEW_H = 1000;
/** Logical sizes of the content the stage scales to its width. */
const TEXT_CANVAS_W = 640;
const FRAME_CANVAS_W = 960;
/** How long a pointer stays visible after its last move. */
const POINTER_LINGER_MS = 4000;

/** The colours marks may have (the protocol's names) and how they are drawn. */
export const MARK_COLOURS = {
  red: "#c8102e",
  blue: "#0b57b0",
  green: "#137333",
  orange: "#b45309",
  purple: "#6b2fb3",
  black: "#1b1f24",
};

export class Stage {
  /**
   * @param {{root: HTMLElement, canvas: HTMLElement, body: HTMLElement,
   *   frame: HTMLIFrameElement, overlay: SVGSVGElement, summary: HTMLElement}} elements
   */
  constructor(elements) {
    this.el = elements;
    this.screen = null;
    /** @type {Map<string, {node: SVGGElement, timer: any}>} pid -> pointer */
    this._pointers = new Map();
    this._preview = null;
    const fit = () => {
      const width = this.el.root.clientWidth;
      if (!width) return;
      this.el.root.style.setProperty("--text-scale", String(width / TEXT_CANVAS_W));
      this.el.root.style.setProperty("--frame-scale", String(width / FRAME_CANVAS_W));
    };
    new ResizeObserver(fit).observe(this.el.root);
    fit();
  }

  /**
   * Show a screen (from `Course.find`), or `waiting` when there is none yet.
   * @param {import("./screens.js").ShownScreen | null} screen
   * @param {string} waiting the text shown before the trainer starts
   */
  show(screen, waiting) {
    this.screen = screen ? screen.id : null;
    const url = screen && screen.url;
    this.el.canvas.hidden = Boolean(url);
    this.el.frame.hidden = !url;
    if (url) {
      if (this.el.frame.getAttribute("src") !== url) this.el.frame.setAttribute("src", url);
      this.el.frame.title = screen.title;
    } else {
      if (this.el.frame.hasAttribute("src")) this.el.frame.removeAttribute("src");
      this.el.body.textContent = screen ? screen.body || "" : waiting;
    }
    this.el.root.dataset.screen = this.screen || "";
    this.el.root.dataset.kind = url ? "frame" : "text";
    for (const pid of [...this._pointers.keys()]) this.hidePointer(pid);
  }

  /**
   * Draw the marks of the shown screen. Only the known kinds are drawn; each
   * gets `data-id` and `data-by` (the author's pid) for the page and the tests.
   * @param {object[]} annotations
   * @param {(participant: object) => string} nameOf
   */
  setAnnotations(annotations, nameOf) {
    for (const old of this.el.overlay.querySelectorAll(".annotation")) old.remove();
    let drawn = 0;
    for (const annotation of annotations) {
      const node = drawMark(annotation.shape || {});
      if (!node) continue;
      node.classList.add("annotation");
      node.dataset.id = annotation.annotation_id;
      node.dataset.by = (annotation.by && annotation.by.pid) || "";
      const title = document.createElementNS(SVG, "title");
      title.textContent = nameOf(annotation.by);
      node.prepend(title);
      this.el.overlay.insertBefore(node, this.el.overlay.querySelector(".pointer-mark"));
      drawn += 1;
    }
    return drawn;
  }

  /**
   * Show someone's pointer at (x, y), fractions of the canvas, with their name.
   * @param {string} pid
   * @param {number} x
   * @param {number} y
   * @param {string} label
   * @param {boolean} trainer the trainer's pointer is the big red one
   */
  showPointer(pid, x, y, label, trainer) {
    let pointer = this._pointers.get(pid);
    if (!pointer) {
      const node = svg("g", { class: trainer ? "pointer-mark pointer" : "pointer-mark pointer student-pointer" });
      node.append(svg("circle", { r: trainer ? 14 : 10 }));
      if (label) {
        const text = svg("text", { x: 18, y: 8, class: "pointer-label" });
        text.textContent = label;
        node.append(text);
      }
      this.el.overlay.append(node);
      pointer = { node, timer: null };
      this._pointers.set(pid, pointer);
    }
    pointer.node.setAttribute("transform", `translate(${clamp01(x) * VIEW_W} ${clamp01(y) * VIEW_H})`);
    pointer.node.style.display = "";
    clearTimeout(pointer.timer);
    pointer.timer = setTimeout(() => this.hidePointer(pid), POINTER_LINGER_MS);
  }

  hidePointer(pid) {
    const pointer = this._pointers.get(pid);
    if (!pointer) return;
    pointer.node.remove();
    this._pointers.delete(pid);
  }

  /** Show a stroke being drawn (points in fractions), before it is sent. */
  preview(points, colour) {
    if (!this._preview) {
      this._preview = svg("polyline", { class: "mark-preview", fill: "none" });
      this.el.overlay.append(this._preview);
    }
    this._preview.setAttribute("points", scaledPoints(points));
    this._preview.setAttribute("stroke", MARK_COLOURS[colour] || MARK_COLOURS.red);
  }

  endPreview() {
    if (this._preview) this._preview.remove();
    this._preview = null;
  }

  /**
   * Where a mouse or touch event lies on the canvas, as fractions 0..1.
   * @param {{clientX: number, clientY: number}} event
   */
  fractionOf(event) {
    const box = this.el.root.getBoundingClientRect();
    return {
      x: round4(clamp01((event.clientX - box.left) / box.width)),
      y: round4(clamp01((event.clientY - box.top) / box.height)),
    };
  }
}

/** An SVG node for a shape of a known kind, or null for anything else. */
function drawMark(shape) {
  const colour = MARK_COLOURS[shape.color] || MARK_COLOURS.orange;
  if (shape.type === "stroke" && Array.isArray(shape.points)) {
    const width = Number.isFinite(shape.width) ? shape.width : 3;
    const group = svg("g", {});
    group.append(svg("polyline", {
      points: scaledPoints(shape.points), fill: "none", stroke: colour,
      "stroke-width": width * 2, "stroke-linecap": "round", "stroke-linejoin": "round",
    }));
    return group;
  }
  const x = Number(shape.x);
  const y = Number(shape.y);
  if (!Number.isFinite(x) || !Number.isFinite(y)) return null;
  if (shape.type === "text" && typeof shape.text === "string") {
    const group = svg("g", {});
    const text = svg("text", {
      x: clamp01(x) * VIEW_W, y: clamp01(y) * VIEW_H, fill: colour, class: "mark-text",
    });
    text.textContent = shape.text.slice(0, 200);
    group.append(text);
    return group;
  }
  if (shape.type === "circle" || shape.type === undefined) {
    const r = Number.isFinite(Number(shape.r)) ? clamp01(Number(shape.r)) : 0.03;
    const group = svg("g", {});
    group.append(svg("circle", {
      cx: clamp01(x) * VIEW_W, cy: clamp01(y) * VIEW_H, r: r * VIEW_W,
      fill: "none", stroke: colour, "stroke-width": 6,
    }));
    return group;
  }
  return null;
}

function scaledPoints(points) {
  return points
    .filter((p) => Array.isArray(p) && p.length === 2)
    .map(([x, y]) => `${clamp01(x) * VIEW_W},${clamp01(y) * VIEW_H}`)
    .join(" ");
}

/** Create an SVG element with attributes. */
function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function clamp01(value) {
  return Math.min(1, Math.max(0, Number(value) || 0));
}

function round4(value) {
  return Math.round(value * 10000) / 10000;
}

/** The stage's DOM, for a page (one place, so both pages have the same structure). */
export function stageElements() {
  const get = (id) => {
    const element = document.getElementById(id);
    if (!element) throw new Error(`missing #${id}`);
    return element;
  };
  return {
    root: get("stage"), canvas: get("canvas"), body: get("screen-body"),
    frame: /** @type {HTMLIFrameElement} */ (get("screen-frame")),
    overlay: /** @type {any} */ (get("overlay")), summary: get("annotation-summary"),
  };
}
