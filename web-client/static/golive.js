// The "Go live" page (/go-live): a signed-in account creates channels,
// gets OBS's settings (server URL and bearer token, the key shown once at
// creation or rotation) with one click, rotates or deletes a key, and sees
// whether OBS is connected and at which layers, with a preview player.
// Status comes from `GET /api/channels/mine` every 2 s (the media plane's
// published status: live, viewers, layers).
import { Viewer, api, el } from '/static/api.js';
import { mountAccount } from '/static/account.js';
import { watch } from '/static/whep.js';

const $ = (id) => document.getElementById(id);
const viewer = new Viewer();
const previews = new Map(); // channel → { session, video }
let timer = null;

function say(node, text, bad = false) {
  node.textContent = text;
  node.className = bad ? 'error' : 'ok';
}

const isAccount = (identity) => identity && (identity.id.startsWith('u-') || identity.role === 'admin');

function showKey(channel, key) {
  $('key-channel').textContent = channel;
  $('obs-server').value = new URL(`/whip/${channel}`, location.href).toString();
  $('obs-key').value = key;
  $('copied').textContent = '';
  $('key-box').hidden = false;
  $('key-box').scrollIntoView({ block: 'nearest' });
}

$('copy-settings').addEventListener('click', async () => {
  const text = `Server: ${$('obs-server').value}\nBearer Token: ${$('obs-key').value}`;
  try {
    await navigator.clipboard.writeText(text);
    say($('copied'), 'Copied: paste into OBS → Settings → Stream.');
  } catch {
    $('obs-key').select();
    say($('copied'), 'Copy was refused by the browser: select the fields and copy them by hand.', true);
  }
});
$('hide-key').addEventListener('click', () => {
  $('obs-key').value = '';
  $('key-box').hidden = true;
});

$('create-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('channel-name').value.trim();
  try {
    const made = await api('/api/channels', { method: 'POST', body: { name }, token: viewer.token });
    say($('result'), `Channel ${made.name} created.`);
    $('channel-name').value = '';
    showKey(made.name, made.stream_key);
    refresh();
  } catch (err) {
    say($('result'), err.status === 409 ? `The name ${name} is taken.` : `Not created: ${err.message}`, true);
  }
});

async function rotate(name) {
  if (!confirm(`Make a new key for ${name}? The current key stops working at once (a running broadcast continues until OBS disconnects).`)) return;
  try {
    const rotated = await api(`/api/channels/${encodeURIComponent(name)}/key`, { method: 'POST', token: viewer.token });
    showKey(rotated.name, rotated.stream_key);
    say($('result'), `New key for ${name}: update OBS.`);
  } catch (err) {
    say($('result'), `Key not changed: ${err.message}`, true);
  }
}

async function remove(name) {
  if (!confirm(`Delete ${name}? Its name stays reserved; viewers can no longer find it.`)) return;
  try {
    await api(`/api/channels/${encodeURIComponent(name)}`, { method: 'DELETE', token: viewer.token });
    say($('result'), `Channel ${name} deleted.`);
    refresh();
  } catch (err) {
    say($('result'), `Not deleted: ${err.message}`, true);
  }
}

async function togglePreview(name, box, button) {
  const running = previews.get(name);
  if (running) {
    previews.delete(name);
    await running.session?.stop();
    box.replaceChildren();
    button.textContent = 'Preview';
    return;
  }
  const video = el('video', { autoplay: true, muted: true, playsInline: true, controls: true, className: 'preview' });
  box.replaceChildren(video);
  button.textContent = 'Stop preview';
  const entry = { video, session: null };
  previews.set(name, entry);
  try {
    entry.session = await watch(`/whep/${encodeURIComponent(name)}`, video);
  } catch (err) {
    box.replaceChildren(el('p', { className: 'error' }, `Preview failed: ${err.message}`));
    previews.delete(name);
    button.textContent = 'Preview';
  }
}

function layersText(layers) {
  return layers.map((l) => `${l.width && l.height ? `${l.width}×${l.height}` : 'layer'} ${l.bitrate_kbps} kbit/s`).join(', ');
}

function render(channels) {
  const box = $('channels');
  const seen = new Set();
  for (const c of channels) {
    seen.add(c.name);
    let card = box.querySelector(`[data-channel="${c.name}"]`);
    if (!card) {
      card = el('section', { className: 'channel', 'data-channel': c.name });
      const preview = el('div', { className: 'preview-box' });
      const previewButton = el('button', { type: 'button', className: 'preview-toggle' }, 'Preview');
      previewButton.addEventListener('click', () => togglePreview(c.name, preview, previewButton));
      const rotateButton = el('button', { type: 'button', className: 'rotate' }, 'New key');
      rotateButton.addEventListener('click', () => rotate(c.name));
      const deleteButton = el('button', { type: 'button', className: 'delete' }, 'Delete');
      deleteButton.addEventListener('click', () => remove(c.name));
      const server = el('p', { className: 'server' });
      card.append(
        el('h3', {}, el('a', { href: c.watch_url }, c.name)),
        el('p', { className: 'obs-state', role: 'status' }),
        server,
        el('div', { className: 'row' }, previewButton, rotateButton, deleteButton),
        preview,
      );
      box.append(card);
    }
    const state = card.querySelector('.obs-state');
    if (c.suspended) {
      state.textContent = `Suspended: ${c.suspended}`;
      state.className = 'obs-state error';
    } else if (c.live) {
      state.textContent = `OBS connected — live, ${c.viewers} watching${c.layers.length ? `; layers: ${layersText(c.layers)}` : ''}`;
      state.className = 'obs-state ok';
    } else {
      state.textContent = 'Waiting for OBS (not live)';
      state.className = 'obs-state status';
    }
    card.querySelector('.server').textContent = `Server: ${new URL(c.whip_url, location.href)} — the bearer token is the key shown when it was made (New key shows a fresh one).`;
  }
  for (const card of [...box.querySelectorAll('[data-channel]')]) {
    if (!seen.has(card.dataset.channel)) card.remove();
  }
  if (!channels.length) box.replaceChildren(el('p', { className: 'status' }, 'No channel yet: create one above.'));
  else box.querySelector(':scope > p.status')?.remove();
}

async function refresh() {
  if (!isAccount(viewer.identity)) return;
  try {
    render(await api('/api/channels/mine', { token: viewer.token }));
  } catch (err) {
    say($('result'), `Could not load your channels: ${err.message}`, true);
  }
}

function onIdentity(identity) {
  const ok = isAccount(identity);
  $('create-form').hidden = !ok;
  $('account').open = !ok;
  $('who').textContent = ok
    ? `Signed in as ${identity.name}. Create a channel, then point OBS at it.`
    : 'Sign in or create an account (at the top) to get a channel of your own.';
  clearInterval(timer);
  $('channels').replaceChildren();
  if (ok) {
    refresh();
    timer = setInterval(refresh, 2000);
  }
}

viewer.onChange(onIdentity);
mountAccount(viewer);
viewer.ensure().then(() => onIdentity(viewer.identity)).catch((err) => say($('who'), `The server cannot be reached: ${err.message}`, true));
