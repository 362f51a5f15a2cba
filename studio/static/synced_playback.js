// One play/pause, scrub bar and frame stepper for every variant video of a comparison, frame-locked.
// Runs as a gr.HTML js_on_load body: `element` is the control bar, `props` holds fps, frames and videos (a CSS
// selector). The videos keep their own controls; using one of them moves the others with it.
const fps = Number(props.fps);
const total = Math.max(1, Number(props.frames));
// A frame is shown for [i/fps, (i+1)/fps): seeking to its middle never lands on the previous frame by rounding.
const frameOf = (t) => Math.max(0, Math.min(total - 1, Math.floor(t * fps + 1e-6)));
const timeOf = (i) => (Math.max(0, Math.min(total - 1, i)) + 0.5) / fps;
const tolerance = 0.5 / fps; // a follower further than half a frame from the leader is moved to it
const bound = new WeakSet();
// Looked up on every use, and any not seen before is bound: the page may mount a video element again.
function videos() {
  const all = Array.from(document.querySelectorAll(props.videos));
  for (const v of all) if (!bound.has(v)) bind(v);
  return all;
}
let playing = false;

function show() {
  const leader = videos()[0];
  const frame = leader ? frameOf(leader.currentTime) : 0;
  const scrub = element.querySelector("[data-role=scrub]");
  if (scrub && document.activeElement !== scrub) scrub.value = String(frame);
  const counter = element.querySelector("[data-role=counter]");
  if (counter) counter.textContent = `frame ${frame + 1} / ${total}`;
  const toggle = element.querySelector("[data-action=toggle]");
  if (toggle) toggle.textContent = playing ? "Pause" : "Play";
  element.dataset.state = playing ? "playing" : "paused";
}

function seekAll(time) {
  for (const v of videos()) v.currentTime = time;
}

function pauseAll() {
  playing = false;
  const all = videos();
  for (const v of all) v.pause();
  if (all.length) seekAll(timeOf(frameOf(all[0].currentTime))); // every video on the leader's frame
  show();
}

function playAll() {
  const all = videos();
  if (!all.length) return;
  let time = all[0].currentTime;
  if (all[0].ended || frameOf(time) >= total - 1) time = 0;
  seekAll(time);
  playing = true;
  for (const v of all) {
    v.play().catch((e) => { if (e.name === "NotAllowedError") pauseAll(); }); // refused by the autoplay policy
  }
  requestAnimationFrame(follow);
  show();
}

function step(delta) {
  const leader = videos()[0];
  if (!leader) return;
  playing = false;
  for (const v of videos()) v.pause();
  seekAll(timeOf(frameOf(leader.currentTime) + delta));
  show();
}

// Each animation frame while playing: followers that drifted are put back on the leader's time.
function follow() {
  if (!playing || !element.isConnected) return;
  const [leader, ...followers] = videos();
  if (!leader) return;
  const time = leader.currentTime;
  for (const v of followers) if (Math.abs(v.currentTime - time) > tolerance) v.currentTime = time;
  show();
  requestAnimationFrame(follow);
}

function onEnded() {
  if (!playing) return;
  if (element.querySelector("[data-role=loop]")?.checked) {
    seekAll(0);
    for (const v of videos()) v.play().catch(() => {});
  } else {
    pauseAll(); // one ended: all stop, on the same (last) frame
  }
}

// A video's own controls drive all of them: its play plays all, its pause pauses all, its seek moves all.
// Events arrive after the calls that caused them: one that no longer matches the video (a `play` of a video
// paused since) is the echo of this script's own call, not the person's, and is ignored.
function bind(v) {
  bound.add(v);
  v.loop = false; // looping is the control bar's: one `ended` restarts all together
  v.muted = true; // the videos are silent; muted playback is never refused by the autoplay policy
  v.addEventListener("ended", onEnded);
  v.addEventListener("play", () => { if (!playing && !v.paused) playAll(); });
  v.addEventListener("pause", () => { if (playing && v.paused && !v.ended) pauseAll(); });
  v.addEventListener("seeking", () => {
    if (playing) return; // while playing, follow() keeps them together
    const others = videos().filter((o) => o !== v && Math.abs(o.currentTime - v.currentTime) > tolerance);
    for (const o of others) o.currentTime = v.currentTime;
    show();
  });
}

element.addEventListener("click", (event) => {
  const action = event.target.closest("[data-action]")?.dataset.action;
  if (action === "toggle") (playing ? pauseAll : playAll)();
  else if (action === "prev") step(-1);
  else if (action === "next") step(1);
});
element.addEventListener("input", (event) => {
  if (event.target.dataset.role !== "scrub") return;
  playing = false;
  for (const v of videos()) v.pause();
  seekAll(timeOf(Number(event.target.value)));
  show();
});

// The videos mount with the bar (same render) but load on their own: take them over once all know their length,
// restarting them together from the first frame (they autoplay and loop on their own without this script).
function takeOver() {
  if (!element.isConnected) return;
  const all = videos();
  if (!all.length || all.some((v) => v.readyState < 1)) {
    requestAnimationFrame(takeOver);
    return;
  }
  for (const v of all) v.pause();
  seekAll(timeOf(0));
  element.dataset.ready = "true";
  playAll();
}
show();
takeOver();
