// Like / dislike buttons with live counts; the viewer's own choice is
// pressed. Choosing the pressed one again withdraws it. Over the websocket
// when connected (`like` → `likes` to everyone, `like.ok` to us), over REST
// otherwise; counts change only when the server says so.
import { api } from '/static/api.js';

export function mountLikes(rt, viewer, stream, { like, dislike, likes, dislikes, error }) {
  let mine = null;

  function render(counts) {
    if (counts) {
      likes.textContent = String(counts.likes ?? 0);
      dislikes.textContent = String(counts.dislikes ?? 0);
    }
    like.setAttribute('aria-pressed', String(mine === true));
    dislike.setAttribute('aria-pressed', String(mine === false));
  }

  async function choose(value) {
    const liked = mine === value ? null : value;
    error.textContent = '';
    try {
      const token = await viewer.ensure();
      if (rt.send({ type: 'like', liked })) return;
      const path = `/api/broadcasts/${encodeURIComponent(stream)}/like`;
      const res = liked === null
        ? await api(path, { method: 'DELETE', token })
        : await api(path, { method: 'PUT', body: { liked }, token });
      mine = res.mine ?? liked;
      render(res);
    } catch (err) {
      error.textContent = `Could not save your rating: ${err.message}`;
    }
  }

  rt.on('joined', (m) => { mine = m.likes?.mine ?? null; render(m.likes); });
  rt.on('likes', (m) => render(m));
  rt.on('like.ok', (m) => { mine = m.mine ?? null; render(); });
  rt.on('error', (m) => {
    if (m.ref === 'like') error.textContent = `Could not save your rating: ${m.message || m.code}`;
  });
  like.addEventListener('click', () => choose(true));
  dislike.addEventListener('click', () => choose(false));
  return { render };
}
