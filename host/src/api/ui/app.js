// The pymanager dashboard: shows every process live from the API's event stream and acts on
// them through the same API any other client uses. A plain ES module with no build step and
// no dependency. Text from the server (names, commands, output, messages) only ever enters
// the page as text nodes, never as markup.

const TOKEN_KEY = 'pymanager.token';
/** Lines asked for when a log is opened; the server keeps at most 1000. */
const LOG_TAIL = 200;
/** Lines the page keeps per log; older ones are dropped as new ones arrive. */
const LOG_KEEP = 2000;
/** The server sends a comment every 15 s on a quiet stream: this much silence means the
 * connection died without telling us (a suspended laptop, a dropped network). */
const QUIET_LIMIT_MS = 45_000;
/** Pauses between reconnection attempts; the last one repeats. */
const RETRY_MS = [500, 1000, 2000, 4000, 8000];
/** Lifecycle words during which a command started by someone else is still under way. */
const TRANSITIONAL = new Set(['stopping', 'verifying', 'starting', 'restarting']);
const ING = { restart: 'Restart', stop: 'Stop', start: 'Start' };
const SIGNALS = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE',
  9: 'SIGKILL', 10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM',
  15: 'SIGTERM',
};

/**
 * Server-sent events from a text stream delivered in arbitrary chunks: lines end in LF, CRLF
 * or CR (a CR that ends a chunk ends its line at once; an LF starting the next chunk is then
 * its pair), a blank line dispatches the event, lines starting with a colon are comments
 * (keep-alives).
 */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.rest = '';
    this.afterCR = false;
    this.name = '';
    this.data = [];
  }

  push(text) {
    if (!text) return;
    let start = this.afterCR && text[0] === '\n' ? 1 : 0;
    this.afterCR = false;
    let partial = this.rest;
    for (let i = start; i < text.length; i++) {
      const c = text[i];
      if (c !== '\n' && c !== '\r') continue;
      this.line(partial + text.slice(start, i));
      partial = '';
      if (c === '\r') {
        if (i + 1 === text.length) this.afterCR = true;
        else if (text[i + 1] === '\n') i++;
      }
      start = i + 1;
    }
    this.rest = partial + text.slice(start);
  }

  line(l) {
    if (l === '') {
      if (this.data.length) this.onEvent(this.name || 'message', this.data.join('\n'));
      this.name = '';
      this.data = [];
      return;
    }
    if (l[0] === ':') return;
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') this.name = value;
    else if (field === 'data') this.data.push(value);
  }
}

/** Splits a text stream into lines (LF or CRLF); a last line without its end waits. */
export class LineSplitter {
  constructor(onLines) {
    this.onLines = onLines;
    this.rest = '';
  }

  push(text) {
    const parts = (this.rest + text).split('\n');
    this.rest = parts.pop();
    if (parts.length) this.onLines(parts.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l)));
  }

  flush() {
    if (this.rest) this.onLines([this.rest]);
    this.rest = '';
  }
}

/** An error answer of the API: its status and the message of its error body. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const $ = (id) => document.getElementById(id);

const state = {
  phase: null,
  /** id -> process, in the API's `/api/v1/` shape */
  processes: new Map(),
  /** id -> the row's elements */
  rows: new Map(),
  /** id -> {own, text}: a command under way (ours, or someone else's as a 409 told us) */
  busy: new Map(),
  /** id -> the message of the last command that failed on it */
  notes: new Map(),
  /** id of the process whose log is followed */
  selected: null,
  live: false,
  /** set while the page waits for a token: nothing is fetched meanwhile */
  locked: false,
  /** bumped on each (re)start of the connection loop, so an old loop knows to stop */
  generation: 0,
};

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

async function failure(res) {
  let message = `${res.status} ${res.statusText}`.trim();
  try {
    const body = await res.json();
    if (body && body.error && typeof body.error.message === 'string') message = body.error.message;
  } catch {
    // Not the API's error body (a proxy's page?): the status line says enough.
  }
  return new ApiError(res.status, message);
}

