// A pymanager verifier written in JavaScript. It provides one verifier:
//
// JsonField -- GETs `url` until its JSON body has `field` equal to `equals`.
//     url      (required) an http:// URL
//     field    (required) a key of the top-level JSON object, e.g. "status"
//     equals   (required) the value it must have, e.g. "ok"
//     timeout  seconds, default 30
//     interval seconds, default 0.5
//
// A body that is not JSON fails the verification at once with the parser's message: a
// service that answers HTML on its health URL is misconfigured, waiting will not help.

import { verifiers, get, sleep, ended, elapsedMs, log, hostError, isPermanent } from './pymanager.js';

const KEYS = ['url', 'field', 'equals', 'timeout', 'interval'];

function check(a) {
  for (const k of Object.keys(a)) {
    if (!KEYS.includes(k)) throw `${k}: unknown argument (expected one of ${KEYS.join(', ')})`;
  }
  for (const k of ['url', 'field', 'equals']) {
    if (!(k in a)) throw `${k}: missing field`;
  }
  if (typeof a.url !== 'string' || !a.url.startsWith('http://')) throw 'url: expected an http:// URL';
  for (const k of ['timeout', 'interval']) {
    if (k in a && (typeof a[k] !== 'number' || !(a[k] >= 0))) throw `${k}: expected a number of seconds, 0 or more`;
  }
  return { timeout: 30, interval: 0.5, ...a };
}

export const verifier = verifiers({
  JsonField: {
    validate(args) {
      check(args);
    },
    async verify(args) {
      const a = check(args);
      for (let attempt = 1; ; attempt++) {
        let why;
        try {
          const r = get(a.url, { timeoutMs: 5000 });
          if (r.status !== 200) {
            why = `${a.url} answered ${r.status}`;
          } else {
            // Throws a SyntaxError for a body that is not JSON: the verification fails with it.
            const got = JSON.parse(r.text())[a.field];
            if (got === a.equals) return;
            why = `${a.field} is ${JSON.stringify(got)}, expected ${JSON.stringify(a.equals)}`;
          }
        } catch (e) {
          if (e instanceof SyntaxError) throw new Error(`${a.url} did not answer JSON (${e.message})`);
          // A host not granted or a bad URL will not change: fail now with the reason.
          if (isPermanent(e)) throw new Error(hostError(e));
          why = hostError(e);
        }
        log.warn(`attempt ${attempt}: ${why}`);
        const end = ended();
        if (end) throw new Error(`process ${end} before ${a.field} was ${JSON.stringify(a.equals)} (last attempt: ${why})`);
        if (elapsedMs() >= a.timeout * 1000) throw new Error(`${why} (gave up after ${a.timeout} s)`);
        if (!(await sleep(a.interval * 1000))) throw new Error(`${why} (pymanager is shutting down)`);
      }
    },
  },
});
