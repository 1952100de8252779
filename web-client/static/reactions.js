// The reaction bar and the floating emoji. A tap sends `react`; what floats
// is driven only by the server's aggregated `reactions` bursts (counts per
// emoji, at most every 250 ms), so everybody sees the same crowd and a
// busy broadcast costs one message per quarter second. At most MAX_FLOATING
// emoji are on screen at once; with reduced motion they fade in place.
//
// Devices without a colour emoji font (e.g. a bare Linux) would draw empty
// boxes, so there the bar and the floaters use the words instead.
import { el } from '/static/api.js';

export const EMOJI = [
  ['❤️', 'Love'], ['😂', 'Haha'], ['😮', 'Wow'], ['👏', 'Clap'], ['🔥', 'Fire'], ['😢', 'Sad'],
];
const MAX_FLOATING = 40;
const PER_BURST = 6; // per emoji per burst; larger counts are written as ×n

/// Whether this device draws colour emoji (a missing glyph draws in the
/// text colour, a colour emoji does not).
function hasEmojiFont() {
  try {
    const c = document.createElement('canvas');
    c.width = c.height = 32;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.fillStyle = '#000';
    g.textBaseline = 'top';
    g.font = '28px sans-serif';
    g.fillText('😂', 0, 0);
    const d = g.getImageData(0, 0, 32, 32).data;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 0 && (d[i] > 40 || d[i + 1] > 40 || d[i + 2] > 40)) return true;
    }
  } catch { /* no canvas: assume a modern device */ return true; }
  return false;
}

export function mountReactions(rt, viewer, { bar, floaters, error }) {
  const emoji = hasEmojiFont();
  const label = new Map(EMOJI);
  let floating = 0;

  for (const [e, name] of EMOJI) {
    bar.append(el('button', {
      type: 'button',
      className: 'react',
      'data-emoji': e,
      'aria-label': `React: ${name}`,
      onclick: async () => {
        try {
          await viewer.ensure();
        } catch (err) { error.textContent = err.message; return; }
        if (!rt.send({ type: 'react', emoji: e })) error.textContent = 'Not connected; reactions resume when the connection is back.';
      },
    }, emoji ? el('span', { 'aria-hidden': 'true' }, e) : null, emoji ? null : name));
  }

  function float(e, extra) {
    if (floating >= MAX_FLOATING) return;
    floating++;
    const node = el('span', {
      className: emoji ? 'floater' : 'floater floater-word',
      textContent: (emoji ? e : label.get(e)) + (extra > 1 ? ` ×${extra}` : ''),
    });
    node.style.left = `${5 + Math.random() * 80}%`;
    node.style.animationDelay = `${Math.random() * 250}ms`;
    node.addEventListener('animationend', () => { node.remove(); floating--; }, { once: true });
    floaters.append(node);
  }

  rt.on('reactions', (m) => {
    for (const [e, n] of Object.entries(m.counts || {})) {
      if (!label.has(e) || !(n > 0)) continue;
      const shown = Math.min(n, PER_BURST);
      for (let i = 0; i < shown; i++) float(e, i === shown - 1 && n > shown ? n - shown + 1 : 1);
    }
  });
  rt.on('error', (m) => {
    if (m.ref === 'react') error.textContent = m.code === 'rate_limited' ? 'Easy there: at most 5 reactions a second.' : (m.message || m.code);
  });
}
