// Like / dislike buttons with live counts; the viewer's own choice is
// pressed. Choosing the pressed one again withdraws it. Over the websocket
// when connected (`like` → `likes` to everyone, `like.ok` to us), over REST
// otherwise; counts change only when the server says so. A page that joins
// no room (`inRoom: false`, a recording's page rating its broadcast) reads
// the counts and its own choice over REST, again when the identity changes,
// and rates over REST.
import { api } from '/static/api.js';

export function mountLikes(rt, viewer, stream, { like, dislike, likes, dislikes, error }, { inRoom = true } = {}) {
  let mine = null;
  const path = `/api/broadcasts/${encodeURIComponent(stream)}/like`;

  function render(counts) {
    if (counts) {
      likes.textContent = String(counts.likes ?? 0);
      dislikes.textContent = String(counts.dislikes ?? 0);
    }
    like.setAttribute('aria-pressed', String(mine === true));
    dislike.setAttribute('aria-pressed', String(mine === false));
  }

  // Bumped when a rating is sent and when it is answered: a REST read begun
  // before the answer (the guest a first rating makes reloads) is stale.
  let ratings = 0;

  async function choose(value) {
    ratings += 1;
    const liked = mine === value ? null : value;
    error.textContent = '';
    try {
      const token = await viewer.ensure();
      if (inRoom && rt.send({ type: 'like', liked })) return;
      const res = liked === null
        ? await api(path, { method: 'DELETE', token })
        : await api(path, { method: 'PUT', body: { liked }, token });
      ratings += 1;
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
  if (!inRoom) {
    const load = async () => {
      const before = ratings;
      try {
        const res = await api(path, { token: viewer.token })
          .catch((err) => { if (err.status === 401) return api(path); throw err; });
        if (before !== ratings) return;
        mine = res.mine ?? null;
        render(res);
      } catch (err) {
        error.textContent = `Ratings could not be loaded: ${err.message}`;
      }
    };
    viewer.onChange(load);
    load();
  }
  like.addEventListener('click', () => choose(true));
  dislike.addEventListener('click', () => choose(false));
  return { render };
}
