/* tastebud app: the service worker.
 *
 * - The app shell is cached at install (cache-first, versioned: a new release is a new
 *   cache), so the app opens offline after one online visit.
 * - Lists (/v1 GETs) and config.json: network first; a copy is kept, stamped with
 *   X-Tastebud-Cached-At, and answered when the network is not there.
 * - The feedback queue (queue.js) is sent on Background Sync's `sync` event, and also on the
 *   worker's start, on a message from the page (it comes online, a new event, its timer):
 *   Workbox's fallback, because `sync` only follows the browser's own idea of connectivity
 *   and, after a failure, its retries come minutes apart.
 * - Push: shows the message; a click opens the item in the app and records a `click`.
 */
importScripts("queue.js");

const VERSION = "__TASTEBUD_APP_VERSION__";
const SHELL_CACHE = `tastebud-shell-${VERSION}`;
const LISTS_CACHE = "tastebud-lists";
const SYNC_TAG = "tastebud-feedback";
const SHELL = [
  "./",
  "app.js",
  "queue.js",
  "app.css",
  "manifest.webmanifest",
  "icons/icon-192.png",
  "icons/icon-512.png",
  "icons/icon-maskable-512.png",
];
const CACHED_API = [
  /^\/v1\/users\/.+\/recommendations$/,
  /^\/v1\/items\/.+\/similar$/,
  /^\/v1\/items\/.+$/,
  /^\/v1\/trending$/,
  /^\/v1\/popular$/,
];
const RETRY_STATUSES = new Set(["offline", "retrying"]);

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(SHELL_CACHE)
      .then((cache) => cache.addAll(SHELL.map((path) => new Request(path, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(
        names
          .filter((name) => name.startsWith("tastebud-shell-") && name !== SHELL_CACHE)
          .map((name) => caches.delete(name)),
      );
      await self.clients.claim();
      await TB.flush("sw-start");
    })(),
  );
});

// The worker starts again after being stopped: whatever is queued goes now.
TB.flush("sw-start").catch(() => {});

TB.onStatus((summary) => broadcast({ type: "queue-status", summary }));

async function broadcast(message) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) client.postMessage(message);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || request.method !== "GET") return;
  if (url.pathname === "/app/config.json") {
    event.respondWith(networkFirst(request));
  } else if (url.pathname.startsWith("/app/") && url.pathname !== "/app/sw.js") {
    event.respondWith(shell(request));
  } else if (CACHED_API.some((pattern) => pattern.test(url.pathname))) {
    event.respondWith(networkFirst(request));
  }
});

async function shell(request) {
  const cache = await caches.open(SHELL_CACHE);
  const cached = await cache.match(request, { ignoreSearch: true });
  if (cached) return cached;
  try {
    return await fetch(request);
  } catch (error) {
    if (request.mode === "navigate") {
      const page = await cache.match("./");
      if (page) return page;
    }
    throw error;
  }
}

async function networkFirst(request) {
  const cache = await caches.open(LISTS_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) {
      const headers = new Headers(response.headers);
      headers.set("X-Tastebud-Cached-At", new Date().toISOString());
      const body = await response.clone().blob();
      await cache.put(request, new Response(body, { status: response.status, headers }));
    }
    return response;
  } catch (error) {
    const cached = await cache.match(request);
    if (cached) return cached;
    return new Response(
      JSON.stringify({
        error: { code: "offline", message: "offline, and this list was never loaded online" },
      }),
      { status: 503, headers: { "Content-Type": "application/json", "X-Tastebud-Offline": "1" } },
    );
  }
}

self.addEventListener("sync", (event) => {
  if (event.tag !== SYNC_TAG) return;
  event.waitUntil(
    TB.flush("sync").then((summary) => {
      // Rejecting asks the browser to fire `sync` again later.
      if (RETRY_STATUSES.has(summary.status)) throw new Error(`not sent: ${summary.status}`);
    }),
  );
});

