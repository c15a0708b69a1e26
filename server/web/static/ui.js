// The page's widgets: knobs, and the envelope and spectrum drawn from a patch's values.
// No state of the host here: app.js owns that and calls these.
"use strict";

const PSUI = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const SWEEP = 270; // degrees of a knob's travel

  // A parameter's value <-> its knob's position 0..1 (log parameters turn as they sound).
  function toPos(p, v) {
    if (p.scale === "log") {
      const lo = Math.log(p.min + p.offset + 1e-6), hi = Math.log(p.max + p.offset + 1e-6);
      return (Math.log(v + p.offset + 1e-6) - lo) / (hi - lo);
    }
    return (v - p.min) / (p.max - p.min);
  }
  function fromPos(p, x) {
    x = Math.min(1, Math.max(0, x));
    if (p.scale === "log") {
      const lo = Math.log(p.min + p.offset + 1e-6), hi = Math.log(p.max + p.offset + 1e-6);
      return Math.min(p.max, Math.max(p.min, Math.exp(lo + x * (hi - lo)) - p.offset - 1e-6));
    }
    return p.min + x * (p.max - p.min);
  }
  function fmt(v) {
    const a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
  }
  function arc(pos) {
    const r = 20, c = 26, a0 = (90 + (360 - SWEEP) / 2) * Math.PI / 180;
    const a1 = a0 + pos * SWEEP * Math.PI / 180;
    const x0 = c + r * Math.cos(a0), y0 = c + r * Math.sin(a0);
    const x1 = c + r * Math.cos(a1), y1 = c + r * Math.sin(a1);
    return `M ${x0} ${y0} A ${r} ${r} 0 ${pos * SWEEP > 180 ? 1 : 0} 1 ${x1} ${y1}`;
  }

  // One knob: a focusable slider (arrows, Page Up/Down, Home/End) that a finger or a mouse
  // turns by dragging up and down. onChange(value) as it turns. param: name, unit, min,
  // max, default, scale ("log" or linear), offset; label (what it shows; its name if none).
  class Knob {
    constructor(param, onChange) {
      this.p = param;
      this.onChange = onChange;
      this.value = param.default;
      const el = this.el = document.createElement("div");
      el.className = "knob";
      el.tabIndex = 0;
      el.setAttribute("role", "slider");
      const label = param.label || param.name;
      el.setAttribute("aria-label", param.unit ? `${label} (${param.unit})` : label);
      el.setAttribute("aria-valuemin", param.min);
      el.setAttribute("aria-valuemax", param.max);
      el.dataset.param = param.name;
      const svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("viewBox", "0 0 52 52");
      const track = document.createElementNS(SVG, "path");
      track.setAttribute("class", "track");
      track.setAttribute("d", arc(1));
      this.arc = document.createElementNS(SVG, "path");
      this.arc.setAttribute("class", "value");
      svg.append(track, this.arc);
      this.num = document.createElement("span");
      this.num.className = "num";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = label;
      el.append(svg, this.num, name);
      el.addEventListener("keydown", (e) => this.key(e));
      el.addEventListener("pointerdown", (e) => this.down(e));
      el.addEventListener("dblclick", () => this.turnTo(param.default));
      this.show(param.default);
    }
    show(v) {
      this.value = v;
      const pos = Math.min(1, Math.max(0, toPos(this.p, v)));
      this.arc.setAttribute("d", pos > 0.002 ? arc(pos) : "");
      this.num.textContent = fmt(v);
      this.el.setAttribute("aria-valuenow", v);
      this.el.setAttribute("aria-valuetext", this.p.unit ? `${fmt(v)} ${this.p.unit}` : fmt(v));
    }
    turnTo(v) {
      v = Math.min(this.p.max, Math.max(this.p.min, v));
      this.show(v);
      this.turned = performance.now(); // the host's older values wait a moment (app's choice)
      this.onChange(v);
    }
    key(e) {
      const step = { ArrowUp: 0.01, ArrowRight: 0.01, ArrowDown: -0.01, ArrowLeft: -0.01,
                     PageUp: 0.1, PageDown: -0.1 }[e.key];
      const pos = toPos(this.p, this.value);
      if (step !== undefined) this.turnTo(fromPos(this.p, pos + step));
      else if (e.key === "Home") this.turnTo(this.p.min);
      else if (e.key === "End") this.turnTo(this.p.max);
      else return;
      e.preventDefault();
    }
    down(e) {
      const y0 = e.clientY, pos0 = toPos(this.p, this.value);
      this.el.setPointerCapture(e.pointerId);
      const move = (m) => this.turnTo(fromPos(this.p, pos0 + (y0 - m.clientY) / 160));
      const up = () => {
        this.el.removeEventListener("pointermove", move);
        this.el.removeEventListener("pointerup", up);
        this.el.removeEventListener("pointercancel", up);
      };
      this.el.addEventListener("pointermove", move);
      this.el.addEventListener("pointerup", up);
      this.el.addEventListener("pointercancel", up);
      e.preventDefault();
    }
  }

  function clear(canvas) {
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, canvas.width, canvas.height);
    return g;
  }

  // The amplitude envelope as it sounds for a note held 0.4 s (or its attack and decay,
  // when longer): attack, decay to the sustain level, release.
  function drawEnvelope(canvas, v) {
    const g = clear(canvas), w = canvas.width, h = canvas.height, pad = 6;
    const a = v.attack_s ?? 0, d = v.decay_s ?? 0, s = v.sustain ?? 1, r = v.release_s ?? 0;
    const hold = Math.max(0.4, a + d) - a - d;
    const total = a + d + hold + r || 1;
    const curve = v.env_curve ?? 0;
    const top = 20; // the values' line above the drawing
    const X = (t) => pad + (w - 2 * pad) * t / total, Y = (y) => h - pad - (h - pad - top) * y;
    const pts = [];
    const seg = (t0, t1, y0, y1) => {
      for (let i = 0; i <= 24; i++) {
        const f = i / 24, k = curve > 0 ? Math.pow(f, 1 + curve * 2) : f;
        pts.push([X(t0 + (t1 - t0) * f), Y(y0 + (y1 - y0) * (y1 < y0 ? 1 - Math.pow(1 - f, 1 + Math.abs(curve) * 2) : k))]);
      }
    };
    seg(0, a, 0, 1);
    seg(a, a + d, 1, s);
    seg(a + d, a + d + hold, s, s);
    seg(a + d + hold, total, s, 0);
    g.strokeStyle = "#3a3f4c";
    g.beginPath(); g.moveTo(X(a + d + hold), top); g.lineTo(X(a + d + hold), h - pad); g.stroke();
    g.strokeStyle = "#f2a541";
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
    g.stroke();
    g.fillStyle = "#9aa0ad";
    g.font = "11px system-ui, sans-serif";
    g.fillText(`A ${fmt(a)} s  D ${fmt(d)} s  S ${fmt(s)}  R ${fmt(r)} s`, pad, 14);
  }

  // The carrier's 32 harmonics in dB (-80..0): held levels as bars, onset as an outline;
  // ``pick`` marks the harmonic the keyboard edits.
  function drawSpectrum(canvas, held, onset, pick) {
    const g = clear(canvas), w = canvas.width, h = canvas.height, n = held.length;
    const bw = w / n, Y = (db) => h * Math.min(1, Math.max(0, -db / 80));
    for (let i = 0; i < n; i++) {
      g.fillStyle = i === pick ? "#f2a541" : "#5fb3d9";
      g.fillRect(i * bw + 1, Y(held[i]), bw - 2, h - Y(held[i]));
    }
    g.strokeStyle = "#e8e9ed";
    g.lineWidth = 1.5;
    g.beginPath();
    onset.forEach((db, i) => (i ? g.lineTo(i * bw + bw / 2, Y(db)) : g.moveTo(bw / 2, Y(db))));
    g.stroke();
  }

  // Which harmonic (0-based) and level (dB) a point of the spectrum's canvas means.
  function spectrumAt(canvas, e, n) {
    const r = canvas.getBoundingClientRect();
    const i = Math.min(n - 1, Math.max(0, Math.floor((e.clientX - r.left) / r.width * n)));
    const db = Math.min(0, Math.max(-80, -80 * (e.clientY - r.top) / r.height));
    return [i, db];
  }

  return { Knob, drawEnvelope, drawSpectrum, spectrumAt, fmt };
})();
