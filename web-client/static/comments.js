// Comments under the player: newest first, older pages by cursor, posted
// over REST (durable once answered), live `comment` / `comment.deleted`
// pushes from other viewers. The author and moderators get a delete button.
import { api, el, timeOfDay } from '/static/api.js';

// The section's markup, shared by the live and the on-demand page.
const SECTION = `
  <h2 id="comments-title">Comments</h2>
  <form id="comment-form">
    <label for="comment-input">Add a comment</label>
    <textarea id="comment-input" maxlength="2000" rows="3" required></textarea>
    <div class="row"><button type="submit">Post comment</button><span id="comment-count" class="status"></span></div>
    <p id="comment-error" class="error" role="alert"></p>
  </form>
  <ol id="comment-list" class="comment-list"></ol>
  <button type="button" id="comment-more" hidden>Older comments</button>`;

/// Fills an empty comments section and mounts the comments of `stream` in it.
export function mountCommentsSection(rt, viewer, stream, section) {
  if (!section.querySelector('form')) section.innerHTML = SECTION;
  const $ = (id) => section.querySelector(`#${id}`);
  return mountComments(rt, viewer, stream, {
    form: $('comment-form'), input: $('comment-input'), count: $('comment-count'),
    list: $('comment-list'), more: $('comment-more'), error: $('comment-error'),
  });
}

export function mountComments(rt, viewer, stream, { form, input, count, list, more, error }) {
  const base = `/api/broadcasts/${encodeURIComponent(stream)}/comments`;
  let cursor = null;

  const canDelete = (c) => {
    const me = viewer.identity;
    return me && (me.id === c.user_id || me.role === 'moderator' || me.role === 'admin');
  };

  function item(c) {
    const when = new Date(c.created_ms);
    const li = el('li', { 'data-id': String(c.id), 'data-created': String(c.created_ms) },
      el('div', { className: 'comment-head' },
        el('strong', {}, c.user_name || c.user_id),
        el('time', { dateTime: when.toISOString(), title: when.toLocaleString() },
          `${when.toLocaleDateString()} ${timeOfDay(c.created_ms)}`)),
      el('p', { className: 'comment-text' }, c.comment));
    if (canDelete(c)) {
      li.append(el('button', {
        type: 'button',
        className: 'link',
        textContent: 'Delete',
        'aria-label': 'Delete this comment',
        onclick: async () => {
          try {
            await api(`${base}/${c.id}`, { method: 'DELETE', token: await viewer.ensure() });
            removed(c.id);
          } catch (err) { error.textContent = `Could not delete: ${err.message}`; }
        },
      }));
    }
    return li;
  }

  /// Inserts keeping newest first; ignores a comment already shown.
  function insert(c) {
    if (list.querySelector(`li[data-id="${CSS.escape(String(c.id))}"]`)) return;
    const node = item(c);
    const after = [...list.children].find((li) => Number(li.dataset.created) < c.created_ms
      || (Number(li.dataset.created) === c.created_ms && Number(li.dataset.id) < c.id));
    list.insertBefore(node, after || null);
  }

  // A full reload answers with the list as it was when its GET was served:
  // comments posted, pushed or deleted while it is in flight are applied
  // again on top, and a reload overtaken by a newer one is discarded.
  let generation = 0;
  let inFlight = null;
  function add(c) {
    inFlight?.added.set(c.id, c);
    insert(c);
  }
  function removed(id) {
    inFlight?.added.delete(id);
    inFlight?.deleted.add(String(id));
    list.querySelector(`li[data-id="${CSS.escape(String(id))}"]`)?.remove();
  }

  async function load(older) {
    error.textContent = '';
    const mine = older ? generation : ++generation;
    if (!older) inFlight = { added: new Map(), deleted: new Set() };
    try {
      const q = older && cursor ? `?cursor=${encodeURIComponent(cursor)}` : '';
      const page = await api(`${base}${q}`);
      if (mine !== generation) return;
      const items = Array.isArray(page) ? page : page.comments || [];
      if (!older) {
        const { added, deleted } = inFlight;
        inFlight = null;
        list.replaceChildren();
        items.filter((c) => !deleted.has(String(c.id))).forEach(insert);
        added.forEach(insert);
      } else {
        items.forEach(insert);
      }
      cursor = Array.isArray(page) ? null : page.next_cursor ?? null;
      more.hidden = !cursor;
    } catch (err) {
      if (mine === generation) error.textContent = `Comments could not be loaded: ${err.message}`;
    }
  }

  const updateCount = () => { count.textContent = `${2000 - input.value.length} characters left`; };
  input.addEventListener('input', updateCount);
  updateCount();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const comment = input.value.trim();
    if (!comment) return;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    error.textContent = '';
    try {
      const made = await api(base, { method: 'POST', body: { comment }, token: await viewer.ensure() });
      // The answer is the comment, possibly wrapped as {comment: {...}}.
      add(typeof made.comment === 'object' && made.comment ? made.comment : made);
      input.value = '';
      updateCount();
    } catch (err) {
      error.textContent = `Your comment was not posted: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  more.addEventListener('click', () => load(true));
  rt.on('comment', (m) => add(m.comment));
  rt.on('comment.deleted', (m) => removed(m.id));
  // Identity decides which delete buttons show: redraw once it is known.
  viewer.onChange(() => load(false));
  load(false);
}
