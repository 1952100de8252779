// Chat replay beside a recording: the lines sent while it was recorded
// (`GET /api/videos/{id}/chat`), shown as playback reaches them. A seek
// starts over from a minute before the new position; lines ahead are
// fetched a page at a time as playback nears the last one fetched, so a
// long recording's chat is never loaded at once, and a recording still in
// progress is asked again every few seconds for what was said since. The
// list keeps at most KEEP lines; a fetch made before a seek is discarded.
import { api } from '/static/api.js';
import { chatItem } from '/static/chat.js';

const KEEP = 150; // lines kept in the DOM
const BEFORE = 60; // seconds of chat shown from before a seek's position
const AHEAD = 20; // fetch the next page when fewer lines than this wait
const PAGE = 100;
const POLL_MS = 5000; // a recording in progress: ask again this often

export function mountChatReplay({ video, list, status, info, origin = 0 }) {
  const base = `/api/videos/${encodeURIComponent(info.id)}/chat`;
  const live = info.status === 'recording';
  let waiting = []; // fetched, not yet reached by playback, in order
  let after = null; // seq of the last line fetched
  let exhausted = false; // the last page was the end (so far)
  let from = 0;
  let generation = 0;
  let fetching = false;
  let fetchedAt = 0;

  // Seconds into the recording (a DVR window starts at `origin`).
  const position = () => origin + video.currentTime;

  async function fetchMore() {
    if (fetching) return;
    fetching = true;
    const mine = generation;
    try {
      const q = new URLSearchParams({ from: from.toFixed(3), limit: String(PAGE) });
      if (after !== null) q.set('after', String(after));
      const page = await api(`${base}?${q}`);
      if (mine !== generation) return;
      waiting.push(...page.lines);
      if (page.lines.length) after = page.lines[page.lines.length - 1].seq;
      exhausted = page.next_after == null;
      status.textContent = '';
    } catch (err) {
      if (mine === generation) status.textContent = `Chat replay could not be loaded: ${err.message}`;
    } finally {
      // A fetch a seek overtook must not clear the newer one's flag, or a
      // second fetch of the same page could start and list lines twice.
      if (mine === generation) {
        fetching = false;
        fetchedAt = Date.now();
        show();
      }
    }
  }

  function show() {
    const at = position();
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
    while (waiting.length && waiting[0].at <= at) {
      const line = waiting.shift();
      list.append(chatItem({ id: line.seq, user: line.user, text: line.text, ts: info.started_ms + line.at * 1000 }));
    }
    while (list.children.length > KEEP) list.firstElementChild.remove();
    if (stick) list.scrollTop = list.scrollHeight;
    const due = !exhausted || (live && Date.now() - fetchedAt > POLL_MS);
    if (waiting.length < AHEAD && due) fetchMore();
  }

  function restart() {
    generation += 1;
    fetching = false;
    waiting = [];
    after = null;
    exhausted = false;
    from = Math.max(0, position() - BEFORE);
    list.replaceChildren();
    fetchMore();
  }

  video.addEventListener('timeupdate', show);
  video.addEventListener('seeked', restart);
  restart();
}
