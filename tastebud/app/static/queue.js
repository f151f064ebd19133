/* tastebud app: the device's storage and its feedback queue, shared by the page and the
 * service worker (a classic script: the worker loads it with importScripts).
 *
 * Every event gets its event_id here, on the device, and is written to IndexedDB before
 * anything else is done with it. `flush` sends the queue in batches; it runs under a Web Lock
 * so the page, the worker's sync event, its timer and its start never send at once. The
 * server stores each event_id once, so an event whose answer was lost is simply sent again.
 *
 * Answers, per event: accepted or duplicate -> removed; rejected -> moved to the "rejected"
 * list the listener sees (except `store_unavailable`: the server keeps those and so do we).
 * Per request: 401/403 -> the key is marked refused and the queue waits for a new key;
 * 429, 5xx and network errors -> retried with exponential backoff; another 4xx of a batch ->
 * its events are sent one by one so only the culprit is rejected.
 */
(function (global) {
  "use strict";

  const DB_NAME = "tastebud";
  const DB_VERSION = 1;
  const BATCH = 100;
  const REJECTED_KEEP = 50;
  const PUSH_ERRORS_KEEP = 10;
  const LOCK = "tastebud-queue-flush";
  const BACKOFF_BASE_MS = 1000;
  const BACKOFF_CAP_MS = 5 * 60 * 1000;
  const DEFAULT_LIMITS = { max_events: 500, max_age_seconds: 7 * 86400 };
  // Triggers that mean "try now", whatever the backoff says.
  const URGENT = new Set(["online", "sync", "new-key", "manual", "page-start"]);

  let opening = null;

  function openDb() {
    if (!opening) {
      opening = new Promise((resolve, reject) => {
        const request = indexedDB.open(DB_NAME, DB_VERSION);
        request.onupgradeneeded = () => {
          const db = request.result;
          for (const name of ["queue", "rejected"]) {
            if (!db.objectStoreNames.contains(name)) {
              db.createObjectStore(name, { autoIncrement: true });
            }
          }
          if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta");
        };
        request.onsuccess = () => {
          const db = request.result;
          db.onversionchange = () => {
            db.close();
            opening = null;
          };
          resolve(db);
        };
        request.onerror = () => {
          opening = null;
          reject(request.error);
        };
      });
    }
    return opening;
  }

  function done(request) {
    return new Promise((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  /* Run `work(stores)` in one transaction; resolves with its result once committed. */
  async function transact(names, mode, work) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(names, mode);
      const stores = {};
      for (const name of names) stores[name] = tx.objectStore(name);
      let result;
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
      Promise.resolve()
        .then(() => work(stores))
        .then(
          (value) => {
            result = value;
          },
          (error) => {
            try {
              tx.abort();
            } catch (_) {
              /* already finished */
            }
            reject(error);
          },
        );
    });
  }

  const getMeta = (key) => transact(["meta"], "readonly", (s) => done(s.meta.get(key)));
  const setMeta = (key, value) =>
    transact(["meta"], "readwrite", (s) => done(s.meta.put(value, key)));

  async function updateStats(meta, changes) {
    const stats = (await done(meta.get("stats"))) || {};
    for (const [name, add] of Object.entries(changes)) stats[name] = (stats[name] || 0) + add;
    meta.put(stats, "stats");
  }

  function limitsOf(config) {
    const queue = (config && config.queue) || {};
    return {
      max_events: Number(queue.max_events) > 0 ? Number(queue.max_events) : DEFAULT_LIMITS.max_events,
      max_age_seconds:
        Number(queue.max_age_seconds) > 0 ? Number(queue.max_age_seconds) : DEFAULT_LIMITS.max_age_seconds,
    };
  }

  function newEvent(userId, itemId, eventType, value, context) {
    const event = {
      event_id: "app-" + crypto.randomUUID(),
      user_id: userId,
      item_id: itemId,
      event_type: eventType,
      timestamp: new Date().toISOString(),
      context: Object.assign({ source: "app" }, context || {}),
    };
    if (value !== null && value !== undefined) event.value = value;
    return event;
  }

  function isEvent(event) {
    return (
      !!event &&
      typeof event === "object" &&
      ["event_id", "user_id", "item_id", "event_type", "timestamp"].every(
        (field) => typeof event[field] === "string" && event[field].length > 0,
      )
    );
  }

  function problemOf(entry) {
    if (!entry || typeof entry !== "object") return "the stored entry is not an object";
    if (entry.v !== 1) return "the stored entry has an unknown format";
    if (typeof entry.queued_at !== "number") return "the stored entry has no queue time";
    if (!isEvent(entry.event)) return "the stored event lacks an id, user, item, type or time";
    return null;
  }

  function rejectedRecord(entry, reasons, message) {
    const event = entry && isEvent(entry.event) ? entry.event : null;
    let raw = "";
    if (!event) {
      try {
        raw = JSON.stringify(entry).slice(0, 200);
      } catch (_) {
        raw = String(entry).slice(0, 200);
      }
    }
    return {
      event_id: event ? event.event_id : null,
      event,
      raw,
      reasons,
      message: message || "",
      rejected_at: Date.now(),
    };
  }

  async function trimRejected(rejected) {
    let extra = (await done(rejected.count())) - REJECTED_KEEP;
    if (extra <= 0) return;
    const keys = await done(rejected.getAllKeys(null, extra));
    for (const key of keys) rejected.delete(key);
  }

  /* Write the event first; then apply the count limit (oldest dropped, counted). */
  async function enqueue(event) {
    await transact(["queue", "meta"], "readwrite", async (s) => {
      s.queue.add({ v: 1, event, queued_at: Date.now() });
      const limits = limitsOf(await done(s.meta.get("config")));
      const extra = (await done(s.queue.count())) - limits.max_events;
      let dropped = 0;
      if (extra > 0) {
        const keys = await done(s.queue.getAllKeys(null, extra));
        for (const key of keys) s.queue.delete(key);
        dropped = keys.length;
      }
      await updateStats(s.meta, { queued: 1, dropped_full: dropped });
    });
    return event;
  }

  /* Corrupt entries to the rejected list; entries past the age limit and beyond the count
   * limit dropped (oldest first) and counted. */
  async function tidy(limits) {
    const now = Date.now();
    return transact(["queue", "rejected", "meta"], "readwrite", async (s) => {
      const keys = await done(s.queue.getAllKeys());
      const values = await done(s.queue.getAll());
      let corrupt = 0;
      let old = 0;
      const kept = [];
      keys.forEach((key, index) => {
        const entry = values[index];
        const problem = problemOf(entry);
        if (problem) {
          s.rejected.add(rejectedRecord(entry, ["corrupt_entry"], problem));
          s.queue.delete(key);
          corrupt += 1;
        } else if (now - entry.queued_at > limits.max_age_seconds * 1000) {
          s.queue.delete(key);
          old += 1;
        } else {
          kept.push(key);
        }
      });
      const extra = kept.length - limits.max_events;
      for (const key of kept.slice(0, Math.max(0, extra))) s.queue.delete(key);
      await updateStats(s.meta, {
        corrupt,
        dropped_old: old,
        dropped_full: Math.max(0, extra),
      });
      if (corrupt) await trimRejected(s.rejected);
      return { corrupt, old };
    });
  }

  async function peek(count) {
    return transact(["queue"], "readonly", async (s) => {
      const keys = await done(s.queue.getAllKeys(null, count));
      const values = await done(s.queue.getAll(null, count));
      return keys.map((key, index) => ({ key, value: values[index] }));
    });
  }

  /* Remove what the server has, move what it rejected, in one transaction. */
  async function settle(storedKeys, rejections) {
    if (!storedKeys.length && !rejections.length) return;
    await transact(["queue", "rejected", "meta"], "readwrite", async (s) => {
      for (const key of storedKeys) s.queue.delete(key);
      for (const { entry, reasons, message } of rejections) {
        s.queue.delete(entry.key);
        s.rejected.add(rejectedRecord(entry.value, reasons, message));
      }
      await updateStats(s.meta, { sent: storedKeys.length, rejected: rejections.length });
      if (rejections.length) await trimRejected(s.rejected);
    });
  }

  async function backOff(retryAfterSeconds) {
    const state = (await getMeta("backoff")) || { failures: 0, next_at: 0 };
    const failures = state.failures + 1;
    const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (failures - 1));
    const jittered = delay / 2 + Math.random() * (delay / 2);
    const wait = Math.max(jittered, (Number(retryAfterSeconds) || 0) * 1000);
    await setMeta("backoff", { failures, next_at: Date.now() + wait });
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch (_) {
      return null;
    }
  }

  function apiUrl(path) {
    return new URL(path, global.location.origin).href;
  }

  async function post(auth, events) {
    return fetch(apiUrl("/v1/events"), {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-API-Key": auth.api_key },
      body: JSON.stringify({ events }),
      cache: "no-store",
    });
  }

  /* Send one batch; returns {sent} or {stop: true, status, ...}. */
  async function sendBatch(auth, entries) {
    let response;
    try {
      response = await post(
        auth,
        entries.map((entry) => entry.value.event),
      );
    } catch (error) {
      await backOff();
      return { stop: true, status: "offline", detail: String(error) };
    }
    const status = response.status;
    if (status === 202 || status === 422) {
      const document = await readJson(response);
      if (!document || !Array.isArray(document.results)) {
        await backOff();
        return { stop: true, status: "retrying", detail: `unreadable answer (${status})` };
      }
      const stored = [];
      const rejections = [];
      let kept = 0;
      for (const result of document.results) {
        const entry = entries[result.index];
        if (!entry) continue;
        if (result.status === "accepted" || result.status === "duplicate") {
          stored.push(entry.key);
        } else if ((result.reasons || []).includes("store_unavailable")) {
          kept += 1; // the server holds it for a retry; we keep it too
        } else {
          rejections.push({ entry, reasons: result.reasons || ["rejected"], message: result.message });
        }
      }
      await settle(stored, rejections);
      if (kept) {
        await backOff();
        return { stop: true, status: "retrying", detail: "the server's store is unavailable" };
      }
      return { sent: stored.length };
    }
    if (status === 401 || status === 403) {
      const document = await readJson(response);
      const code = (document && document.error && document.error.code) || `http_${status}`;
      const message = (document && document.error && document.error.message) || "";
      await setMeta("auth", Object.assign({}, auth, { status: "refused", code, message }));
      return { stop: true, status: "key-refused", code, message };
    }
    if (status === 429 || status >= 500 || status < 400) {
      await backOff(response.headers.get("Retry-After"));
      return { stop: true, status: "retrying", detail: `HTTP ${status}` };
    }
    // Another 4xx for the whole request: find the event it is about.
    if (entries.length > 1) {
      let sent = 0;
      for (const entry of entries) {
        const outcome = await sendBatch(auth, [entry]);
        if (outcome.stop) return outcome;
        sent += outcome.sent;
      }
      return { sent };
    }
    const document = await readJson(response);
    const error = (document && document.error) || {};
    await settle([], [{ entry: entries[0], reasons: [error.code || `http_${status}`], message: error.message }]);
    return { sent: 0 };
  }

  let listeners = [];

  async function announce(result) {
    const summary = Object.assign(await summarize(), result);
    for (const listener of listeners) {
      try {
        listener(summary);
      } catch (_) {
        /* a listener's failure is its own */
      }
    }
    return summary;
  }

  async function flushLocked(reason) {
    const auth = await getMeta("auth");
    if (!auth || !auth.api_key) return announce({ status: "signed-out", reason });
    if (auth.status === "refused") return announce({ status: "key-refused", reason });
    const backoff = (await getMeta("backoff")) || { failures: 0, next_at: 0 };
    if (!URGENT.has(reason) && Date.now() < backoff.next_at) {
      return announce({ status: "waiting", reason, next_at: backoff.next_at });
    }
    // Not gated on an urgent trigger: the worker may learn of the network a moment after the
    // page does, and a fetch that fails offline costs nothing.
    if (!URGENT.has(reason) && global.navigator && global.navigator.onLine === false) {
      return announce({ status: "offline", reason });
    }
    await tidy(limitsOf(await getMeta("config")));
    let sent = 0;
    for (;;) {
      const entries = await peek(BATCH);
      if (!entries.length) break;
      const outcome = await sendBatch(auth, entries);
      if (outcome.stop) return announce(Object.assign({ reason, sent }, outcome));
      sent += outcome.sent;
    }
    await setMeta("backoff", { failures: 0, next_at: 0 });
    await setMeta("last_sync", Date.now());
    await sendPendingSubscription();
    return announce({ status: "synced", reason, sent });
  }

  /* Send the queue now (one sender at a time, across the page and the worker). */
  function flush(reason) {
    const run = () => flushLocked(reason || "manual");
    if (global.navigator && global.navigator.locks) {
      return global.navigator.locks.request(LOCK, run);
    }
    return run();
  }

  async function summarize() {
    return transact(["queue", "rejected", "meta"], "readonly", async (s) => ({
      pending: await done(s.queue.count()),
      rejected: await done(s.rejected.getAll()),
      stats: (await done(s.meta.get("stats"))) || {},
      auth_status: ((await done(s.meta.get("auth"))) || {}).status || null,
      last_sync: (await done(s.meta.get("last_sync"))) || null,
      push_errors: (await done(s.meta.get("push_errors"))) || [],
    }));
  }

  async function clearRejected() {
    await transact(["rejected"], "readwrite", (s) => done(s.rejected.clear()));
  }

  async function recordPushError(problem, raw) {
    await transact(["meta"], "readwrite", async (s) => {
      const errors = (await done(s.meta.get("push_errors"))) || [];
      errors.push({ problem, raw: String(raw || "").slice(0, 200), at: Date.now() });
      s.meta.put(errors.slice(-PUSH_ERRORS_KEEP), "push_errors");
    });
  }

  /* A subscription waiting to reach the server (opt-in, or pushsubscriptionchange). */
  async function sendPendingSubscription() {
    const pending = await getMeta("push_pending");
    const auth = await getMeta("auth");
    if (!pending || !auth || !auth.api_key || auth.status === "refused") return null;
    let response;
    try {
      response = await fetch(apiUrl("/v1/push/subscriptions"), {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-API-Key": auth.api_key },
        body: JSON.stringify({
          user_id: auth.user_id,
          subscription: pending.subscription,
          timezone: pending.timezone || null,
          replaces: pending.replaces || null,
        }),
      });
    } catch (_) {
      return null; // tried again on the next flush
    }
    if (response.ok) {
      await setMeta("push", { endpoint: pending.subscription.endpoint, at: Date.now() });
      await setMeta("push_pending", null);
      return true;
    }
    if (response.status >= 400 && response.status < 500 && response.status !== 429) {
      const document = await readJson(response);
      await setMeta("push_pending", null);
      await recordPushError(
        "the server refused the subscription: " +
          ((document && document.error && document.error.message) || `HTTP ${response.status}`),
        "",
      );
      return false;
    }
    return null;
  }

  function base64UrlToBytes(text) {
    const padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(padded);
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  }

  global.TB = {
    openDb,
    getMeta,
    setMeta,
    newEvent,
    enqueue,
    flush,
    summarize,
    clearRejected,
    recordPushError,
    sendPendingSubscription,
    base64UrlToBytes,
    limitsOf,
    onStatus(listener) {
      listeners.push(listener);
    },
  };
})(self);
