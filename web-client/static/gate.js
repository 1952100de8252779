// The disclaimer gate: a broadcast with a content warning plays only after
// the viewer accepts it. Acceptance is remembered per broadcast for the
// browser session (sessionStorage), for that exact text: a changed
// disclaimer is asked again.
const $ = (id) => document.getElementById(id);

export function createGate(stream) {
  const key = `relaycast.accepted.${stream}`;
  const accepted = (text) => {
    try { return sessionStorage.getItem(key) === text; } catch { return false; }
  };

  /// Resolves once playback may start for this disclaimer (at once if none).
  function require(disclaimer) {
    const text = (disclaimer || '').trim();
    if (!text || accepted(text)) {
      $('gate').hidden = true;
      return Promise.resolve();
    }
    $('gate-text').textContent = text;
    $('gate').hidden = false;
    $('gate-accept').focus();
    return new Promise((resolve) => {
      $('gate-accept').onclick = () => {
        try { sessionStorage.setItem(key, text); } catch { /* remembered for this page only */ }
        $('gate').hidden = true;
        resolve();
      };
    });
  }

  return { require, accepted: (d) => !(d || '').trim() || accepted((d || '').trim()) };
}