self.addEventListener("message", (event) => {
  const message = event.data || {};
  if (message.type === "flush") {
    event.waitUntil(TB.flush(message.reason || "message"));
  } else if (message.type === "signed-out") {
    event.waitUntil(caches.delete(LISTS_CACHE));
  }
});

/* --- push ---------------------------------------------------------------------------- */

function problemOf(message) {
  if (!message || typeof message !== "object" || Array.isArray(message)) {
    return "the message is not a JSON object";
  }
  if (message.v !== 1) return `unknown message version ${JSON.stringify(message.v)}`;
  for (const field of ["title", "body", "item_id", "url", "push_id"]) {
    if (typeof message[field] !== "string" || !message[field]) return `no ${field}`;
  }
  if (!message.url.startsWith("/app/")) return "the link does not lead into the app";
  return null;
}

async function showPush(data) {
  let message = null;
  let problem = null;
  let raw = "";
  try {
    raw = data ? data.text() : "";
    message = JSON.parse(raw);
  } catch (error) {
    problem = `the message is not JSON (${error.message})`;
  }
  problem = problem || problemOf(message);
  if (problem) {
    await TB.recordPushError(problem, raw);
    // Every push must show something (userVisibleOnly): say plainly what happened.
    await self.registration.showNotification("tastebud", {
      body: "A notification arrived that the app could not read. Open the app for details.",
      tag: "tastebud-push-error",
      icon: "icons/icon-192.png",
      data: { error: true },
    });
    return broadcast({ type: "push-error", problem });
  }
  await self.registration.showNotification(message.title.slice(0, 200), {
    body: message.body.slice(0, 500),
    tag: message.push_id,
    icon: "icons/icon-192.png",
    badge: "icons/icon-192.png",
    data: {
      item_id: message.item_id,
      url: message.url,
      push_id: message.push_id,
      kind: message.kind || null,
    },
  });
  return broadcast({ type: "push-shown", push_id: message.push_id });
}

self.addEventListener("push", (event) => {
  event.waitUntil(showPush(event.data));
});

/* The click is recorded (queued first, like any event) and the item opened. */
async function openFromNotification(notification) {
  const data = notification.data || {};
  let target = "/app/";
  let recorded = Promise.resolve();
  if (data.item_id) {
    target = data.url;
    const auth = await TB.getMeta("auth");
    if (auth && auth.user_id) {
      await TB.enqueue(
        TB.newEvent(auth.user_id, data.item_id, "click", null, {
          source: "push",
          push_id: data.push_id,
          kind: data.kind,
        }),
      );
      recorded = TB.flush("push-click");
    }
  } else if (data.error) {
    target = "/app/?panel=status";
  }
  const url = new URL(target, self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((client) => new URL(client.url).pathname.startsWith("/app/"));
  let opened;
  if (open) {
    try {
      await open.focus(); // allowed within a notification click only
    } catch (_) {
      /* not focusable now; navigating still works */
    }
    opened = open.navigate(url).catch(() => self.clients.openWindow(url));
  } else {
    opened = self.clients.openWindow(url);
  }
  await Promise.all([opened, recorded]);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openFromNotification(event.notification));
});

/* The browser renewed (or dropped) the subscription: tell the server, replacing the old. */
async function renewSubscription(oldSubscription, newSubscription) {
  let subscription = newSubscription;
  if (!subscription) {
    const config = (await TB.getMeta("config")) || {};
    if (!config.vapid_public_key) return;
    subscription = await self.registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: TB.base64UrlToBytes(config.vapid_public_key),
    });
  }
  const previous = (await TB.getMeta("push")) || {};
  await TB.setMeta("push_pending", {
    subscription: subscription.toJSON(),
    replaces: oldSubscription ? oldSubscription.endpoint : previous.endpoint || null,
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || null,
  });
  await TB.sendPendingSubscription();
}

self.addEventListener("pushsubscriptionchange", (event) => {
  event.waitUntil(renewSubscription(event.oldSubscription, event.newSubscription));
});

// For the tests, which cannot click a notification or renew a subscription in a headless
// browser: the same functions the events call.
self.tastebud = { openFromNotification, renewSubscription, showPush };
