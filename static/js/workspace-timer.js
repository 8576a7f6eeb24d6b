// A stage's time limit in the workspace: the countdown, a warning when 80 % of the time is
// used (the server says when), and a ping about once a minute while the page gets input, so
// a run past its limit stays with someone who is still working on it.
const W = JSON.parse(document.getElementById("workspace-data").textContent);
const timer = document.querySelector("[data-timer]");
const warning = document.querySelector("[data-time-warning]");
const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
const PING_EVERY_MS = 60_000;

let timing = W.timing;
let end = 0; // when the time is up, on this browser's clock (the server says how long is left)
let warnFrom = 0;
let busy = false; // input since the last ping
let stopped = false;

function sync(t) {
  timing = t;
  end = Date.now() + t.remaining * 1000;
  warnFrom = end - t.warn_when_left * 1000;
}

function clock(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(s).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function say(text, level) {
  if (warning.textContent === text) return; // a live region repeats nothing
  warning.textContent = text;
  warning.hidden = !text;
  warning.dataset.level = level || "";
}

function tick() {
  if (stopped) return;
  const now = Date.now();
  const left = end - now;
  const away = Math.round(timing.active_window / 60);
  if (left <= 0) {
    timer.textContent = "Time is up";
    timer.classList.add("over");
    say(`The time limit has passed. This stage stays yours while you keep working; after ${away} minutes without input it goes back to the pool (your annotations are kept).`, "over");
  } else {
    timer.textContent = `${clock(left)} left`;
    if (now >= warnFrom) {
      timer.classList.add("warn");
      say(`Less than a fifth of this stage's time is left (${clock(left)}): submit soon. When the time is up and you have stopped working, the stage goes back to the pool.`, "warn");
    }
  }
}

async function ping() {
  let response;
  try {
    response = await fetch(W.activity, {
      method: "POST",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
      credentials: "same-origin",
    });
  } catch (error) {
    return; // offline for a moment: the next ping tries again
  }
  const data = await response.json().catch(() => null);
  if (response.ok && data && data.timing) {
    sync(data.timing);
    tick();
  } else if (response.status === 409) {
    stopped = true;
    timer.textContent = "Released";
    document.body.dataset.released = "true";
    say(`${(data && (data.detail || (data.stage || [])[0])) || "This stage is no longer yours."} Reload to see where it stands.`, "over");
  }
}

if (timing && timer && W.activity) {
  sync(timing);
  tick();
  setInterval(tick, 1000);
  for (const kind of ["keydown", "pointerdown", "wheel", "input"]) {
    document.addEventListener(kind, () => { busy = true; }, { capture: true, passive: true });
  }
  ping(); // opening the page is working on it
  setInterval(() => {
    if (busy && !stopped) { busy = false; ping(); }
  }, PING_EVERY_MS);
}
