// loraledger pages: times in the reader's zone (UTC stays on hover), and live updates by polling
// a small stamp; when it changes, the page's main part is fetched again and swapped in place.
"use strict";

const POLL_MS = 500; // a new event shows within 2 s: a poll, then one fetch of the page

function localiseTimes(root) {
  for (const node of root.querySelectorAll("time.when[datetime]")) {
    const moment = new Date(node.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      node.textContent = moment.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
      });
    }
  }
}

function openDetails(root) {
  return new Set([...root.querySelectorAll("details[open][id]")].map((node) => node.id));
}

async function refresh(main) {
  const response = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (!response.ok) return null;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.getElementById("main");
  if (fresh === null) return null;
  const wasOpen = openDetails(main);
  const known = new Set([...main.querySelectorAll("li.event[id]")].map((node) => node.id));
  main.replaceChildren(...fresh.childNodes);
  for (const id of wasOpen) document.getElementById(id)?.setAttribute("open", "");
  for (const node of main.querySelectorAll("li.event[id]")) {
    if (!known.has(node.id)) node.classList.add("fresh");
  }
  localiseTimes(main);
  return page.body.dataset.stamp ?? null;
}

function followLive() {
  const body = document.body;
  const liveUrl = body.dataset.live;
  const main = document.getElementById("main");
  const state = document.getElementById("live-state");
  if (!liveUrl || main === null) return;
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const answer = await fetch(liveUrl, { credentials: "same-origin", cache: "no-store" });
      if (answer.status === 401) {
        if (state) { state.textContent = "Live updates paused: sign in again to resume"; state.classList.add("lost"); }
        return;
      }
      if (!answer.ok) throw new Error(String(answer.status));
      const { stamp } = await answer.json();
      if (stamp !== body.dataset.stamp) {
        const rendered = await refresh(main);
        body.dataset.stamp = rendered ?? stamp;
      }
      if (state) { state.textContent = "Live: updates appear without a reload"; state.classList.remove("lost"); }
    } catch (error) {
      if (state) { state.textContent = "Live updates paused: the service does not answer"; state.classList.add("lost"); }
    } finally {
      busy = false;
    }
  };
  setInterval(tick, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  localiseTimes(document);
  followLive();
});