/** One API request; rejects with an ApiError for any answer but 2xx. */
async function call(method, path, signal) {
  let res;
  try {
    res = await fetch(path, { method, headers: authHeaders(), cache: 'no-store', signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'The manager cannot be reached.');
  }
  if (!res.ok) throw await failure(res);
  return res;
}

/**
 * Reads a response body as text until it ends, handing each chunk to `onText`. Aborts
 * `ctl` after QUIET_LIMIT_MS without a byte when `watch` is set.
 */
async function pump(res, onText, ctl, watch) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let timer = 0;
  const arm = () => {
    if (!watch) return;
    clearTimeout(timer);
    timer = setTimeout(() => ctl.abort(), QUIET_LIMIT_MS);
  };
  arm();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      arm();
      onText(value);
    }
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the connection -------------------------------------------------------------------

let eventsCtl = null;

/** Follows the event stream, reconnecting after each drop, until a newer loop replaces it
 * or the page waits for a token. */
async function connect() {
  const generation = ++state.generation;
  eventsCtl?.abort();
  let attempt = 0;
  while (generation === state.generation && !state.locked) {
    const ctl = new AbortController();
    eventsCtl = ctl;
    let why = '';
    try {
      const res = await call('GET', '/api/v1/events', ctl.signal);
      // The stream is subscribed once its answer arrived: read the list now, and every
      // change after it comes as an event.
      attempt = 0;
      setLive(true);
      refresh();
      followLog();
      const parser = new SseParser(onEvent);
      await pump(res, (t) => parser.push(t), ctl, true);
      why = 'The connection ended.';
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        askForToken(e.message);
        return;
      }
      why = e instanceof ApiError ? e.message : 'The connection was lost.';
    } finally {
      ctl.abort();
    }
    if (generation !== state.generation || state.locked) return;
    // The manager said it is going away: whatever answers on its port next is not it, and
    // must not be sent the token. Reloading the page starts again.
    if (shuttingDown()) {
      setLive(false, 'The manager has shut down; reload the page once it runs again.');
      return;
    }
    const wait = RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)];
    setLive(false, `${why} Reconnecting in ${Math.ceil(wait / 1000)} s…`);
    await sleep(wait);
  }
}

/** Reads the whole list (after connecting, and when the stream says we missed events). */
async function refresh() {
  try {
    const body = await (await call('GET', '/api/v1/processes')).json();
    setProcesses(body.processes);
  } catch (e) {
    if (e.status === 401) askForToken(e.message);
    else if (e.name !== 'AbortError') showAlert(`Cannot read the processes: ${e.message}`);
  }
}

function onEvent(name, data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return;
  }
  switch (name) {
    case 'phase':
      setPhase(msg.phase);
      break;
    case 'process':
      upsert(msg.process);
      renderSummary();
      break;
    case 'startup-failed':
      showAlert(`Start-up failed: ${msg.message}`);
      break;
    case 'lagged':
      refresh();
      break;
    default:
      // An event this page does not know yet: nothing to show.
      break;
  }
}

function setLive(live, text) {
  state.live = live;
  const el = $('connection');
  el.dataset.state = live ? 'live' : 'down';
  el.textContent = live ? 'Live' : `Disconnected. ${text}`;
  $('main').classList.toggle('stale', !live);
  for (const id of state.rows.keys()) renderRow(id);
  renderShutdown();
}

// ---- the token ------------------------------------------------------------------------

function askForToken(message) {
  state.locked = true;
  eventsCtl?.abort();
  logCtl?.abort();
  const form = $('token-form');
  $('token-error').textContent = token() ? message : '';
  form.hidden = false;
  $('connection').dataset.state = 'down';
  $('connection').textContent = 'Waiting for the token.';
  $('main').classList.add('stale');
  $('token').focus();
}

function onTokenSubmit(ev) {
  ev.preventDefault();
  const value = $('token').value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $('token').value = '';
  $('token-form').hidden = true;
  $('forget-token').hidden = false;
  state.locked = false;
  $('connection').dataset.state = 'connecting';
  $('connection').textContent = 'Connecting…';
  connect();
}

// ---- processes ------------------------------------------------------------------------

function setPhase(phase) {
  state.phase = phase;
  const el = $('phase');
  el.textContent = phase;
  el.dataset.phase = phase;
  renderShutdown();
  for (const id of state.rows.keys()) renderRow(id);
}

function shuttingDown() {
  return state.phase === 'shutdown' || state.phase === 'force shutdown';
}

