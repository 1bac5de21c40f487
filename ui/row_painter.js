// How a tree row looks, painted: `RowPainter` draws the text and bars of
// the rows in view on one canvas laid over their (empty) elements while a
// run streams in bulk (see `treeview.js`). Its measures mirror `.row` in
// style.css, so a painted row and a drawn one look alike.

import { formatDuration } from "./time.js";
import { barPosition } from "./tree.js";

/** Every row's height, in pixels. */
export const ROW_HEIGHT = 22;
/** A span's status as the row's icon. */
export const ICONS = { ok: "✓", failed: "✗", running: "●", queued: "…", timed_out: "⏱", quota_exceeded: "!", cancelled: "⊘", interrupted: "↯" };

// Where a row's cells sit, as style.css lays them out (`.row`): padding
// 0 8px 0 4px, 6px between cells, a 14px toggle indented 14px a level, a
// 14px icon, the kind, the name, the duration (at least 64px, right
// aligned) and the lane (a share of the row's inner width, 8px high,
// rounded 2px).
const PAD_LEFT = 4;
const PAD_RIGHT = 8;
const GAP = 6;
const TOGGLE = 14;
export const INDENT = 14;
const DURATION = 64;
const LANE_HEIGHT = 8;
const LANE_RADIUS = 2;

/** Is `x` (from a row's left edge) on the toggle of a row at `depth`? */
export function toggleHit(depth, x) {
  const left = PAD_LEFT + depth * INDENT;
  return x >= left && x < left + TOGGLE;
}

/** The widest a character of the rows' 12px text is: a name this many
 * pixels a character fits without measuring it. */
const WIDEST_CHAR = 12;

/** `text` as it fits in `room` pixels in `g`'s font: cut, with an ellipsis, as the row's cell does. */
function fitted(g, text, room) {
  // Most names are short: measured only when they might not fit.
  if (text.length * WIDEST_CHAR <= room || g.measureText(text).width <= room) return text;
  let fits = 0;
  let over = text.length;
  while (over - fits > 1) {
    const mid = (fits + over) >> 1;
    if (g.measureText(`${text.slice(0, mid)}…`).width <= room) fits = mid;
    else over = mid;
  }
  return `${text.slice(0, fits)}…`;
}

/**
 * The text and bars of the rows in view, painted on one canvas laid over
 * the (empty) row elements: a frame then costs a few canvas calls per row
 * rather than the style, layout and paint of its cells. The canvas is
 * transparent, so the rows' own hover and selection backgrounds show
 * through, and lets the pointer through to them.
 */
export class RowPainter {
  constructor(container) {
    this.container = container;
    this.canvas = null;
    this.style = null;
  }

  /** The colours, fonts or size changed: read them again at the next paint. */
  restyle() {
    this.style = null;
  }

  hide() {
    if (this.canvas) this.canvas.hidden = true;
  }

  /** Colours and fonts as style.css gives them, read once (not each frame:
   * a read after the frame's writes would force a style pass). */
  readStyle() {
    const css = getComputedStyle(this.container);
    const value = (name) => css.getPropertyValue(name).trim();
    const family = css.fontFamily;
    const colours = {};
    for (const status of Object.keys(ICONS)) colours[status] = value(`--${status}`);
    return {
      fg: value("--fg"),
      muted: value("--muted"),
      lane: value("--lane"),
      colours,
      laneShare: parseFloat(value("--lane-share")) / 100 || 0.3,
      font: `12px ${family}`,
      bold: `bold 12px ${family}`,
      small: `11px ${family}`,
      kindWidths: new Map(),
      baselines: new Map(),
    };
  }

  canvasFor(width, height) {
    if (!this.canvas) {
      this.canvas = document.createElement("canvas");
      this.canvas.className = "row-paint";
      this.canvas.setAttribute("aria-hidden", "true");
      this.container.appendChild(this.canvas);
    }
    const canvas = this.canvas;
    canvas.hidden = false;
    const scale = window.devicePixelRatio || 1;
    if (canvas.cssWidth !== width || canvas.cssHeight !== height || canvas.scale !== scale) {
      Object.assign(canvas, { cssWidth: width, cssHeight: height, scale });
      canvas.width = Math.round(width * scale);
      canvas.height = Math.round(height * scale);
      canvas.style.width = `${width}px`;
      canvas.style.height = `${height}px`;
    }
    return canvas;
  }

