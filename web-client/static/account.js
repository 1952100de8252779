// The viewer's identity in the header: display name (changeable), sign in
// or create an account, sign out (back to a new guest identity).
const $ = (id) => document.getElementById(id);

export function mountAccount(viewer) {
  const status = $('account-status');

  function render(identity) {
    $('me').textContent = identity ? identity.name : '…';
    if (identity) $('rename').value = identity.name;
    const guest = !identity || identity.id.startsWith('g-');
    $('login-form').hidden = !guest;
    $('logout').hidden = guest;
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