function setProcesses(list) {
  const seen = new Set();
  for (const p of list) {
    seen.add(p.id);
    upsert(p);
  }
  for (const id of [...state.rows.keys()]) {
    if (!seen.has(id)) {
      state.rows.get(id).tr.remove();
      state.rows.delete(id);
      state.processes.delete(id);
    }
  }
  $('empty').hidden = state.processes.size > 0;
  renderSummary();
}

function upsert(p) {
  const before = state.processes.get(p.id);
  state.processes.set(p.id, p);
  const busy = state.busy.get(p.id);
  // Someone else's command is over once the process settles.
  if (busy && !busy.own && !TRANSITIONAL.has(p.lifecycle)) state.busy.delete(p.id);
  if (!state.rows.has(p.id)) addRow(p);
  renderRow(p.id);
  if (!before) $('empty').hidden = true;
}

/** The tone a lifecycle word is drawn in; unknown words get a neutral one. */
export function tone(p) {
  switch (p.lifecycle) {
    case 'ready':
      return 'ok';
    case 'verifying':
    case 'starting':
    case 'stopping':
    case 'restarting':
    case 'backing-off':
      return 'progress';
    case 'pending':
    case 'waiting':
    case 'stopped':
      return 'idle';
    case 'exited':
      return p.exit_code === 0 ? 'idle' : 'bad';
    case 'failed':
      return 'bad';
    case 'unhealthy':
      return 'warn';
    default:
      return 'neutral';
  }
}

function renderSummary() {
  const counts = new Map([['ready', 0], ['verifying', 0], ['exited', 0], ['failed', 0]]);
  for (const p of state.processes.values()) {
    counts.set(p.lifecycle, (counts.get(p.lifecycle) || 0) + 1);
  }
  const el = $('summary');
  el.replaceChildren();
  const total = state.processes.size;
  el.append(`${total} ${total === 1 ? 'process' : 'processes'}: `);
  let first = true;
  for (const [word, n] of counts) {
    if (!first) el.append(' · ');
    first = false;
    const chip = document.createElement('span');
    chip.className = 'count';
    chip.dataset.lifecycle = word;
    const b = document.createElement('b');
    b.textContent = String(n);
    // "running" reads better than "ready" in a summary; the rows show the API's word.
    chip.append(b, ` ${word === 'ready' ? 'running' : word}`);
    if (word === 'ready') chip.title = 'running, and verified if they have a verifier (ready)';
    el.append(chip);
  }
}

const SVG = 'http://www.w3.org/2000/svg';
const RING = ['circle', { cx: 8, cy: 8, r: 6, class: 'ring' }];
const DISC = ['circle', { cx: 8, cy: 8, r: 7, class: 'fill' }];
/** One small drawing per known lifecycle word, so state never relies on colour alone. */
const ICONS = {
  ready: [DISC, ['path', { d: 'M4.8 8.3l2.2 2.2 4.2-4.6', class: 'cut' }]],
  verifying: [['circle', { cx: 8, cy: 8, r: 6, class: 'ring faint' }], ['path', { d: 'M8 2a6 6 0 0 1 6 6', class: 'line spin' }]],
  starting: [['circle', { cx: 8, cy: 8, r: 6, class: 'ring faint' }], ['path', { d: 'M8 2a6 6 0 0 1 6 6', class: 'line spin' }]],
  pending: [RING],
  waiting: [RING, ['path', { d: 'M8 4.8V8l2.4 1.6', class: 'line' }]],
  stopping: [RING, ['rect', { x: 5.5, y: 5.5, width: 5, height: 5, class: 'fill' }]],
  restarting: [['path', { d: 'M13.2 8.6A5.3 5.3 0 1 1 11.4 3.9', class: 'line' }], ['path', { d: 'M12.3 1.4v3.3H9', class: 'line' }]],
  stopped: [['rect', { x: 2.5, y: 2.5, width: 11, height: 11, rx: 2, class: 'fill' }]],
  exited: [RING, ['path', { d: 'M5.2 8h5.6', class: 'line' }]],
  failed: [DISC, ['path', { d: 'M5.5 5.5l5 5M10.5 5.5l-5 5', class: 'cut' }]],
  unhealthy: [['path', { d: 'M8 1.3l7 13.2H1z', class: 'fill' }], ['path', { d: 'M8 6v4M8 12.2v.3', class: 'cut' }]],
  other: [RING, ['circle', { cx: 8, cy: 8, r: 2.5, class: 'fill' }]],
};

