// The viewer's identity in the header: display name (changeable), sign in
// or create an account, sign out (back to a new guest identity), and an
// account's plan (ad-free, and until when).
import { api } from '/static/api.js';

const $ = (id) => document.getElementById(id);

// The panel inside the page's `<details class="account" id="account">`,
// the same on every page that has one.
const PANEL = `
<summary>You: <strong id="me">…</strong> <span id="plan-badge" class="badge" hidden>Ad-free</span></summary>
<div class="account-panel">
  <p id="plan" class="status" hidden></p>
  <form id="rename-form" class="row">
    <label>Display name <input id="rename" maxlength="32" autocomplete="nickname" required></label>
    <button type="submit">Change</button>
  </form>
  <form id="login-form" class="login">
    <fieldset>
      <legend>Sign in or create an account</legend>
      <label>Username <input id="username" minlength="3" maxlength="32" pattern="[A-Za-z0-9_\\-]+" autocomplete="username" required></label>
      <label>Password <input id="password" type="password" minlength="8" autocomplete="current-password" required></label>
      <div class="row">
        <button type="submit" id="login" value="login">Sign in</button>
        <button type="submit" id="register" value="register">Create account</button>
      </div>
    </fieldset>
  </form>
  <button type="button" id="logout" hidden>Sign out</button>
  <p id="account-status" class="status" role="status"></p>
</div>
`;

export function mountAccount(viewer) {
  const details = $('account');
  if (!details.querySelector('summary')) details.innerHTML = PANEL;
  const status = $('account-status');

  function render(identity) {
    $('me').textContent = identity ? identity.name : '…';
    if (identity) $('rename').value = identity.name;
    const guest = !identity || identity.id.startsWith('g-');
    $('login-form').hidden = !guest;
    $('logout').hidden = guest;
    showPlan(guest ? null : identity);
  }

  let planFor = null;
  async function showPlan(identity) {
    planFor = identity?.id ?? null;
    $('plan-badge').hidden = true;
    $('plan').hidden = !identity;
    if (!identity) return;
    $('plan').textContent = 'Ads support this service.';
    try {
      const mine = await api('/api/me/entitlements', { token: viewer.token });
      if (planFor !== identity.id || !mine?.until_ms) return;
      $('plan-badge').hidden = false;
      $('plan').textContent = `Ad-free until ${new Date(mine.until_ms).toLocaleDateString()}.`;
    } catch { /* no plan shown: ads, the default */ }
  }

  async function run(what, fn) {
    status.textContent = `${what}…`;
    try {
      await fn();
      status.textContent = `${what}: done.`;
    } catch (err) {
      status.textContent = `${what} failed: ${err.message}`;
    }
  }

  viewer.onChange(render);
  $('rename-form').addEventListener('submit', (e) => {
    e.preventDefault();
    run('Changing your name', () => viewer.rename($('rename').value.trim()));
  });
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const register = e.submitter?.value === 'register';
    const username = $('username').value.trim();
    const password = $('password').value;
    run(register ? 'Creating your account' : 'Signing in', async () => {
      await (register ? viewer.register(username, password) : viewer.login(username, password));
      $('password').value = '';
    });
  });
  $('logout').addEventListener('click', () => run('Signing out', () => viewer.logout()));
  render(viewer.identity);
}
