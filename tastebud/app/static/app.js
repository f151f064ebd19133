/* tastebud app: the page. Signs in, shows the lists, records feedback into the device's
 * queue (queue.js) and asks the service worker to send it; shows what is waiting, what the
 * server rejected, and whether the key was refused. */
(function () {
  "use strict";

  const SYNC_TAG = "tastebud-feedback";
  const TIMER_MS = 5000;
  const ONLINE_RETRIES_MS = [0, 1000, 3000];
  const LIST_K = 12;
  const $ = (id) => document.getElementById(id);

  const state = {
    config: null,
    auth: null,
    playing: null, // {itemId, started, button}
    titles: new Map(), // item_id -> {title, creator}
    registration: null,
  };

  /* --- the service worker and the queue ------------------------------------------------ */

  async function registerWorker() {
    if (!("serviceWorker" in navigator)) return null;
    try {
      state.registration = await navigator.serviceWorker.register("sw.js", { scope: "./" });
    } catch (error) {
      console.warn("service worker not registered", error);
      return null;
    }
    navigator.serviceWorker.addEventListener("message", (event) => {
      const message = event.data || {};
      if (message.type === "queue-status") showQueue(message.summary);
      if (message.type === "push-error") refreshQueue();
      if (message.type === "push-shown") document.body.dataset.lastPush = message.push_id;
    });
    return state.registration;
  }

  /* Send the queue now: Background Sync where the browser has it, and a message to the
   * worker (or, with no worker in control yet, this page sends it itself). */
  async function requestSend(reason) {
    const registration = state.registration;
    // Not from the timer: a `sync` event tries at once, past the queue's backoff.
    if (registration && "sync" in registration && reason !== "timer" && reason !== "visible") {
      registration.sync.register(SYNC_TAG).catch(() => {});
    }
    const controller = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (controller) {
      controller.postMessage({ type: "flush", reason });
    } else {
      TB.flush(reason).then(showQueue, () => {});
    }
  }

  TB.onStatus((summary) => showQueue(summary));

  async function record(itemId, eventType, value, context) {
    if (!state.auth) return;
    const event = TB.newEvent(state.auth.user_id, itemId, eventType, value, context);
    await TB.enqueue(event); // on the device before anything else
    refreshQueue();
    requestSend("event");
    return event;
  }

  /* --- the API ------------------------------------------------------------------------- */

  function headers() {
    return { "X-API-Key": state.auth ? state.auth.api_key : "" };
  }

  async function getJson(path) {
    let response;
    try {
      response = await fetch(path, { headers: headers() });
    } catch (error) {
      return { ok: false, status: 0, offline: true, document: null };
    }
    let document = null;
    try {
      document = await response.json();
    } catch (_) {
      document = null;
    }
    if (response.status === 401 || response.status === 403) await keyRefused(document, response.status);
    return {
      ok: response.ok,
      status: response.status,
      cachedAt: response.headers.get("X-Tastebud-Cached-At"),
      offline: response.headers.get("X-Tastebud-Offline") === "1",
      document,
    };
  }

  async function keyRefused(document, status) {
    const error = (document && document.error) || {};
    state.auth = Object.assign({}, state.auth, {
      status: "refused",
      code: error.code || `http_${status}`,
      message: error.message || "",
    });
    await TB.setMeta("auth", state.auth);
    showAuth();
  }

  const enc = encodeURIComponent;

  /* --- lists --------------------------------------------------------------------------- */

  /* A list the worker answered from its saved copy carries X-Tastebud-Cached-At. */
  function markOf(name, result) {
    const mark = document.querySelector(`[data-mark="${name}"]`);
    if (!mark) return;
    if (result.ok && result.cachedAt) {
      const when = new Date(result.cachedAt);
      const saved = when.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
      mark.textContent = `offline · saved ${saved}`;
    } else if (!result.ok && (result.offline || result.status === 0)) {
      mark.textContent = "offline · not saved yet";
    } else {
      mark.textContent = "";
    }
  }

  async function fillTitles(items) {
    const missing = items.filter((item) => !item.title && !state.titles.has(item.item_id));
    const queue = missing.slice();
    const worker = async () => {
      while (queue.length) {
        const item = queue.shift();
        const result = await getJson(`/v1/items/${enc(item.item_id)}`);
        if (result.ok && result.document) {
          state.titles.set(item.item_id, {
            title: result.document.title,
            creator: result.document.creator,
          });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(6, queue.length) }, worker));
    for (const item of items) {
      const known = state.titles.get(item.item_id);
      if (known) {
        item.title = item.title || known.title;
        item.creator = item.creator || known.creator;
      }
    }
    return items;
  }

  function button(label, action, title) {
    const element = document.createElement("button");
    element.type = "button";
    element.textContent = label;
    element.dataset.action = action;
    element.title = title;
    return element;
  }

  function renderItems(listId, items, emptyText) {
    const list = $(listId);
    list.replaceChildren();
    if (!items.length) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = emptyText;
      list.append(empty);
      return;
    }
    for (const item of items) list.append(card(item));
  }

  function card(item) {
    const entry = document.createElement("li");
    entry.className = "item";
    entry.dataset.item = item.item_id;
    const text = document.createElement("div");
    const link = document.createElement("a");
    link.href = `./?item=${enc(item.item_id)}`;
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = item.title || item.item_id;
    const creator = document.createElement("div");
    creator.className = "creator";
    creator.textContent = item.creator || "";
    link.append(title, creator);
    text.append(link);
    const actions = document.createElement("div");
    actions.className = "actions";
    actions.append(
      button("▶ Play", "play", "Play (the seconds you listen are sent when you stop)"),
      button("» Skip", "skip", "Skip"),
      button("♥ Like", "like", "Like"),
      button("✕", "dislike", "Dislike"),
    );
    entry.append(text, actions);
    if (item.explanation) {
      const why = document.createElement("div");
      why.className = "why";
      why.textContent = item.explanation;
      entry.append(why);
    }
    return entry;
  }

  async function loadList(name, path, pick) {
    const result = await getJson(path);
    markOf(name, result);
    if (!result.ok) return { result, items: null };
    const items = await fillTitles(pick(result.document).map((item) => Object.assign({}, item)));
    return { result, items };
  }

  async function loadFeed() {
    const user = enc(state.auth.user_id);
    const [mine, trending] = await Promise.all([
      loadList("recommendations", `/v1/users/${user}/recommendations?k=${LIST_K}`, (d) => d.items || []),
      loadList("trending", `/v1/trending?k=${LIST_K}`, (d) => d.items || []),
    ]);
    renderItems(
      "recommendations",
      mine.items || [],
      mine.items ? "Nothing to recommend yet." : "Your list could not be loaded.",
    );
    renderItems(
      "trending",
      trending.items || [],
      trending.result.status === 404 ? "Nothing is trending yet." : "Nothing trending to show.",
    );
    const seed = new URLSearchParams(location.search).get("item") || (mine.items && mine.items[0]);
    await loadSimilar(typeof seed === "string" ? { item_id: seed } : seed);
  }

  async function loadSimilar(seed) {
    if (!seed) {
      renderItems("similar", [], "Play something to see what is like it.");
      return;
    }
    await fillTitles([seed]);
    $("similar-title").firstChild.textContent = `Similar to ${seed.title || seed.item_id} `;
    const similar = await loadList("similar", `/v1/items/${enc(seed.item_id)}/similar?k=${LIST_K}`, (d) => d.items || []);
    renderItems("similar", similar.items || [], similar.items ? "Nothing similar yet." : "Not available now.");
  }

  async function showItemView() {
    const itemId = new URLSearchParams(location.search).get("item");
    $("item-view").hidden = !itemId;
    if (!itemId) return;
    const [item] = await fillTitles([{ item_id: itemId }]);
    $("item-card").replaceChildren(card(item));
    $("item-card").firstChild.id = "item-detail";
  }

  /* --- feedback buttons ---------------------------------------------------------------- */

  function secondsPlayed() {
    return state.playing ? Math.round((performance.now() - state.playing.started) / 100) / 10 : 0;
  }

  async function stopPlaying() {
    const playing = state.playing;
    if (!playing) return;
    const seconds = secondsPlayed();
    state.playing = null;
    for (const element of document.querySelectorAll('button[data-action="play"].on')) {
      element.classList.remove("on");
      element.textContent = "▶ Play";
    }
    await record(playing.itemId, "play", seconds);
  }

  async function onAction(event) {
    const target = event.target.closest("button[data-action]");
    if (!target) return;
    const itemId = target.closest("[data-item]").dataset.item;
    const action = target.dataset.action;
    if (action === "play") {
      const same = state.playing && state.playing.itemId === itemId;
      await stopPlaying();
      if (!same) {
        state.playing = { itemId, started: performance.now() };
        target.classList.add("on");
        target.textContent = "■ Stop";
      }
    } else if (action === "skip") {
      const seconds = state.playing && state.playing.itemId === itemId ? secondsPlayed() : 0;
      if (state.playing && state.playing.itemId === itemId) {
        state.playing = null;
        target.closest(".item").querySelector('[data-action="play"]').classList.remove("on");
        target.closest(".item").querySelector('[data-action="play"]').textContent = "▶ Play";
      }
      await record(itemId, "skip", seconds);
    } else {
      await record(itemId, action, null);
    }
    target.animate([{ transform: "scale(1.15)" }, { transform: "scale(1)" }], { duration: 180 });
  }

  /* --- status: the queue, the key, push ------------------------------------------------ */

  async function refreshQueue() {
    showQueue(await TB.summarize());
  }

  function showQueue(summary) {
    if (!summary) return;
    const pending = summary.pending;
    $("sync").textContent = pending
      ? `${pending} waiting to send`
      : summary.last_sync
        ? "all feedback sent"
        : "ready";
    $("sync").dataset.pending = String(pending);
    const stats = summary.stats || {};
    const dropped = (stats.dropped_full || 0) + (stats.dropped_old || 0);
    $("queue-text").textContent =
      `${pending} event${pending === 1 ? "" : "s"} waiting, ${stats.sent || 0} sent` +
      (dropped ? `, ${dropped} dropped (queue full or too old)` : "") +
      (summary.last_sync ? `; last sent ${new Date(summary.last_sync).toLocaleTimeString()}` : "") +
      ".";
    const rejected = summary.rejected || [];
    $("rejected-box").hidden = !rejected.length;
    $("rejected").replaceChildren(
      ...rejected.map((entry) => {
        const line = document.createElement("li");
        const what = entry.event
          ? `${entry.event.event_type} on ${entry.event.item_id}`
          : `a damaged stored entry ${entry.raw ? `(${entry.raw.slice(0, 60)})` : ""}`;
        line.textContent = `${what}: ${(entry.reasons || []).join(", ")}${entry.message ? ` — ${entry.message}` : ""}`;
        return line;
      }),
    );
    const errors = summary.push_errors || [];
    $("push-errors-box").hidden = !errors.length;
    $("push-errors").replaceChildren(
      ...errors.map((error) => {
        const line = document.createElement("li");
        line.textContent = `${new Date(error.at).toLocaleString()}: ${error.problem}`;
        return line;
      }),
    );
    if (summary.status === "key-refused" && state.auth && state.auth.status !== "refused") {
      TB.getMeta("auth").then((auth) => {
        state.auth = auth;
        showAuth(summary);
      });
    } else {
      showAuth(summary);
    }
  }

  function showAuth(summary) {
    const refused = !!state.auth && state.auth.status === "refused";
    $("refused").hidden = !refused;
    if (!refused) return;
    if (!summary) {
      TB.summarize().then(showAuth);
      return;
    }
    $("refused-text").textContent =
      `The server refused your API key (${state.auth.code || "refused"}${
        state.auth.message ? `: ${state.auth.message}` : ""
      }). ${summary.pending} event${summary.pending === 1 ? " is" : "s are"} kept on this ` +
      "device and will be sent with a new key.";
  }

  function showOnline() {
    $("offline").hidden = navigator.onLine;
    document.body.dataset.online = String(navigator.onLine);
  }

  async function showPush() {
    const config = state.config || {};
    const on = $("push-on");
    const off = $("push-off");
    on.hidden = off.hidden = true;
    if (!("PushManager" in self) || !state.registration) {
      $("push-text").textContent = "This browser cannot receive web push.";
      return;
    }
    if (!config.vapid_public_key) {
      $("push-text").textContent =
        "Push is not set up on this server (an operator runs `tastebud push keys`).";
      return;
    }
    if (Notification.permission === "denied") {
      $("push-text").textContent = "Notifications are blocked in this browser's settings.";
      return;
    }
    const current = await TB.getMeta("push");
    if (current && current.endpoint) {
      $("push-text").textContent = "You get a notification when something you would like appears.";
      off.hidden = false;
    } else {
      $("push-text").textContent = "Get a notification when new music you would like appears.";
      on.hidden = false;
    }
  }

  function withTimeout(promise, ms, message) {
    return Promise.race([
      promise,
      new Promise((_, reject) => setTimeout(() => reject(new Error(message)), ms)),
    ]);
  }

  /* Asked only after the listener clicks "Notify me". */
  async function pushOn() {
    $("push-text").textContent = "Asking the browser…";
    try {
      const permission = await Notification.requestPermission();
      if (permission !== "granted") {
        $("push-text").textContent = "Notifications were not allowed.";
        return;
      }
      const subscription = await withTimeout(
        state.registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: TB.base64UrlToBytes(state.config.vapid_public_key),
        }),
        20000,
        "the browser's push service did not answer",
      );
      await TB.setMeta("push_pending", {
        subscription: subscription.toJSON(),
        timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || null,
      });
      const sent = await TB.sendPendingSubscription();
      if (sent === null) {
        $("push-text").textContent = "Subscribed; the server is told as soon as you are online.";
        return;
      }
      await showPush();
      if (sent === false) refreshQueue();
    } catch (error) {
      $("push-text").textContent = `Could not turn notifications on: ${error.message}`;
    }
  }

  async function pushOff() {
    const current = (await TB.getMeta("push")) || {};
    try {
      const response = await fetch("/v1/push/subscriptions", {
        method: "DELETE",
        headers: Object.assign({ "Content-Type": "application/json" }, headers()),
        body: JSON.stringify({ user_id: state.auth.user_id, endpoint: current.endpoint || null }),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
    } catch (error) {
      $("push-text").textContent = `Could not turn notifications off (${error.message}); try again online.`;
      return;
    }
    const subscription = await state.registration.pushManager.getSubscription();
    if (subscription) await subscription.unsubscribe().catch(() => {});
    await TB.setMeta("push", null);
    await showPush();
  }

  /* --- sign in and out ------------------------------------------------------------------ */

  async function checkKey(userId, key) {
    const probe = { "X-API-Key": key };
    const read = await fetch(`/v1/users/${enc(userId)}/recommendations?k=1`, { headers: probe });
    if (read.status === 401) throw new Error("the key is unknown or revoked");
    if (read.status === 403) throw new Error("the key lacks the read scope");
    if (read.status === 422) throw new Error("that user id is not valid");
    // An empty batch: 400 empty_batch once the key is known to have the ingest scope.
    const ingest = await fetch("/v1/events", {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, probe),
      body: JSON.stringify({ events: [] }),
    });
    if (ingest.status === 403) throw new Error("the key lacks the ingest scope");
  }

  async function signIn(event) {
    event.preventDefault();
    const userId = $("user-id").value.trim();
    const key = $("api-key").value.trim();
    $("signin-error").textContent = "";
    try {
      await checkKey(userId, key);
    } catch (error) {
      $("signin-error").textContent =
        error instanceof TypeError ? "You are offline: sign in once online." : error.message;
      return;
    }
    state.auth = { user_id: userId, api_key: key, status: "ok" };
    await TB.setMeta("auth", state.auth);
    await start();
    requestSend("new-key");
  }

  async function newKey(event) {
    event.preventDefault();
    const key = $("new-key").value.trim();
    if (!key) return;
    state.auth = Object.assign({}, state.auth, { api_key: key, status: "ok", code: null, message: null });
    await TB.setMeta("auth", state.auth);
    $("new-key").value = "";
    showAuth();
    requestSend("new-key");
    loadFeed();
  }

  async function signOut() {
    await stopPlaying();
    await TB.setMeta("auth", null);
    const controller = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (controller) controller.postMessage({ type: "signed-out" });
    location.replace("./");
  }

  async function loadConfig() {
    try {
      const response = await fetch("config.json");
      if (response.ok) {
        state.config = await response.json();
        await TB.setMeta("config", state.config);
        return;
      }
    } catch (_) {
      /* offline: the saved copy */
    }
    state.config = (await TB.getMeta("config")) || null;
  }

  async function start() {
    $("signin").hidden = true;
    $("feed").hidden = false;
    $("who").textContent = state.auth.user_id;
    showAuth();
    await refreshQueue();
    await Promise.all([loadFeed(), showItemView(), showPush()]);
    document.body.dataset.ready = "true";
  }

  async function main() {
    showOnline();
    window.addEventListener("online", () => {
      showOnline();
      // Again shortly after: the first try may go out before the network is really back.
      for (const delay of ONLINE_RETRIES_MS) setTimeout(() => requestSend("online"), delay);
      if (state.auth) loadFeed();
    });
    window.addEventListener("offline", showOnline);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") requestSend("visible");
    });
    setInterval(() => requestSend("timer"), TIMER_MS);
    $("signin-form").addEventListener("submit", signIn);
    $("new-key-form").addEventListener("submit", newKey);
    $("feed").addEventListener("click", onAction);
    $("clear-rejected").addEventListener("click", () => TB.clearRejected().then(refreshQueue));
    $("push-on").addEventListener("click", pushOn);
    $("push-off").addEventListener("click", pushOff);
    $("signout").addEventListener("click", signOut);
    await registerWorker();
    await loadConfig();
    state.auth = await TB.getMeta("auth");
    if (!state.auth) {
      $("signin").hidden = false;
      document.body.dataset.ready = "true";
      return;
    }
    requestSend("page-start");
    await start();
  }

  main().catch((error) => {
    console.error(error);
    document.body.dataset.error = String(error);
  });
})();
