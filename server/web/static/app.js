// The page: the host's own address space over a WebSocket (docs/web.md). Each message is
// an OSC message as JSON, {"address": "/prompt", "args": ["a soft flute", 1]}; the host
// answers, and tells every page of each change (/patch/changed), in the same form.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const state = {
    ws: null, params: [], byName: {}, channels: {}, channel: 1, knobs: {},
    bank: [], bankAt: -1, promptId: 0, morphBusy: false, morphNext: null,
    statusBusy: false, pick: 0, words: {},
    choices: {}, choicesBusy: false, choicesAgain: false, choicesAsked: 0, choicesFor: 1,
  };
  window.promptsynth = state; // for a person at the browser's console, and the tests

  // -- the socket --------------------------------------------------------------------
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = state.ws = new WebSocket(`${proto}://${location.host}/ws${location.search}`);
    ws.onopen = () => setConn("connected", "on");
    ws.onclose = () => {
      setConn("disconnected: trying again", "off");
      state.statusBusy = state.choicesBusy = false;
      setTimeout(connect, 1000);
    };
    ws.onmessage = (e) => {
      let m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      const fn = HANDLERS[m.address];
      if (fn) fn(m.args || []);
    };
  }
  function send(address, ...args) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ address, args }));
  }
  function setConn(text, cls) { const c = $("conn"); c.textContent = text; c.className = "conn " + cls; }
  function log(text, fail) {
    const li = document.createElement("li");
    li.textContent = text;
    if (fail) li.className = "fail";
    const ol = $("log");
    ol.prepend(li);
    while (ol.children.length > 20) ol.lastChild.remove();
  }

  // -- what the host says ------------------------------------------------------------
  const HANDLERS = {
    "/web/param": ([name, unit, min, max, def, scale, offset]) => {
      const p = { name, unit, min, max, default: def, scale, offset };
      if (!state.byName[name]) state.params.push(p);
      state.byName[name] = p;
    },
    "/patch/changed": (a) => {
      const n = state.params.length;
      const ch = a[0], label = a[1], values = a.slice(2, 2 + n), instrument = a[2 + n] || "";
      const vals = {};
      state.params.forEach((p, i) => (vals[p.name] = values[i]));
      state.channels[ch] = { label, instrument, values: vals };
      renderChannelRow(ch);
      if (ch === state.channel) renderPatch();
      if (ch === state.channel && state.bank.includes(label)) showBank(label); // from anywhere: MIDI, OSC
      if (ch === state.channel) askChoices();
    },
    "/web/send": PSFX.sendRow,
    "/web/effect": PSFX.settingRow,
    "/web/effects": (values) => PSFX.show(values),
    "/web/ready": () => {
      buildKnobs();
      PSFX.build();
      renderPatch();
      send("/patch/list");
      send("/midi/list");
      askChoices();
      if (!document.body.dataset.ready) {
        document.body.dataset.ready = "1";
        state.readyMs = performance.now();
      }
    },
    "/prompt/done": ([id, text, ...rest]) => {
      const instrument = rest[rest.length - 1];
      $("picked").textContent = instrument ? `${instrument}` : `ready: ${text}`;
      log(`'${text}': ${instrument || "ready"}`);
    },
    "/prompt/choice": ([ch, text, place, count, instrument]) => {
      if (ch === state.channel) $("picked").textContent = `${place}/${count} ${instrument}`;
      log(`'${text}' ${place}/${count}: ${instrument}`);
    },
    "/prompt/choices.reply": ([ch, text, place, ...names]) => {
      state.choices[ch] = { text, place, names };
      if (ch === state.channel) renderChoices();
      choicesAnswered();
    },
    "/morph/done": ([a, b, t]) => {
      $("morph-out").textContent = `${Math.round(t * 100)}% of the way to '${b}': ready`;
      morphSent();
    },
    "/patch/list.reply": (names) => { state.bank = names; renderBank(); },
    "/patch/loaded": ([name, ch]) => { log(`playing '${name}' on channel ${ch}`); },
    "/patch/saved": ([name, ch]) => { log(`saved '${name}' (channel ${ch})`); send("/patch/list"); },
    "/status.reply": (s) => {
      state.statusBusy = false;
      $("m-voices").textContent = s[0];
      $("m-load").value = Math.min(1, s[2]);
      $("m-load-text").textContent = `${Math.round(100 * s[2])}%`;
      $("m-underruns").textContent = `${s[13] ?? s[1]}` + (s[14] ? ` (+${s[14]} at the device)` : "");
      $("m-latency").textContent = `${s[5].toFixed(1)} ms (headroom ${(s[12] ?? 0).toFixed(1)} ms)`;
      const names = state.midiNames && state.midiNames.length ? `: ${state.midiNames.join(", ")}` : "";
      $("m-midi").textContent = `${s[15] ?? "?"}${names}`;
      if (state.midiCount !== undefined && s[15] !== state.midiCount) send("/midi/list");
      state.midiCount = s[15];
      PSFX.status(s);
    },
    "/midi/list.reply": ([n, ...names]) => { state.midiNames = names.slice(0, n); },
    "/midi/connected": ([name]) => { log(`MIDI input connected: ${name}`); send("/midi/list"); },
    "/midi/lost": ([name]) => { log(`MIDI input lost: ${name}`); send("/midi/list"); },
    "/midi/error": ([source, what]) => log(`MIDI ${source}: ${what}`, true),
    "/fail": ([address, reason]) => {
      if (address === "/status") state.statusBusy = false;
      if (address === "/morph") morphSent();
      if (address === "/prompt/choices") { // no words on the channel (a bank patch), or no model
        delete state.choices[state.choicesFor];
        if (state.choicesFor === state.channel) renderChoices(reason);
        return choicesAnswered();
      }
      if (address === "/prompt" || address.startsWith("/prompt/")) $("picked").textContent = "error";
      log(`${address}: ${reason}`, true);
    },
  };

  // -- channels and words --------------------------------------------------------------
  function renderChannelRow(ch) {
    let li = document.querySelector(`#channels li[data-channel="${ch}"]`);
    if (!li) return;
    const c = state.channels[ch];
    li.querySelector(".label").textContent = c.label;
    li.querySelector(".instrument").textContent = c.instrument;
    if (ch === state.channel) {
      $("picked").textContent = c.instrument || c.label;
      $("patch-label").textContent = c.label;
    }
  }
  function setChannel(ch) {
    state.words[state.channel] = $("prompt").value;
    state.channel = ch;
    $("channel").value = String(ch);
    $("prompt").value = state.words[ch] || "";
    document.querySelectorAll("#channels li").forEach((li) =>
      li.classList.toggle("current", Number(li.dataset.channel) === ch));
    if (state.channels[ch]) renderChannelRow(ch);
    renderChoices();
    askChoices();
    renderPatch();
    PSFX.setChannel(ch);
  }
  function buildChannels() {
    for (let ch = 1; ch <= 16; ch++) {
      const o = document.createElement("option");
      o.value = String(ch); o.textContent = String(ch);
      $("channel").append(o);
      const li = document.createElement("li");
      li.dataset.channel = String(ch);
      li.innerHTML = '<span class="n"></span><span class="label"></span><span class="instrument"></span>';
      li.querySelector(".n").textContent = ch;
      li.addEventListener("click", () => setChannel(ch));
      $("channels").append(li);
    }
    $("channel").addEventListener("change", () => setChannel(Number($("channel").value)));
    $("prompt-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const text = $("prompt").value.trim();
      if (!text) return;
      state.promptId += 1;
      $("picked").textContent = "…";
      send("/prompt", text, state.channel, state.promptId);
    });
    $("next").addEventListener("click", () => send("/prompt/next", state.channel));
    $("prev").addEventListener("click", () => send("/prompt/prev", state.channel));
    arrowKeys($("choices"));
    setChannel(1);
  }

  // -- the words' list of choices: the selected channel's, asked again at each change ----
  function askChoices() { // one /prompt/choices waiting at a time; changes meanwhile ask once more
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return; // /web/ready asks
    if (state.choicesBusy && performance.now() - state.choicesAsked < 3000) {
      state.choicesAgain = true;
      return;
    }
    state.choicesBusy = true;
    state.choicesAgain = false;
    state.choicesAsked = performance.now();
    state.choicesFor = state.channel;
    send("/prompt/choices", state.channel);
  }
  function choicesAnswered() {
    state.choicesBusy = false;
    if (state.choicesAgain) askChoices();
  }
  function renderChoices(why) {
    const ol = $("choices"), c = state.choices[state.channel];
    const focused = ol.contains(document.activeElement) ? document.activeElement.dataset.place : null;
    ol.textContent = "";
    ol.dataset.place = c ? String(c.place) : "";
    $("choices-note").textContent = c ? `for '${c.text}'` + (c.place ? "" : ": none plays now (the channel's own patch)")
      : why === undefined ? "…" : /has no words yet/.test(why) ? "no words on this channel yet" : why;
    if (!c) return;
    c.names.forEach((name, i) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.place = String(i + 1);
      b.textContent = `${i + 1}. ${name}`;
      if (i + 1 === c.place) { b.classList.add("current"); b.setAttribute("aria-current", "true"); }
      b.setAttribute("aria-label", `play ${name} (${i + 1} of ${c.names.length} for '${c.text}')`);
      b.addEventListener("click", () => send("/prompt/choose", i + 1, state.channel));
      li.append(b);
      ol.append(li);
      if (focused === b.dataset.place) b.focus();
    });
  }

  // -- the bank --------------------------------------------------------------------------
  function filtered() {
    const q = $("bank-search").value.trim().toLowerCase();
    return q ? state.bank.filter((n) => n.toLowerCase().includes(q)) : state.bank;
  }
  function renderBank() {
    const ul = $("bank-list");
    ul.textContent = "";
    for (const name of filtered()) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = name;
      b.dataset.name = name;
      if (name === state.bank[state.bankAt]) {
        b.classList.add("current");
        requestAnimationFrame(() => b.scrollIntoView({ block: "nearest" }));
      }
      b.addEventListener("click", () => loadBank(name));
      li.append(b);
      ul.append(li);
    }
  }
  function showBank(name) {
    state.bankAt = state.bank.indexOf(name);
    $("bank-current").textContent = name;
    renderBank();
  }
  function loadBank(name) {
    showBank(name);
    send("/patch/load", name, state.channel);
  }
  function stepBank(step) {
    // The whole list: the host's own step, as a MIDI button's or Max's (/bank/next).
    if (!$("bank-search").value.trim()) return send(step > 0 ? "/bank/next" : "/bank/prev", state.channel);
    const list = filtered();
    if (!list.length) return;
    const at = list.indexOf(state.bank[state.bankAt]);
    loadBank(list[(at + step + list.length) % list.length]);
  }
  function buildBank() {
    $("bank-search").addEventListener("input", renderBank);
    $("bank-search").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && filtered().length) loadBank(filtered()[0]);
    });
    $("bank-prev").addEventListener("click", () => stepBank(-1));
    $("bank-next").addEventListener("click", () => stepBank(1));
    arrowKeys($("bank-list"));
  }
  function arrowKeys(list) { // the arrows move between a list's buttons
    list.addEventListener("keydown", (e) => {
      const items = [...list.querySelectorAll("button")];
      const i = items.indexOf(document.activeElement);
      if (i < 0 || (e.key !== "ArrowDown" && e.key !== "ArrowUp")) return;
      items[Math.min(items.length - 1, Math.max(0, i + (e.key === "ArrowDown" ? 1 : -1)))].focus();
      e.preventDefault();
    });
  }

  // -- morph: one request to the model at a time, the slider's latest place next -------
  function morph() {
    const args = [$("morph-a").value.trim(), $("morph-b").value.trim(), Number($("morph-t").value), state.channel];
    if (state.morphBusy) { state.morphNext = args; return; }
    state.morphBusy = true;
    $("morph-out").textContent = `${Math.round(args[2] * 100)}%: asking the model…`;
    send("/morph", ...args);
  }
  function morphSent() {
    state.morphBusy = false;
    if (state.morphNext) {
      const next = state.morphNext;
      state.morphNext = null;
      state.morphBusy = true;
      send("/morph", ...next);
    }
  }

  // -- the patch: knobs, envelope, spectrum ----------------------------------------------
  const DRAWN = /^(held|onset)_h\d+$/;
  const pendingParams = {};
  let flushQueued = false;
  function sendParam(name, value) { // at most one message per knob a frame
    pendingParams[name] = value;
    const c = state.channels[state.channel];
    if (c) c.values[name] = value;
    if (flushQueued) return;
    flushQueued = true;
    requestAnimationFrame(() => {
      flushQueued = false;
      for (const [n, v] of Object.entries(pendingParams)) send(`/param/${n}`, v, state.channel);
      for (const n of Object.keys(pendingParams)) delete pendingParams[n];
      drawPatch();
    });
  }
  function buildKnobs() {
    if (Object.keys(state.knobs).length) return;
    for (const p of state.params) {
      if (DRAWN.test(p.name)) continue;
      const k = new PSUI.Knob(p, (v) => sendParam(p.name, v));
      state.knobs[p.name] = k;
      $("knobs").append(k.el);
    }
  }
  function spectra(values) {
    const held = [], onset = [];
    for (let i = 1; i <= 32; i++) { held.push(values[`held_h${i}`] ?? -80); onset.push(values[`onset_h${i}`] ?? -80); }
    return [held, onset];
  }
  function drawPatch() {
    const c = state.channels[state.channel];
    if (!c) return;
    PSUI.drawEnvelope($("envelope"), c.values);
    const [held, onset] = spectra(c.values);
    PSUI.drawSpectrum($("spectrum"), held, onset, document.activeElement === $("spectrum") ? state.pick : -1);
  }
  function renderPatch() {
    const c = state.channels[state.channel];
    if (!c) return;
    for (const [name, k] of Object.entries(state.knobs)) if (c.values[name] !== undefined) k.show(c.values[name]);
    drawPatch();
  }
  function buildSpectrum() {
    const cv = $("spectrum");
    const set = (i, db) => { state.pick = i; sendParam(`held_h${i + 1}`, Math.round(db * 10) / 10); };
    cv.addEventListener("pointerdown", (e) => {
      cv.setPointerCapture(e.pointerId);
      const at = (m) => set(...PSUI.spectrumAt(cv, m, 32));
      at(e);
      cv.onpointermove = at;
      cv.onpointerup = cv.onpointercancel = () => { cv.onpointermove = null; };
    });
    cv.addEventListener("keydown", (e) => {
      const c = state.channels[state.channel];
      if (!c) return;
      const level = c.values[`held_h${state.pick + 1}`] ?? -80;
      if (e.key === "ArrowLeft") state.pick = Math.max(0, state.pick - 1);
      else if (e.key === "ArrowRight") state.pick = Math.min(31, state.pick + 1);
      else if (e.key === "ArrowUp") set(state.pick, Math.min(0, level + 3));
      else if (e.key === "ArrowDown") set(state.pick, Math.max(-80, level - 3));
      else return;
      cv.setAttribute("aria-valuetext", `harmonic ${state.pick + 1}: ${(c.values[`held_h${state.pick + 1}`] ?? -80).toFixed(1)} dB`);
      drawPatch();
      e.preventDefault();
    });
    cv.addEventListener("focus", drawPatch);
    cv.addEventListener("blur", drawPatch);
  }

  // -- meters ------------------------------------------------------------------------------
  function poll() { // /status four times a second, never two waiting
    if (!state.statusBusy && state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.statusBusy = true;
      state.statusAsked = performance.now();
      send("/status");
    } else if (state.statusBusy && performance.now() - state.statusAsked > 3000) {
      state.statusBusy = false; // a reply lost: ask again
    }
  }

  PSFX.init(send);
  buildChannels();
  buildBank();
  buildSpectrum();
  $("morph-t").addEventListener("input", morph);
  $("panic").addEventListener("click", () => send("/panic"));
  setInterval(poll, 250);
  connect();
})();
