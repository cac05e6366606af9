// The glue between a pymanager verifier written in JavaScript and the component model,
// for ComponentizeJS builds. A module lists its verifiers once:
//
//     export const verifier = verifiers({ MyVerifier: { validate(args) {…}, async verify(args) {…} } });
//
// and gets, for every one of them:
// - arguments parsed from JSON (an object, `{}` when the config gives none);
// - any throw — a string, an Error, a TypeError, a stack overflow, a rejected promise —
//   turned into the one-line message pymanager reports (a bare non-string throw would
//   otherwise crash the component instead of failing the verification);
// - async verifiers awaited: the verification passes when the promise fulfils and fails
//   with the reason when it rejects, never the other way round;
// - `false` returned (the original pymanager's convention) read as a failure.
//
// Host calls that fail throw a host error (WIT 1.1.0's `probe`): `hostError(e)` gives its
// message, `isPermanent(e)` says whether trying again cannot help (a host not granted, a
// bad request, pymanager shutting down), so a retry loop can stop at once.

import * as host from 'pymanager:verifier/host@1.2.0';
import * as probe from 'pymanager:verifier/probe@1.2.0';

export { host, probe };

/**
 * The message of anything thrown: a host error's payload, an Error's "Name: message", an
 * object's `message`, any other object or array as JSON (`throw {a: 1}` reads `{"a":1}`,
 * not `[object Object]`), anything else as `String()` gives it.
 */
export function message(e) {
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object') {
    if (typeof e.payload === 'string') return e.payload;
    if (e.payload && typeof e.payload.message === 'string') return e.payload.message;
    if (e instanceof Error || typeof e.message === 'string') {
      const name = e.name && e.name !== 'Error' ? `${e.name}: ` : '';
      return `${name}${e.message}`;
    }
    try {
      const json = JSON.stringify(e);
      if (typeof json === 'string') return json;
    } catch {
      // A cycle or a BigInt inside: shown as String() shows it.
    }
  }
  try {
    return String(e);
  } catch {
    return 'the verifier threw a value that cannot be shown';
  }
}

/** The message of a failed host call (`httpRequest`, `tcpConnect`, …). */
export const hostError = message;

/** The kinds of host error that retrying cannot fix. */
const PERMANENT = new Set(['not-granted', 'bad-request', 'shutting-down']);

/** True when `e` is a host error that the same call cannot get past by trying again. */
export function isPermanent(e) {
  return Boolean(e && e.payload && PERMANENT.has(e.payload.kind));
}

function oneLine(text) {
  return String(text).replace(/[\r\n]+/g, ' ').trim() || 'the verifier failed without a message';
}

function parse(args) {
  let value;
  try {
    value = args && args.trim() ? JSON.parse(args) : {};
  } catch (e) {
    throw `arguments are not valid JSON: ${message(e)}`;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw 'arguments: expected an object';
  }
  return value;
}

function outcome(returned) {
  if (returned === false) throw 'the verifier returned false';
}

/** Runs `fn(args)`; whatever it throws or rejects with becomes a string, as the ABI needs. */
function guarded(fn, args) {
  let returned;
  try {
    returned = fn(parse(args));
  } catch (e) {
    throw oneLine(message(e));
  }
  if (returned && typeof returned.then === 'function') {
    return Promise.resolve(returned).then(outcome).catch((e) => {
      throw oneLine(message(e));
    });
  }
  try {
    outcome(returned);
  } catch (e) {
    throw oneLine(message(e));
  }
  return undefined;
}

/** The `verifier` export of a module providing the verifiers in `table` (name → `{ validate?, verify }`). */
export function verifiers(table) {
  const names = Object.keys(table);
  const find = (name) => {
    const v = Object.prototype.hasOwnProperty.call(table, name) ? table[name] : undefined;
    if (!v) throw `this module has no verifier '${name}' (it provides: ${names.join(', ')})`;
    return v;
  };
  return {
    names: () => names,
    validate: (name, args) => guarded(find(name).validate ?? (() => {}), args),
    verify: (name, args) => guarded(find(name).verify, args),
  };
}

/** Resolves after `ms` milliseconds (false: pymanager is shutting down). */
export function sleep(ms) {
  return Promise.resolve(host.sleep(Math.max(0, Math.round(ms))));
}

/** The supervised process's state: `{ tag: 'running', val: pid }`, `{ tag: 'exited', val: code }`, … */
export function processState() {
  return host.processState();
}

/** A description of the process's end if it has ended ("exited with code 1"), else null. */
export function ended() {
  const s = host.processState();
  if (s.tag === 'exited') return `exited with code ${s.val}`;
  if (s.tag === 'signaled') return `killed by signal ${s.val}`;
  return null;
}

/** `GET url` → `{ status, headers, body: Uint8Array, text() }`; throws a host error. */
export function get(url, { headers = [], timeoutMs = 5000 } = {}) {
  const r = probe.httpRequest({
    method: 'GET',
    url,
    headers: Object.entries(headers instanceof Array ? Object.fromEntries(headers) : headers),
    body: new Uint8Array(),
    timeoutMs,
  });
  return { ...r, text: () => new TextDecoder().decode(r.body) };
}

/** A line in pymanager's log: `log.warn` under `verifier.fail`, `log.info`/`log.debug` under `verifier.verbose`. */
export const log = {
  error: (m) => host.log('error', String(m)),
  warn: (m) => host.log('warn', String(m)),
  info: (m) => host.log('info', String(m)),
  debug: (m) => host.log('debug', String(m)),
};

/** Milliseconds since the verification started. */
export function elapsedMs() {
  return Number(host.elapsedMs());
}