  /** Paint rows `first` to `last` (exclusive) of `rows`, `width` wide, on
   * the run's time `axis` at `nowUs`. */
  paint({ rows, first, last, model, axis, nowUs, width }) {
    this.style ??= this.readStyle();
    const style = this.style;
    const canvas = this.canvasFor(width, Math.max(1, (last - first) * ROW_HEIGHT));
    // Moved with the rows it covers by a transform: no layout.
    canvas.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const g = canvas.getContext("2d");
    g.setTransform(canvas.scale, 0, 0, canvas.scale, 0, 0);
    g.clearRect(0, 0, canvas.cssWidth, canvas.cssHeight);
    g.textBaseline = "alphabetic";
    const laneWidth = (width - PAD_LEFT - PAD_RIGHT) * style.laneShare;
    const laneLeft = width - PAD_RIGHT - laneWidth;
    const durationRight = laneLeft - GAP;
    const nameRight = durationRight - DURATION - GAP;
    // Cell by cell rather than row by row, and rows of one status together:
    // each font, alignment and colour is set once a paint, not once a row.
    const shown = [];
    const byStatus = new Map();
    for (let i = first; i < last; i++) {
      const row = rows[i];
      const span = model.spans.get(row.span.span_id) ?? row.span;
      const toggleLeft = PAD_LEFT + row.depth * INDENT;
      const cell = { row, span, top: (i - first) * ROW_HEIGHT, toggleLeft, iconLeft: toggleLeft + TOGGLE + GAP, nameLeft: 0 };
      shown.push(cell);
      if (!byStatus.has(span.status)) byStatus.set(span.status, []);
      byStatus.get(span.status).push(cell);
    }

    // A step's kind is not shown, but its (empty) cell still has a gap after it.
    this.cells(g, style.small, "left", (y) => {
      g.fillStyle = style.muted;
      for (const cell of shown) {
        cell.nameLeft = cell.iconLeft + TOGGLE + GAP;
        if (cell.span.kind === "step") cell.nameLeft += GAP;
        else {
          g.fillText(cell.span.kind, cell.nameLeft, cell.top + y);
          cell.nameLeft += this.kindWidth(g, cell.span.kind) + GAP;
        }
      }
    });
    this.cells(g, style.font, "center", (y) => {
      g.fillStyle = style.muted;
      for (const { row, top, toggleLeft } of shown) if (row.hasChildren) g.fillText(row.collapsed ? "▸" : "▾", toggleLeft + TOGGLE / 2, top + y);
      g.textAlign = "right";
      for (const { span, top } of shown) g.fillText(formatDuration((span.end_us ?? nowUs) - span.start_us), durationRight, top + y);
      g.textAlign = "left";
      g.fillStyle = style.fg;
      for (const { span, top, nameLeft } of shown) g.fillText(fitted(g, span.name, nameRight - nameLeft), nameLeft, top + y);
    });
    this.cells(g, style.bold, "center", (y) => {
      for (const [status, cells] of byStatus) {
        g.fillStyle = style.colours[status] || style.fg;
        for (const { top, iconLeft } of cells) g.fillText(ICONS[status] || "?", iconLeft + TOGGLE / 2, top + y);
      }
    });

    // The lanes in one path, one fill; the bars in one path a status.
    const laneTop = (ROW_HEIGHT - LANE_HEIGHT) / 2;
    g.fillStyle = style.lane;
    g.beginPath();
    for (const { top } of shown) g.roundRect(laneLeft, top + laneTop, laneWidth, LANE_HEIGHT, LANE_RADIUS);
    g.fill();
    for (const [status, cells] of byStatus) {
      g.fillStyle = style.colours[status] || style.fg;
      g.beginPath();
      for (const { span, top } of cells) {
        const { left, width: share } = barPosition(span, axis, nowUs);
        g.roundRect(laneLeft + left * laneWidth, top + laneTop, share * laneWidth, LANE_HEIGHT, LANE_RADIUS);
      }
      g.fill();
    }
  }

  /** One cell of every row: `draw(baseline)` in `font`, aligned `align`. */
  cells(g, font, align, draw) {
    g.font = font;
    g.textAlign = align;
    draw(this.baseline(g, font));
  }

  /** Where text in `font` (`g`'s now) sits in a row, as the row's centred line box puts
   * it: the line's middle plus half the font's ascent less its descent,
   * each in whole pixels as the browser lays text out. */
  baseline(g, font) {
    let y = this.style.baselines.get(font);
    if (y === undefined) {
      const { fontBoundingBoxAscent: ascent, fontBoundingBoxDescent: descent } = g.measureText("x");
      y = Math.floor(ROW_HEIGHT / 2 + (Math.round(ascent) - Math.round(descent)) / 2);
      this.style.baselines.set(font, y);
    }
    return y;
  }

  /** A kind's width in its font (there are few kinds: measured once each). */
  kindWidth(g, kind) {
    let width = this.style.kindWidths.get(kind);
    if (width === undefined) {
      width = g.measureText(kind).width;
      this.style.kindWidths.set(kind, width);
    }
    return width;
  }
}