function icon(word) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const [tag, attrs] of ICONS[word] || ICONS.other) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    svg.append(el);
  }
  return svg;
}

function cell(label, cls) {
  const td = document.createElement('td');
  td.dataset.label = label;
  if (cls) td.className = cls;
  return td;
}

function button(text, cls) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  if (cls) b.className = cls;
  return b;
}

function addRow(p) {
  const tr = document.createElement('tr');
  tr.dataset.id = String(p.id);
  const th = document.createElement('th');
  th.scope = 'row';
  th.dataset.label = 'Name';
  const name = button('', 'name');
  name.setAttribute('aria-controls', 'log');
  name.setAttribute('aria-pressed', 'false');
  name.addEventListener('click', () => select(p.id));
  const idTag = document.createElement('span');
  idTag.className = 'id-tag';
  const who = document.createElement('span');
  who.className = 'who';
  who.append(name, idTag);
  th.append(who);

  const stateTd = cell('State', 'state');
  const lc = document.createElement('span');
  lc.className = 'lc';
  const lcWord = document.createElement('span');
  lcWord.className = 'lc-word';
  const busy = document.createElement('span');
  busy.className = 'busy';
  const note = document.createElement('span');
  note.className = 'note';
  stateTd.append(lc, busy, note);

  const os = cell('Pid / exit', 'os');
  const uptime = cell('Uptime', 'uptime');
  const restarts = cell('Restarts', 'restarts');
  const verifier = cell('Verifier', 'verifier');
  const commandLine = cell('Command', 'command');
  const code = document.createElement('code');
  commandLine.append(code);

  const actions = cell('Actions', 'actions');
  const group = document.createElement('div');
  group.className = 'buttons';
  const buttons = {};
  for (const verb of ['restart', 'stop', 'start']) {
    const b = button(ING[verb], `act act-${verb}`);
    b.dataset.verb = verb;
    b.addEventListener('click', () => command(p.id, verb));
    buttons[verb] = b;
    group.append(b);
  }
  actions.append(group);

  tr.append(th, stateTd, os, uptime, restarts, verifier, commandLine, actions);
  $('rows').append(tr);
  state.rows.set(p.id, { tr, name, idTag, lc, lcWord, busy, note, os, uptime, restarts, verifier, code, buttons });
}

function osText(p) {
  if (p.pid != null) return `pid ${p.pid}`;
  if (p.exit_code != null) return `exit ${p.exit_code}`;
  if (p.signal != null) return `signal ${p.signal}${SIGNALS[p.signal] ? ` (${SIGNALS[p.signal]})` : ''}`;
  return '—';
}

