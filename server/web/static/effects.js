// The effects section: the page's channel's three sends and the global settings, as knobs.
// What they are (address, range, unit) the host says when the socket opens (/web/send,
// /web/effect); their values come with every change, from anywhere (/web/effects: the 12
// settings, then 16 reverb, 16 chorus and 16 delay sends, as /status appends them), and
// with /status four times a second. A knob sends its address's own message, as OSC does:
// /send/reverb 0.4 3, /fx/reverb/room 0.8.
"use strict";

const PSFX = (() => {
  const N_CHANNELS = 16;
  const STATUS_AT = 16; // /status.reply's first effect field (docs/osc.md)
  const HOLD_MS = 400; // a knob just turned keeps its place: the host's older values wait
  const fx = { sends: [], settings: [], knobs: {}, values: null, channel: 1, send: null, built: false };
  const pending = new Map();
  let flushQueued = false;

  const $ = (id) => document.getElementById(id);
  const count = () => fx.settings.length + fx.sends.length * N_CHANNELS;
  const sendAt = (b, ch) => fx.settings.length + b * N_CHANNELS + ch - 1;

  function init(send) { fx.send = send; }

  // -- what the host says --------------------------------------------------------------
  function sendRow([address, bus, min, max, def]) {
    if (fx.sends.some((s) => s.address === address)) return;
    fx.sends.push({ address, name: `${bus}_send`, label: bus, unit: "", min, max, default: def,
                    scale: "lin", offset: 0, perChannel: true });
  }
  function settingRow([address, name, bus, key, unit, min, max, def, scale]) {
    if (fx.settings.some((s) => s.address === address)) return;
    const label = key.replace(/_(ms|s|hz)$/i, "") + (unit ? ` ${unit}` : ""); // "delay ms"
    fx.settings.push({ address, name, bus, label, unit, min, max, default: def, scale, offset: 0 });
  }
  function show(values, force) {
    if (values.length < count()) return;
    fx.values = values.slice(0, count());
    const now = performance.now();
    const put = (k, v) => { if (k && (force || !(now - (k.turned || -1e9) < HOLD_MS))) k.show(v); };
    fx.settings.forEach((s, i) => put(fx.knobs[s.address], fx.values[i]));
    fx.sends.forEach((s, b) => put(fx.knobs[s.address], fx.values[sendAt(b, fx.channel)]));
  }
  function status(s) {
    if (fx.built && s.length >= STATUS_AT + count()) show(s.slice(STATUS_AT, STATUS_AT + count()));
  }

  // -- the knobs -------------------------------------------------------------------------
  function turn(p, v) { // at most one message per knob a frame
    const ch = fx.channel;
    if (fx.values) fx.values[p.perChannel ? sendAt(fx.sends.indexOf(p), ch) : fx.settings.indexOf(p)] = v;
    if (p.perChannel) pending.set(`${p.address} ${ch}`, [p.address, v, ch]);
    else pending.set(p.address, [p.address, v]);
    if (flushQueued) return;
    flushQueued = true;
    requestAnimationFrame(() => {
      flushQueued = false;
      for (const args of pending.values()) fx.send(...args);
      pending.clear();
    });
  }
  function group(title, id) {
    const div = document.createElement("div");
    div.className = "fx-group";
    div.setAttribute("role", "group");
    const h = document.createElement("h3");
    h.id = `h-fx-${id}`;
    h.textContent = title;
    div.setAttribute("aria-labelledby", h.id);
    const knobs = document.createElement("div");
    knobs.className = "knobs";
    div.append(h, knobs);
    $("fx-groups").append(div);
    return knobs;
  }
  function knob(p, into) {
    const k = new PSUI.Knob(p, (v) => turn(p, v));
    k.el.dataset.address = p.address;
    fx.knobs[p.address] = k;
    into.append(k.el);
  }
  function build() {
    if (fx.built || !(fx.sends.length || fx.settings.length)) return;
    fx.built = true;
    $("fx-groups").textContent = "";
    $("effects").classList.remove("placeholder");
    const sends = group("Sends", "sends");
    fx.sends.forEach((p) => knob(p, sends));
    let bus = null, into = null;
    for (const p of fx.settings) {
      if (p.bus !== bus) { bus = p.bus; into = group(bus[0].toUpperCase() + bus.slice(1), bus); }
      knob(p, into);
    }
    setChannel(fx.channel);
  }
  function setChannel(ch) {
    fx.channel = ch;
    const h = $("h-fx-sends");
    if (h) h.textContent = `Sends, channel ${ch}`;
    for (const p of fx.sends) {
      const k = fx.knobs[p.address];
      if (k) k.el.setAttribute("aria-label", `${p.label} send, channel ${ch}`);
    }
    if (fx.values) show(fx.values, true);
  }

  return { init, sendRow, settingRow, show, status, build, setChannel, state: fx };
})();