function uptimeText(p) {
  if (p.state !== 'running' || !p.started_at) return '—';
  const since = Date.parse(p.started_at);
  if (Number.isNaN(since)) return '—';
  let s = Math.max(0, Math.floor((Date.now() - since) / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const two = (n) => String(n).padStart(2, '0');
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${two(m)} min`;
  if (m) return `${m} min ${two(s)} s`;
  return `${s} s`;
}

/** The words a row shows for a process's lifecycle: what it waits for while the start-up
 * holds it back, when its restart policy starts it again, else the API's word. */
export function lifecycleText(p, now = Date.now()) {
  const waits = Object.entries(p.waiting_for || {});
  if (waits.length) return `waiting for ${waits.map(([name, c]) => `${name}: ${c}`).join(', ')}`;
  if (p.lifecycle === 'backing-off' && p.next_attempt) {
    const at = Date.parse(p.next_attempt);
    if (!Number.isNaN(at)) return `restarting in ${Math.max(0, Math.ceil((at - now) / 1000))} s`;
  }
  return p.lifecycle;
}

/** The icon of a process's lifecycle (see ICONS). */
function lifecycleIcon(p) {
  if (p.waiting_for && Object.keys(p.waiting_for).length) return 'waiting';
  if (p.lifecycle === 'backing-off') return 'restarting';
  return ICONS[p.lifecycle] ? p.lifecycle : 'other';
}

/** What the row's note says without a note of the page's own: the error, or the liveness
 * check's failures in a row. */
function processNote(p) {
  if (p.error) return p.error;
  const l = p.liveness;
  if (l && l.failures > 0) {
    return `liveness (${l.type}): ${l.failures} failed in a row${l.message ? `: ${l.message}` : ''}`;
  }
  return '';
}

function renderRow(id) {
  const p = state.processes.get(id);
  const r = state.rows.get(id);
  if (!p || !r) return;
  r.tr.dataset.lifecycle = p.lifecycle;
  r.tr.dataset.state = p.state;
  r.name.textContent = p.name;
  r.name.title = `Show the log of ${p.name}`;
  r.name.setAttribute('aria-pressed', String(state.selected === id));
  r.idTag.textContent = `#${p.id}`;

  const t = tone(p);
  r.lc.className = `lc tone-${t}`;
  r.lc.dataset.lifecycle = p.lifecycle;
  r.lcWord.textContent = lifecycleText(p);
  r.lc.replaceChildren(icon(lifecycleIcon(p)), r.lcWord);

  const busy = state.busy.get(id);
  r.busy.textContent = busy ? busy.text : '';
  r.busy.hidden = !busy;
  r.tr.setAttribute('aria-busy', String(Boolean(busy && busy.own)));
  const note = state.notes.get(id) || processNote(p);
  r.note.textContent = note;
  r.note.hidden = !note;

  r.os.textContent = osText(p);
  r.uptime.textContent = uptimeText(p);
  r.restarts.textContent = String(p.restarts);

  r.verifier.replaceChildren();
  if (p.verifier) {
    const outcome = document.createElement('span');
    outcome.className = 'outcome';
    outcome.dataset.outcome = p.verifier.outcome;
    outcome.textContent = p.verifier.outcome;
    r.verifier.append(outcome);
    r.verifier.title = p.verifier.type;
    if (p.verifier.message) {
      const msg = document.createElement('span');
      msg.className = 'verifier-message';
      msg.textContent = p.verifier.message;
      r.verifier.append(msg);
    }
  } else {
    r.verifier.textContent = '—';
    r.verifier.title = 'no verifier';
  }
  r.code.textContent = p.command;
  r.code.title = p.command;

  const blocked = !state.live || shuttingDown() || Boolean(busy && busy.own);
  const running = p.state === 'running';
  const allowed = { restart: !blocked, stop: !blocked && running, start: !blocked && !running };
  for (const [verb, b] of Object.entries(r.buttons)) {
    // aria-disabled rather than disabled: a button that was just pressed keeps the focus.
    b.setAttribute('aria-disabled', String(!allowed[verb]));
    b.setAttribute('aria-label', `${ING[verb]} ${p.name}`);
  }
}

function tickUptimes() {
  for (const [id, r] of state.rows) {
    const p = state.processes.get(id);
    if (!p) continue;
    r.uptime.textContent = uptimeText(p);
    // The countdown to the next attempt of a process that backs off.
    if (p.lifecycle === 'backing-off') r.lcWord.textContent = lifecycleText(p);
  }
}

// ---- commands -------------------------------------------------------------------------

async function command(id, verb) {
  const p = state.processes.get(id);
  const b = state.rows.get(id)?.buttons[verb];
  if (!p || !b || b.getAttribute('aria-disabled') === 'true') return;
  state.busy.set(id, { own: true, text: `${ING[verb]} under way…` });
  state.notes.delete(id);
  renderRow(id);
  try {
    await call('POST', `/api/v1/processes/${encodeURIComponent(id)}/${verb}`);
    // What changed arrives as events; the answer has nothing newer.
    state.busy.delete(id);
  } catch (e) {
    state.busy.delete(id);
    if (e.status === 401) {
      askForToken(e.message);
    } else if (e.status === 409) {
      state.busy.set(id, { own: false, text: e.message });
    } else {
      state.notes.set(id, e.message);
      showAlert(`${ING[verb]} ${p.name}: ${e.message}`);
    }
  }
  renderRow(id);
}

function renderShutdown() {
  const b = $('shutdown');
  b.setAttribute('aria-disabled', String(!state.live || shuttingDown()));
}

function askShutdown() {
  if ($('shutdown').getAttribute('aria-disabled') === 'true') return;
  $('confirm').returnValue = '';
  $('confirm').showModal();
}

async function onConfirmClose() {
  if ($('confirm').returnValue !== 'shutdown') return;
  try {
    await call('POST', '/api/v1/shutdown');
  } catch (e) {
    if (e.status === 401) askForToken(e.message);
    else showAlert(`Shut down: ${e.message}`);
  }
}

// ---- alerts ---------------------------------------------------------------------------

function showAlert(text) {
  $('alert-text').textContent = text;
  $('alert').hidden = false;
}

// ---- the log --------------------------------------------------------------------------

let logCtl = null;
const logState = { lines: [], shown: 0, filter: '' };

function select(id) {
  if (state.selected === id) return;
  state.selected = id;
  for (const rid of state.rows.keys()) renderRow(rid);
  const p = state.processes.get(id);
  $('logs-of').textContent = p ? `of ${p.name}` : '';
  $('filter').disabled = false;
  followLog();
}

/** Follows the selected process's log from its last lines on; restarted after a reconnect. */
async function followLog() {
  logCtl?.abort();
  const id = state.selected;
  if (id == null || state.locked) return;
  const ctl = new AbortController();
  logCtl = ctl;
  clearLog();
  try {
    const res = await call('GET', `/api/v1/processes/${encodeURIComponent(id)}/logs?lines=${LOG_TAIL}&follow=true`, ctl.signal);
    const lines = new LineSplitter(addLines);
    await pump(res, (t) => lines.push(t), ctl, false);
    lines.flush();
    if (!ctl.signal.aborted) logHint('The log stream ended.');
  } catch (e) {
    if (e.name === 'AbortError' || ctl.signal.aborted) return;
    if (e.status === 401) askForToken(e.message);
    else logHint(`Cannot follow the log: ${e.message}`);
  }
}

function clearLog() {
  logState.lines = [];
  logState.shown = 0;
  $('log').replaceChildren();
  renderLogCount();
}

function logHint(text) {
  const p = document.createElement('p');
  p.className = 'log-hint';
  p.textContent = text;
  $('log').append(p);
}

function matches(text) {
  return !logState.filter || text.toLowerCase().includes(logState.filter);
}

function lineElement(text) {
  const div = document.createElement('div');
  div.className = 'line';
  div.textContent = text;
  return div;
}

function addLines(texts) {
  const log = $('log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  const frag = document.createDocumentFragment();
  // A flood is cut to what is kept before any element is made for it.
  for (const text of texts.length > LOG_KEEP ? texts.slice(-LOG_KEEP) : texts) {
    const line = { text, el: null };
    if (matches(text)) {
      line.el = lineElement(text);
      frag.append(line.el);
      logState.shown++;
    }
    logState.lines.push(line);
  }
  log.append(frag);
  const excess = logState.lines.length - LOG_KEEP;
  if (excess > 0) {
    for (const old of logState.lines.splice(0, excess)) {
      if (old.el) {
        old.el.remove();
        logState.shown--;
      }
    }
  }
  if (atBottom) log.scrollTop = log.scrollHeight;
  renderLogCount();
}

function applyFilter() {
  logState.filter = $('filter').value.trim().toLowerCase();
  const frag = document.createDocumentFragment();
  logState.shown = 0;
  for (const line of logState.lines) {
    line.el = matches(line.text) ? lineElement(line.text) : null;
    if (line.el) {
      frag.append(line.el);
      logState.shown++;
    }
  }
  const log = $('log');
  log.replaceChildren(frag);
  log.scrollTop = log.scrollHeight;
  renderLogCount();
}

function renderLogCount() {
  const n = logState.lines.length;
  $('log-count').textContent = state.selected == null
    ? ''
    : logState.filter
      ? `${logState.shown} of ${n} lines`
      : `${n} ${n === 1 ? 'line' : 'lines'}`;
}

// ---- start ----------------------------------------------------------------------------

function start() {
  $('token-form').addEventListener('submit', onTokenSubmit);
  $('forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
  $('forget-token').hidden = !token();
  $('shutdown').addEventListener('click', askShutdown);
  $('confirm').addEventListener('close', onConfirmClose);
  $('alert-close').addEventListener('click', () => {
    $('alert').hidden = true;
  });
  $('filter').addEventListener('input', applyFilter);
  setInterval(tickUptimes, 1000);
  renderSummary();
  renderShutdown();
  connect();
}

start();
